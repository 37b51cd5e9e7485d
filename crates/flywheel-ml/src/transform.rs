//! Feature preparation, declared per column, fitted on the training data
//! only and saved inside the model, so that evaluation, batch prediction
//! and serving run this same code on raw columns.
//!
//! A column's transform is written as steps joined by `|`, e.g.
//! `"impute(median) | clip(0, 100) | standardize"`. Numeric steps change
//! the value in order; the last step may encode it instead. Text columns
//! take one encoder. `indicator` (anywhere) adds a 0/1 feature for "the
//! raw value was missing". See [`OPS`] for every step.

use crate::MlError;
use crate::frame::{Column, ColumnKind, Frame, MISSING, Text};
use flywheel_core::{civil_from_days, days_from_civil};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Every step a transform may name, with what it does (for errors and docs).
pub const OPS: &[(&str, &str)] = &[
    (
        "impute",
        "numbers: fill missing values with the training `mean` or `median`, or a constant: impute(median), impute(0)",
    ),
    ("clip", "numbers: limit to a range: clip(0, 100)"),
    ("log1p", "numbers: ln(1 + x); values ≤ -1 become missing"),
    ("passthrough", "numbers: the value as it is, missing stays missing (trees split on it)"),
    ("standardize", "numbers: subtract the training mean, divide by the training standard deviation"),
    ("minmax", "numbers: scale the training range to [0, 1]"),
    ("bucketize", "numbers: the index of the training-quantile bucket: bucketize(10)"),
    ("onehot", "text: one feature per frequent training value, plus one for any other: onehot(top = 20)"),
    ("hash", "text: one-hot over hash buckets: hash(buckets = 64)"),
    ("ordinal", "text: the value's rank by training frequency (0 = most frequent; unseen = -1)"),
    (
        "datetime",
        "dates and times (ISO 8601 text, or seconds since 1970): parts as features: datetime(hour, day_of_week, month)",
    ),
    ("indicator", "any column: add a 0/1 feature that says the raw value was missing"),
];

pub const DATETIME_PARTS: &[&str] =
    &["year", "month", "day", "day_of_week", "day_of_year", "hour", "minute", "weekend"];

/// The transforms of feature columns declared without one.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub numeric: &'static str,
    pub text: &'static str,
}

/// For linear models: every value present and on one scale, text one-hot.
pub const LINEAR_DEFAULTS: Defaults = Defaults { numeric: "impute(mean) | standardize", text: "onehot(top = 30)" };
/// For trees: values as they are (missing values get their own branch),
/// text as frequency ranks.
pub const TREE_DEFAULTS: Defaults = Defaults { numeric: "passthrough", text: "ordinal" };

/// One step as written: a name and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct OpConfig {
    pub name: String,
    pub args: Vec<String>,
    pub named: BTreeMap<String, String>,
}

/// What the user wrote for one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnTransformConfig {
    pub column: String,
    pub text: String,
    pub ops: Vec<OpConfig>,
}

fn err(column: &str, text: &str, msg: impl std::fmt::Display) -> MlError {
    MlError::Transform(format!("transform of `{column}` (\"{text}\"): {msg}"))
}

impl ColumnTransformConfig {
    /// Parses `"op | op(args) | …"`.
    pub fn parse(column: &str, text: &str) -> Result<Self, MlError> {
        let mut ops = Vec::new();
        for part in text.split('|').map(str::trim) {
            if part.is_empty() {
                return Err(err(column, text, "an empty step; write steps like `impute(mean) | standardize`"));
            }
            let (name, args) = match part.find('(') {
                Some(open) => {
                    let Some(inner) = part[open + 1..].strip_suffix(')') else {
                        return Err(err(column, text, format!("`{part}` is missing its closing `)`")));
                    };
                    (part[..open].trim(), inner)
                }
                None => (part, ""),
            };
            if !OPS.iter().any(|(n, _)| *n == name) {
                let hint = flywheel_core::did_you_mean(name, OPS.iter().map(|(n, _)| *n));
                let all: Vec<&str> = OPS.iter().map(|(n, _)| *n).collect();
                return Err(err(column, text, format!("unknown step `{name}`{hint} (steps: {})", all.join(", "))));
            }
            let mut op = OpConfig { name: name.to_string(), args: Vec::new(), named: BTreeMap::new() };
            for a in args.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                match a.split_once('=') {
                    Some((k, v)) => {
                        op.named.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
                    }
                    None => op.args.push(a.trim_matches('"').to_string()),
                }
            }
            ops.push(op);
        }
        Ok(Self { column: column.to_string(), text: text.to_string(), ops })
    }
}

/// A fitted value step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    Impute { value: f64 },
    Clip { lo: f64, hi: f64 },
    Log1p,
    Standardize { mean: f64, std: f64 },
    Minmax { min: f64, max: f64 },
}

impl Step {
    #[inline]
    fn apply(&self, x: f64) -> f64 {
        match *self {
            Step::Impute { value } => {
                if x.is_nan() {
                    value
                } else {
                    x
                }
            }
            Step::Clip { lo, hi } => {
                if x.is_nan() {
                    x
                } else {
                    x.clamp(lo, hi)
                }
            }
            Step::Log1p => {
                if x > -1.0 {
                    x.ln_1p()
                } else {
                    f64::NAN
                }
            }
            Step::Standardize { mean, std } => (x - mean) / std,
            Step::Minmax { min, max } => (x - min) / (max - min),
        }
    }

