//! Flywheel's data statistics core: drift and skew between two samples of a
//! column, by the methods Evidently and TFDV use, computed exactly (or, for
//! the Kolmogorov–Smirnov p-value of large samples, by a stated
//! approximation) and checked against scipy in `tests/`.
//!
//! Everything here works on plain slices; reading files is the caller's job.

pub mod drift;
pub mod ks;
pub mod profile;
pub mod reference;
pub mod schema;
pub mod sketch;
pub mod time;

pub use drift::{ColumnDrift, Kind, Method, Sample, column_drift, default_method, kind_of};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StatsError {
    #[error("method `{method}` does not apply to {kind} columns; use one of {allowed}")]
    MethodKind { method: &'static str, kind: &'static str, allowed: String },
    #[error("unknown drift method `{0}`; use one of wasserstein, jensenshannon, psi, ks, chisquare, z, linf")]
    UnknownMethod(String),
    /// A reference kept as a sketch gives the default method only.
    #[error(
        "method `{method}` needs the reference's values, and only a sketch of them is kept; leave the method to its default (wasserstein)"
    )]
    NeedsValues { method: &'static str },
    /// Kept samples of texts and of numbers do not add up (a column whose
    /// type changed between them).
    #[error("a sample of texts and a sample of numbers cannot be merged")]
    Unmergeable,
}
