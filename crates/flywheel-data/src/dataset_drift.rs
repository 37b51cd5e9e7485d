//! Dataset drift: every column two tables share, compared by
//! `flywheel_stats::column_drift`, plus the dataset-level verdict (drift when
//! at least `drift_share` of the columns drifted, as Evidently).

use crate::DataError;
use crate::table::{Table, is_numeric};
use flywheel_stats::reference::{ColumnReference, Limits};
use flywheel_stats::{ColumnDrift, Kind, Method, Sample};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct DriftOptions {
    /// Per-column method and threshold; absent columns use the defaults.
    pub methods: BTreeMap<String, Method>,
    pub thresholds: BTreeMap<String, f64>,
    /// Method and threshold for every column not named above.
    pub method: Option<Method>,
    pub threshold: Option<f64>,
    /// Only these columns (all shared columns when empty).
    pub columns: Vec<String>,
    /// Dataset drift when drifted / compared ≥ this (default 0.5).
    pub drift_share: Option<f64>,
    /// Threads comparing columns (default: every core). Monitoring uses
    /// one, so that it never takes the cores the server answers on.
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    pub reference_rows: usize,
    pub current_rows: usize,
    pub columns: BTreeMap<String, ColumnReport>,
    pub drifted_columns: usize,
    pub compared_columns: usize,
    pub drift_share: f64,
    pub drift_share_threshold: f64,
    pub dataset_drift: bool,
    pub only_in_reference: Vec<String>,
    pub only_in_current: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnReport {
    #[serde(flatten)]
    pub drift: ColumnDrift,
    pub reference_missing: usize,
    pub current_missing: usize,
    /// Shares of each sample per bin (numeric) or category, for reports.
    pub histogram: Histogram,
}

/// Reference and current shares over the same bins: `labels` are bin
/// ranges or category values.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Histogram {
    pub labels: Vec<String>,
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
}

const DISPLAY_BINS: usize = 20;
const DISPLAY_CATEGORIES: usize = 20;

fn histogram(reference: &Sample, current: &Sample, kind: Kind) -> Histogram {
    match (reference, current) {
        (Sample::Numeric(r), Sample::Numeric(c)) if kind == Kind::Numeric && (!r.is_empty() || !c.is_empty()) => {
            let lo = r.iter().chain(c).copied().fold(f64::INFINITY, f64::min);
            let hi = r.iter().chain(c).copied().fold(f64::NEG_INFINITY, f64::max);
            let bins = if lo == hi { 1 } else { DISPLAY_BINS };
            let width = if lo == hi { 1.0 } else { (hi - lo) / bins as f64 };
            let share = |v: &[f64]| {
                let mut h = vec![0.0; bins];
                for &x in v {
                    let k = (((x - lo) / width) as usize).min(bins - 1);
                    h[k] += 1.0;
                }
                let n = v.len().max(1) as f64;
                h.into_iter().map(|x| x / n).collect::<Vec<_>>()
            };
            let labels =
                (0..bins).map(|i| format!("{:.4}–{:.4}", lo + width * i as f64, lo + width * (i + 1) as f64)).collect();
            Histogram { labels, reference: share(r), current: share(c) }
        }
        _ => {
            let tally = |s: &Sample| match s {
                Sample::Categorical(m) => m.clone(),
                Sample::Numeric(v) => flywheel_stats::drift::category_counts(v.iter().map(|x| format!("{x}"))),
            };
            let (r, c) = (tally(reference), tally(current));
            let mut counts: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
            r.iter().for_each(|(v, n)| counts.entry(v).or_default().0 += *n as f64);
            c.iter().for_each(|(v, n)| counts.entry(v).or_default().1 += *n as f64);
            let mut rows: Vec<(&str, (f64, f64))> = counts.into_iter().collect();
            rows.sort_by(|a, b| (b.1.0 + b.1.1).total_cmp(&(a.1.0 + a.1.1)).then(a.0.cmp(b.0)));
            rows.truncate(DISPLAY_CATEGORIES);
            let (nr, nc) = (reference.len().max(1) as f64, current.len().max(1) as f64);
            Histogram {
                labels: rows.iter().map(|(k, _)| k.to_string()).collect(),
                reference: rows.iter().map(|(_, (a, _))| a / nr).collect(),
                current: rows.iter().map(|(_, (_, b))| b / nc).collect(),
            }
        }
    }
}

