//! What every request handler shares: the models answering ([`ModelTable`])
//! and the server's services beside them. One `Arc<AppState>` is the axum
//! state; a service (the prediction log, metrics, the routing follower) is
//! a field here, so a handler reaches it without globals.

use crate::log::PredictionLog;
use crate::metrics::{Metrics, catch_up};
use crate::shadow::Shadow;
use crate::table::ModelTable;
use flywheel_registry::Home;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// Limits on prediction requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How long a request's body may take to arrive (then 408), and a
    /// prediction on a blocking thread to run (then 503; it still runs to
    /// its end, holding its slot).
    pub timeout: Duration,
    /// Requests being answered at once; more are refused with 503.
    pub max_in_flight: usize,
    /// A client has this long to send a request's head; one that trickles
    /// it (or sends nothing) is disconnected instead of holding its
    /// connection.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { timeout: Duration::from_secs(30), max_in_flight: 1024, header_timeout: Duration::from_secs(10) }
    }
}

/// The state behind every route.
pub struct AppState {
    pub table: Arc<ModelTable>,
    /// Copies of requests for the versions shadowing the ones that answer.
    pub shadow: Shadow,
    /// Wakes the registry follower to look now (after a split changes).
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    /// One per prediction request being answered (`limits.max_in_flight`).
    pub slots: Arc<Semaphore>,
    /// The bearer token state-changing endpoints ask for, when configured.
    pub token: Option<String>,
    /// The registry the models come from (none for a table built in-process).
    pub home: Option<Home>,
    /// The prediction and feedback log (disabled unless started).
    pub log: PredictionLog,
}

impl AppState {
    /// A server answering from `table`, with every service at its default.
    pub fn new(table: Arc<ModelTable>) -> Self {
        AppState::with(table, Arc::default(), Limits::default(), None)
    }

    pub fn with(table: Arc<ModelTable>, metrics: Arc<Metrics>, limits: Limits, token: Option<String>) -> Self {
        let slots = Arc::new(Semaphore::new(limits.max_in_flight));
        let (shadow, wake, log) = (Shadow::new(&metrics), Arc::new(Notify::new()), PredictionLog::disabled());
        AppState { table, shadow, wake, metrics, limits, slots, token, log, home: None }
    }

    /// The same, reading the registry `home` (to load what a new split names).
    pub fn with_home(mut self, home: Option<Home>) -> Self {
        self.home = home;
        self
    }

    /// The same, logging predictions to `log`.
    pub fn with_log(mut self, log: PredictionLog) -> Self {
        self.log = log;
        self
    }

    /// The metrics page, with the log's drops (counted inside the log) caught up.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(|m| catch_up(&m.log_dropped, self.log.dropped()))
    }
}
