//! A column of a reference dataset (the data a model was trained on) kept
//! for drift without its rows: the `statistics` step stores one per column
//! beside the profile, and monitoring compares each window with it instead
//! of reading the training data again.
//!
//! - `Categories`: the count of every value (exact while the profile's
//!   frequency summary is, up to 100,000 distinct values).
//! - `Counts`: numbers with few distinct values, each with its count; every
//!   method gives what it gives on the values themselves.
//! - `Sketch`: many distinct numbers, as the profile's KLL sketch (mergeable,
//!   a few thousand items) with exact moments. Only Wasserstein, the default
//!   for a reference of more than 1,000 values, is computed from it (weighted
//!   by the sketch's items, within its rank error, 1.65%); the other methods
//!   need the values.

use crate::drift::{Kind, Method, Sample, column_drift, label};
use crate::profile::ColumnProfile;
use crate::sketch::Kll;
use crate::{ColumnDrift, StatsError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Numbers keep their exact counts up to this many distinct values.
pub const COUNTS_LIMIT: usize = 2000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnReference {
    Categories {
        counts: BTreeMap<String, u64>,
    },
    /// Distinct values in increasing order, with their counts.
    Counts {
        values: Vec<(f64, u64)>,
    },
    Sketch {
        count: u64,
        mean: f64,
        std_pop: f64,
        kll: Kll,
    },
}

impl ColumnReference {
    /// The reference of a profiled column (its finite values, or its texts).
    pub fn from_profile(p: &ColumnProfile) -> ColumnReference {
        // Booleans are profiled as the numbers 0 and 1, as the rows compare them.
        if p.ty == crate::profile::ValueType::String {
            return ColumnReference::Categories { counts: p.texts.top(usize::MAX).into_iter().collect() };
        }
        let exact = !p.numbers_dropped && p.numbers.is_exact();
        let mut values: Vec<(f64, u64)> = if exact {
            p.numbers.top(usize::MAX).into_iter().map(|(bits, n)| (f64::from_bits(bits), n)).collect()
        } else {
            Vec::new()
        };
        values.retain(|(x, _)| x.is_finite());
        if exact && values.len() <= COUNTS_LIMIT {
            values.sort_by(|a, b| a.0.total_cmp(&b.0));
            return ColumnReference::Counts { values };
        }
        let m = &p.moments;
        let std_pop = if m.count > 0 { (m.m2 / m.count as f64).sqrt() } else { 0.0 };
        ColumnReference::Sketch { count: m.count, mean: m.mean, std_pop, kll: p.quantiles.to_sketch() }
    }

    /// Values compared (missing ones left out).
    pub fn count(&self) -> usize {
        let n = match self {
            ColumnReference::Categories { counts } => counts.values().sum(),
            ColumnReference::Counts { values } => values.iter().map(|v| v.1).sum(),
            ColumnReference::Sketch { count, .. } => *count,
        };
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// Drift of `current` from this reference, as [`column_drift`] finds it
    /// between the reference's values and `current`.
    pub fn drift(
        &self,
        current: Sample,
        method: Option<Method>,
        threshold: Option<f64>,
    ) -> Result<ColumnDrift, StatsError> {
        match self {
            ColumnReference::Categories { counts } => {
                column_drift(Sample::Categorical(counts.clone()), current, method, threshold)
            }
            ColumnReference::Counts { values } => counts_drift(values, current, method, threshold),
            ColumnReference::Sketch { count, std_pop, kll, .. } => {
                sketch_drift(*count, *std_pop, kll, current, method, threshold)
            }
        }
    }
}

/// How small a window's sketch is kept: exact counts up to `counts` distinct
/// numbers, else a KLL sketch of size `k`. Every monitored window keeps one,
/// so they are smaller than a training reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub counts: usize,
    pub k: usize,
}

/// A window's limits: 64 distinct values, KLL k = 128 (rank error about
/// 3%, a few hundred items per column).
pub const WINDOW_LIMITS: Limits = Limits { counts: 64, k: 128 };

impl ColumnReference {
    /// The reference of some numbers, finite ones only (as
    /// [`Self::from_profile`]; an infinity has no place in a sketch or in
    /// JSON). Counting stops at `limits.counts` distinct values: continuous
    /// columns go straight to the sketch, unsorted.
    pub fn of_numbers(values: &[f64], limits: Limits) -> ColumnReference {
        let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let mut counts: std::collections::HashMap<u64, (f64, u64)> = std::collections::HashMap::new();
        for &x in &finite {
            counts.entry(bits(x)).or_insert((x, 0)).1 += 1;
            if counts.len() > limits.counts {
                let mut kll = Kll::new(limits.k);
                kll.extend(&finite);
                let mut m = crate::sketch::Moments::default();
                m.add_slice(&finite);
                return sketch_of(&m, kll);
            }
        }
        let mut values: Vec<(f64, u64)> = counts.into_values().collect();
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        ColumnReference::Counts { values }
    }

    /// The reference of some texts.
    pub fn of_texts<'a>(values: impl IntoIterator<Item = &'a str>) -> ColumnReference {
        ColumnReference::Categories { counts: crate::drift::category_counts(values) }
    }

    /// Adds `other`'s values: the reference of both samples together, exact
    /// while both are and `limits.counts` allows, else a sketch. Texts and
    /// numbers do not merge (the column changed type).
    pub fn merge(&mut self, other: &ColumnReference, limits: Limits) -> Result<(), StatsError> {
        use ColumnReference::{Categories, Counts};
        match (&mut *self, other) {
            (Categories { counts }, Categories { counts: more }) => {
                for (k, n) in more {
                    *counts.entry(k.clone()).or_default() += n;
                }
                Ok(())
            }
            (Categories { .. }, _) | (_, Categories { .. }) => Err(StatsError::Unmergeable),
            (Counts { values }, Counts { values: more }) => {
                let merged = merge_counts(values, more);
                *self = if merged.len() <= limits.counts {
                    Counts { values: merged }
                } else {
                    numbers_sketch(&merged, limits.k)
                };
                Ok(())
            }
            _ => {
                let (mut a, b) = (self.numeric_sketch(limits.k), other.numeric_sketch(limits.k));
                if let (
                    ColumnReference::Sketch { count, mean, std_pop, kll },
                    ColumnReference::Sketch { count: n, mean: m, std_pop: s, kll: k },
                ) = (&mut a, &b)
                {
                    let mut x = moments(*count, *mean, *std_pop);
                    x.merge(&moments(*n, *m, *s));
                    kll.merge(k);
                    *count = x.count;
                    *mean = x.mean;
                    *std_pop = if x.count > 0 { (x.m2 / x.count as f64).sqrt() } else { 0.0 };
                }
                *self = a;
                Ok(())
            }
        }
    }

    /// Numbers as a sketch (counts turned into one); texts as they are.
    fn numeric_sketch(&self, k: usize) -> ColumnReference {
        match self {
            ColumnReference::Counts { values } => numbers_sketch(values, k),
            other => other.clone(),
        }
    }

    /// Drift of `current`, itself kept without its rows (windows merged
    /// from their sketches), from this reference: exactly as [`Self::drift`]
    /// on its values while `current` holds counts; from a sketch, the
    /// Wasserstein distance between the two weighted samples.
    pub fn drift_from(
        &self,
        current: &ColumnReference,
        method: Option<Method>,
        threshold: Option<f64>,
    ) -> Result<ColumnDrift, StatsError> {
        let sample = match current {
            ColumnReference::Categories { counts } => Sample::Categorical(counts.clone()),
            ColumnReference::Counts { values } => Sample::Numeric(expand(values)),
            ColumnReference::Sketch { count, kll, .. } => {
                return self.drift_from_sketch(*count, kll, method, threshold);
            }
        };
        self.drift(sample, method, threshold)
    }

    fn drift_from_sketch(
        &self,
        current_count: u64,
        current: &Kll,
        method: Option<Method>,
        threshold: Option<f64>,
    ) -> Result<ColumnDrift, StatsError> {
        let (count, std_pop, weighted) = match self {
            ColumnReference::Categories { .. } => {
                return Err(StatsError::MethodKind {
                    method: "wasserstein",
                    kind: "categorical",
                    allowed: "a reference of numbers (this one holds texts)".into(),
                });
            }
            ColumnReference::Counts { values } => {
                let n: u64 = values.iter().map(|v| v.1).sum();
                (n, counts_std(values, n), values.clone())
            }
            ColumnReference::Sketch { count, std_pop, kll, .. } => (*count, *std_pop, kll.weighted()),
        };
        let current_count = usize::try_from(current_count).unwrap_or(usize::MAX);
        let reference_count = usize::try_from(count).unwrap_or(usize::MAX);
        match method {
            Some(Method::Wasserstein) => {}
            None if count > 1000 => {}
            // A small reference takes Kolmogorov–Smirnov by default: D from
            // the sketch's distribution, within its rank error.
            None | Some(Method::Ks) => {
                let (d, p) = crate::ks::ks_weighted(&weighted, &current.weighted(), (reference_count, current_count));
                let threshold = threshold.unwrap_or(Method::Ks.default_threshold());
                return Ok(ColumnDrift {
                    kind: Kind::Numeric,
                    method: Method::Ks,
                    score: p,
                    threshold,
                    drift: p <= threshold,
                    statistic: Some(d),
                    reference_count,
                    current_count,
                });
            }
            Some(m) => return Err(StatsError::NeedsValues { method: m.as_str() }),
        }
        Ok(wasserstein_drift(count, std_pop, &weighted, (&current.weighted(), current_count), threshold))
    }
}