fn sample(t: &Table, i: usize, numeric: bool) -> (Sample, usize) {
    if numeric {
        let v = t.f64_column(i);
        let missing = v.iter().filter(|x| x.is_none()).count();
        return (Sample::Numeric(v.into_iter().flatten().collect()), missing);
    }
    // Count categories straight from the Arrow arrays: no string per value.
    let mut counts: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    let mut missing = 0;
    let arrays: Vec<arrow_array::ArrayRef> = t
        .batches
        .iter()
        .map(|b| arrow_cast::cast(b.column(i), &arrow_schema::DataType::Utf8).unwrap_or_else(|_| b.column(i).clone()))
        .collect();
    for a in &arrays {
        match a.as_any().downcast_ref::<arrow_array::StringArray>() {
            Some(s) => {
                for v in s.iter() {
                    match v {
                        Some(v) => *counts.entry(v).or_default() += 1,
                        None => missing += 1,
                    }
                }
            }
            None => missing += a.len(),
        }
    }
    let counts: BTreeMap<String, u64> = counts.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    (Sample::Categorical(counts), missing)
}

/// The columns to compare: those `--columns` names, or every column both
/// tables have; each column an option names must be one of those.
fn selected_columns(ref_names: &[String], cur_names: &[String], opts: &DriftOptions) -> Result<Vec<String>, DataError> {
    let shared: Vec<String> = ref_names.iter().filter(|n| cur_names.contains(n)).cloned().collect();
    if shared.is_empty() {
        return Err(DataError::NothingShared { reference: ref_names.join(", "), current: cur_names.join(", ") });
    }
    let check = |option: &'static str, column: &String| -> Result<(), DataError> {
        if shared.contains(column) {
            return Ok(());
        }
        let refs: Vec<&str> = shared.iter().map(String::as_str).collect();
        Err(DataError::UnknownColumn { option, column: column.clone(), hint: crate::table::suggest(column, &refs) })
    };
    for c in &opts.columns {
        check("--columns", c)?;
    }
    for c in opts.methods.keys() {
        check("--method", c)?;
    }
    for c in opts.thresholds.keys() {
        check("--threshold", c)?;
    }
    Ok(if opts.columns.is_empty() { shared } else { opts.columns.clone() })
}

/// Each selected column compared, one column per task spread over the cores.
fn compare_columns(
    reference: &Table,
    current: &Table,
    selected: &[String],
    opts: &DriftOptions,
) -> Result<BTreeMap<String, ColumnReport>, DataError> {
    let cores = opts.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let threads = cores.min(selected.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<(String, ColumnReport), DataError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(name) = selected.get(k) else { break };
                        out.push(one_column(reference, current, name, opts));
                    }
                    out
                })
            })
            .collect();
        // A worker that panicked loses its columns: say so rather than
        // report drift over fewer columns than were asked for.
        let lost =
            || vec![Err(DataError::Internal("a drift worker thread panicked; its columns were not compared".into()))];
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|_| lost())).collect()
    });
    results.into_iter().collect()
}

pub fn dataset_drift(reference: &Table, current: &Table, opts: &DriftOptions) -> Result<DriftReport, DataError> {
    let ref_names = reference.column_names();
    let cur_names = current.column_names();
    let selected = selected_columns(&ref_names, &cur_names, opts)?;
    let columns = compare_columns(reference, current, &selected, opts)?;
    Ok(report((reference.rows(), current.rows()), columns, (&ref_names, &cur_names), opts))
}

/// The report of the columns compared: how many drifted, and whether the
/// dataset did (`drift_share`).
fn report(
    (reference_rows, current_rows): (usize, usize),
    columns: BTreeMap<String, ColumnReport>,
    (ref_names, cur_names): (&[String], &[String]),
    opts: &DriftOptions,
) -> DriftReport {
    let drifted = columns.values().filter(|c| c.drift.drift).count();
    let compared = columns.len();
    let share = drifted as f64 / compared.max(1) as f64;
    let threshold = opts.drift_share.unwrap_or(0.5);
    DriftReport {
        reference_rows,
        current_rows,
        columns,
        drifted_columns: drifted,
        compared_columns: compared,
        drift_share: share,
        drift_share_threshold: threshold,
        dataset_drift: compared > 0 && share >= threshold,
        only_in_reference: ref_names.iter().filter(|n| !cur_names.contains(n)).cloned().collect(),
        only_in_current: cur_names.iter().filter(|n| !ref_names.contains(n)).cloned().collect(),
    }
}

