//! `flywheel replay`: a dataset's rows sent to a running server as live
//! traffic, in time order, as fast as the server answers or at a rate,
//! with their labels posted as feedback: what demos, tests and benchmarks
//! drive the loop with.
//!
//! Each request carries an id of its own (`x-request-id`,
//! `replay-<start>-<n>`), unique across replays, so feedback finds it.

mod feedback;
mod plan;

pub use feedback::Posted;
pub use plan::{Columns, Plan, Served};

use crate::{ClientError, Conn, Target, error_message, invocations_body};
use serde_json::{Value as Json, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A replay as the user asked for it (`flywheel replay`'s flags).
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub data: PathBuf,
    /// The server, `http://HOST:PORT`.
    pub to: String,
    /// The model to send to; the server's only one when `None`.
    pub model: Option<String>,
    pub columns: Columns,
    /// Rows per second; as fast as the server answers when `None`.
    pub rate: Option<f64>,
    /// Rows per request.
    pub batch: usize,
    /// Requests in flight at once (one connection each). Rows reach the
    /// server in time order with 1; with more, only within that many.
    pub concurrency: usize,
    /// Sent as `Authorization: Bearer` with feedback (`FLYWHEEL_TOKEN`).
    pub token: Option<String>,
}

/// A replay ready to run: the server found, the data read and ordered.
pub struct Replay {
    target: Target,
    addr: SocketAddr,
    pub served: Served,
    pub plan: Arc<Plan>,
    rate: Option<f64>,
    batch: usize,
    concurrency: usize,
    token: Option<String>,
}

/// How a replay went.
#[derive(Debug, Clone)]
pub struct Summary {
    pub model: String,
    /// Rows the replay was to send.
    pub planned: usize,
    /// Rows answered.
    pub rows: usize,
    pub requests: usize,
    pub failed: usize,
    /// Rows never sent (the replay gave up, or a connection could not be
    /// opened again).
    pub unsent: usize,
    /// Labels left out: not numbers, for a model that predicts numbers.
    pub unusable_labels: usize,
    /// The first few failures, as the server or the connection said them.
    pub errors: Vec<String>,
    pub feedback: Posted,
    pub elapsed: Duration,
    /// Latency of answered requests, exact: p50 and p99.
    pub p50: Duration,
    pub p99: Duration,
}

/// The slowest pace taken: a row every 1,000 s.
const MIN_RATE: f64 = 0.001;
/// Failures kept for the summary.
const KEPT_ERRORS: usize = 5;
/// A replay stops when this many requests failed and none was answered:
/// the rest would fail alike.
const HOPELESS: usize = 50;

impl Replay {
    pub async fn prepare(config: ReplayConfig) -> Result<Replay, ClientError> {
        check_flags(&config)?;
        let target = Target::parse(&config.to)?;
        let addr = target.resolve().await?;
        let mut conn = Conn::open(addr).await?;
        let served = plan::served(&mut conn, &target, config.model.as_deref()).await?;
        let (data, s, columns) = (config.data.clone(), served.clone(), config.columns.clone());
        let plan = tokio::task::spawn_blocking(move || plan::plan(&data, &s, &columns))
            .await
            .map_err(|e| ClientError::Input(format!("reading the data failed: {e}")))??;
        if plan.frame.rows() == 0 {
            return Err(ClientError::Input(format!("{}: no rows to replay", config.data.display())));
        }
        let (rate, batch, concurrency, token) = (config.rate, config.batch, config.concurrency, config.token);
        Ok(Replay { target, addr, served, plan: Arc::new(plan), rate, batch, concurrency, token })
    }

    pub fn rows(&self) -> usize {
        self.plan.frame.rows()
    }

    /// Sends every row, calling `progress` with the rows answered so far.
    pub async fn run(self, progress: Arc<dyn Fn(usize) + Send + Sync>) -> Result<Summary, ClientError> {
        let started = Instant::now();
        let (to_feedback, items) = mpsc::unbounded_channel();
        let posting = tokio::spawn(feedback::post_all(self.addr, self.target.clone(), self.token.clone(), items));
        let shared = Arc::new(Shared {
            replay: self,
            prefix: format!("replay-{:x}", unix_micros()),
            next: AtomicUsize::new(0),
            answered_rows: AtomicUsize::new(0),
            tally: Mutex::new(Tally::default()),
            progress,
            to_feedback,
            started,
        });
        let workers: Vec<_> = (0..shared.replay.concurrency).map(|_| tokio::spawn(worker(shared.clone()))).collect();
        for w in workers {
            if let Err(e) = w.await {
                shared.failed(0, format!("a sender stopped: {e}"));
            }
        }
        let Ok(shared) = Arc::try_unwrap(shared) else {
            return Err(ClientError::Input("a sender outlived the replay".into()));
        };
        let Shared { replay, tally, to_feedback, .. } = shared;
        drop(to_feedback);
        let feedback = posting.await.unwrap_or_default();
        let mut tally = tally.into_inner().unwrap_or_else(|p| p.into_inner());
        tally.latencies.sort_unstable();
        let at = |q: f64| tally.latencies.get(((tally.latencies.len() as f64 - 1.0) * q).round() as usize);
        let planned = replay.rows();
        Ok(Summary {
            model: replay.served.name.clone(),
            planned,
            rows: tally.rows,
            requests: tally.answered + tally.failed,
            failed: tally.failed,
            unsent: planned.saturating_sub(tally.rows + tally.failed_rows),
            unusable_labels: replay.plan.unusable_labels,
            errors: tally.errors,
            feedback,
            elapsed: started.elapsed(),
            p50: at(0.5).copied().unwrap_or_default(),
            p99: at(0.99).copied().unwrap_or_default(),
        })
    }
}

fn check_flags(c: &ReplayConfig) -> Result<(), ClientError> {
    let mut problems = Vec::new();
    if c.batch == 0 {
        problems.push("--batch must be 1 or more rows per request".to_string());
    }
    if c.concurrency == 0 {
        problems.push("--concurrency must be 1 or more".to_string());
    }
    if let Some(r) = c.rate
        && !(r.is_finite() && r >= MIN_RATE)
    {
        problems.push(format!("--rate must be a number of rows per second, {MIN_RATE} or more, got {r}"));
    }
    if c.columns.limit == Some(0) {
        problems.push("--limit must be 1 or more rows".to_string());
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(ClientError::Input(problems.join("; "))),
    }
}

fn unix_micros() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros())
}

