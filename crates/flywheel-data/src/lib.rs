//! Flywheel's data layer, shared by the components, the CLI and (later) the
//! prediction server: tables in and out ([`table`], [`delimited`]), model
//! files and tables turned into model frames ([`model_file`]), dataset
//! profiling ([`profiling`]) and drift ([`dataset_drift`]) over the sketches
//! and tests of `flywheel-stats`, self-contained HTML reports ([`report`]),
//! and atomic writes ([`atomic`]). No metadata store, no artifact store: a
//! caller hands in paths.

pub mod atomic;
pub mod batch;
pub mod dataset_drift;
pub mod delimited;
pub mod model_file;
pub mod profiling;
mod quotes;
pub mod report;
pub mod slices;
pub mod spans;
pub mod table;

pub use atomic::write_atomic;

use flywheel_core::ExecError;
use flywheel_ml::MlError;
use flywheel_stats::StatsError;
use std::path::PathBuf;

/// Everything that can go wrong reading or writing data, each message naming
/// the file (and line and column where there is one).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: cannot open: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the file is empty; expected a header line with column names", path.display())]
    Empty { path: PathBuf },
    #[error("{}: the file has a header but no rows", path.display())]
    NoRows { path: PathBuf },
    #[error("{}:{line}: {message}", path.display())]
    AtLine { path: PathBuf, line: usize, message: String },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}: cannot write: {message}", path.display())]
    Write { path: PathBuf, message: String },
    /// A later row needs a wider type than the first rows showed: read the
    /// file again with these kinds ([`table::read_batches`] does).
    #[error("{}: a column's type widens after the rows its type was inferred from; read the file again", path.display())]
    Widened { path: PathBuf, kinds: Vec<delimited::Kind> },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    ModelFile {
        path: PathBuf,
        #[source]
        source: MlError,
    },
    #[error("{source} (a model file is Flywheel's JSON model or an ONNX file with its signature)")]
    NotAModel {
        #[source]
        source: MlError,
    },
    /// Data that does not fit a model's frame (a missing column, say).
    #[error("{0}")]
    Frame(String),
    #[error(transparent)]
    Ml(#[from] MlError),
    #[error("column `{column}`: {source}")]
    DriftMethod {
        column: String,
        #[source]
        source: StatsError,
    },
    #[error("`{option}` names column `{column}`, which the two datasets do not share{hint}")]
    UnknownColumn { option: &'static str, column: String, hint: String },
    #[error("the two datasets share no columns (reference: {reference}; current: {current})")]
    NothingShared { reference: String, current: String },
    /// A slice spec that does not parse, or names no column of the data.
    #[error("{0}")]
    Slice(String),
    /// A bug: a worker thread panicked. Reported, never a silently shorter result.
    #[error("internal error: {0} (please report it)")]
    Internal(String),
}

/// A component reports a data error as its failure; a fit or prediction
/// stopped by cancellation stays a cancellation.
impl From<DataError> for ExecError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::Ml(MlError::Cancelled) => ExecError::Cancelled,
            DataError::Io { context, source } => ExecError::Io { context, source },
            e => ExecError::Failed(e.to_string()),
        }
    }
}
