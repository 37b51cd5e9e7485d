//! Shadow traffic: a copy of a request predicted by another version once
//! the caller's answer is made. Its answer is never returned and its
//! failure never seen by the caller; at most [`SLOTS`] copies run at once,
//! and a copy that finds no slot is dropped and counted, so a slow shadow
//! cannot hold memory or threads the served version needs.

use crate::served::Served;
use flywheel_ml::{Frame, Prediction};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Semaphore;

/// Shadow predictions in flight at most.
pub const SLOTS: usize = 8;

/// What the shadow did: counters read by `/metrics`, and a hook for the
/// prediction log.
#[derive(Debug)]
pub struct Shadow {
    slots: Arc<Semaphore>,
    counts: Arc<ShadowCounts>,
}

#[derive(Debug, Default)]
pub struct ShadowCounts {
    pub answered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

impl Default for Shadow {
    fn default() -> Self {
        Shadow { slots: Arc::new(Semaphore::new(SLOTS)), counts: Arc::default() }
    }
}

impl Shadow {
    /// Predicts `frame` with `served` in the background; `done` gets the
    /// prediction when there is one (to log it).
    pub fn send(
        &self,
        served: Arc<Served>,
        frame: &Frame,
        done: impl FnOnce(Arc<Served>, Frame, Prediction) + Send + 'static,
    ) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (counts, frame) = (self.counts.clone(), frame.clone());
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            match served.model.predict(&frame) {
                Ok(p) => {
                    counts.answered.fetch_add(1, Ordering::Relaxed);
                    done(served, frame, p);
                }
                Err(e) => {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("shadow {} failed: {e}", served.label());
                }
            }
        });
    }

    pub fn counts(&self) -> &ShadowCounts {
        &self.counts
    }
}
