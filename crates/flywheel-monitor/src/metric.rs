//! The model's metric over a window's labeled rows: regression metrics from
//! the numeric prediction and label; for classifiers, accuracy, macro F1
//! and log loss from the predicted class, the label and the logged class
//! probabilities. A label of a class the model does not know is a wrong
//! answer (and a near-zero probability), not a row left out.

use crate::MonitorError;
use flywheel_data::batch::{Table, type_name};
use flywheel_ml::metrics;
use serde::{Deserialize, Serialize};

pub const PREDICTION: &str = "prediction";
pub const LABEL: &str = "label";
/// Classifiers log one `probability(CLASS)` column per class.
pub const PROBABILITY_PREFIX: &str = "probability(";

/// `name`'s value over the rows with a label, and how many there were;
/// `None` when no row has one.
pub fn metric(window: &Table, name: &str) -> Result<Option<(f64, usize)>, MonitorError> {
    let sums = MetricSums::of(window)?;
    let value = sums.value(name)?;
    Ok((sums.labeled() > 0).then_some((value, sums.labeled())))
}

/// What a window's metric is made of, over its labeled rows: a regressor's
/// summed errors, or a classifier's confusion counts and summed log loss.
/// They add up: windows merged score what their rows together score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricSums {
    Regression {
        sums: metrics::RegressionSums,
    },
    Classification {
        /// The model's classes (its probability columns' order), then
        /// labels it does not know.
        classes: Vec<String>,
        /// `confusion[true][predicted]`, indexes into `classes`.
        confusion: Vec<Vec<u64>>,
        log_loss: f64,
    },
}

impl MetricSums {
    pub fn of(window: &Table) -> Result<MetricSums, MonitorError> {
        let column = |c: &str| {
            window.column_index(c).ok_or_else(|| MonitorError::Window(format!("the logged rows have no `{c}` column")))
        };
        let (p, l) = (column(PREDICTION)?, column(LABEL)?);
        let numeric = matches!(type_name(window.schema.field(p).data_type()), "int" | "float");
        Ok(if numeric { regression(window, p, l) } else { classification(window, p, l) })
    }

    /// Whether every sum is a number (JSON has no infinity: a window with
    /// an infinite error keeps no sums rather than unreadable ones).
    pub fn is_finite(&self) -> bool {
        match self {
            MetricSums::Regression { sums } => {
                [sums.se, sums.ae, sums.ape, sums.mean, sums.m2].iter().all(|x| x.is_finite())
            }
            MetricSums::Classification { log_loss, .. } => log_loss.is_finite(),
        }
    }

    /// Rows with a label.
    pub fn labeled(&self) -> usize {
        let n = match self {
            MetricSums::Regression { sums } => sums.n,
            MetricSums::Classification { confusion, .. } => confusion.iter().flatten().sum(),
        };
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// `name`, as scikit-learn defines it (NaN without labeled rows).
    pub fn value(&self, name: &str) -> Result<f64, MonitorError> {
        match self {
            MetricSums::Regression { sums } => {
                let m = sums.finish();
                Ok(match name {
                    "rmse" => m.rmse,
                    "mae" => m.mae,
                    "mape" => m.mape,
                    "r2" => m.r2,
                    other => return Err(not_for(other, "a regressor", "rmse, mae, mape, r2")),
                })
            }
            MetricSums::Classification { confusion, log_loss, .. } => {
                let m = metrics::multiclass_from(confusion.clone(), *log_loss);
                Ok(match name {
                    "accuracy" => m.accuracy,
                    "f1_macro" => m.f1_macro,
                    "log_loss" => m.log_loss,
                    other => return Err(not_for(other, "a classifier", "accuracy, f1_macro, log_loss")),
                })
            }
        }
    }

    /// Adds `other`'s rows. A regressor's and a classifier's do not add up.
    pub fn merge(&mut self, other: &MetricSums) -> Result<(), MonitorError> {
        match (self, other) {
            (MetricSums::Regression { sums }, MetricSums::Regression { sums: more }) => sums.merge(more),
            (
                MetricSums::Classification { classes, confusion, log_loss },
                MetricSums::Classification { classes: more_classes, confusion: more, log_loss: more_loss },
            ) => {
                let ids: Vec<usize> = more_classes.iter().map(|c| class_id(classes, c)).collect();
                let k = classes.len();
                confusion.iter_mut().for_each(|row| row.resize(k, 0));
                confusion.resize(k, vec![0; k]);
                for (t, row) in more.iter().enumerate() {
                    for (p, n) in row.iter().enumerate() {
                        confusion[ids[t]][ids[p]] += n;
                    }
                }
                *log_loss += more_loss;
            }
            _ => return Err(MonitorError::Window("a regressor's and a classifier's windows do not merge".into())),
        }
        Ok(())
    }
}

/// `c`'s place among `classes`, added at the end when new.
fn class_id(classes: &mut Vec<String>, c: &str) -> usize {
    match classes.iter().position(|k| k == c) {
        Some(i) => i,
        None => {
            classes.push(c.to_string());
            classes.len() - 1
        }
    }
}

fn regression(window: &Table, p: usize, l: usize) -> MetricSums {
    let (pred, label) = (window.f64_column(p), window.f64_column(l));
    let (y, yhat): (Vec<f64>, Vec<f64>) = label.iter().zip(&pred).filter_map(|(y, p)| Some(((*y)?, (*p)?))).unzip();
    let sums = if y.is_empty() { metrics::RegressionSums::default() } else { metrics::RegressionSums::of(&y, &yhat) };
    MetricSums::Regression { sums }
}

fn not_for(metric: &str, what: &str, takes: &str) -> MonitorError {
    MonitorError::Window(format!("`{metric}` is not a metric of {what}; its metrics: {takes}"))
}

fn classification(window: &Table, p: usize, l: usize) -> MetricSums {
    // The model's classes, in the order of its probability columns.
    let names = window.column_names();
    let probability: Vec<(String, usize)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((n.strip_prefix(PROBABILITY_PREFIX)?.strip_suffix(')')?.to_string(), i)))
        .collect();
    let mut classes: Vec<String> = probability.iter().map(|(c, _)| c.clone()).collect();
    let (pred, label) = (window.str_column(p), window.str_column(l));
    let rows: Vec<usize> = (0..label.len()).filter(|&i| label[i].is_some() && pred[i].is_some()).collect();
    let y: Vec<usize> = rows.iter().map(|&i| class_id(&mut classes, label[i].as_deref().unwrap_or_default())).collect();
    let yhat: Vec<usize> =
        rows.iter().map(|&i| class_id(&mut classes, pred[i].as_deref().unwrap_or_default())).collect();
    let k = classes.len();
    let columns: Vec<Vec<f64>> = probability.iter().map(|(_, i)| window.f64_values(*i)).collect();
    let mut confusion = vec![vec![0u64; k]; k];
    let (mut log_loss, mut row) = (0.0, vec![0.0; k]);
    for (r, &i) in rows.iter().enumerate() {
        row.iter_mut().for_each(|q| *q = 0.0);
        for (c, col) in columns.iter().enumerate() {
            row[c] = if col[i].is_nan() { 0.0 } else { col[i] };
        }
        if columns.is_empty() {
            row[yhat[r]] = 1.0;
        }
        confusion[y[r]][yhat[r]] += 1;
        log_loss += metrics::row_log_loss(&row, y[r]);
    }
    MetricSums::Classification { classes, confusion, log_loss }
}
