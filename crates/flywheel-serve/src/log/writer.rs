//! The background writer: on a flush (`flush_rows` rows waiting,
//! `flush_every` after the first of them arrived, on request, at close) it
//! takes the waiting columns whole, writes one Parquet segment per model
//! version and hour, then indexes it with its requests in one transaction.

use super::buffer::{HOUR_US, Requests};
use super::{LogOptions, Msg, PREDICTIONS_DIR, Shared, hour_of, segment};
use flywheel_metadata::NewSegment;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

pub(super) fn spawn(
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    options: LogOptions,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("prediction-log".into()).spawn(move || run(&rx, &shared, &options))
}

/// How often the writer looks at what waits. Handlers never wake it: a
/// wake per request would cost a futex call and a context switch each.
const TICK: Duration = Duration::from_millis(10);

fn run(rx: &Receiver<Msg>, shared: &Shared, options: &LogOptions) {
    loop {
        let (acks, closing) = match rx.recv_timeout(TICK) {
            Ok(Msg::Flush(ack)) => (vec![ack], false),
            Ok(Msg::Close) | Err(RecvTimeoutError::Disconnected) => (Vec::new(), true),
            Err(RecvTimeoutError::Timeout) => (Vec::new(), false),
        };
        if closing || !acks.is_empty() || due(shared, options) {
            flush(shared);
        }
        for ack in acks {
            let _ = ack.send(());
        }
        if closing {
            return;
        }
    }
}

fn due(shared: &Shared, options: &LogOptions) -> bool {
    let waiting = shared.waiting();
    waiting.rows >= options.flush_rows || waiting.since.is_some_and(|t| t.elapsed() >= options.flush_every)
}

/// Writes what waits as one segment per model version and hour. Its
/// requests stay visible to feedback lookups (`Shared::writing`) until
/// they are indexed: they move there under the `writing` lock, taken
/// before the waiting rows are, so a lookup that missed them among the
/// waiting finds them being written.
fn flush(shared: &Shared) {
    let taken: Vec<(Arc<Requests>, BatchResult)> = {
        let mut writing = shared.writing();
        let groups = {
            let mut waiting = shared.waiting();
            waiting.rows = 0;
            waiting.since = None;
            std::mem::take(&mut waiting.groups)
        };
        groups
            .into_iter()
            .map(|group| {
                let (requests, batch) = group.finish();
                let requests = Arc::new(requests);
                writing.push(requests.clone());
                (requests, batch)
            })
            .collect()
    };
    for (requests, batch) in taken {
        write_group(shared, &requests, batch);
    }
}

type BatchResult = Result<arrow_array::RecordBatch, arrow_schema::ArrowError>;

fn write_group(shared: &Shared, requests: &Arc<Requests>, batch: BatchResult) {
    let written = batch
        .map_err(|e| format!("cannot build the rows: {e}"))
        .and_then(|batch| write_segment(shared, requests, &batch));
    if let Err(message) = written {
        let (model, version) = (&requests.served.name, requests.served.version);
        tracing::warn!("prediction log: {} row(s) of {model}@{version} not logged: {message}", requests.rows);
        shared.dropped.fetch_add(requests.rows as u64, Ordering::Relaxed);
    }
    shared.writing().retain(|w| !Arc::ptr_eq(w, requests));
}

fn write_segment(shared: &Shared, requests: &Requests, batch: &arrow_array::RecordBatch) -> Result<(), String> {
    let (model, version) = (&requests.served.name, requests.served.version);
    let hour = hour_of(requests.hour * HOUR_US);
    let (first_us, last_us) = requests.span();
    let relative = format!("{PREDICTIONS_DIR}/{model}/{hour}/{}.parquet", segment_name(version, first_us));
    segment::write(&shared.root.join(&relative), std::slice::from_ref(batch)).map_err(|e| e.0)?;
    let new = NewSegment {
        model_name: model.clone(),
        version,
        hour,
        path: relative.clone(),
        rows: requests.rows as i64,
        first_us,
        last_us,
        target: super::target_kind(&requests.served),
    };
    if let Err(e) = shared.metadata.record_segment(&new, requests.rows()) {
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