    /// `apply` to every value, with the step chosen once rather than per value.
    fn apply_all(&self, xs: &mut [f64]) {
        match *self {
            Step::Standardize { mean, std } => xs.iter_mut().for_each(|x| *x = (*x - mean) / std),
            Step::Minmax { min, max } => xs.iter_mut().for_each(|x| *x = (*x - min) / (max - min)),
            _ => xs.iter_mut().for_each(|x| *x = self.apply(*x)),
        }
    }
}

/// How a column becomes features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoder", rename_all = "snake_case")]
pub enum Encoder {
    /// The (transformed) number itself.
    Value,
    /// Index of the bucket among `edges` (upper bounds, exclusive).
    Bucketize {
        edges: Vec<f64>,
    },
    /// One feature per category, then one for anything else (and missing).
    Onehot {
        categories: Vec<String>,
    },
    Hash {
        buckets: usize,
    },
    /// Index in `categories`; -1 when unseen or missing.
    Ordinal {
        categories: Vec<String>,
    },
    Datetime {
        parts: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnTransform {
    pub column: String,
    pub kind: ColumnKind,
    /// The transform as written (kept for people reading the model).
    pub declared: String,
    pub steps: Vec<Step>,
    pub encoder: Encoder,
    pub indicator: bool,
}

impl ColumnTransform {
    pub fn width(&self) -> usize {
        usize::from(self.indicator)
            + match &self.encoder {
                Encoder::Value | Encoder::Bucketize { .. } | Encoder::Ordinal { .. } => 1,
                Encoder::Onehot { categories } => categories.len() + 1,
                Encoder::Hash { buckets } => *buckets,
                Encoder::Datetime { parts } => parts.len(),
            }
    }

    pub fn feature_names(&self) -> Vec<String> {
        let c = &self.column;
        let mut names = match &self.encoder {
            Encoder::Value | Encoder::Bucketize { .. } | Encoder::Ordinal { .. } => vec![c.clone()],
            Encoder::Onehot { categories } => {
                categories.iter().map(|v| format!("{c}={v}")).chain([format!("{c}=<other>")]).collect()
            }
            Encoder::Hash { buckets } => (0..*buckets).map(|b| format!("{c}#{b}")).collect(),
            Encoder::Datetime { parts } => parts.iter().map(|p| format!("{c}.{p}")).collect(),
        };
        if self.indicator {
            names.push(format!("{c}:missing"));
        }
        names
    }
}

/// The fitted transform of every feature column, in feature order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    pub columns: Vec<ColumnTransform>,
}

/// Row-major features.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self { rows, cols, data: vec![0.0; rows * cols] }
    }
    #[inline]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }
    /// Column `j` as a vector.
    pub fn column(&self, j: usize) -> Vec<f64> {
        (0..self.rows).map(|i| self.get(i, j)).collect()
    }
}

fn number(column: &str, text: &str, s: &str, what: &str) -> Result<f64, MlError> {
    s.parse::<f64>().map_err(|_| err(column, text, format!("{what} must be a number, not `{s}`")))
}

fn present(v: &[f64]) -> Vec<f64> {
    v.iter().copied().filter(|x| !x.is_nan()).collect()
}

/// Count, mean and (population) variance of the values that are not NaN.
fn moments(v: &[f64]) -> (usize, f64, f64) {
    let (n, sum) = present_sum(v, |x| x);
    if n == 0 {
        return (0, 0.0, 0.0);
    }
    let mean = sum / n as f64;
    let (_, squares) = present_sum(v, |x| (x - mean) * (x - mean));
    (n, mean, squares / n as f64)
}

/// How many values are present (not NaN), and the sum of `f` of them.
/// Four running sums: one chain of dependent additions would wait on each
/// in turn.
fn present_sum(v: &[f64], f: impl Fn(f64) -> f64) -> (usize, f64) {
    let (mut n, mut s) = ([0usize; 4], [0.0f64; 4]);
    let chunks = v.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..4 {
            let present = !c[l].is_nan();
            n[l] += usize::from(present);
            s[l] += if present { f(c[l]) } else { 0.0 };
        }
    }
    for &x in rest.iter().filter(|x| !x.is_nan()) {
        n[0] += 1;
        s[0] += f(x);
    }
    (n.iter().sum(), (s[0] + s[1]) + (s[2] + s[3]))
}

/// Quantile with linear interpolation (numpy's default) of sorted values.
fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    let pos = q * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

/// Training values by frequency (most frequent first, ties by value).
fn by_frequency(t: &crate::frame::Text) -> Vec<String> {
    let mut counts = vec![0usize; t.values.len()];
    for &c in &t.codes {
        if c != MISSING {
            counts[c as usize] += 1;
        }
    }
    let mut order: Vec<usize> = (0..t.values.len()).filter(|&i| counts[i] > 0).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then_with(|| t.values[a].cmp(&t.values[b])));
    order.into_iter().map(|i| t.values[i].clone()).collect()
}

fn positive_int(column: &str, text: &str, op: &OpConfig, key: &str, default: usize) -> Result<usize, MlError> {
    let raw = op.named.get(key).or(op.args.first());
    match raw {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(err(column, text, format!("{}({key} = …) must be a whole number ≥ 1, not `{s}`", op.name))),
        },
    }
}

