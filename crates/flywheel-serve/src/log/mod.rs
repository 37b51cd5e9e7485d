//! The prediction log: a sampled record of what the server predicts, one
//! row per predicted row, written to Parquet segments under
//! `HOME/predictions/<model>/<YYYY-MM-DDTHH>/` by a background thread and
//! indexed in the metadata store; and the feedback (ground truth) joined
//! to it by request id. [`read`] (in `flywheel_registry`, beside the rest of
//! the home) gives both back as one table, by model and time window, for
//! `flywheel logs`, monitoring and pipelines' `@logs:` inputs.
//!
//! A request never waits on the disk: the handler appends its values to
//! columns waiting for the writer (`buffer.rs`, one short lock); when the
//! writer falls behind and `queue_rows` wait, rows are dropped and counted
//! ([`PredictionLog::dropped`]), never queued without bound.

mod buffer;
pub use flywheel_registry::logs as read;
mod segment;
mod writer;

use crate::batch::Batch;
use crate::served::Served;
use crate::{Result, ServeError};
use buffer::{Pending, Requests};
use flywheel_core::ModelRef;
use flywheel_metadata::{Feedback, LoggedRequest, MetadataStore, TargetKind};
use flywheel_ml::Prediction;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Flushes and a close the writer's channel holds (it carries no rows).
const CONTROL: usize = 64;

/// The folder under the home that holds prediction segments.
pub const PREDICTIONS_DIR: &str = "predictions";

/// What fraction of requests is logged, per model.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// For models without a rate of their own.
    pub default: f64,
    pub per_model: BTreeMap<String, f64>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { default: 1.0, per_model: BTreeMap::new() }
    }
}

impl Sampling {
    /// Reads `--log-sample` values: `RATE` (every model) or `MODEL=RATE`,
    /// each rate in [0, 1]; a later value for the same model wins.
    pub fn parse(values: &[String]) -> Result<Sampling> {
        let mut s = Sampling::default();
        for v in values {
            let (model, rate) = match v.split_once('=') {
                Some((m, r)) => (Some(m.trim()), r),
                None => (None, v.as_str()),
            };
            let refuse = |why: &str| ServeError::LogSample(format!("--log-sample `{v}`: {why}"));
            let rate: f64 = rate
                .trim()
                .parse()
                .map_err(|_| refuse("the rate is not a number; write RATE or MODEL=RATE, as 0.1 or clf=0.5"))?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(refuse("a rate is a fraction of requests, between 0 and 1"));
            }
            match model {
                Some("") => return Err(refuse("no model before `=`; write MODEL=RATE")),
                Some(m) => {
                    if s.per_model.insert(m.to_string(), rate).is_some() {
                        return Err(refuse(&format!("`{m}` has a rate already; give each model one")));
                    }
                }
                None => s.default = rate,
            }
        }
        Ok(s)
    }

    /// Refuses a rate for a model that is not among `served`: a typo would
    /// otherwise log that model at the default rate, unnoticed.
    pub fn check_models(&self, served: &[String]) -> Result<()> {
        match self.per_model.keys().find(|m| !served.contains(m)) {
            Some(m) => Err(ServeError::LogSample(format!(
                "--log-sample `{m}=…`: no model `{m}` is served; served: {}",
                served.join(", ")
            ))),
            None => Ok(()),
        }
    }

    pub fn rate(&self, model: &str) -> f64 {
        self.per_model.get(model).copied().unwrap_or(self.default)
    }

    /// Whether the request `id` of `model` is logged: decided by a hash of
    /// the id, so a request is logged whole or not at all, and the same id
    /// always decides the same way.
    pub fn sampled(&self, model: &str, id: &str) -> bool {
        let rate = self.rate(model);
        if rate >= 1.0 {
            return true;
        }
        if rate <= 0.0 {
            return false;
        }
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        ((h.finish() >> 11) as f64 / (1u64 << 53) as f64) < rate
    }
}

