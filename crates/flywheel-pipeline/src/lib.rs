//! Pipeline files: what the user wrote ([`config`]), checked and compiled into
//! a validated DAG ([`compile`]), with every problem reported at once
//! ([`diagnostic`]).
//!
//! `PipelineConfig` is the file as written, with the place of every key and
//! value; `Pipeline` is what the orchestrator runs, and exists only when the
//! whole file is valid.

pub mod compile;
pub mod config;
pub mod diagnostic;
pub mod graph;
pub mod publishing;

pub use compile::{InputRef, ModelInputRef, Parameter, Pipeline, Step, compile, compile_file, compile_file_with};
pub use config::PipelineConfig;
pub use diagnostic::{Diagnostic, Diagnostics};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot read pipeline file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error("{0}")]
    Override(String),
}
