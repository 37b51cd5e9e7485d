//! The background writer: takes entries off the channel every tick, batches them,
//! and on a flush (every `flush_rows` rows, `flush_every` after the first
//! row waiting, on request, at close) writes one segment per model version
//! and hour, then indexes it with its requests in one transaction.

use super::{Entry, LogOptions, Msg, PREDICTIONS_DIR, Shared, hour_of, logged_request, segment};
use flywheel_metadata::NewSegment;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

pub(super) fn spawn(
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    options: LogOptions,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("prediction-log".into()).spawn(move || run(&rx, &shared, &options))
}

/// How often the writer looks at the channel. It polls rather than
/// blocking in `recv`, so that a handler's `try_send` never has to wake a
/// sleeping thread (a futex call and a context switch per request); at
/// 4096 requests a tick, the channel fills only beyond 400,000 requests/s.
const TICK: Duration = Duration::from_millis(10);

fn run(rx: &Receiver<Msg>, shared: &Shared, options: &LogOptions) {
    let mut waiting: Vec<Entry> = Vec::new();
    let mut rows = 0;
    let mut since: Option<Instant> = None;
    loop {
        let mut acks = Vec::new();
        let mut closing = false;
        loop {
            match rx.try_recv() {
                Ok(Msg::Entry(e)) => {
                    shared.queued_rows.fetch_sub(e.frame.rows(), Ordering::Relaxed);
                    rows += e.frame.rows();
                    since.get_or_insert_with(Instant::now);
                    waiting.push(*e);
                    if rows >= options.flush_rows {
                        break;
                    }
                }
                Ok(Msg::Flush(ack)) => acks.push(ack),
                Ok(Msg::Close) | Err(TryRecvError::Disconnected) => {
                    closing = true;
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        let due = since.is_some_and(|t| t.elapsed() >= options.flush_every);
        if closing || due || rows >= options.flush_rows || !acks.is_empty() {
            flush(shared, std::mem::take(&mut waiting));
            rows = 0;
            since = None;
        }
        for ack in acks {
            let _ = ack.send(());
        }
        if closing {
            return;
        }
        if rows < options.flush_rows {
            std::thread::sleep(TICK);
        }
    }
}

/// Writes `entries` as one segment per model version and hour.
fn flush(shared: &Shared, entries: Vec<Entry>) {
    let mut groups: BTreeMap<(String, i64, String), Vec<Entry>> = BTreeMap::new();
    for e in entries {
        groups.entry((e.served.name.clone(), e.served.version, hour_of(e.at_us))).or_default().push(e);
    }
    for ((model, version, hour), group) in groups {
        let rows: usize = group.iter().map(|e| e.frame.rows()).sum();
        if let Err(message) = write_segment(shared, &model, version, &hour, &group) {
            tracing::warn!("prediction log: {rows} row(s) of {model}@{version} not logged: {message}");
            shared.dropped.fetch_add(rows as u64, Ordering::Relaxed);
        }
        let mut pending = shared.pending();
        for e in &group {
            pending.remove(&e.request_id);
        }
    }
}

fn write_segment(shared: &Shared, model: &str, version: i64, hour: &str, group: &[Entry]) -> Result<(), String> {
    let first_us = group.iter().map(|e| e.at_us).min().unwrap_or(0);
    let last_us = group.iter().map(|e| e.at_us).max().unwrap_or(0);
    let relative = format!("{PREDICTIONS_DIR}/{model}/{hour}/{}.parquet", segment_name(version, first_us));
    let batch = segment::to_batch(group).map_err(|e| format!("cannot build the segment: {e}"))?;
    segment::write(&shared.root.join(&relative), &batch).map_err(|e| e.0)?;
    let new = NewSegment {
        model_name: model.to_string(),
        version,
        hour: hour.to_string(),
        path: relative.clone(),
        rows: batch.num_rows() as i64,
        first_us,
        last_us,
    };
    let requests: Vec<_> = group.iter().map(logged_request).collect();
    if let Err(e) = shared.metadata.record_segment(&new, &requests) {
        // Unindexed, the segment is invisible to readers: remove it so that
        // nothing on disk disagrees with the index.
        let _ = std::fs::remove_file(shared.root.join(&relative));
        return Err(format!("cannot index {relative}: {e}"));
    }
    Ok(())
}

/// `v<version>-<first time, µs>-<pid>-<n>`: unique across flushes, writers
/// and restarts.
fn segment_name(version: i64, first_us: i64) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("v{version}-{first_us}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