impl ColumnTransformConfig {
    /// Fits this column's transform on training values.
    pub fn fit(&self, col: &Column) -> Result<ColumnTransform, MlError> {
        let (c, text) = (self.column.as_str(), self.text.as_str());
        let indicator = self.ops.iter().any(|o| o.name == "indicator");
        let ops: Vec<&OpConfig> = self.ops.iter().filter(|o| o.name != "indicator").collect();
        let (steps, encoder) = match col {
            Column::Num(raw) => fit_numeric(c, text, &ops, raw)?,
            Column::Text(t) => (Vec::new(), fit_text(c, text, &ops, t)?),
        };
        Ok(ColumnTransform {
            column: c.to_string(),
            kind: col.kind(),
            declared: text.to_string(),
            steps,
            encoder,
            indicator,
        })
    }
}

/// What one numeric op fitted to: a step that changes the value, the
/// encoder that ends the chain, or nothing (`passthrough`).
enum Fitted {
    Step(Step),
    Encoder(Encoder),
    Nothing,
}

/// Fits a numeric column's steps in order, each on the previous one's output.
fn fit_numeric(c: &str, text: &str, ops: &[&OpConfig], raw: &[f64]) -> Result<(Vec<Step>, Encoder), MlError> {
    let mut steps = Vec::new();
    let mut encoder = Encoder::Value;
    // Copied only when a step feeds another.
    let mut values = std::borrow::Cow::Borrowed(raw);
    for (i, op) in ops.iter().enumerate() {
        let last = i + 1 == ops.len();
        let step = match fit_numeric_op(c, text, op, &values, last)? {
            Fitted::Step(step) => step,
            Fitted::Encoder(e) => {
                encoder = e;
                continue;
            }
            Fitted::Nothing => continue,
        };
        // The next step is fitted on this one's output.
        if !last {
            values.to_mut().iter_mut().for_each(|x| *x = step.apply(*x));
        }
        steps.push(step);
    }
    Ok((steps, encoder))
}

fn fit_numeric_op(c: &str, text: &str, op: &OpConfig, values: &[f64], last: bool) -> Result<Fitted, MlError> {
    let step = match op.name.as_str() {
        "impute" => fit_impute(c, text, op, values)?,
        "clip" => fit_clip(c, text, op)?,
        "log1p" => Step::Log1p,
        "passthrough" => return Ok(Fitted::Nothing),
        "standardize" => {
            let (_, mean, var) = moments(values);
            // A constant column stays constant (0) rather than dividing by zero.
            let std = if var > 0.0 { var.sqrt() } else { 1.0 };
            Step::Standardize { mean, std }
        }
        "minmax" => fit_minmax(values),
        "bucketize" if last => return Ok(Fitted::Encoder(fit_bucketize(c, text, op, values)?)),
        "datetime" if last => return Ok(Fitted::Encoder(datetime_encoder(c, text, op)?)),
        "bucketize" | "datetime" => {
            return Err(err(c, text, format!("`{}` encodes the value, so it must be the last step", op.name)));
        }
        other => {
            return Err(err(c, text, format!("`{other}` applies to text columns, and `{c}` holds numbers")));
        }
    };
    Ok(Fitted::Step(step))
}

fn fit_impute(c: &str, text: &str, op: &OpConfig, values: &[f64]) -> Result<Step, MlError> {
    let how = op.args.first().or(op.named.get("value")).map(String::as_str).unwrap_or("mean");
    let (n, sum) = present_sum(values, |x| x);
    let value = match how {
        "mean" | "median" if n == 0 => {
            return Err(err(
                c,
                text,
                format!("impute({how}) needs values, but the column has none in the training data"),
            ));
        }
        "mean" => sum / n as f64,
        "median" => {
            let mut s = present(values);
            s.sort_by(f64::total_cmp);
            quantile_sorted(&s, 0.5)
        }
        other => number(c, text, other, "impute's value (or `mean`, `median`)")?,
    };
    Ok(Step::Impute { value })
}

fn fit_clip(c: &str, text: &str, op: &OpConfig) -> Result<Step, MlError> {
    if op.args.len() != 2 {
        return Err(err(c, text, "clip takes two bounds: clip(LOW, HIGH)"));
    }
    let lo = number(c, text, &op.args[0], "clip's low bound")?;
    let hi = number(c, text, &op.args[1], "clip's high bound")?;
    if lo > hi {
        return Err(err(c, text, format!("clip's low bound {lo} is above its high bound {hi}")));
    }
    Ok(Step::Clip { lo, hi })
}

fn fit_minmax(values: &[f64]) -> Step {
    let p = values.iter().filter(|x| !x.is_nan());
    let min = p.clone().copied().fold(f64::INFINITY, f64::min);
    let max = p.copied().fold(f64::NEG_INFINITY, f64::max);
    if max < min {
        // No values at all.
        Step::Standardize { mean: 0.0, std: 1.0 }
    } else if max == min {
        Step::Standardize { mean: min, std: 1.0 }
    } else {
        Step::Minmax { min, max }
    }
}

fn fit_bucketize(c: &str, text: &str, op: &OpConfig, values: &[f64]) -> Result<Encoder, MlError> {
    let n = positive_int(c, text, op, "buckets", 10)?;
    let mut s = present(values);
    s.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> =
        if s.is_empty() { Vec::new() } else { (1..n).map(|k| quantile_sorted(&s, k as f64 / n as f64)).collect() };
    edges.dedup();
    Ok(Encoder::Bucketize { edges })
}