fn expand(values: &[(f64, u64)]) -> Vec<f64> {
    values.iter().flat_map(|&(x, k)| std::iter::repeat_n(x, usize::try_from(k).unwrap_or(0))).collect()
}

fn moments(count: u64, mean: f64, std_pop: f64) -> crate::sketch::Moments {
    crate::sketch::Moments { count, mean, m2: std_pop * std_pop * count as f64, ..crate::sketch::Moments::default() }
}

fn sketch_of(m: &crate::sketch::Moments, kll: Kll) -> ColumnReference {
    let std_pop = if m.count > 0 { (m.m2 / m.count as f64).sqrt() } else { 0.0 };
    ColumnReference::Sketch { count: m.count, mean: m.mean, std_pop, kll }
}

/// Counts (in value order) as a sketch of size `k`, moments exact.
fn numbers_sketch(values: &[(f64, u64)], k: usize) -> ColumnReference {
    let mut kll = Kll::new(k);
    let mut m = crate::sketch::Moments::default();
    for &(x, n) in values {
        // A value counted a million times is fed in blocks, not all at once.
        let mut left = n;
        while left > 0 {
            let block = left.min(4096);
            let xs = vec![x; block as usize];
            kll.extend(&xs);
            m.add_slice(&xs);
            left -= block;
        }
    }
    sketch_of(&m, kll)
}

