//! Shadow traffic: a copy of a request predicted by another version once
//! the caller's answer is made. Its answer is never returned and its
//! failure never seen by the caller; at most [`SLOTS`] copies run at once,
//! and a copy that finds no slot is dropped and counted, so a slow shadow
//! cannot hold memory or threads the served version needs.

use crate::metrics::Metrics;
use crate::served::Served;
use flywheel_ml::{Frame, Prediction};
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Shadow predictions in flight at most.
pub const SLOTS: usize = 8;

/// The shadow's slots, and what it did, counted straight into the
/// metrics `/metrics` shows.
#[derive(Debug)]
pub struct Shadow {
    slots: Arc<Semaphore>,
    answered: Counter,
    failed: Counter,
    dropped: Counter,
}

impl Shadow {
    pub fn new(metrics: &Metrics) -> Self {
        Shadow {
            slots: Arc::new(Semaphore::new(SLOTS)),
            answered: metrics.shadow_answered.clone(),
            failed: metrics.shadow_failed.clone(),
            dropped: metrics.shadow_dropped.clone(),
        }
    }

    /// Predicts `frame` with `served` in the background; `done` gets the
    /// prediction when there is one (to log it).
    pub fn send(
        &self,
        served: Arc<Served>,
        frame: Frame,
        done: impl FnOnce(Arc<Served>, Frame, Prediction) + Send + 'static,
    ) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            self.dropped.inc();
            return;
        };
        let (answered, failed) = (self.answered.clone(), self.failed.clone());
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            match served.predict(&frame) {
                Ok(p) => {
                    answered.inc();
                    done(served, frame, p);
                }
                Err(e) => {
                    failed.inc();
                    tracing::warn!("shadow {} failed: {e}", served.label());
                }
            }
        });
    }
}