/// A text column takes exactly one encoder.
fn fit_text(c: &str, text: &str, ops: &[&OpConfig], t: &Text) -> Result<Encoder, MlError> {
    if ops.len() > 1 {
        return Err(err(c, text, "a text column takes one encoder (onehot, hash, ordinal or datetime)"));
    }
    let Some(op) = ops.first() else {
        return Err(err(c, text, "a text column needs an encoder: onehot, hash, ordinal or datetime"));
    };
    Ok(match op.name.as_str() {
        "onehot" => {
            let top = positive_int(c, text, op, "top", 30)?;
            Encoder::Onehot { categories: by_frequency(t).into_iter().take(top).collect() }
        }
        "hash" => Encoder::Hash { buckets: positive_int(c, text, op, "buckets", 32)? },
        "ordinal" => Encoder::Ordinal { categories: by_frequency(t) },
        "datetime" => {
            let enc = datetime_encoder(c, text, op)?;
            // Refuse a text column that holds no dates at all.
            if let Some(bad) = t.values.iter().find(|v| parse_datetime(v).is_none()) {
                return Err(err(
                    c,
                    text,
                    format!(
                        "`{bad}` is not a date or time (expected ISO 8601, like 2011-01-01 or 2011-01-01 13:00:00)"
                    ),
                ));
            }
            enc
        }
        other => return Err(err(c, text, format!("`{other}` applies to numbers, and `{c}` holds text"))),
    })
}

fn datetime_encoder(c: &str, text: &str, op: &OpConfig) -> Result<Encoder, MlError> {
    let parts: Vec<String> =
        if op.args.is_empty() { ["hour", "day_of_week", "month"].map(String::from).to_vec() } else { op.args.clone() };
    for p in &parts {
        if !DATETIME_PARTS.contains(&p.as_str()) {
            let hint = flywheel_core::did_you_mean(p, DATETIME_PARTS.iter().copied());
            return Err(err(c, text, format!("unknown date part `{p}`{hint} (parts: {})", DATETIME_PARTS.join(", "))));
        }
    }
    Ok(Encoder::Datetime { parts })
}

/// (year, month, day, hour, minute) of ISO 8601 text: `YYYY-MM-DD`,
/// optionally followed by ` ` or `T` and `HH:MM[:SS[.f]]` and a zone
/// suffix, which is ignored (the local time of the record is what a
/// calendar feature means).
pub fn parse_datetime(s: &str) -> Option<(i64, u32, u32, u32, u32)> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = s.get(0..4)?.parse().ok()?;
    let m: u32 = s.get(5..7)?.parse().ok()?;
    let d: u32 = s.get(8..10)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (mut hh, mut mm) = (0, 0);
    if b.len() > 10 {
        if b[10] != b' ' && b[10] != b'T' {
            return None;
        }
        let t = s.get(11..)?;
        hh = t.get(0..2)?.parse().ok()?;
        if t.as_bytes().get(2) != Some(&b':') {
            return None;
        }
        mm = t.get(3..5)?.parse().ok()?;
        if hh > 23 || mm > 59 {
            return None;
        }
    }
    Some((y, m, d, hh, mm))
}

fn datetime_parts(y: i64, m: u32, d: u32, hh: u32, mi: u32, parts: &[String], out: &mut [f64]) {
    let days = days_from_civil(y, m, d);
    // 1970-01-01 was a Thursday; Monday = 0, as pandas.
    let dow = (days + 3).rem_euclid(7);
    for (o, p) in out.iter_mut().zip(parts) {
        *o = match p.as_str() {
            "year" => y as f64,
            "month" => f64::from(m),
            "day" => f64::from(d),
            "day_of_week" => dow as f64,
            "day_of_year" => (days - days_from_civil(y, 1, 1) + 1) as f64,
            "hour" => f64::from(hh),
            "minute" => f64::from(mi),
            "weekend" => f64::from(u8::from(dow >= 5)),
            _ => f64::NAN,
        };
    }
}

fn datetime_from_seconds(secs: f64) -> Option<(i64, u32, u32, u32, u32)> {
    if !secs.is_finite() {
        return None;
    }
    let s = secs.floor() as i64;
    let rem = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(s.div_euclid(86_400));
    Some((y, m, d, (rem / 3600) as u32, ((rem % 3600) / 60) as u32))
}

