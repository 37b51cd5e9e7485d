//! Per-column statistics built from mergeable parts.
//!
//! A [`ColumnProfile`] takes values one at a time (or merges another
//! profile) and reports: count (present values), missing, NaN, infinities,
//! zeros, min, max, mean, standard deviation (sample, ddof = 1, as pandas),
//! quantiles, distinct values, the most frequent values, an equal-width and
//! a quantile histogram, and string lengths for text.
//!
//! Exactness: counts, min, max and exact-mode frequencies are exact; mean and
//! variance are exact up to floating-point rounding; quantiles are exact
//! (numpy's linear interpolation) while a column holds at most
//! [`EXACT_QUANTILE_LIMIT`] values and within the KLL sketch's stated rank
//! error ([`DEFAULT_RANK_ERROR`]) beyond; distinct counts are exact up to
//! [`crate::sketch::frequent::DEFAULT_CAP`] distinct values and HyperLogLog estimates
//! (±0.81% standard error) beyond. NaN and ±inf are counted but left out of
//! moments and quantiles.

use crate::sketch::frequent::Key;
use crate::sketch::hll::hash_bytes;
use crate::sketch::kll::DEFAULT_RANK_ERROR;
use crate::sketch::{Frequent, HyperLogLog, Kll, Moments};
use serde::Serialize;
use serde_json::{Value as Json, json};

/// Quantiles stay exact up to this many values per column.
pub const EXACT_QUANTILE_LIMIT: usize = 100_000;
pub const QUANTILES: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99];
pub const HISTOGRAM_BINS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    Int,
    Float,
    Bool,
    String,
    /// Dates and times, profiled as seconds since 1970.
    Timestamp,
}

impl ValueType {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::Bool => "bool",
            ValueType::String => "string",
            ValueType::Timestamp => "timestamp",
        }
    }
    /// Booleans are profiled as the values `true` and `false`.
    pub fn numeric(self) -> bool {
        matches!(self, ValueType::Int | ValueType::Float | ValueType::Timestamp)
    }
    /// Many distinct values expected: no exact top values kept.
    fn continuous(self) -> bool {
        self == ValueType::Float
    }
}

/// Exact values until a limit, then a KLL sketch fed in blocks.
#[derive(Debug, Clone)]
pub enum Quantiles {
    Exact(Vec<f64>),
    Sketch(Kll),
}

const NEG_ZERO: u64 = 1 << 63;

/// Exact values enter the sketch this many at a time when a column
/// outgrows the exact limit (small sorts, as when values stream in).
const SKETCH_BLOCK: usize = 4096;

fn sketch_of(values: &[f64]) -> Kll {
    let mut k = Kll::default();
    values.chunks(SKETCH_BLOCK).for_each(|b| k.extend(b));
    k
}

impl Quantiles {
    fn new() -> Self {
        Quantiles::Exact(Vec::new())
    }

    fn extend(&mut self, xs: &[f64], limit: usize) {
        match self {
            Quantiles::Exact(v) if v.len() + xs.len() <= limit => v.extend_from_slice(xs),
            Quantiles::Exact(v) => {
                let mut k = sketch_of(v);
                k.extend(xs);
                *self = Quantiles::Sketch(k);
            }
            Quantiles::Sketch(k) => k.extend(xs),
        }
    }

    fn merge(&mut self, other: &Quantiles, limit: usize) {
        match (&mut *self, other) {
            (Quantiles::Exact(a), Quantiles::Exact(b)) if a.len() + b.len() <= limit => a.extend_from_slice(b),
            _ => {
                let mut k = self.to_sketch();
                k.merge(&other.to_sketch());
                *self = Quantiles::Sketch(k);
            }
        }
    }

    pub fn to_sketch(&self) -> Kll {
        match self {
            Quantiles::Exact(v) => sketch_of(v),
            Quantiles::Sketch(k) => k.clone(),
        }
    }

    pub fn is_exact(&self) -> bool {
        matches!(self, Quantiles::Exact(_))
    }

    /// Estimated share of values strictly below x (bins are [a, b)).
    fn cdf_below(&self, x: f64) -> f64 {
        match self {
            Quantiles::Exact(v) => v.iter().filter(|&&y| y < x).count() as f64 / v.len().max(1) as f64,
            Quantiles::Sketch(..) => self.to_sketch().cdf(x.next_down()),
        }
    }