fn one_column(
    reference: &Table,
    current: &Table,
    name: &str,
    opts: &DriftOptions,
) -> Result<(String, ColumnReport), DataError> {
    let (ri, ci) = (reference.column_index(name).unwrap_or(0), current.column_index(name).unwrap_or(0));
    // Compared as numbers only when both sides are numeric.
    let numeric =
        is_numeric(reference.schema.field(ri).data_type()) && is_numeric(current.schema.field(ci).data_type());
    let (rs, reference_missing) = sample(reference, ri, numeric);
    let (cs, current_missing) = sample(current, ci, numeric);
    let method = opts.methods.get(name).copied().or(opts.method);
    let threshold = opts.thresholds.get(name).copied().or(opts.threshold);
    let histogram = histogram(&rs, &cs, flywheel_stats::kind_of(&rs, &cs));
    let drift = flywheel_stats::column_drift(rs, cs, method, threshold)
        .map_err(|source| DataError::DriftMethod { column: name.to_string(), source })?;
    Ok((name.to_string(), ColumnReport { drift, reference_missing, current_missing, histogram }))
}

/// A dataset kept for drift without its rows (`flywheel_stats::reference`):
/// what the `statistics` step stores beside the profile, and what
/// monitoring compares windows with.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DatasetReference {
    pub rows: u64,
    pub columns: BTreeMap<String, ReferenceColumn>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ReferenceColumn {
    /// The column's type name (`int`, `float`, `string`, `bool`, `timestamp`).
    #[serde(rename = "type")]
    pub ty: String,
    pub missing: u64,
    /// `None` for dates and times: compared as text they would drift from
    /// every window by construction, and as numbers they are not kept.
    pub values: Option<ColumnReference>,
}

impl DatasetReference {
    pub fn from_profile(p: &crate::profiling::DatasetProfile) -> DatasetReference {
        let columns = p
            .columns
            .iter()
            .map(|(name, c)| {
                let timed = c.ty == flywheel_stats::profile::ValueType::Timestamp;
                let values = (!timed).then(|| ColumnReference::from_profile(c));
                (name.clone(), ReferenceColumn { ty: c.ty.as_str().to_string(), missing: c.missing, values })
            })
            .collect();
        DatasetReference { rows: p.rows, columns }
    }

    /// The reference of a table in memory.
    pub fn of_table(t: &Table) -> DatasetReference {
        let mut p = crate::profiling::DatasetProfile::new(&t.schema, flywheel_stats::profile::EXACT_QUANTILE_LIMIT);
        t.batches.iter().for_each(|b| p.add_batch(b));
        DatasetReference::from_profile(&p)
    }

    /// `columns` of a monitored window, small (`limits`) and mergeable:
    /// what lets windows merge into longer ones without their rows. Columns
    /// the table lacks are left out.
    pub fn of_window(t: &Table, columns: &[String], limits: Limits) -> DatasetReference {
        let mut kept = BTreeMap::new();
        for name in columns {
            let Some(i) = t.column_index(name) else { continue };
            let numeric = is_numeric(t.schema.field(i).data_type());
            let (values, missing) = match sample(t, i, numeric) {
                (Sample::Numeric(v), missing) => (ColumnReference::of_numbers(&v, limits), missing),
                (Sample::Categorical(counts), missing) => (ColumnReference::Categories { counts }, missing),
            };
            let ty = crate::batch::type_name(t.schema.field(i).data_type()).to_string();
            kept.insert(name.clone(), ReferenceColumn { ty, missing: missing as u64, values: Some(values) });
        }
        DatasetReference { rows: t.rows() as u64, columns: kept }
    }

    /// Adds `other`: the reference of both datasets together. A column
    /// only one of them has, or that changed type between them, is left
    /// out: the merged reference holds what both hold.
    pub fn merge(&mut self, other: &DatasetReference, limits: Limits) {
        self.rows += other.rows;
        self.columns.retain(|name, c| {
            let Some(o) = other.columns.get(name) else { return false };
            c.missing += o.missing;
            match (&mut c.values, &o.values) {
                (Some(a), Some(b)) => a.merge(b, limits).is_ok(),
                (None, None) => true,
                _ => false,
            }
        });
    }
}