/// Fits one transform per feature column. `declared` holds the columns
/// with a written transform; the others get the defaults.
pub fn fit(
    frame: &Frame,
    features: &[String],
    declared: &BTreeMap<String, String>,
    defaults: Defaults,
) -> Result<Transform, MlError> {
    let mut errors = Vec::new();
    for name in declared.keys() {
        if !features.contains(name) {
            errors.push(format!(
                "a transform is declared for `{name}`, which is not a feature column{}",
                suggest(name, features)
            ));
        }
    }
    // Columns are fitted independently, on all cores.
    let fitted = crate::par::map(features, |name| {
        let Some(col) = frame.column(name) else {
            let names: Vec<String> = frame.names().iter().map(|n| n.to_string()).collect();
            return Err(format!("feature `{name}` is not a column of the training data{}", suggest(name, &names)));
        };
        let text = declared.get(name).map(String::as_str).unwrap_or(match col {
            Column::Num(_) => defaults.numeric,
            Column::Text(_) => defaults.text,
        });
        ColumnTransformConfig::parse(name, text).and_then(|cfg| cfg.fit(col)).map_err(|e| e.to_string())
    });
    let mut columns = Vec::new();
    for f in fitted {
        match f {
            Ok(t) => columns.push(t),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(MlError::Transform(errors.join("\n")));
    }
    Ok(Transform { columns })
}

fn suggest(name: &str, candidates: &[String]) -> String {
    flywheel_core::did_you_mean(name, candidates.iter().map(String::as_str))
}

impl Transform {
    pub fn width(&self) -> usize {
        self.columns.iter().map(ColumnTransform::width).sum()
    }

    pub fn feature_names(&self) -> Vec<String> {
        self.columns.iter().flat_map(ColumnTransform::feature_names).collect()
    }

    /// Raw input columns the transform reads, with their kinds.
    pub fn inputs(&self) -> Vec<(String, ColumnKind)> {
        self.columns.iter().map(|c| (c.column.clone(), c.kind)).collect()
    }

    /// Features of every row of `frame`: in blocks of rows, so that a
    /// block of the (row-major) output stays in cache while every column
    /// writes its part of it, on all cores for large frames.
    pub fn apply(&self, frame: &Frame) -> Result<Matrix, MlError> {
        let mut m = Matrix::zeros(0, 0);
        self.apply_rows_into(frame, 0..frame.rows(), &mut m)?;
        Ok(m)
    }

    /// Features of the rows `range` of `frame`, written into `m` (resized
    /// and reused: batch prediction keeps one per thread and reads the
    /// frame in place, instead of copying each block of rows and faulting
    /// in fresh pages for its features).
    pub fn apply_rows_into(&self, frame: &Frame, range: std::ops::Range<usize>, m: &mut Matrix) -> Result<(), MlError> {
        self.apply_rows_at(frame, range, m, None)
    }

    /// [`apply_rows_into`](Self::apply_rows_into), the `i`th column read
    /// from the frame's column `at[i]` when `at` is given (a
    /// [`Binding`](crate::model::Binding)'s, for a frame on its names).
    pub(crate) fn apply_rows_at(
        &self,
        frame: &Frame,
        range: std::ops::Range<usize>,
        m: &mut Matrix,
        at: Option<&[usize]>,
    ) -> Result<(), MlError> {
        let rows = range.len();
        let width = self.width();
        m.rows = rows;
        m.cols = width;
        m.data.clear();
        m.data.resize(rows * width, 0.0);
        if rows == 1 {
            return self.apply_row(frame, range.start, &mut m.data, at);
        }
        let mut encoders = Vec::with_capacity(self.columns.len());
        let mut offset = 0;
        for (i, ct) in self.columns.iter().enumerate() {
            encoders.push(ColumnEncoder::new(ct, input(frame, i, ct, at)?, offset)?);
            offset += ct.width();
        }
        if width == 0 || rows == 0 {
            return Ok(());
        }
        crate::par::rows_mut(&mut m.data, width, rows * width >= 1 << 20, |first, part| {
            let first = range.start + first;
            let mut scratch = vec![0.0; (part.len() / width).min(BLOCK)];
            for (b, block) in part.chunks_mut(BLOCK * width).enumerate() {
                for e in &encoders {
                    e.write(first + b * BLOCK, block, width, &mut scratch)?;
                }
            }
            Ok(())
        })
    }

    /// The features of row `row` of `frame` into `out` (zeros, the
    /// transform's width): what a server does for a one-row request. Plain
    /// numbers are written straight, the same steps in the same order as
    /// a block of rows gets them; other columns go through their encoder
    /// with a block of one row.
    fn apply_row(&self, frame: &Frame, row: usize, out: &mut [f64], bound: Option<&[usize]>) -> Result<(), MlError> {
        let mut at = 0;
        for (i, ct) in self.columns.iter().enumerate() {
            let col = input(frame, i, ct, bound)?;
            match col {
                Column::Num(v) if number_features(ct, v[row], out, at) => {}
                _ => ColumnEncoder::new(ct, col, at)?.write(row, out, out.len(), &mut [0.0])?,
            }
            at += ct.width();
        }
        Ok(())
    }

    /// Whether [`apply_numbers`](Self::apply_numbers) takes every column:
    /// each reads a number and writes it as a value or a bucket.
    pub(crate) fn takes_numbers(&self) -> bool {
        self.columns
            .iter()
            .all(|ct| ct.kind == ColumnKind::Number && matches!(ct.encoder, Encoder::Value | Encoder::Bucketize { .. }))
    }

    /// The features of one row given as numbers alone, the `i`th column's
    /// value being `values[at[i]]`, into `out` (the transform's width):
    /// what [`apply_row`](Self::apply_row) writes for the same row of a
    /// frame, through the same steps, without a frame. `None`, with `out`
    /// partly written, when a column is not one [`takes_numbers`](Self::takes_numbers)
    /// takes or `at` does not find its value.
    pub(crate) fn apply_numbers(&self, values: &[f64], at: &[usize], out: &mut [f64]) -> Option<()> {
        let mut offset = 0;
        for (ct, &j) in self.columns.iter().zip(at) {
            if ct.kind != ColumnKind::Number || !number_features(ct, *values.get(j)?, out, offset) {
                return None;
            }
            offset += ct.width();
        }
        (at.len() == self.columns.len()).then_some(())
    }
}

/// The features of `raw`, a number of `ct`'s column, at `at` in `out`,
/// when `ct` writes it as a value or a bucket (else `false`, nothing
/// written): the steps in order, then the missing indicator of the value
/// as given. One place for a frame's row and a row of numbers alike, so
/// that both give the features a block of rows gets.
#[inline(always)]
fn number_features(ct: &ColumnTransform, raw: f64, out: &mut [f64], at: usize) -> bool {
    let x = ct.steps.iter().fold(raw, |x, s| s.apply(x));
    match &ct.encoder {
        Encoder::Value => out[at] = x,
        Encoder::Bucketize { edges } => out[at] = bucket(edges, x),
        _ => return false,
    }
    if ct.indicator {
        out[at + ct.width() - 1] = f64::from(u8::from(raw.is_nan()));
    }
    true
}

/// The column of `frame` that `ct`, the transform's `i`th, reads (at
/// `at[i]` when given), of the kind it reads.
#[inline]
fn input<'f>(frame: &'f Frame, i: usize, ct: &ColumnTransform, at: Option<&[usize]>) -> Result<&'f Column, MlError> {
    let found = match at.and_then(|at| at.get(i)) {
        Some(&j) => frame.column_index(j),
        None => frame.column_at(i, &ct.column),
    };
    let Some(col) = found.filter(|c| c.kind() == ct.kind) else {
        return input_error(frame, ct, found);
    };
    Ok(col)
}