    fn values(&self, qs: &[f64]) -> Vec<Option<f64>> {
        match self {
            Quantiles::Exact(v) => {
                if v.is_empty() {
                    return vec![None; qs.len()];
                }
                let mut s = v.clone();
                s.sort_by(f64::total_cmp);
                qs.iter()
                    .map(|&q| {
                        let pos = q * (s.len() - 1) as f64;
                        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                        Some(s[lo] + (s[hi] - s[lo]) * (pos - lo as f64))
                    })
                    .collect()
            }
            Quantiles::Sketch(..) => self.to_sketch().quantiles(qs),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ColumnProfile {
    pub ty: ValueType,
    pub missing: u64,
    pub nan: u64,
    pub inf: u64,
    pub zeros: u64,
    pub moments: Moments,
    pub quantiles: Quantiles,
    pub distinct: HyperLogLog,
    pub numbers: Frequent<u64>,
    /// Set once a float column has more distinct values than the frequency
    /// summary keeps exactly: its "top values" would be noise (as TFDV, no
    /// top values for continuous features), so the summary is dropped.
    pub numbers_dropped: bool,
    pub texts: Frequent<String>,
    pub lengths: Moments,
    /// Counts of values breaking a schema's range or domain, when given.
    pub checks: Option<Checks>,
    exact_limit: usize,
}

/// What a schema allows for one column's values, and how many values (with
/// a first example) fell outside. Counted in the same pass as the profile,
/// and merged by addition.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub domain: Option<std::collections::HashSet<String>>,
    pub below: u64,
    pub above: u64,
    pub outside_domain: u64,
    pub outside_domain_distinct: std::collections::BTreeSet<String>,
    pub example_below: Option<f64>,
    pub example_above: Option<f64>,
}

impl Checks {
    fn number(&mut self, x: f64) {
        if let Some(lo) = self.min
            && x < lo
        {
            self.below += 1;
            self.example_below.get_or_insert(x);
        }
        if let Some(hi) = self.max
            && x > hi
        {
            self.above += 1;
            self.example_above.get_or_insert(x);
        }
    }

    fn text(&mut self, s: &str) {
        if let Some(d) = &self.domain
            && !d.contains(s)
        {
            self.outside_domain += 1;
            // Keep a bounded sample of the unexpected values.
            if self.outside_domain_distinct.len() < 20 {
                self.outside_domain_distinct.insert(s.to_string());
            }
        }
    }

    fn merge(&mut self, o: &Checks) {
        self.below += o.below;
        self.above += o.above;
        self.outside_domain += o.outside_domain;
        for v in &o.outside_domain_distinct {
            if self.outside_domain_distinct.len() < 20 {
                self.outside_domain_distinct.insert(v.clone());
            }
        }
        if self.example_below.is_none() {
            self.example_below = o.example_below;
        }
        if self.example_above.is_none() {
            self.example_above = o.example_above;
        }
    }
}

impl ColumnProfile {
    pub fn new(ty: ValueType) -> Self {
        Self::with_exact_limit(ty, EXACT_QUANTILE_LIMIT)
    }

    /// A profile whose quantiles switch to the sketch after `limit` values.
    pub fn with_exact_limit(ty: ValueType, limit: usize) -> Self {
        Self {
            ty,
            missing: 0,
            nan: 0,
            inf: 0,
            zeros: 0,
            moments: Moments::default(),
            quantiles: Quantiles::new(),
            distinct: HyperLogLog::default(),
            numbers: Frequent::default(),
            numbers_dropped: false,
            texts: Frequent::default(),
            lengths: Moments::default(),
            checks: None,
            exact_limit: limit,
        }
    }

    pub fn add_missing(&mut self, n: u64) {
        self.missing += n;
    }

    pub fn add_f64(&mut self, x: f64) {
        self.add_f64s(&[x]);
    }

    /// Adds a block of present values (NaN and ±inf included): one loop per
    /// statistic, so that moments and quantiles see whole finite blocks.
    pub fn add_f64s(&mut self, xs: &[f64]) {
        if let Some(c) = &mut self.checks {
            xs.iter().filter(|x| !x.is_nan()).for_each(|&x| c.number(x));
        }
        for &x in xs {
            if x.is_nan() {
                self.nan += 1;
                continue;
            }
            // -0.0 and 0.0 are one value.
            let bits = if x == 0.0 { 0 } else { x.to_bits() };
            let h = bits.key_hash();
            self.distinct.add_hash(h);
            if !self.numbers_dropped {
                self.numbers.add_hashed(h, &bits);
                if self.ty.continuous() && !self.numbers.is_exact() {
                    self.numbers_dropped = true;
                    self.numbers = Frequent::default();
                }
            }
        }
        self.zeros += xs.iter().filter(|&&x| x == 0.0).count() as u64;
        // Moments and quantiles take finite values, -0.0 as 0.0; most blocks
        // need no copy.
        if xs.iter().all(|x| x.is_finite() && x.to_bits() != NEG_ZERO) {
            self.moments.add_slice(xs);
            self.quantiles.extend(xs, self.exact_limit);
        } else {
            self.inf += xs.iter().filter(|x| x.is_infinite()).count() as u64;
            let finite: Vec<f64> =
                xs.iter().filter(|x| x.is_finite()).map(|&x| if x == 0.0 { 0.0 } else { x }).collect();
            self.moments.add_slice(&finite);
            self.quantiles.extend(&finite, self.exact_limit);
        }
    }

    pub fn add_str(&mut self, s: &str) {
        self.add_strs([s]);
    }

    /// Adds a block of present strings; their lengths enter the moments as
    /// one block.
    pub fn add_strs<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) {
        let mut lengths = Vec::new();
        for s in values {
            if let Some(c) = &mut self.checks {
                c.text(s);
            }
            let h = hash_bytes(s.as_bytes());
            self.distinct.add_hash(h);
            self.texts.add_hashed(h, s);
            lengths.push(s.chars().count() as f64);
        }
        self.lengths.add_slice(&lengths);
    }

    pub fn merge(&mut self, o: &ColumnProfile) {
        match (&mut self.checks, &o.checks) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.checks = Some(b.clone()),
            _ => {}
        }
        self.missing += o.missing;
        self.nan += o.nan;
        self.inf += o.inf;
        self.zeros += o.zeros;
        self.moments.merge(&o.moments);
        self.quantiles.merge(&o.quantiles, self.exact_limit);
        self.distinct.merge(&o.distinct);
        self.numbers_dropped |= o.numbers_dropped;
        if self.numbers_dropped {
            self.numbers = Frequent::default();
        } else {
            self.numbers.merge(&o.numbers);
            if self.ty.continuous() && !self.numbers.is_exact() {
                self.numbers_dropped = true;
                self.numbers = Frequent::default();
            }
        }
        self.texts.merge(&o.texts);
        self.lengths.merge(&o.lengths);
    }

