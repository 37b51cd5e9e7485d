//! The store handle and the model registry: what anything that reads or
//! writes the stores needs, without the pipeline compiler or the scheduler.
//!
//! [`Home`] opens a home folder (metadata, artifacts, logs, work folders,
//! `home.lock`) and heals what dead processes left; [`doctor`] checks and
//! repairs it. [`models`] resolves a [`ModelRef`](flywheel_core::ModelRef)
//! to a registered version and loads its model, imports ONNX models,
//! exports, and moves aliases with their audit; [`governance`] records
//! approvals, tags and descriptions and tells a model's card and history; [`Home`] is also the
//! [`ModelRegistry`](flywheel_core::ModelRegistry) `push` publishes through
//! (`publish.rs`). The CLI's `models` and
//! `predict` commands, the launcher (for `@model:` inputs and `push`) and
//! the prediction server all come through here.

pub mod doctor;
pub mod governance;
pub mod home;
pub mod logs;
pub mod models;
mod publish;

pub use governance::VersionCard;
pub use home::Home;
pub use models::{Imported, Resolved, describe_task};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Metadata(#[from] flywheel_metadata::MetadataError),
    #[error(transparent)]
    Artifacts(#[from] flywheel_artifacts::ArtifactError),
    #[error("cannot use home folder {}: {source}; choose another with --home or FLYWHEEL_HOME", path.display())]
    Home {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A reference or name that cannot name a model (bad syntax, a number
    /// where an alias goes, no version where one is needed).
    #[error("{0}")]
    Reference(String),
    #[error("model `{model}` has no alias `{alias}` (`flywheel models` lists them)")]
    NoAlias { model: String, alias: String },
    /// The stored model of a registered version cannot be used.
    #[error("model {reference}: {source}")]
    Stored {
        reference: String,
        #[source]
        source: flywheel_artifacts::ArtifactError,
    },
    /// A file the caller named cannot be read or is not a model.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    BadModel(String),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A model without a prediction log.
    #[error("{0}")]
    NoLog(String),
    /// A prediction log that cannot be read or written out.
    #[error("{0}")]
    Log(String),
}

pub type Result<T> = std::result::Result<T, RegistryError>;
