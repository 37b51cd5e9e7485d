//! Flywheel's built-in components. Each is a typed spec plus an executor; the
//! launcher does input resolution, caching and lineage for all of them.
//!
//! Every built-in is listed in [`builtins`], and only there. What they share
//! with the CLI and the server (tables, model files, profiling, drift,
//! reports) is `flywheel-data`.

pub mod bless;
pub mod command;
pub mod evaluate;
pub mod infra_validate;
pub mod ingest;
pub mod push;
pub mod schema_gen;
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
        Arc::new(infra_validate::InfraValidate),
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

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::params::disagreements;

    /// Each spec says what its struct does: a parameter added, made
    /// required or given a default in one and not the other fails here.
    #[test]
    fn every_spec_agrees_with_its_parameter_struct() {
        let checked = [
            (ingest::SPEC.name, disagreements::<ingest::Params>(&ingest::SPEC)),
            (statistics::SPEC.name, disagreements::<statistics::Params>(&statistics::SPEC)),
            (schema_gen::SPEC.name, disagreements::<schema_gen::Params>(&schema_gen::SPEC)),
            (validate::SPEC.name, disagreements::<validate::Params>(&validate::SPEC)),
            (tune::SPEC.name, disagreements::<tune::Params>(&tune::SPEC)),
            (train::SPEC.name, disagreements::<train::Params>(&train::SPEC)),
            (evaluate::SPEC.name, disagreements::<evaluate::Params>(&evaluate::SPEC)),
            (bless::SPEC.name, disagreements::<bless::Params>(&bless::SPEC)),
            (infra_validate::SPEC.name, disagreements::<infra_validate::Params>(&infra_validate::SPEC)),
            (push::SPEC.name, disagreements::<push::Params>(&push::SPEC)),
            (command::SPEC.name, disagreements::<command::Params>(&command::SPEC)),
        ];
        let names: Vec<&str> = checked.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, builtins().names(), "every built-in is checked");
        let found: Vec<&String> = checked.iter().flat_map(|(_, d)| d).collect();
        assert!(found.is_empty(), "{found:#?}");
    }
}
