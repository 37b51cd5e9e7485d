//! The caller's memory hook, run once a second while requests come and
//! once when they stop (`flywheel serve` and `up` give the allocator's
//! freed memory back to the system: a load of 1,000-row requests leaves
//! ~30 MB freed but resident in glibc's per-thread arenas, which its trim
//! threshold does not reach, and a server that goes on answering one-row
//! requests would hold it for good). The hook decides what a moment is
//! worth: on [`Moment::Busy`] a trim walks every arena under its lock,
//! which requests wait for, so it trims only when much is held.

use crate::Metrics;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the hook may run, and how long without a new request counts
/// as quiet.
pub(crate) const QUIET_AFTER: Duration = Duration::from_secs(1);

/// When the hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Requests came in the last second.
    Busy,
    /// None came in the last second, after some had: once per quiet spell.
    Quiet,
}

/// Reads the count of requests started, a look a second, into moments.
#[derive(Debug, Default)]
pub(crate) struct Quiet {
    seen: u64,
    done_at: u64,
}

impl Quiet {
    /// Looks at `count`, the requests started so far.
    pub(crate) fn look(&mut self, count: u64) -> Option<Moment> {
        let moment = if count != self.seen {
            Some(Moment::Busy)
        } else if count != self.done_at {
            self.done_at = count;
            Some(Moment::Quiet)
        } else {
            None
        };
        self.seen = count;
        moment
    }
}

/// Runs `hook` (on a blocking thread) at each moment the requests started
/// (`Metrics::started`) show, looking every [`QUIET_AFTER`]; until the
/// task is aborted.
pub(crate) async fn watch(metrics: Arc<Metrics>, hook: fn(Moment)) {
    let mut tick = tokio::time::interval(QUIET_AFTER);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quiet = Quiet::default();
    loop {
        tick.tick().await;
        if let Some(moment) = quiet.look(metrics.started.load(Ordering::Relaxed)) {
            let _ = tokio::task::spawn_blocking(move || hook(moment)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_each_second_requests_came_and_quiet_once_per_spell_after_them() {
        let mut q = Quiet::default();
        let looks: Vec<Option<Moment>> = [0, 0, 5, 9, 9, 9, 9, 12, 12, 12].iter().map(|&c| q.look(c)).collect();
        let (b, quiet) = (Some(Moment::Busy), Some(Moment::Quiet));
        assert_eq!(looks, [None, None, b, b, quiet, None, None, b, quiet, None]);
    }
}