/// Why `input` found no column of the kind the transform reads (a text
/// column is what a datetime encoder reads).
#[cold]
fn input_error<'f>(frame: &'f Frame, ct: &ColumnTransform, found: Option<&'f Column>) -> Result<&'f Column, MlError> {
    let col = found.ok_or_else(|| {
        let names: Vec<String> = frame.names().iter().map(|n| n.to_string()).collect();
        MlError::Data(format!(
            "the model needs column `{}`, which the data does not have{}",
            ct.column,
            suggest(&ct.column, &names)
        ))
    })?;
    if col.kind() != ct.kind && !(ct.kind == ColumnKind::Text && matches!(ct.encoder, Encoder::Datetime { .. })) {
        return Err(MlError::Data(format!(
            "the model needs column `{}` to hold {}, but it holds {}",
            ct.column,
            if ct.kind == ColumnKind::Number { "numbers" } else { "text" },
            if col.kind() == ColumnKind::Number { "numbers" } else { "text" },
        )));
    }
    Ok(col)
}

/// The bucket of `x` among `edges` (upper bounds, exclusive); missing stays missing.
#[inline]
fn bucket(edges: &[f64], x: f64) -> f64 {
    if x.is_nan() { f64::NAN } else { edges.partition_point(|e| *e <= x) as f64 }
}

/// Output rows written at a time; a numeric column's stepped values for a
/// block go to one scratch buffer shared by the columns (not one
/// allocation per column per request).
const BLOCK: usize = 512;

/// One column's fitted transform bound to its input, with its lookups
/// (category slots, parsed dates) built once: `write` fills its features
/// in a block of output rows.
struct ColumnEncoder<'a> {
    ct: &'a ColumnTransform,
    col: &'a Column,
    /// First output feature.
    at: usize,
    plan: Plan<'a>,
}