/// Two value-ordered count lists as one.
fn merge_counts(a: &[(f64, u64)], b: &[(f64, u64)]) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                i += 1;
                j += 1;
                (x.0, x.1 + y.1)
            }
            (Some(x), Some(y)) if x.0.total_cmp(&y.0).is_lt() => {
                i += 1;
                *x
            }
            (Some(x), None) => {
                i += 1;
                *x
            }
            (_, Some(y)) => {
                j += 1;
                *y
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

fn counts_std(values: &[(f64, u64)], n: u64) -> f64 {
    let n = n.max(1) as f64;
    let mean = values.iter().map(|&(x, k)| x * k as f64).sum::<f64>() / n;
    (values.iter().map(|&(x, k)| (x - mean).powi(2) * k as f64).sum::<f64>() / n).sqrt()
}

/// Few distinct numbers: as many as the values themselves for a small
/// reference or a chosen method; else by their counts (categories, or
/// Wasserstein weighted by them: the same figures, without the rows).
fn counts_drift(
    values: &[(f64, u64)],
    current: Sample,
    method: Option<Method>,
    threshold: Option<f64>,
) -> Result<ColumnDrift, StatsError> {
    let n: u64 = values.iter().map(|v| v.1).sum();
    let numbers = match &current {
        Sample::Numeric(c) => Some(c),
        Sample::Categorical(_) => None,
    };
    let few = numbers.is_some_and(|c| !more_distinct(values, c, 5));
    if method.is_some() || n <= 1000 || numbers.is_none() {
        let expanded = values.iter().flat_map(|&(x, k)| std::iter::repeat_n(x, k as usize)).collect();
        return column_drift(Sample::Numeric(expanded), current, method, threshold);
    }
    if few {
        let counts = values.iter().map(|&(x, k)| (label(x), k)).collect();
        let current = match current {
            Sample::Numeric(c) => Sample::categories(c.into_iter().map(label)),
            categorical => categorical,
        };
        return column_drift(Sample::Categorical(counts), current, None, threshold);
    }
    Ok(weighted_wasserstein_drift(n, counts_std(values, n), values, current, threshold))
}

fn more_distinct(values: &[(f64, u64)], current: &[f64], limit: usize) -> bool {
    let mut seen: std::collections::HashSet<u64> = values.iter().map(|v| bits(v.0)).collect();
    for &x in current {
        if seen.len() > limit {
            return true;
        }
        seen.insert(bits(x));
    }
    seen.len() > limit
}

fn bits(x: f64) -> u64 {
    if x == 0.0 { 0 } else { x.to_bits() }
}

fn sketch_drift(
    count: u64,
    std_pop: f64,
    kll: &Kll,
    current: Sample,
    method: Option<Method>,
    threshold: Option<f64>,
) -> Result<ColumnDrift, StatsError> {
    match method {
        None | Some(Method::Wasserstein) => {}
        Some(m) => return Err(StatsError::NeedsValues { method: m.as_str() }),
    }
    if let Sample::Categorical(_) = current {
        return Err(StatsError::MethodKind {
            method: "wasserstein",
            kind: "categorical",
            allowed: "a reference of values (this one holds numbers)".into(),
        });
    }
    Ok(weighted_wasserstein_drift(count, std_pop, &kll.weighted(), current, threshold))
}

/// Wasserstein distance normed by the reference's deviation (Evidently's
/// `wasserstein_distance_norm`), the reference given as weighted values.
fn weighted_wasserstein_drift(
    count: u64,
    std_pop: f64,
    reference: &[(f64, u64)],
    current: Sample,
    threshold: Option<f64>,
) -> ColumnDrift {
    let current_count = current.len();
    // NaN has no place on the line (the rows path never sees one: missing).
    let mut c: Vec<f64> = match current {
        Sample::Numeric(c) => c.into_iter().filter(|x| !x.is_nan()).collect(),
        Sample::Categorical(_) => Vec::new(),
    };
    c.sort_unstable_by(f64::total_cmp);
    let ones: Vec<(f64, u64)> = c.iter().map(|&x| (x, 1)).collect();
    wasserstein_drift(count, std_pop, reference, (&ones, current_count), threshold)
}

/// The same, both samples weighted (`current`: its values in order, and
/// how many it counts).
fn wasserstein_drift(
    count: u64,
    std_pop: f64,
    reference: &[(f64, u64)],
    (current, current_count): (&[(f64, u64)], usize),
    threshold: Option<f64>,
) -> ColumnDrift {
    let threshold = threshold.unwrap_or(Method::Wasserstein.default_threshold());
    let reference_count = usize::try_from(count).unwrap_or(usize::MAX);
    let (score, drift) = if reference.is_empty() || current.is_empty() {
        (f64::NAN, reference.is_empty() != current.is_empty())
    } else {
        let s = weighted_wasserstein(reference, current) / std_pop.max(0.001);
        (s, s >= threshold)
    };
    ColumnDrift {
        kind: Kind::Numeric,
        method: Method::Wasserstein,
        score,
        threshold,
        drift,
        statistic: None,
        reference_count,
        current_count,
    }
}

/// ∫ |F_a − F_b| for two samples of values with weights, each in value
/// order (scipy's `wasserstein_distance` with `u_weights`, `v_weights`).
pub fn weighted_wasserstein(a: &[(f64, u64)], b: &[(f64, u64)]) -> f64 {
    let total = |s: &[(f64, u64)]| s.iter().map(|v| v.1).sum::<u64>().max(1) as f64;
    let (ta, tb) = (total(a), total(b));
    let mut sum = 0.0;
    let mut prev: Option<(f64, u64, u64)> = None;
    for (x, wa, wb) in crate::ks::weighted_steps(a, b) {
        if let Some((p, pa, pb)) = prev {
            // Both CDFs are constant on [p, x).
            sum += (pa as f64 / ta - pb as f64 / tb).abs() * (x - p);
        }
        prev = Some((x, wa, wb));
    }
    sum
}
