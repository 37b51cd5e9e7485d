//! Deployment files: a pipeline deployed, not just its model — where its
//! model is served and with what split, how it is monitored, what starts a
//! run of it, and how a new model reaches production. `flywheel check`
//! and `flywheel up` read them.
//!
//! One file beside the pipeline file, not a section of it: a pipeline is
//! run by hand and in CI as it is; a deployment is how it runs unattended,
//! and names its pipeline by path. `DeploymentConfig` (`config.rs`) is the
//! file as written; `Deployment` (`model.rs`) exists only when the file
//! and its pipeline are both valid (`compile.rs`, every problem of both at
//! once, each at its line and column with a "did you mean").

mod check;
pub mod compile;
pub mod config;
pub mod cron;
pub mod model;

pub use compile::{METRICS, compile, compile_file, pushed_models};
pub use config::DeploymentConfig;
pub use model::*;

use flywheel_pipeline::Diagnostics;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("cannot read deployment file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The problems of the deployment file, then of its pipeline's.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostics>),
}

/// Whether `source` is a deployment file (it has a `[deployment]` table),
/// for commands that take either kind of file.
pub fn is_deployment(source: &str) -> bool {
    toml::de::DeTable::parse(source).is_ok_and(|t| t.get_ref().contains_key("deployment"))
}
