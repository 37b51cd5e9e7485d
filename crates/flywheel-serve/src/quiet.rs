//! What the server does when it goes quiet after work: the caller's hook
//! (`flywheel serve` and `up` give the allocator's freed memory back to the
//! system: a load of 1,000-row requests leaves ~50 MB freed but resident
//! in glibc's per-thread arenas, which its trim threshold does not reach).
//! Run once per quiet spell, never during a load: a trim walks every arena
//! under its lock, which requests would wait for.

use crate::Metrics;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long without a new request counts as quiet.
pub(crate) const QUIET_AFTER: Duration = Duration::from_secs(1);

/// Whether the count of requests started shows a quiet spell that follows
/// work: none new in the last look, some since the hook last ran.
#[derive(Debug, Default)]
pub(crate) struct Quiet {
    seen: u64,
    done_at: u64,
}

impl Quiet {
    /// Looks at `count`, the requests started so far; true once per spell.
    pub(crate) fn look(&mut self, count: u64) -> bool {
        let quiet = count == self.seen && count != self.done_at;
        self.seen = count;
        if quiet {
            self.done_at = count;
        }
        quiet
    }
}

/// Runs `hook` (on a blocking thread) each time the requests started
/// (`Metrics::started`) stop moving for [`QUIET_AFTER`] after moving;
/// until the task is aborted.
pub(crate) async fn watch(metrics: Arc<Metrics>, hook: fn()) {
    let mut tick = tokio::time::interval(QUIET_AFTER);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quiet = Quiet::default();
    loop {
        tick.tick().await;
        if quiet.look(metrics.started.load(Ordering::Relaxed)) {
            let _ = tokio::task::spawn_blocking(hook).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_runs_once_per_quiet_spell_after_work_and_never_during_it() {
        let mut q = Quiet::default();
        let looks: Vec<bool> = [0, 0, 5, 9, 9, 9, 9, 12, 12, 12].iter().map(|&c| q.look(c)).collect();
        assert_eq!(looks, [false, false, false, false, true, false, false, false, true, false]);
    }
}
