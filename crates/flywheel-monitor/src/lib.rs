//! Monitoring: a window of logged predictions (`flywheel_serve::log::read`)
//! scored the way `flywheel drift` compares datasets — skew against the
//! data the answering version was trained on, drift against the window
//! before — and, where feedback labels arrived, the model's metric with
//! the deployment's bound (`flywheel_deploy::Monitoring`). What crosses a
//! threshold is an alert; the triggers of `flywheel up` read them.
//!
//! - `score.rs`: one window's scores and alerts (pure: tables in, scores out).
//! - `metric.rs`: the metric over the labeled rows, as scikit-learn defines it
//!   (`flywheel_ml::metrics`).
//! - `windows.rs`: windows cut from the log as it grows, scored, recorded.
//! - `compare.rs`: a canary and production on the same traffic.
//! - `reference.rs`: what a version's windows are compared with (its training data, kept).
//! - `merge.rs`: windows merged into longer ones from the sketches each keeps.
//! - `report.rs`: the windows over time as an HTML page (`monitor report`).

pub mod compare;
pub mod merge;
mod metric;
mod reference;
pub mod report;
mod score;
pub mod windows;

pub use metric::{MetricSums, PREDICTION, PROBABILITY_PREFIX, metric};
pub use score::{Alert, DriftSummary, MIN_LABELS, Performance, Scores, SliceScore, SliceScores, performance, score};

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Data(#[from] flywheel_data::DataError),
    /// The window cannot be scored as declared (a column it needs is absent).
    #[error("{0}")]
    Window(String),
    /// The home's stores could not be read or written.
    #[error("{0}")]
    Store(String),
}

/// A metadata store error as a monitoring one.
pub(crate) fn store(e: flywheel_metadata::MetadataError) -> MonitorError {
    MonitorError::Store(e.to_string())
}