    /// Values present (not missing); NaN and infinities count as present.
    pub fn count(&self) -> u64 {
        if self.ty.numeric() { self.moments.count + self.nan + self.inf } else { self.lengths.count }
    }

    pub fn distinct(&self) -> (u64, bool) {
        let exact = if self.numbers_dropped {
            None
        } else if self.ty.numeric() {
            self.numbers.distinct_if_exact()
        } else {
            self.texts.distinct_if_exact()
        };
        match exact {
            Some(n) => (n as u64, true),
            None => (self.distinct.estimate().round() as u64, false),
        }
    }

    pub fn to_json(&self, top_k: usize) -> Json {
        let (distinct, distinct_exact) = self.distinct();
        let mut o = serde_json::Map::new();
        o.insert("type".into(), json!(self.ty.as_str()));
        o.insert("count".into(), json!(self.count()));
        o.insert("missing".into(), json!(self.missing));
        o.insert("distinct".into(), json!(distinct));
        o.insert("distinct_exact".into(), json!(distinct_exact));
        if self.ty.numeric() {
            self.numeric_json(&mut o, top_k);
        } else {
            let top: Vec<Json> =
                self.texts.top(top_k).into_iter().map(|(v, c)| json!({ "value": v, "count": c })).collect();
            o.insert("top".into(), Json::Array(top));
            let l = &self.lengths;
            if l.count > 0 {
                o.insert("length".into(), json!({ "min": l.min, "max": l.max, "mean": num(l.mean) }));
            }
        }
        if !self.texts.is_exact() || !self.numbers.is_exact() {
            o.insert("top_max_error".into(), json!(self.texts.max_error().max(self.numbers.max_error())));
        }
        Json::Object(o)
    }

    /// A numeric column's counts, moments, quantiles, histograms and most
    /// frequent values.
    fn numeric_json(&self, o: &mut serde_json::Map<String, Json>, top_k: usize) {
        o.insert("nan".into(), json!(self.nan));
        o.insert("inf".into(), json!(self.inf));
        o.insert("zeros".into(), json!(self.zeros));
        if self.moments.count > 0 {
            self.distribution_json(o);
        }
        let top: Vec<Json> = self
            .numbers
            .top(top_k)
            .into_iter()
            .map(|(bits, c)| json!({ "value": num(f64::from_bits(bits)), "count": c }))
            .collect();
        o.insert("top".into(), Json::Array(top));
        if self.numbers_dropped {
            o.insert(
                "top_omitted".into(),
                json!(format!(
                    "more than {} distinct values: a continuous column",
                    crate::sketch::frequent::DEFAULT_CAP
                )),
            );
        }
    }

