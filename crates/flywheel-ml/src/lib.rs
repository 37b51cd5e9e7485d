//! Flywheel's models: transforms fitted on training data (`transform`),
//! native trainers (`linear`), and the model format with its signature
//! (`model`). No file or network I/O happens here except reading and
//! writing a model's bytes; loading a model is parsing data, never running
//! code.

pub mod frame;
pub mod linear;
pub mod link;
pub mod metrics;
pub mod model;
pub mod onnx;
pub mod optimize;
pub mod par;
pub mod stop;
pub mod transform;
pub mod tree;

pub use frame::{Column, ColumnKind, Frame, Names, Text};
pub use model::{Binding, Estimator, Model, Prediction, Task};
pub use stop::Stop;
pub use transform::{Matrix, Transform};

#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// A declared transform is wrong (named column, step and what to do).
    #[error("{0}")]
    Transform(String),
    /// The data does not fit the task (missing column, wrong type, …).
    #[error("{0}")]
    Data(String),
    /// A training setting is out of range.
    #[error("{0}")]
    Setting(String),
    /// Training could not produce a usable model.
    #[error("{0}")]
    Training(String),
    /// Bytes that are not a model this build can read.
    #[error("{0}")]
    Format(String),
    /// A stop was requested (see [`Stop`]) before the fit ended.
    #[error("cancelled")]
    Cancelled,
}