/// [`dataset_drift`] against a kept reference. Reports carry no histograms.
pub fn dataset_drift_from(
    reference: &DatasetReference,
    current: &Table,
    opts: &DriftOptions,
) -> Result<DriftReport, DataError> {
    kept_drift(reference, Current::Rows(current), opts)
}

/// [`dataset_drift`] between two kept references (windows merged from
/// their sketches): as exact as `current` kept its values.
pub fn dataset_drift_between(
    reference: &DatasetReference,
    current: &DatasetReference,
    opts: &DriftOptions,
) -> Result<DriftReport, DataError> {
    kept_drift(reference, Current::Kept(current), opts)
}

enum Current<'a> {
    Rows(&'a Table),
    Kept(&'a DatasetReference),
}

impl Current<'_> {
    fn names(&self) -> Vec<String> {
        match self {
            Current::Rows(t) => t.column_names(),
            Current::Kept(r) => r.columns.iter().filter(|(_, c)| c.values.is_some()).map(|(n, _)| n.clone()).collect(),
        }
    }

    fn rows(&self) -> usize {
        match self {
            Current::Rows(t) => t.rows(),
            Current::Kept(r) => usize::try_from(r.rows).unwrap_or(usize::MAX),
        }
    }

    /// `name` compared with `kept`, and how many of its values are missing.
    fn drift(
        &self,
        kept: &ColumnReference,
        name: &str,
        (method, threshold): (Option<Method>, Option<f64>),
    ) -> (Result<ColumnDrift, flywheel_stats::StatsError>, usize) {
        match self {
            Current::Rows(t) => {
                let ci = t.column_index(name).unwrap_or(0);
                // Booleans as 0 and 1 (`is_numeric`), as the rows path and the log read them.
                let (cs, missing) = sample(t, ci, is_numeric(t.schema.field(ci).data_type()));
                (kept.drift(cs, method, threshold), missing)
            }
            Current::Kept(r) => match r.columns.get(name) {
                Some(ReferenceColumn { values: Some(v), missing, .. }) => {
                    (kept.drift_from(v, method, threshold), usize::try_from(*missing).unwrap_or(usize::MAX))
                }
                _ => (Err(flywheel_stats::StatsError::Unmergeable), 0),
            },
        }
    }
}

fn kept_drift(
    reference: &DatasetReference,
    current: Current<'_>,
    opts: &DriftOptions,
) -> Result<DriftReport, DataError> {
    let ref_names: Vec<String> =
        reference.columns.iter().filter(|(_, c)| c.values.is_some()).map(|(n, _)| n.clone()).collect();
    let cur_names = current.names();
    let selected = selected_columns(&ref_names, &cur_names, opts)?;
    let mut columns = BTreeMap::new();
    for name in selected {
        let kept = &reference.columns[&name];
        let Some(values) = &kept.values else { continue };
        let method = opts.methods.get(&name).copied().or(opts.method);
        let threshold = opts.thresholds.get(&name).copied().or(opts.threshold);
        let (drift, current_missing) = current.drift(values, &name, (method, threshold));
        let drift = match drift {
            Ok(d) => d,
            // Numbers kept as a sketch, text in the window (its type changed
            // in a later version), or a merged window's sketch where the
            // default method needs values: not comparable, so not compared,
            // rather than no window scored at all. A method asked for is an
            // error.
            Err(
                flywheel_stats::StatsError::MethodKind { .. }
                | flywheel_stats::StatsError::Unmergeable
                | flywheel_stats::StatsError::NeedsValues { .. },
            ) if method.is_none() => continue,
            Err(source) => return Err(DataError::DriftMethod { column: name.clone(), source }),
        };
        let reference_missing = usize::try_from(kept.missing).unwrap_or(usize::MAX);
        columns
            .insert(name, ColumnReport { drift, reference_missing, current_missing, histogram: Histogram::default() });
    }
    let rows = (usize::try_from(reference.rows).unwrap_or(usize::MAX), current.rows());
    Ok(report(rows, columns, (&ref_names, &cur_names), opts))
}
