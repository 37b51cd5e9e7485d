//! Flywheel's built-in components. Each is a typed spec plus an executor; the
//! launcher does input resolution, caching and lineage for all of them.
//!
//! Every built-in is listed in [`builtins`], and only there. What they share
//! with the CLI and the server (tables, model files, profiling, drift,
//! reports) is `flywheel-data`.

pub mod bless;
pub mod command;
pub mod evaluate;
pub mod ingest;
pub mod push;
pub mod schema_gen;
pub mod slices;
pub mod statistics;
pub mod train;
pub mod tune;
pub mod validate;

use flywheel_core::{Component, ComponentRegistry, ExecError};
use flywheel_ml::MlError;
use std::sync::Arc;

/// The built-in components, in the order a typical pipeline uses them.
pub fn builtins() -> ComponentRegistry {
    let all: Vec<Arc<dyn Component>> = vec![
        Arc::new(ingest::Ingest),
        Arc::new(statistics::Statistics),
        Arc::new(schema_gen::Schema),
        Arc::new(validate::Validate),
        Arc::new(tune::Tune),
        Arc::new(train::Train),
        Arc::new(evaluate::Evaluate),
        Arc::new(bless::Bless),
        Arc::new(push::Push),
        Arc::new(command::CommandStep),
    ];
    ComponentRegistry::new(all)
}

/// A fit or prediction stopped by cancellation is a cancellation; any other
/// model error is the step's failure.
pub(crate) fn ml_error(e: MlError) -> ExecError {
    match e {
        MlError::Cancelled => ExecError::Cancelled,
        e => ExecError::failed(e.to_string()),
    }
}
