//! A canary and production side by side, on the same traffic: the rows
//! each version answered since the canary went out, the model's metric
//! over each one's labeled rows, and whether the canary's predictions are
//! distributed differently from production's (what is left to compare
//! when no labels arrive).

use crate::windows::logged;
use crate::{MIN_LABELS, MonitorError, PREDICTION, metric};
use flywheel_data::batch::{Table, type_name};
use flywheel_registry::Home;
use flywheel_stats::drift::{Sample, column_drift};

/// One version's share of the traffic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Side {
    pub rows: usize,
    /// The metric and the labeled rows it was computed over, when at least
    /// [`MIN_LABELS`] had a label.
    pub metric: Option<(f64, usize)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The metric compared (the deployment's, else rmse or accuracy).
    pub metric: String,
    pub canary: Side,
    pub production: Side,
    /// The drift of the canary's predictions from production's: `(score,
    /// threshold, drifted)`, when both answered.
    pub predictions: Option<(f64, f64, bool)>,
}

/// Compares versions `canary` and `production` of `model` over the rows
/// logged since `since_us`.
pub fn compare(
    home: &Home,
    model: &str,
    since_us: i64,
    canary: i64,
    production: Option<i64>,
    metric_name: Option<&str>,
) -> Result<Comparison, MonitorError> {
    let Some(table) = logged(home, model, None, (Some(since_us), None))? else {
        let metric = metric_name.unwrap_or("rmse").to_string();
        return Ok(Comparison { metric, canary: Side::default(), production: Side::default(), predictions: None });
    };
    let versions = version_column(&table);
    let part = |v: Option<i64>| -> Result<Table, MonitorError> {
        let keep: Vec<bool> = versions.iter().map(|x| v.is_some() && *x == v).collect();
        table.filter(&keep).map_err(|e| MonitorError::Window(e.to_string()))
    };
    let (c, p) = (part(Some(canary))?, part(production)?);
    let name = metric_name.map(str::to_string).unwrap_or_else(|| default_metric(&table).to_string());
    Ok(Comparison {
        canary: side(&c, &name)?,
        production: side(&p, &name)?,
        predictions: predictions_drift(&c, &p)?,
        metric: name,
    })
}

fn version_column(t: &Table) -> Vec<Option<i64>> {
    match t.column_index("version") {
        Some(i) => t.f64_column(i).into_iter().map(|v| v.map(|v| v as i64)).collect(),
        None => vec![None; t.rows()],
    }
}

/// rmse for a regressor, accuracy for a classifier.
fn default_metric(t: &Table) -> &'static str {
    let numeric =
        t.column_index(PREDICTION).is_some_and(|i| matches!(type_name(t.schema.field(i).data_type()), "int" | "float"));
    if numeric { "rmse" } else { "accuracy" }
}

fn side(t: &Table, name: &str) -> Result<Side, MonitorError> {
    if t.rows() == 0 {
        return Ok(Side::default());
    }
    let m = metric(t, name)?.filter(|(v, n)| *n >= MIN_LABELS && v.is_finite());
    Ok(Side { rows: t.rows(), metric: m })
}

fn predictions_drift(c: &Table, p: &Table) -> Result<Option<(f64, f64, bool)>, MonitorError> {
    let (Some(ci), Some(pi)) = (c.column_index(PREDICTION), p.column_index(PREDICTION)) else { return Ok(None) };
    if c.rows() == 0 || p.rows() == 0 {
        return Ok(None);
    }
    let sample = |t: &Table, i: usize| {
        if matches!(type_name(t.schema.field(i).data_type()), "int" | "float") {
            Sample::Numeric(t.f64_column(i).into_iter().flatten().filter(|v| v.is_finite()).collect())
        } else {
            Sample::categories(t.str_column(i).into_iter().flatten())
        }
    };
    let d = column_drift(sample(p, pi), sample(c, ci), None, None).map_err(|e| MonitorError::Window(e.to_string()))?;
    Ok(Some((d.score, d.threshold, d.drift)))
}
