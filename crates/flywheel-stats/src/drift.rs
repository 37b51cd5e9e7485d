//! Drift (or training–serving skew) of one column between a reference and a
//! current sample.
//!
//! Methods, and the default choice, follow Evidently's documented rules:
//!
//! | method | applies to | score | drift when | default threshold |
//! |---|---|---|---|---|
//! | `wasserstein` | numeric | Wasserstein-1 distance / max(std(reference, ddof 0), 0.001) | score ≥ threshold | 0.1 |
//! | `jensenshannon` | both | Jensen–Shannon distance (natural log) of binned shares | score ≥ threshold | 0.1 |
//! | `psi` | both | Σ (r − c)·ln(r / c) over binned shares, zeros filled | score ≥ threshold | 0.1 |
//! | `ks` | numeric | two-sample Kolmogorov–Smirnov p-value | p ≤ threshold | 0.05 |
//! | `chisquare` | categorical | χ² p-value of current counts against reference shares | p ≤ threshold | 0.05 |
//! | `z` | categorical, two values | two-proportion z-test p-value | p ≤ threshold | 0.05 |
//! | `linf` | categorical | L∞ distance between value shares (TFDV) | score ≥ threshold | 0.1 |
//!
//! Default: a numeric column with more than 5 distinct values (both samples
//! together) is numeric, otherwise categorical. With at most 1,000 reference
//! rows: `ks` for numeric, `chisquare` for categorical with more than two
//! values, `z` for two. Above 1,000: `wasserstein` for numeric,
//! `jensenshannon` for categorical.
//!
//! Binning for `jensenshannon` and `psi`: a numeric column with more than 20
//! distinct reference values is cut into equal-width bins over the range of
//! both samples, their number given by Sturges' rule on both samples
//! (numpy's `histogram_bin_edges(…, "sturges")`, last bin closed); otherwise
//! each distinct value is a bin. For `psi`, empty bins get the smallest
//! non-empty share / 10⁶ when that share is at most 10⁻⁴, else 10⁻⁴.

use crate::StatsError;
use crate::ks;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Hash, PartialOrd, Ord)]
pub enum Method {
    #[serde(rename = "wasserstein")]
    Wasserstein,
    #[serde(rename = "jensenshannon")]
    JensenShannon,
    #[serde(rename = "psi")]
    Psi,
    #[serde(rename = "ks")]
    Ks,
    #[serde(rename = "chisquare")]
    ChiSquare,
    #[serde(rename = "z")]
    Z,
    #[serde(rename = "linf")]
    LInf,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::Wasserstein,
        Method::JensenShannon,
        Method::Psi,
        Method::Ks,
        Method::ChiSquare,
        Method::Z,
        Method::LInf,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Wasserstein => "wasserstein",
            Method::JensenShannon => "jensenshannon",
            Method::Psi => "psi",
            Method::Ks => "ks",
            Method::ChiSquare => "chisquare",
            Method::Z => "z",
            Method::LInf => "linf",
        }
    }

    pub fn parse(s: &str) -> Result<Method, StatsError> {
        Method::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| StatsError::UnknownMethod(s.to_string()))
    }

    /// p-value methods drift when the score is at most the threshold;
    /// distances when it is at least the threshold.
    pub fn is_p_value(self) -> bool {
        matches!(self, Method::Ks | Method::ChiSquare | Method::Z)
    }

    pub fn default_threshold(self) -> f64 {
        if self.is_p_value() { 0.05 } else { 0.1 }
    }

    fn applies_to(self, kind: Kind) -> bool {
        match self {
            Method::Wasserstein | Method::Ks => kind == Kind::Numeric,
            Method::ChiSquare | Method::Z | Method::LInf => kind == Kind::Categorical,
            Method::JensenShannon | Method::Psi => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Numeric,
    Categorical,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Numeric => "numeric",
            Kind::Categorical => "categorical",
        }
    }
}

/// The non-missing values of one column: numbers, or how often each
/// category occurs (every categorical method needs only the counts).
#[derive(Debug, Clone)]
pub enum Sample {
    Numeric(Vec<f64>),
    Categorical(BTreeMap<String, u64>),
}

