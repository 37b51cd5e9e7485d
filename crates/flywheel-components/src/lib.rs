//! Flywheel's built-in components. Each is a typed spec plus an executor; the
//! launcher does input resolution, caching and lineage for all of them.
//!
//! Every built-in is listed in [`builtins`], and only there.

pub mod bless;
pub mod command;
pub mod delimited;
pub mod drift;
pub mod evaluate;
pub mod html;
pub mod ingest;
pub use flywheel_ml::metrics;
pub mod model;
pub mod profile;
pub mod push;
pub mod schema;
pub mod slices;
pub mod statistics;
pub mod table;
pub mod train;
pub mod tune;
pub mod validate;

use flywheel_core::{Component, ComponentRegistry};
use std::sync::Arc;

/// The built-in components, in the order a typical pipeline uses them.
pub fn builtins() -> ComponentRegistry {
    let all: Vec<Arc<dyn Component>> = vec![
        Arc::new(ingest::Ingest),
        Arc::new(statistics::Statistics),
        Arc::new(schema::Schema),
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
