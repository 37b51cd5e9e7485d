//! Mergeable sketches: a column's statistics computed in one pass over any
//! partition of its values, such that merging the parts' sketches gives
//! what one pass over everything gives — exactly for counts, min, max,
//! distinct counts (HyperLogLog registers) and exact-mode frequencies, to
//! floating-point rounding for mean and variance, and within the stated
//! rank error for quantiles (KLL).

pub mod frequent;
pub mod hll;
pub mod kll;
pub mod moments;

pub use frequent::Frequent;
pub use hll::HyperLogLog;
pub use kll::Kll;
pub use moments::Moments;