impl Sample {
    /// Counts categories from values.
    pub fn categories<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Sample {
        Sample::Categorical(category_counts(values))
    }

    pub fn len(&self) -> usize {
        match self {
            Sample::Numeric(v) => v.len(),
            Sample::Categorical(m) => m.values().sum::<u64>() as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ColumnDrift {
    pub kind: Kind,
    pub method: Method,
    /// The distance, or the p-value for `ks`, `chisquare` and `z`.
    pub score: f64,
    pub threshold: f64,
    pub drift: bool,
    /// The test statistic behind a p-value (KS D, χ², z).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistic: Option<f64>,
    pub reference_count: usize,
    pub current_count: usize,
}

fn distinct_f64(v: &[f64]) -> usize {
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.dedup();
    s.len()
}

/// Evidently's default method for a column.
pub fn default_method(reference_rows: usize, kind: Kind, distinct_reference: usize) -> Method {
    match (reference_rows <= 1000, kind) {
        (true, Kind::Numeric) => Method::Ks,
        (true, Kind::Categorical) if distinct_reference > 2 => Method::ChiSquare,
        (true, Kind::Categorical) => Method::Z,
        (false, Kind::Numeric) => Method::Wasserstein,
        (false, Kind::Categorical) => Method::JensenShannon,
    }
}

pub(crate) fn label(x: f64) -> String {
    format!("{x}")
}

/// How often each value occurs.
pub fn category_counts<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> BTreeMap<String, u64> {
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for v in values {
        let v = v.as_ref();
        match m.get_mut(v) {
            Some(c) => *c += 1,
            None => {
                m.insert(v.to_string(), 1);
            }
        }
    }
    m
}

/// Whether the two samples have more than `limit` distinct values together
/// (stops counting as soon as they do).
fn more_distinct_than(a: &[f64], b: &[f64], limit: usize) -> bool {
    let mut seen = std::collections::HashSet::new();
    for &x in a.iter().chain(b) {
        seen.insert(if x == 0.0 { 0u64 } else { x.to_bits() });
        if seen.len() > limit {
            return true;
        }
    }
    false
}

/// How two samples of a column are compared: as numbers when both are
/// numeric with more than 5 distinct values together, else as categories.
pub fn kind_of(reference: &Sample, current: &Sample) -> Kind {
    match (reference, current) {
        (Sample::Numeric(r), Sample::Numeric(c)) if more_distinct_than(r, c, 5) => Kind::Numeric,
        _ => Kind::Categorical,
    }
}

/// How a column is compared: numeric columns with at most 5 distinct values
/// (both samples together) are compared as categories.
fn as_kind(reference: Sample, current: Sample) -> (Kind, Sample, Sample) {
    match (reference, current) {
        (Sample::Numeric(r), Sample::Numeric(c)) => {
            if more_distinct_than(&r, &c, 5) {
                (Kind::Numeric, Sample::Numeric(r), Sample::Numeric(c))
            } else {
                let cat = |v: Vec<f64>| Sample::categories(v.into_iter().map(label));
                (Kind::Categorical, cat(r), cat(c))
            }
        }
        (r, c) => {
            let cat = |s: Sample| match s {
                Sample::Numeric(v) => Sample::categories(v.into_iter().map(label)),
                categorical => categorical,
            };
            (Kind::Categorical, cat(r), cat(c))
        }
    }
}

/// Drift of one column. `method` and `threshold` default as documented above.
pub fn column_drift(
    reference: Sample,
    current: Sample,
    method: Option<Method>,
    threshold: Option<f64>,
) -> Result<ColumnDrift, StatsError> {
    let (reference_count, current_count) = (reference.len(), current.len());
    let (kind, reference, current) = as_kind(reference, current);
    let distinct_reference = match &reference {
        Sample::Numeric(v) => distinct_f64(v),
        Sample::Categorical(m) => m.len(),
    };
    let method = method.unwrap_or_else(|| default_method(reference_count, kind, distinct_reference));
    if !method.applies_to(kind) {
        let allowed: Vec<&str> = Method::ALL.iter().filter(|m| m.applies_to(kind)).map(|m| m.as_str()).collect();
        return Err(StatsError::MethodKind {
            method: method.as_str(),
            kind: kind.as_str(),
            allowed: allowed.join(", "),
        });
    }
    let threshold = threshold.unwrap_or_else(|| method.default_threshold());
    let (reference_empty, current_empty) = (reference.is_empty(), current.is_empty());
    let (score, statistic) = match (reference, current) {
        _ if reference_empty || current_empty => (f64::NAN, None),
        (Sample::Numeric(r), Sample::Numeric(c)) => numeric_score(method, r, c),
        (Sample::Categorical(r), Sample::Categorical(c)) => categorical_score(method, &r, &c),
        _ => (f64::NAN, None),
    };
    let drift = if score.is_nan() {
        // One side has no values at all: the column's presence itself changed.
        reference_empty != current_empty
    } else if method.is_p_value() {
        score <= threshold
    } else {
        score >= threshold
    };
    Ok(ColumnDrift { kind, method, score, threshold, drift, statistic, reference_count, current_count })
}

/// The score (and the test statistic, for tests that report a p-value)
/// of two non-empty numeric samples.
fn numeric_score(method: Method, mut r: Vec<f64>, mut c: Vec<f64>) -> (f64, Option<f64>) {
    r.sort_unstable_by(f64::total_cmp);
    c.sort_unstable_by(f64::total_cmp);
    match method {
        Method::Wasserstein => (wasserstein(&r, &c) / std_pop(&r).max(0.001), None),
        Method::Ks => {
            let (d, p) = ks::ks_2samp(&r, &c);
            (p, Some(d))
        }
        Method::JensenShannon => {
            let (rp, cp) = binned_numeric(&r, &c, false);
            (jensen_shannon(&rp, &cp), None)
        }
        _ => {
            let (rp, cp) = binned_numeric(&r, &c, true);
            (psi(&rp, &cp), None)
        }
    }
}

/// The score (and the test statistic, for tests that report a p-value)
/// of two non-empty categorical samples.
fn categorical_score(method: Method, r: &BTreeMap<String, u64>, c: &BTreeMap<String, u64>) -> (f64, Option<f64>) {
    let (keys, rc, cc) = counts(r, c);
    let shares = |v: &[f64], n: usize| v.iter().map(|x| x / n as f64).collect::<Vec<_>>();
    let (r, c) = (rc.iter().sum::<f64>() as usize, cc.iter().sum::<f64>() as usize);
    match method {
        Method::ChiSquare => {
            let (stat, p) = chi_square(&rc, &cc);
            (p, Some(stat))
        }
        Method::Z => {
            let (z, p) = z_test(&keys, &rc, &cc);
            (p, Some(z))
        }
        Method::LInf => {
            let (rp, cp) = (shares(&rc, r), shares(&cc, c));
            (rp.iter().zip(&cp).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max), None)
        }
        Method::JensenShannon => (jensen_shannon(&shares(&rc, r), &shares(&cc, c)), None),
        _ => {
            let (mut rp, mut cp) = (shares(&rc, r), shares(&cc, c));
            fill_zeroes(&mut rp);
            fill_zeroes(&mut cp);
            (psi(&rp, &cp), None)
        }
    }
}

/// Population standard deviation (ddof = 0).
fn std_pop(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt()
}

/// Wasserstein-1 distance of two sorted samples: ∫ |F_a − F_b|.
pub fn wasserstein(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let mut total = 0.0;
    let mut prev: Option<(f64, usize, usize)> = None;
    for (x, i, j) in ks::ecdf_steps(a, b) {
        if let Some((p, pi, pj)) = prev {
            // F_a and F_b are constant on [p, x).
            total += ((pi as f64) / na - (pj as f64) / nb).abs() * (x - p);
        }
        prev = Some((x, i, j));
    }
    total
}

/// Category counts over the union of keys (sorted).
fn counts(r: &BTreeMap<String, u64>, c: &BTreeMap<String, u64>) -> (Vec<String>, Vec<f64>, Vec<f64>) {
    let mut map: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (v, n) in r {
        map.entry(v).or_default().0 += *n as f64;
    }
    for (v, n) in c {
        map.entry(v).or_default().1 += *n as f64;
    }
    let keys = map.keys().map(|k| k.to_string()).collect();
    let (rc, cc) = map.values().copied().unzip();
    (keys, rc, cc)
}

/// Equal-width bin edges by Sturges' rule over both samples (numpy's
/// `histogram_bin_edges(…, "sturges")`).
pub fn sturges_edges(r: &[f64], c: &[f64]) -> Vec<f64> {
    let n = (r.len() + c.len()) as f64;
    let lo = r[0].min(c[0]);
    let hi = r[r.len() - 1].max(c[c.len() - 1]);
    let (lo, hi) = if lo == hi { (lo - 0.5, hi + 0.5) } else { (lo, hi) };
    // As numpy: a width from Sturges' rule, then as many bins as fit the range.
    let width = (hi - lo) / (n.log2() + 1.0);
    let bins = ((hi - lo) / width).ceil().max(1.0) as usize;
    let step = (hi - lo) / bins as f64;
    let mut edges: Vec<f64> = (0..bins).map(|i| lo + i as f64 * step).collect();
    edges.push(hi);
    edges
}

/// Counts per bin as numpy's `histogram`: [e_i, e_{i+1}), the last bin closed.
pub fn histogram(sorted: &[f64], edges: &[f64]) -> Vec<f64> {
    let bins = edges.len() - 1;
    let mut out = vec![0.0; bins];
    for &x in sorted {
        if x < edges[0] || x > edges[bins] {
            continue;
        }
        // First edge greater than x, minus one; x == last edge goes to the last bin.
        let k = edges.partition_point(|e| *e <= x).saturating_sub(1).min(bins - 1);
        out[k] += 1.0;
    }
    out
}

fn binned_numeric(r: &[f64], c: &[f64], fill: bool) -> (Vec<f64>, Vec<f64>) {
    let (mut rp, mut cp) = if distinct_f64(r) > 20 {
        let edges = sturges_edges(r, c);
        let rh = histogram(r, &edges);
        let ch = histogram(c, &edges);
        (
            rh.iter().map(|x| x / r.len() as f64).collect::<Vec<_>>(),
            ch.iter().map(|x| x / c.len() as f64).collect::<Vec<_>>(),
        )
    } else {
        let rl = category_counts(r.iter().map(|x| label(*x)));
        let cl = category_counts(c.iter().map(|x| label(*x)));
        let (_, rc, cc) = counts(&rl, &cl);
        (rc.iter().map(|x| x / r.len() as f64).collect(), cc.iter().map(|x| x / c.len() as f64).collect())
    };
    if fill {
        fill_zeroes(&mut rp);
        fill_zeroes(&mut cp);
    }
    (rp, cp)
}

fn fill_zeroes(p: &mut [f64]) {
    let min_nonzero = p.iter().copied().filter(|x| *x != 0.0).fold(f64::INFINITY, f64::min);
    if !min_nonzero.is_finite() {
        return;
    }
    let fill = if min_nonzero <= 1e-4 { min_nonzero / 1e6 } else { 1e-4 };
    for x in p.iter_mut().filter(|x| **x == 0.0) {
        *x = fill;
    }
}

fn psi(r: &[f64], c: &[f64]) -> f64 {
    r.iter().zip(c).map(|(a, b)| (a - b) * (a / b).ln()).sum()
}

/// Jensen–Shannon distance (scipy's `jensenshannon`, natural log): shares
/// are renormalized to sum to one.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    let rel = |x: f64, y: f64| if x > 0.0 { x * (x / y).ln() } else { 0.0 };
    let mut js = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        js += rel(a, m) + rel(b, m);
    }
    (js / 2.0).max(0.0).sqrt()
}

