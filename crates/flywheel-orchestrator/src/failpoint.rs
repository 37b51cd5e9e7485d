//! Failures planned by a test at named points of the launcher and the
//! scheduler, as Meilisearch's index-scheduler tests plan theirs: "fail at
//! this point the Nth time it is reached". A planned failure is an error of
//! the orchestrator itself (as a full disk or a lost database would be), not
//! of the step, so what it leaves behind is what such an error leaves.
//!
//! Compiled for the crate's own tests only; `fail_point!` (in `lib.rs`)
//! expands to nothing elsewhere.

use crate::{OrchestratorError, Result};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailPoint {
    /// A step's `@model:` inputs are resolved and its cache key computed;
    /// nothing of the step is recorded yet.
    InputsResolved,
    /// An attempt's executor returned successfully; its outputs are still in
    /// the work folder, not stored.
    ExecutorReturned,
    /// The outputs are in the artifact store; the execution is not finished
    /// (still `running`, no output events).
    OutputsStored,
    /// Every step has ended; the run is not finished (still `running`).
    BeforeRunFinished,
}

/// Which points fail on which hit, and how often each was reached.
#[derive(Debug, Default)]
pub struct FailPlan {
    planned: Vec<(FailPoint, u32)>,
    hits: Mutex<HashMap<FailPoint, u32>>,
}

impl FailPlan {
    /// Fails `point` the `nth` time it is reached (counting from 1, across
    /// every step of every run of the orchestrator that holds the plan).
    pub fn at(mut self, point: FailPoint, nth: u32) -> Self {
        self.planned.push((point, nth));
        self
    }

    /// Counts a hit of `point`; an error if the plan says to fail there now.
    pub fn hit(&self, point: FailPoint) -> Result<()> {
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        let n = hits.entry(point).or_default();
        *n += 1;
        if self.planned.contains(&(point, *n)) {
            let msg = format!("planned failure at {point:?} (hit {n})");
            return Err(OrchestratorError::Io(std::io::Error::other(msg)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_only_on_the_planned_hit_of_the_planned_point() {
        let plan = FailPlan::default().at(FailPoint::OutputsStored, 2);
        assert!(plan.hit(FailPoint::OutputsStored).is_ok());
        assert!(plan.hit(FailPoint::InputsResolved).is_ok());
        let err = plan.hit(FailPoint::OutputsStored).unwrap_err();
        assert_eq!(err.to_string(), "planned failure at OutputsStored (hit 2)");
        assert!(plan.hit(FailPoint::OutputsStored).is_ok());
    }
}
