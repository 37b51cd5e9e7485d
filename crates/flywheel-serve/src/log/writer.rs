//! The background writer: takes entries off the channel every tick and
//! turns them at once into Arrow batches per model version and hour (so a
//! waiting row costs its values, not its request's whole frame); on a flush
//! (every `flush_rows` rows, `flush_every` after the first row waiting, on
//! request, at close) writes one segment per model version and hour, then
//! indexes it with its requests in one transaction.

use super::{Entry, LogOptions, Msg, PREDICTIONS_DIR, Shared, hour_of, logged_request, segment};
use arrow_array::RecordBatch;
use flywheel_metadata::{LoggedRequest, NewSegment};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
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

/// What waits to be written for one model version and hour: the rows
/// already turned into Arrow batches (a few hundred bytes a row, where a
/// queued request holds its whole frame), and the requests to index.
#[derive(Default)]
struct Group {
    batches: Vec<RecordBatch>,
    requests: Vec<LoggedRequest>,
    rows: usize,
}

type Key = (String, i64, String);

fn run(rx: &Receiver<Msg>, shared: &Shared, options: &LogOptions) {
    let mut waiting: BTreeMap<Key, Group> = BTreeMap::new();
    let mut rows = 0;
    let mut since: Option<Instant> = None;
    loop {
        let (taken, acks, closing) = take(rx, shared, options.flush_rows.saturating_sub(rows));
        if !taken.is_empty() {
            since.get_or_insert_with(Instant::now);
            rows += taken.iter().map(|e| e.frame.rows()).sum::<usize>();
            compact(&mut waiting, taken);
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

/// What the channel holds now, up to `room` rows: the entries, the flushes
/// asked for, and whether the log is closing.
fn take(rx: &Receiver<Msg>, shared: &Shared, room: usize) -> (Vec<Entry>, Vec<SyncSender<()>>, bool) {
    let (mut entries, mut acks, mut rows) = (Vec::new(), Vec::new(), 0);
    loop {
        match rx.try_recv() {
            Ok(Msg::Entry(e)) => {
                shared.queued_rows.fetch_sub(e.frame.rows(), Ordering::Relaxed);
                rows += e.frame.rows();
                entries.push(*e);
                if rows >= room {
                    return (entries, acks, false);
                }
            }
            Ok(Msg::Flush(ack)) => acks.push(ack),
            Ok(Msg::Close) | Err(TryRecvError::Disconnected) => return (entries, acks, true),
            Err(TryRecvError::Empty) => return (entries, acks, false),
        }
    }
}

/// Turns `entries` into a batch per model version and hour, added to
/// what waits; the entries (and their frames) are let go.
fn compact(waiting: &mut BTreeMap<Key, Group>, entries: Vec<Entry>) {
    let mut by_key: BTreeMap<Key, Vec<Entry>> = BTreeMap::new();
    for e in entries {
        by_key.entry((e.served.name.clone(), e.served.version, hour_of(e.at_us))).or_default().push(e);
    }
    for (key, entries) in by_key {
        let group = waiting.entry(key.clone()).or_default();
        let rows: usize = entries.iter().map(|e| e.frame.rows()).sum();
        match segment::to_batch(&entries) {
            Ok(batch) => {
                group.batches.push(batch);
                group.requests.extend(entries.iter().map(logged_request));
                group.rows += rows;
            }
            Err(e) => {
                tracing::warn!("prediction log: {rows} row(s) of {}@{} not logged: {e}", key.0, key.1);
            }
        }
    }
}

/// Writes what waits as one segment per model version and hour.
fn flush(shared: &Shared, waiting: BTreeMap<Key, Group>) {
    for ((model, version, hour), group) in waiting {
        if let Err(message) = write_segment(shared, &model, version, &hour, &group) {
            tracing::warn!("prediction log: {} row(s) of {model}@{version} not logged: {message}", group.rows);
            shared.dropped.fetch_add(group.rows as u64, Ordering::Relaxed);
        }
        let mut pending = shared.pending();
        for r in &group.requests {
            pending.remove(&r.request_id);
        }
    }
}

fn write_segment(shared: &Shared, model: &str, version: i64, hour: &str, group: &Group) -> Result<(), String> {
    let first_us = group.requests.iter().map(|r| r.at_us).min().unwrap_or(0);
    let last_us = group.requests.iter().map(|r| r.at_us).max().unwrap_or(0);
    let relative = format!("{PREDICTIONS_DIR}/{model}/{hour}/{}.parquet", segment_name(version, first_us));
    segment::write(&shared.root.join(&relative), &group.batches).map_err(|e| e.0)?;
    let new = NewSegment {
        model_name: model.to_string(),
        version,
        hour: hour.to_string(),
        path: relative.clone(),
        rows: group.rows as i64,
        first_us,
        last_us,
    };
    if let Err(e) = shared.metadata.record_segment(&new, &group.requests) {
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
