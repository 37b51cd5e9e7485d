//! One window's scores: its inputs compared with the training data of the
//! version that answered (`from_training`: what the model learned from)
//! and with the window before (`from_previous`: how fast things move), by
//! `flywheel_data::dataset_drift` with Evidently's default methods; and the
//! declared metric over its labeled rows. A dataset drift from the training
//! data and a metric out of its bound are alerts.

use crate::MonitorError;
use flywheel_core::slice::SliceSpec;
use flywheel_data::batch::Table;
use flywheel_data::dataset_drift::{DatasetReference, DriftOptions, DriftReport, dataset_drift, dataset_drift_from};
use flywheel_deploy::{Bound, Monitoring};
use serde::Serialize;

/// Labeled rows a window needs before its metric counts: one or two labels
/// say nothing of a model (and r² of one row is not a number).
pub const MIN_LABELS: usize = 10;

/// A dataset comparison, as much of it as a window keeps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftSummary {
    pub drifted: usize,
    pub compared: usize,
    pub share: f64,
    /// `share` reached the deployment's `drift_share`.
    pub drift: bool,
    /// The drifted columns, by name.
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "alert", rename_all = "snake_case")]
pub enum Alert {
    /// The window's inputs drifted from the training data.
    Drift { drifted: usize, compared: usize, columns: Vec<String> },
    /// The metric is out of its bound.
    Performance { metric: String, value: f64, bound: String, labeled: usize },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    pub rows: usize,
    /// Rows with a feedback label.
    pub labeled: usize,
    pub from_training: Option<DriftSummary>,
    pub from_previous: Option<DriftSummary>,
    /// The declared metric over the labeled rows.
    pub metric: Option<(String, f64)>,
    /// Its bound, as declared (`>= 0.7`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound: Option<String>,
    /// The metric per slice of each declared `slices` spec.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub slices: Vec<SliceScores>,
    pub alerts: Vec<Alert>,
}

/// One `slices` spec: the metric of each of its slices with enough labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SliceScores {
    pub spec: String,
    pub slices: Vec<SliceScore>,
    /// Why the window could not be sliced so (a column the log lacks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SliceScore {
    /// `day=3`, `25≤age<45`, `sex=Male, race=White`.
    pub slice: String,
    pub labeled: usize,
    pub value: f64,
}

/// Scores `window` (logged rows with `label`) against the training data,
/// kept as a reference (`statistics` stores it; no rows read again);
/// `inputs` are the model's input columns, compared (but for dates and
/// times) unless `monitoring.columns` names others.
pub fn score(
    window: &Table,
    previous: Option<&Table>,
    training: Option<&DatasetReference>,
    inputs: &[String],
    monitoring: &Monitoring,
) -> Result<Scores, MonitorError> {
    let columns = compared(monitoring, inputs, training);
    // One thread: monitoring runs beside a server, and must not take its cores.
    let opts = DriftOptions {
        columns,
        drift_share: Some(monitoring.drift_share),
        threads: Some(1),
        ..DriftOptions::default()
    };
    let from_training = match training {
        Some(r) if r.rows > 0 && window.rows() > 0 => Some(summary(&dataset_drift_from(r, window, &opts)?)),
        _ => None,
    };
    let from_previous = match previous {
        Some(p) if p.rows() > 0 && window.rows() > 0 => Some(summary(&dataset_drift(p, window, &opts)?)),
        _ => None,
    };
    let mut alerts = Vec::new();
    if let Some(s) = from_training.as_ref().filter(|s| s.drift) {
        alerts.push(Alert::Drift { drifted: s.drifted, compared: s.compared, columns: s.columns.clone() });
    }
    let p = performance(window, monitoring)?;
    alerts.extend(p.alert);
    let Performance { labeled, metric, bound, slices, .. } = p;
    Ok(Scores { rows: window.rows(), labeled, from_training, from_previous, metric, bound, slices, alerts })
}

