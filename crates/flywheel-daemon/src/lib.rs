//! `flywheel up`: deployments run unattended in one process — their models
//! served (`flywheel_serve`), the prediction log cut into monitored windows
//! (`flywheel_monitor`), and runs of their pipelines started by their
//! triggers (`flywheel_orchestrator`), at most one run per deployment at a
//! time. The CLI only wires it.
//!
//! - `triggers.rs`: when a trigger fires (pure).
//! - `delivery.rs`: a triggered run's model out as a canary, judged
//!   against production on the same traffic, promoted or rolled back.
//! - `up.rs`: the loop: serve, monitor, decide, launch, with every
//!   trigger's state kept in the home before its run starts, so that a
//!   restart does not fire it twice.

pub mod delivery;
pub mod triggers;
mod up;

pub use triggers::{FileView, Firing, TriggerState, WindowView, decide, new_data, on_demand};
pub use up::{Event, UpConfig, up};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Serve(#[from] flywheel_serve::ServeError),
    #[error(transparent)]
    Metadata(#[from] flywheel_metadata::MetadataError),
    #[error(transparent)]
    Registry(#[from] flywheel_registry::RegistryError),
    /// A canary's traffic could not be compared with production's.
    #[error("canary: {0}")]
    Monitor(#[from] flywheel_monitor::MonitorError),
    /// The first run of a deployment with no model yet could not run.
    #[error(transparent)]
    Run(#[from] flywheel_orchestrator::OrchestratorError),
    #[error("nothing to run: {0}")]
    Nothing(String),
    /// The first run of a deployment with no model yet published nothing.
    #[error("{0}")]
    FirstRun(String),
    /// The home is another `up`'s.
    #[error("{0}")]
    Busy(String),
}
