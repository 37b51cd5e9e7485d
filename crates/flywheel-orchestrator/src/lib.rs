//! The orchestrator: runs a compiled [`Pipeline`].
//!
//! Two halves, as in TFX: the [`launcher`] runs one step — resolves its
//! inputs, computes its cache key, reuses or executes, retries, enforces the
//! timeout, stores outputs and records lineage — and the [`scheduler`] decides
//! which steps run when, in parallel up to `jobs`, failing dependents of a
//! failed step while independent branches finish. Both report what happened
//! as an [`outcome`], so the launcher needs nothing of the scheduler.
//! Components know nothing of either. The crate's own tests (`src/tests/`)
//! run both in process, with failures planned at named points (`failpoint`).

/// A named place where a test can make the launcher or the scheduler fail
/// (see `failpoint`). Expands to nothing outside the crate's own tests, so
/// no build of the binary carries it.
macro_rules! fail_point {
    ($plan:expr, $point:ident) => {
        #[cfg(test)]
        $plan.hit(crate::failpoint::FailPoint::$point)?;
    };
    ($plan:expr, $point:ident, if $cond:expr) => {
        #[cfg(test)]
        if $cond {
            $plan.hit(crate::failpoint::FailPoint::$point)?;
        }
    };
}

mod display;
#[cfg(test)]
mod failpoint;
pub mod launcher;
pub mod ordering;
pub mod outcome;
pub mod scheduler;
#[cfg(test)]
mod tests;

pub use display::humanize;
pub use flywheel_registry::Home;
pub use outcome::{RunOutcome, StepOutcome};
pub use scheduler::{Orchestrator, RunOptions};

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    #[error(transparent)]
    Metadata(#[from] flywheel_metadata::MetadataError),
    #[error(transparent)]
    Artifacts(#[from] flywheel_artifacts::ArtifactError),
    #[error(transparent)]
    Pipeline(#[from] flywheel_pipeline::PipelineError),
    #[error(transparent)]
    Registry(#[from] flywheel_registry::RegistryError),
    #[error("run {run} {reason}")]
    NotResumable { run: i64, reason: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, OrchestratorError>;

/// What the scheduler reports while a run goes on (for progress displays).
#[derive(Debug, Clone)]
pub enum Event {
    RunStarted { run_id: i64, pipeline: String, steps: Vec<String>, resumed: Vec<String> },
    StepStarted { step: String, attempt: u32 },
    StepRetrying { step: String, attempt: u32, error: String, delay: Duration },
    StepFinished(StepOutcome),
    Cancelling,
}

pub trait Observer: Send + Sync {
    fn event(&self, event: &Event);
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: &Event) {}
}