    /// Moments, quantiles and histograms of a numeric column with values.
    fn distribution_json(&self, o: &mut serde_json::Map<String, Json>) {
        let m = &self.moments;
        o.insert("min".into(), num(m.min));
        o.insert("max".into(), num(m.max));
        o.insert("mean".into(), num(m.mean));
        o.insert("std".into(), m.std().map_or(Json::Null, num));
        if self.ty == ValueType::Timestamp {
            o.insert("min_time".into(), json!(crate::time::format_seconds(m.min)));
            o.insert("max_time".into(), json!(crate::time::format_seconds(m.max)));
        }
        let qv = self.quantiles.values(&QUANTILES);
        let q: serde_json::Map<String, Json> =
            QUANTILES.iter().zip(qv).map(|(q, v)| (q.to_string(), v.map_or(Json::Null, num))).collect();
        o.insert("quantiles".into(), Json::Object(q));
        o.insert("quantiles_exact".into(), json!(self.quantiles.is_exact()));
        if !self.quantiles.is_exact() {
            o.insert("quantile_rank_error".into(), json!(DEFAULT_RANK_ERROR));
        }
        o.insert("histogram".into(), self.histogram());
        let deciles: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
        let edges: Vec<Json> = self.quantiles.values(&deciles).into_iter().map(|v| v.map_or(Json::Null, num)).collect();
        o.insert("quantile_histogram".into(), json!({ "edges": edges }));
    }

    /// Equal-width histogram over [min, max]: counts from the exact values or
    /// estimated from the sketch's CDF.
    fn histogram(&self) -> Json {
        let m = &self.moments;
        let (lo, hi) = (m.min, m.max);
        let bins = if lo == hi { 1 } else { HISTOGRAM_BINS };
        let step = if lo == hi { 1.0 } else { (hi - lo) / bins as f64 };
        let edges: Vec<f64> = (0..=bins).map(|i| if i == bins { hi } else { lo + step * i as f64 }).collect();
        let n = m.count as f64;
        let mut counts = Vec::with_capacity(bins);
        let mut prev = 0.0;
        for (i, e) in edges.iter().enumerate().skip(1) {
            let cum = if i == bins { 1.0 } else { self.quantiles.cdf_below(*e) };
            counts.push(((cum - prev) * n).round().max(0.0));
            prev = cum;
        }
        json!({ "edges": edges, "counts": counts })
    }
}

/// A number as JSON; NaN and infinities (which JSON cannot hold) as null.
fn num(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_reconcile_and_special_values_are_counted() {
        let mut p = ColumnProfile::new(ValueType::Float);
        for x in [1.0, 0.0, -0.0, f64::NAN, f64::INFINITY, 3.0] {
            p.add_f64(x);
        }
        p.add_missing(2);
        assert_eq!(p.count() + p.missing, 8);
        assert_eq!((p.nan, p.inf, p.zeros), (1, 1, 2));
        assert_eq!(p.distinct(), (4, true)); // 1, 0, inf, 3
        let j = p.to_json(5);
        assert_eq!(j["min"], 0.0);
        assert_eq!(j["max"], 3.0);
        assert_eq!(j["histogram"]["counts"].as_array().unwrap().iter().map(|c| c.as_f64().unwrap()).sum::<f64>(), 4.0);
    }

    #[test]
    fn merging_parts_equals_one_pass_in_exact_mode() {
        let values: Vec<f64> = (0..5000).map(|i| ((i * 7919) % 1000) as f64 / 10.0).collect();
        let mut whole = ColumnProfile::new(ValueType::Float);
        values.iter().for_each(|&x| whole.add_f64(x));
        let mut parts: Vec<ColumnProfile> = (0..3).map(|_| ColumnProfile::new(ValueType::Float)).collect();
        for (i, &x) in values.iter().enumerate() {
            parts[i % 3].add_f64(x);
        }
        let mut merged = ColumnProfile::new(ValueType::Float);
        parts.iter().for_each(|p| merged.merge(p));
        let (a, b) = (whole.to_json(10), merged.to_json(10));
        for key in ["count", "missing", "distinct", "min", "max", "quantiles", "top", "histogram"] {
            assert_eq!(a[key], b[key], "{key}");
        }
        assert!((a["mean"].as_f64().unwrap() - b["mean"].as_f64().unwrap()).abs() < 1e-9);
    }
}