enum Plan<'a> {
    Value(&'a [f64]),
    Bucketize(&'a [f64], &'a [f64]),
    /// Seconds since the epoch, and the date parts wanted.
    Seconds(&'a [f64], &'a [String]),
    /// Per distinct text value, its date parts (`None`: not a date), and
    /// how many parts there are.
    Dates(&'a Text, Vec<Option<Vec<f64>>>, usize),
    /// Per distinct text value, the slot set to 1 (`None`: none), and the
    /// slot of a missing value.
    Slot(&'a Text, Vec<Option<usize>>, Option<usize>),
    /// Per distinct text value, the number written; -1 when missing.
    Rank(&'a Text, Vec<f64>),
}

impl<'a> ColumnEncoder<'a> {
    fn new(ct: &'a ColumnTransform, col: &'a Column, at: usize) -> Result<Self, MlError> {
        let index = |categories: &'a [String]| -> HashMap<&'a str, usize> {
            categories.iter().enumerate().map(|(k, c)| (c.as_str(), k)).collect()
        };
        let plan = match (col, &ct.encoder) {
            (Column::Num(v), Encoder::Value) => Plan::Value(v),
            (Column::Num(v), Encoder::Bucketize { edges }) => Plan::Bucketize(v, edges),
            (Column::Num(v), Encoder::Datetime { parts }) => Plan::Seconds(v, parts),
            (Column::Text(t), Encoder::Datetime { parts }) => Plan::Dates(
                t,
                t.values
                    .iter()
                    .map(|v| {
                        parse_datetime(v).map(|(y, mo, d, h, mi)| {
                            let mut out = vec![0.0; parts.len()];
                            datetime_parts(y, mo, d, h, mi, parts, &mut out);
                            out
                        })
                    })
                    .collect(),
                parts.len(),
            ),
            (Column::Text(t), Encoder::Onehot { categories }) => {
                // Values outside the vocabulary, and missing ones, share the last slot.
                let (index, other) = (index(categories), categories.len());
                Plan::Slot(
                    t,
                    t.values.iter().map(|v| Some(index.get(v.as_str()).copied().unwrap_or(other))).collect(),
                    Some(other),
                )
            }
            (Column::Text(t), Encoder::Hash { buckets }) => Plan::Slot(
                t,
                t.values
                    .iter()
                    .map(|v| Some((xxhash_rust::xxh3::xxh3_64(v.as_bytes()) % *buckets as u64) as usize))
                    .collect(),
                None,
            ),
            (Column::Text(t), Encoder::Ordinal { categories }) => {
                let index = index(categories);
                Plan::Rank(t, t.values.iter().map(|v| index.get(v.as_str()).map_or(-1.0, |&k| k as f64)).collect())
            }
            (_, enc) => {
                return Err(MlError::Data(format!(
                    "column `{}` cannot be encoded with {enc:?}: it holds {}",
                    ct.column,
                    col.kind().as_str()
                )));
            }
        };
        Ok(ColumnEncoder { ct, col, at, plan })
    }

    /// Writes this column's features for rows `first..` into `block`
    /// (whole output rows of `width` features); `scratch` holds at least
    /// a block's rows.
    fn write(&self, first: usize, block: &mut [f64], width: usize, scratch: &mut [f64]) -> Result<(), MlError> {
        let at = self.at;
        let n = block.len() / width.max(1);
        let rows = block.chunks_exact_mut(width).zip(first..);
        match &self.plan {
            Plan::Value(v) => {
                for ((out, _), x) in rows.zip(self.stepped(v, first, &mut scratch[..n]).iter().copied()) {
                    out[at] = x;
                }
            }
            Plan::Bucketize(v, edges) => {
                for ((out, _), x) in rows.zip(self.stepped(v, first, &mut scratch[..n]).iter().copied()) {
                    out[at] = bucket(edges, x);
                }
            }
            Plan::Seconds(v, parts) => {
                for ((out, _), x) in rows.zip(self.stepped(v, first, &mut scratch[..n]).iter().copied()) {
                    let out = &mut out[at..at + parts.len()];
                    match datetime_from_seconds(x) {
                        Some((y, mo, d, h, mi)) => datetime_parts(y, mo, d, h, mi, parts, out),
                        None => out.fill(f64::NAN),
                    }
                }
            }
            Plan::Dates(t, parsed, n) => self.write_dates(rows, t, parsed, *n)?,
            Plan::Slot(t, slot, missing) => {
                for (out, i) in rows {
                    let k = match t.codes[i] {
                        MISSING => *missing,
                        c => slot[c as usize],
                    };
                    if let Some(k) = k {
                        out[at + k] = 1.0;
                    }
                }
            }
            Plan::Rank(t, rank) => {
                for (out, i) in rows {
                    out[at] = match t.codes[i] {
                        MISSING => -1.0,
                        c => rank[c as usize],
                    };
                }
            }
        }
        if self.ct.indicator {
            let j = at + self.ct.width() - 1;
            for (out, i) in block.chunks_exact_mut(width).zip(first..) {
                out[j] = f64::from(u8::from(self.col.is_missing(i)));
            }
        }
        Ok(())
    }

    /// A numeric column's values for rows `first..first + xs.len()` after
    /// its steps, one step at a time over the block, in `xs`.
    fn stepped<'b>(&self, v: &[f64], first: usize, xs: &'b mut [f64]) -> &'b [f64] {
        xs.copy_from_slice(&v[first..first + xs.len()]);
        self.ct.steps.iter().for_each(|s| s.apply_all(xs));
        xs
    }

    /// Copies each row's parsed date parts; a value that is no date fails.
    fn write_dates<'r>(
        &self,
        rows: impl Iterator<Item = (&'r mut [f64], usize)>,
        t: &Text,
        parsed: &[Option<Vec<f64>>],
        n: usize,
    ) -> Result<(), MlError> {
        let at = self.at;
        for (out, i) in rows {
            let out = &mut out[at..at + n];
            match t.codes[i] {
                MISSING => out.fill(f64::NAN),
                c => match &parsed[c as usize] {
                    Some(p) => out.copy_from_slice(p),
                    None => {
                        return Err(MlError::Data(format!(
                            "column `{}`: `{}` is not a date or time (expected ISO 8601, like 2011-01-01 13:00:00)",
                            self.ct.column, t.values[c as usize]
                        )));
                    }
                },
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        let mut f = Frame::new();
        f.push("x", Column::Num(vec![1.0, 2.0, f64::NAN, 5.0])).unwrap();
        f.push("c", Column::Text(Text::encode([Some("a"), Some("b"), Some("a"), None]))).unwrap();
        f.push(
            "t",
            Column::Text(Text::encode([
                Some("2011-01-01 00:00:00"),
                Some("2011-01-03T13:30"),
                Some("2012-02-29"),
                None,
            ])),
        )
        .unwrap();
        f
    }

    #[test]
    fn numeric_steps_are_fitted_on_training_values_and_applied_in_order() {
        let f = frame();
        let decl = BTreeMap::from([("x".to_string(), "indicator | impute(median) | standardize".to_string())]);
        let t = fit(&f, &["x".into()], &decl, LINEAR_DEFAULTS).unwrap();
        assert_eq!(t.feature_names(), ["x", "x:missing"]);
        let m = t.apply(&f).unwrap();
        // median of 1, 2, 5 = 2; then mean 2.5 of [1, 2, 2, 5], population std 1.5
        let z: Vec<f64> = m.column(0);
        assert_eq!(z, [-1.0, -1.0 / 3.0, -1.0 / 3.0, 5.0 / 3.0]);
        assert_eq!(m.column(1), [0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn onehot_has_an_other_bucket_for_unseen_and_missing_values() {
        let f = frame();
        let t =
            fit(&f, &["c".into()], &BTreeMap::from([("c".into(), "onehot(top = 1)".into())]), LINEAR_DEFAULTS).unwrap();
        assert_eq!(t.feature_names(), ["c=a", "c=<other>"]);
        let mut serving = Frame::new();
        serving.push("c", Column::Text(Text::encode([Some("a"), Some("zzz"), None]))).unwrap();
        let m = t.apply(&serving).unwrap();
        assert_eq!(m.data, [1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn datetime_parts_match_the_calendar() {
        let f = frame();
        let decl = BTreeMap::from([(
            "t".into(),
            "datetime(year, month, day_of_week, hour, minute, day_of_year, weekend)".into(),
        )]);
        let t = fit(&f, &["t".into()], &decl, LINEAR_DEFAULTS).unwrap();
        let m = t.apply(&f).unwrap();
        // 2011-01-01 was a Saturday, 2011-01-03 a Monday, 2012-02-29 a Wednesday.
        assert_eq!(m.row(0), [2011.0, 1.0, 5.0, 0.0, 0.0, 1.0, 1.0]);
        assert_eq!(m.row(1), [2011.0, 1.0, 0.0, 13.0, 30.0, 3.0, 0.0]);
        assert_eq!(m.row(2), [2012.0, 2.0, 2.0, 0.0, 0.0, 60.0, 0.0]);
        assert!(m.row(3).iter().all(|x| x.is_nan()));
        // The same instant as seconds since 1970.
        assert_eq!(datetime_from_seconds(1_330_473_600.0), Some((2012, 2, 29, 0, 0)));
    }

    #[test]
    fn bucketize_uses_training_quantiles() {
        let mut f = Frame::new();
        f.push("x", Column::Num((0..100).map(f64::from).collect())).unwrap();
        let t =
            fit(&f, &["x".into()], &BTreeMap::from([("x".into(), "bucketize(4)".into())]), LINEAR_DEFAULTS).unwrap();
        let m = t.apply(&f).unwrap();
        assert_eq!((m.get(0, 0), m.get(30, 0), m.get(60, 0), m.get(99, 0)), (0.0, 1.0, 2.0, 3.0));
    }

    #[test]
    fn mistakes_are_reported_together_with_suggestions() {
        let f = frame();
        let decl = BTreeMap::from([
            ("x".to_string(), "standardise".to_string()),
            ("c".to_string(), "log1p".to_string()),
            ("nope".to_string(), "onehot".to_string()),
        ]);
        let e = fit(&f, &["x".into(), "c".into(), "t".into()], &decl, LINEAR_DEFAULTS).unwrap_err().to_string();
        assert!(e.contains("unknown step `standardise`; did you mean `standardize`?"), "{e}");
        assert!(e.contains("`log1p` applies to numbers, and `c` holds text"), "{e}");
        assert!(e.contains("`nope`, which is not a feature column"), "{e}");
        let e = fit(&f, &["t".into()], &BTreeMap::from([("t".into(), "datetime(hours)".into())]), LINEAR_DEFAULTS)
            .unwrap_err();
        assert!(e.to_string().contains("did you mean `hour`?"), "{e}");
    }

    #[test]
    fn a_row_alone_gets_the_features_it_gets_among_others_to_the_bit() {
        let mut f = frame();
        f.push("y", Column::Num(vec![0.5, f64::NAN, 9.0, -3.0])).unwrap();
        f.push("z", Column::Num(vec![2.0, 3.0, 4.0, 1e9])).unwrap();
        f.push("s", Column::Num(vec![1_330_473_600.0, f64::NAN, 0.0, 86_399.0])).unwrap();
        f.push("h", Column::Text(Text::encode([Some("p"), None, Some("q"), Some("p")]))).unwrap();
        f.push("o", Column::Text(Text::encode([Some("u"), Some("v"), None, Some("u")]))).unwrap();
        let decl = BTreeMap::from([
            ("x".to_string(), "indicator | impute(median) | clip(1.5, 4) | standardize".to_string()),
            ("y".to_string(), "indicator | log1p | minmax".to_string()),
            ("z".to_string(), "bucketize(3)".to_string()),
            ("s".to_string(), "datetime(month, hour)".to_string()),
            ("c".to_string(), "onehot(top = 1)".to_string()),
            ("t".to_string(), "datetime(year, day_of_week)".to_string()),
            ("h".to_string(), "hash(buckets = 4)".to_string()),
            ("o".to_string(), "ordinal".to_string()),
        ]);
        let names: Vec<String> = ["x", "y", "z", "s", "c", "t", "h", "o"].map(String::from).into();
        let t = fit(&f, &names, &decl, LINEAR_DEFAULTS).unwrap();
        let all = t.apply(&f).unwrap();
        let mut one = Matrix::zeros(0, 0);
        for i in 0..f.rows() {
            t.apply_rows_into(&f, i..i + 1, &mut one).unwrap();
            let bits = |r: &[f64]| r.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(one.row(0)), bits(all.row(i)), "row {i}: {:?} against {:?}", one.row(0), all.row(i));
        }
        let mut undated = f.clone();
        undated = undated.take(&[0]);
        let mut bad = Frame::new();
        for (name, col) in undated.columns() {
            let col = if name == "t" { Column::Text(Text::encode([Some("soon")])) } else { col.clone() };
            bad.push(name, col).unwrap();
        }
        let e = t.apply_rows_into(&bad, 0..1, &mut one).unwrap_err().to_string();
        assert!(e.contains("`soon` is not a date or time"), "{e}");
    }

    #[test]
    fn a_model_refuses_data_without_its_columns() {
        let f = frame();
        let t = fit(&f, &["x".into()], &BTreeMap::new(), LINEAR_DEFAULTS).unwrap();
        let mut other = Frame::new();
        other.push("y", Column::Num(vec![1.0])).unwrap();
        assert!(t.apply(&other).unwrap_err().to_string().contains("needs column `x`"));
    }
}