/// How the log behaves: sampling, when it writes, how much it queues.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub sampling: Sampling,
    /// A flush when this many rows wait.
    pub flush_rows: usize,
    /// A flush at the latest this long after the first row waiting arrived.
    pub flush_every: Duration,
    /// Rows waiting (not yet taken by the writer) before dropping.
    pub queue_rows: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            sampling: Sampling::default(),
            // Two segments a second at 30,000 one-row requests a second:
            // few files for readers, and what waits (with the batch being
            // encoded, twice that) a few MB, in a server held under 50 MB.
            flush_rows: 1 << 14,
            flush_every: Duration::from_secs(2),
            // About 25 MB of rows of 20 numbers: the memory a server may hold
            // for a writer that fell behind, not more.
            queue_rows: 1 << 17,
        }
    }
}

/// One sampled request, as the handler has it.
pub(crate) struct Entry<'a> {
    pub request_id: &'a str,
    /// The reference of the split's arm that chose the version (`m@canary`).
    pub arm: &'a ModelRef,
    /// Whether the version answered as the shadow (its answer not returned).
    pub shadow: bool,
    /// Microseconds since 1970, UTC.
    pub at_us: i64,
    pub served: &'a Arc<Served>,
    pub batch: &'a Batch,
    pub prediction: &'a Prediction,
    pub latency_us: i64,
}

/// What the writer is asked besides writing on its own schedule.
pub(crate) enum Msg {
    Flush(SyncSender<()>),
    Close,
}

/// Rows appended by the handlers and not yet taken by the writer.
#[derive(Default)]
pub(crate) struct Waiting {
    pub groups: Vec<Pending>,
    pub rows: usize,
    /// When the first of them arrived.
    pub since: Option<std::time::Instant>,
}

/// What the handlers and the writer share.
pub(crate) struct Shared {
    pub dropped: AtomicU64,
    pub waiting: Mutex<Waiting>,
    /// Requests taken by the writer and not yet indexed, so feedback for
    /// them is taken while their segment is written.
    pub writing: Mutex<Vec<Arc<Requests>>>,
    pub closed: AtomicBool,
    pub metadata: Arc<MetadataStore>,
    pub root: PathBuf,
}

impl Shared {
    /// What the handlers and the writer of the home at `root` share, empty.
    pub fn new(root: PathBuf, metadata: Arc<MetadataStore>) -> Self {
        Shared {
            dropped: AtomicU64::new(0),
            waiting: Mutex::new(Waiting::default()),
            writing: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            metadata,
            root,
        }
    }

