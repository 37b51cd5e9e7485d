//! The orchestrator: runs a compiled [`Pipeline`].
//!
//! Two halves, as in TFX: the [`launcher`] runs one step — resolves its
//! inputs, computes its cache key, reuses or executes, retries, enforces the
//! timeout, stores outputs and records lineage — and the [`scheduler`] decides
//! which steps run when, in parallel up to `jobs`, failing dependents of a
//! failed step while independent branches finish. Components know nothing of
//! either.

pub mod launcher;
pub mod ordering;
pub mod scheduler;

pub use flywheel_registry::Home;
pub use scheduler::{Orchestrator, RunOptions, RunOutcome, StepOutcome};

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