/// χ² test of current counts against reference counts scaled to the
/// current size (scipy's `chisquare(f_obs, f_exp)`, k − 1 degrees of freedom).
fn chi_square(rc: &[f64], cc: &[f64]) -> (f64, f64) {
    let nr: f64 = rc.iter().sum();
    let nc: f64 = cc.iter().sum();
    let mut stat = 0.0;
    for (&r, &c) in rc.iter().zip(cc) {
        let e = r * nc / nr;
        stat += if e == 0.0 { f64::INFINITY } else { (c - e) * (c - e) / e };
    }
    let df = rc.len().saturating_sub(1) as f64;
    let p = if stat.is_infinite() {
        0.0
    } else if df == 0.0 || stat == 0.0 {
        1.0
    } else {
        statrs::function::gamma::checked_gamma_ur(df / 2.0, stat / 2.0).unwrap_or(f64::NAN)
    };
    (stat, p)
}

/// Two-proportion z-test on the share of the first value.
fn z_test(keys: &[String], rc: &[f64], cc: &[f64]) -> (f64, f64) {
    if keys.len() < 2 {
        return (0.0, 1.0);
    }
    let (n1, n2): (f64, f64) = (rc.iter().sum(), cc.iter().sum());
    let (p1, p2) = (rc[0] / n1, cc[0] / n2);
    let pooled = (rc[0] + cc[0]) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return (0.0, 1.0);
    }
    let z = (p1 - p2) / se;
    (z, statrs::function::erf::erfc(z.abs() / std::f64::consts::SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: &[f64]) -> Sample {
        Sample::Numeric(v.to_vec())
    }

    #[test]
    fn serialized_names_are_the_method_names() {
        for m in Method::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), serde_json::json!(m.as_str()));
            assert_eq!(Method::parse(m.as_str()), Ok(m));
        }
    }

    #[test]
    fn wasserstein_of_shifted_samples_is_the_shift() {
        let a: Vec<f64> = (0..100).map(f64::from).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 3.0).collect();
        assert!((wasserstein(&a, &b) - 3.0).abs() < 1e-12);
        assert_eq!(wasserstein(&a, &a), 0.0);
    }

    #[test]
    fn defaults_follow_evidently() {
        let small: Vec<f64> = (0..500).map(|i| f64::from(i % 50)).collect();
        let d = column_drift(num(&small), num(&small), None, None).unwrap();
        assert_eq!((d.method, d.threshold, d.drift), (Method::Ks, 0.05, false));
        let big: Vec<f64> = (0..5000).map(|i| f64::from(i % 50)).collect();
        assert_eq!(column_drift(num(&big), num(&big), None, None).unwrap().method, Method::Wasserstein);
        let few: Vec<f64> = (0..5000).map(|i| f64::from(i % 3)).collect();
        let d = column_drift(num(&few), num(&few), None, None).unwrap();
        assert_eq!((d.kind, d.method), (Kind::Categorical, Method::JensenShannon));
        let yes_no: Vec<&str> = (0..300).map(|i| if i % 3 == 0 { "yes" } else { "no" }).collect();
        assert_eq!(
            column_drift(Sample::categories(&yes_no), Sample::categories(&yes_no), None, None).unwrap().method,
            Method::Z
        );
    }

    #[test]
    fn methods_are_checked_against_the_column_kind() {
        let cats = Sample::categories(["a", "b"]);
        let e = column_drift(cats.clone(), cats, Some(Method::Ks), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "method `ks` does not apply to categorical columns; use one of jensenshannon, psi, chisquare, z, linf"
        );
    }

    #[test]
    fn an_empty_side_is_drift_of_presence() {
        let d = column_drift(num(&[1.0, 2.0]), num(&[]), None, None).unwrap();
        assert!(d.score.is_nan());
        assert!(d.drift);
    }

    #[test]
    fn histogram_matches_numpy_edges_rules() {
        let edges = vec![0.0, 1.0, 2.0];
        assert_eq!(histogram(&[0.0, 0.5, 1.0, 2.0], &edges), vec![2.0, 2.0]);
        assert_eq!(sturges_edges(&[0.0, 1.0], &[2.0, 3.0]).len(), 4); // ceil(log2(4) + 1) = 3 bins
    }
}
