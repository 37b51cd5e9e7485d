//! What every request handler shares: the models answering ([`ModelTable`])
//! and the server's services beside them. One `Arc<AppState>` is the axum
//! state; a service (the prediction log, metrics, the routing follower) is
//! a field here, so a handler reaches it without globals.

use crate::shadow::Shadow;
use crate::table::ModelTable;
use std::sync::Arc;
use tokio::sync::Notify;

/// The state behind every route.
pub struct AppState {
    pub table: Arc<ModelTable>,
    /// Copies of requests for the versions shadowing the ones that answer.
    pub shadow: Shadow,
    /// Wakes the registry follower to look now (after a split changes).
    pub wake: Arc<Notify>,
}

impl AppState {
    /// A server answering from `table`, with every service at its default.
    pub fn new(table: Arc<ModelTable>) -> Self {
        AppState { table, shadow: Shadow::default(), wake: Arc::new(Notify::new()) }
    }
}
