//! What every request handler shares: the models answering ([`ModelTable`])
//! and the server's services beside them. One `Arc<AppState>` is the axum
//! state; a service (the prediction log, metrics, the routing follower) is
//! a field here, so a handler reaches it without globals.

use crate::log::PredictionLog;
use crate::table::ModelTable;
use std::sync::Arc;

/// The state behind every route.
pub struct AppState {
    pub table: Arc<ModelTable>,
    /// The prediction and feedback log (disabled unless started).
    pub log: PredictionLog,
}

impl AppState {
    /// A server answering from `table`, with every service at its default.
    pub fn new(table: Arc<ModelTable>) -> Self {
        AppState { table, log: PredictionLog::disabled() }
    }

    /// The same, logging predictions to `log`.
    pub fn with_log(mut self, log: PredictionLog) -> Self {
        self.log = log;
        self
    }
}