    // Appends and takes whole groups only: a poisoned lock still guards
    // consistent data.
    pub fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn writing(&self) -> MutexGuard<'_, Vec<Arc<Requests>>> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Running {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    options: LogOptions,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The server's prediction log, or none (`--no-log`, or a server without a
/// home).
pub struct PredictionLog {
    running: Option<Running>,
}

impl PredictionLog {
    /// A log that records nothing.
    pub fn disabled() -> Self {
        PredictionLog { running: None }
    }

    /// Starts the writer thread for the home at `root`.
    pub fn start(root: PathBuf, metadata: Arc<MetadataStore>, options: LogOptions) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel(CONTROL);
        let shared = Arc::new(Shared::new(root, metadata));
        let thread = writer::spawn(rx, shared.clone(), options.clone())
            .map_err(|e| ServeError::Internal(format!("cannot start the prediction log's writer: {e}")))?;
        Ok(PredictionLog { running: Some(Running { tx, shared, options, thread: Mutex::new(Some(thread)) }) })
    }

    pub fn is_enabled(&self) -> bool {
        self.running.is_some()
    }

    /// Rows dropped because the writer fell behind (or could not write).
    pub fn dropped(&self) -> u64 {
        self.running.as_ref().map_or(0, |r| r.shared.dropped.load(Ordering::Relaxed))
    }

    /// Whether request `id` of `model` is to be logged.
    pub fn sampled(&self, model: &str, id: &str) -> bool {
        self.running.as_ref().is_some_and(|r| r.options.sampling.sampled(model, id))
    }

    /// Appends one predicted request to the rows waiting for the writer,
    /// or drops and counts its rows when `queue_rows` wait already or the
    /// log is closed; never waits on the disk. The caller checked
    /// [`sampled`](Self::sampled).
    pub(crate) fn record(&self, entry: &Entry) {
        let Some(r) = &self.running else { return };
        let rows = entry.batch.rows();
        let mut waiting = r.shared.waiting();
        if waiting.rows + rows > r.options.queue_rows || r.shared.closed.load(Ordering::Relaxed) {
            drop(waiting);
            r.shared.dropped.fetch_add(rows as u64, Ordering::Relaxed);
            return;
        }
        let hour = entry.at_us.div_euclid(buffer::HOUR_US);
        let at = match waiting.groups.iter().position(|g| g.holds(entry.served, hour)) {
            Some(at) => at,
            None => {
                waiting.groups.push(Pending::new(entry.served, hour));
                waiting.groups.len() - 1
            }
        };
        waiting.groups[at].append(entry);
        waiting.rows += rows;
        waiting.since.get_or_insert_with(std::time::Instant::now);
    }

    /// The logged request with this id (waiting, being written, or
    /// indexed). Blocking: it may read the metadata store.
    pub fn lookup(&self, id: &str) -> Result<Option<LoggedRequest>> {
        let Some(r) = &self.running else { return Ok(None) };
        if let Some(found) = r.shared.waiting().groups.iter().find_map(|g| g.requests.find(id)) {
            return Ok(Some(found));
        }
        if let Some(found) = r.shared.writing().iter().find_map(|w| w.find(id)) {
            return Ok(Some(found));
        }
        r.shared.metadata.logged_request(id).map_err(|e| ServeError::Registry(e.into()))
    }

    /// Stores labels (blocking: one transaction in the metadata store).
    pub fn record_feedback(&self, items: &[Feedback]) -> Result<()> {
        let Some(r) = &self.running else {
            return Err(ServeError::NotFound("the prediction log is off (--no-log): no feedback is taken".into()));
        };
        r.shared.metadata.record_feedback(items).map_err(|e| ServeError::Registry(e.into()))
    }

    /// Writes out what is queued now and waits for it (blocking).
    pub fn flush(&self) {
        let Some(r) = &self.running else { return };
        let (ack, done) = std::sync::mpsc::sync_channel(1);
        if r.tx.send(Msg::Flush(ack)).is_ok() {
            let _ = done.recv();
        }
    }

    /// Writes out everything queued and stops the writer (blocking); what
    /// is recorded afterwards is dropped and counted. Calling it again does
    /// nothing.
    pub fn close(&self) {
        let Some(r) = &self.running else { return };
        let thread = r.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            {
                // Under the lock, so no request is half appended: what
                // comes after is dropped and counted, what came before is
                // written.
                let _waiting = r.shared.waiting();
                r.shared.closed.store(true, Ordering::Relaxed);
            }
            let _ = r.tx.send(Msg::Close);
            if thread.join().is_err() {
                tracing::error!("the prediction log's writer panicked; queued rows were lost");
            }
        }
    }
}

impl Drop for PredictionLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// The kind of label `served`'s target takes.
pub fn target_kind(served: &Served) -> TargetKind {
    if served.is_classifier() { TargetKind::Text } else { TargetKind::Number }
}

/// Microseconds since 1970, UTC.
pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// `YYYY-MM-DDTHH` of a time in microseconds, UTC: a segment's folder.
pub fn hour_of(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let (y, m, d) = flywheel_core::civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}T{:02}", secs.rem_euclid(86_400) / 3600)
}

#[cfg(test)]
mod tests;