/// What the senders share.
struct Shared {
    replay: Replay,
    prefix: String,
    /// The next batch to send.
    next: AtomicUsize,
    answered_rows: AtomicUsize,
    tally: Mutex<Tally>,
    progress: Arc<dyn Fn(usize) + Send + Sync>,
    to_feedback: mpsc::UnboundedSender<Json>,
    started: Instant,
}

#[derive(Default)]
struct Tally {
    rows: usize,
    answered: usize,
    failed: usize,
    failed_rows: usize,
    errors: Vec<String>,
    latencies: Vec<Duration>,
}

impl Shared {
    fn batches(&self) -> usize {
        self.replay.rows().div_ceil(self.replay.batch)
    }

    fn rows_of(&self, batch: usize) -> std::ops::Range<usize> {
        let first = batch * self.replay.batch;
        first..(first + self.replay.batch).min(self.replay.rows())
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hopeless(&self) -> bool {
        let t = self.tally();
        t.answered == 0 && t.failed >= HOPELESS
    }

    /// Waits until batch `i` is due at the replay's rate.
    async fn pace(&self, i: usize) {
        if let Some(rate) = self.replay.rate {
            let after = Duration::try_from_secs_f64((i * self.replay.batch) as f64 / rate).unwrap_or(Duration::MAX);
            if let Some(due) = self.started.checked_add(after) {
                tokio::time::sleep_until(due.into()).await;
            }
        }
    }

    fn failed(&self, rows: usize, why: String) {
        let mut t = self.tally();
        t.failed += 1;
        t.failed_rows += rows;
        if t.errors.len() < KEPT_ERRORS {
            t.errors.push(why);
        }
    }

    fn answered(&self, rows: std::ops::Range<usize>, id: &str, took: Duration) {
        {
            let mut t = self.tally();
            t.answered += 1;
            t.rows += rows.len();
            t.latencies.push(took);
        }
        if let Some(labels) = &self.replay.plan.labels {
            for (k, r) in rows.clone().enumerate() {
                if let Some(label) = &labels[r] {
                    let _ = self.to_feedback.send(json!({ "id": id, "row": k, "label": label }));
                }
            }
        }
        let done = self.answered_rows.fetch_add(rows.len(), Ordering::Relaxed) + rows.len();
        (self.progress)(done);
    }
}

/// One connection sending batches in turn until none is left.
async fn worker(shared: Arc<Shared>) {
    let r = &shared.replay;
    let path = r.target.path(&format!("/invocations?model={}", r.served.name));
    let mut conn: Option<Conn> = None;
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= shared.batches() || shared.hopeless() {
            return;
        }
        shared.pace(i).await;
        let rows = shared.rows_of(i);
        let id = format!("{}-{i}", shared.prefix);
        let body = invocations_body(&r.plan.frame, rows.clone());
        if conn.is_none() {
            match Conn::open(r.addr).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    shared.failed(rows.len(), e.to_string());
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let sent = Instant::now();
        match c.send(hyper::Method::POST, &path, &[("x-request-id", &id)], body).await {
            Ok((status, _)) if status.is_success() => shared.answered(rows, &id, sent.elapsed()),
            Ok((status, answer)) => {
                shared.failed(rows.len(), format!("HTTP {}: {}", status.as_u16(), error_message(&answer)))
            }
            Err(e) => {
                // A broken connection is opened again for the next batch.
                conn = None;
                shared.failed(rows.len(), e.to_string());
            }
        }
    }
}