/// What a window's feedback labels say: scored with the window, and again
/// when labels arrive after it (`windows::relabel`).
#[derive(Debug, Clone, PartialEq)]
pub struct Performance {
    /// Rows with a label (the metric needs `MIN_LABELS` of them).
    pub labeled: usize,
    pub metric: Option<(String, f64)>,
    pub bound: Option<String>,
    pub slices: Vec<SliceScores>,
    pub alert: Option<Alert>,
}

/// The declared metric over `window`'s labeled rows, per slice too, and
/// whether it is out of its bound.
pub fn performance(window: &Table, monitoring: &Monitoring) -> Result<Performance, MonitorError> {
    let labeled = window
        .column_index(crate::metric::LABEL)
        .map_or(0, |i| window.rows() - window.batches.iter().map(|b| b.column(i).null_count()).sum::<usize>());
    let mut p = Performance { labeled, metric: None, bound: None, slices: Vec::new(), alert: None };
    let Some(bound) = &monitoring.performance else { return Ok(p) };
    p.bound = Some(bound_text(bound));
    if let Some((value, n)) = crate::metric(window, &bound.metric)?
        && n >= MIN_LABELS
        && value.is_finite()
    {
        p.metric = Some((bound.metric.clone(), value));
        if !bound.holds(value) {
            let (metric, bound) = (bound.metric.clone(), bound_text(bound));
            p.alert = Some(Alert::Performance { metric, value, bound, labeled: n });
        }
    }
    p.slices = monitoring.slices.iter().map(|s| sliced(window, s, &bound.metric)).collect::<Result<_, _>>()?;
    Ok(p)
}

/// `metric` on each slice of `spec` with at least `MIN_LABELS` labels. A
/// spec the window cannot be cut by is said, not an error: the rest of the
/// window is still scored.
fn sliced(window: &Table, spec: &SliceSpec, metric: &str) -> Result<SliceScores, MonitorError> {
    let keys = match flywheel_data::slices::keys(spec, window) {
        Ok(k) => k,
        Err(e) => return Ok(SliceScores { spec: spec.text.clone(), slices: Vec::new(), problem: Some(e.to_string()) }),
    };
    let mut slices = Vec::new();
    for (slice, rows) in flywheel_data::slices::group(&keys) {
        let mut mask = vec![false; window.rows()];
        for r in rows {
            mask[r] = true;
        }
        let part = window.filter(&mask).map_err(|e| MonitorError::Window(e.to_string()))?;
        if let Some((value, labeled)) = crate::metric(&part, metric)?
            && labeled >= MIN_LABELS
            && value.is_finite()
        {
            slices.push(SliceScore { slice: slice.to_string(), labeled, value });
        }
    }
    Ok(SliceScores { spec: spec.text.clone(), slices, problem: None })
}

/// The columns a window's drift compares: those `monitoring.columns`
/// names, else the inputs (but dates and times).
pub(crate) fn compared(monitoring: &Monitoring, inputs: &[String], training: Option<&DatasetReference>) -> Vec<String> {
    monitoring.columns.clone().unwrap_or_else(|| untimed(inputs, training))
}

/// The inputs but those the training data holds as dates or times: time
/// only moves on, so a timestamp drifts from every past window by
/// construction (Evidently leaves datetime columns out of drift too).
fn untimed(inputs: &[String], training: Option<&DatasetReference>) -> Vec<String> {
    let is_time = |name: &str| training.and_then(|t| t.columns.get(name)).is_some_and(|c| c.ty == "timestamp");
    inputs.iter().filter(|i| !is_time(i)).cloned().collect()
}

pub(crate) fn summary(r: &DriftReport) -> DriftSummary {
    DriftSummary {
        drifted: r.drifted_columns,
        compared: r.compared_columns,
        share: r.drift_share,
        drift: r.dataset_drift,
        columns: r.columns.iter().filter(|(_, c)| c.drift.drift).map(|(n, _)| n.clone()).collect(),
    }
}

pub(crate) fn bound_text(b: &Bound) -> String {
    let op = match b.op {
        flywheel_deploy::Op::Ge => ">=",
        flywheel_deploy::Op::Gt => ">",
        flywheel_deploy::Op::Le => "<=",
        flywheel_deploy::Op::Lt => "<",
    };
    format!("{op} {}", b.value)
}
