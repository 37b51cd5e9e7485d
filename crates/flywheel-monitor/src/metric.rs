//! The model's metric over a window's labeled rows: regression metrics from
//! the numeric prediction and label; for classifiers, accuracy, macro F1
//! and log loss from the predicted class, the label and the logged class
//! probabilities. A label of a class the model does not know is a wrong
//! answer (and a near-zero probability), not a row left out.

use crate::MonitorError;
use flywheel_data::batch::{Table, type_name};
use flywheel_ml::metrics;

pub const PREDICTION: &str = "prediction";
pub const LABEL: &str = "label";
/// Classifiers log one `probability(CLASS)` column per class.
pub const PROBABILITY_PREFIX: &str = "probability(";

/// `name`'s value over the rows with a label, and how many there were;
/// `None` when no row has one.
pub fn metric(window: &Table, name: &str) -> Result<Option<(f64, usize)>, MonitorError> {
    let column = |c: &str| {
        window.column_index(c).ok_or_else(|| MonitorError::Window(format!("the logged rows have no `{c}` column")))
    };
    let (p, l) = (column(PREDICTION)?, column(LABEL)?);
    let numeric = matches!(type_name(window.schema.field(p).data_type()), "int" | "float");
    if numeric { regression(window, p, l, name) } else { classification(window, p, l, name) }
}

fn regression(window: &Table, p: usize, l: usize, name: &str) -> Result<Option<(f64, usize)>, MonitorError> {
    let (pred, label) = (window.f64_column(p), window.f64_column(l));
    let (y, yhat): (Vec<f64>, Vec<f64>) = label.iter().zip(&pred).filter_map(|(y, p)| Some(((*y)?, (*p)?))).unzip();
    if y.is_empty() {
        return Ok(None);
    }
    let m = metrics::regression(&y, &yhat);
    let value = match name {
        "rmse" => m.rmse,
        "mae" => m.mae,
        "mape" => m.mape,
        "r2" => m.r2,
        other => return Err(not_for(other, "a regressor", "rmse, mae, mape, r2")),
    };
    Ok(Some((value, y.len())))
}

fn not_for(metric: &str, what: &str, takes: &str) -> MonitorError {
    MonitorError::Window(format!("`{metric}` is not a metric of {what}; its metrics: {takes}"))
}

fn classification(window: &Table, p: usize, l: usize, name: &str) -> Result<Option<(f64, usize)>, MonitorError> {
    if !["accuracy", "f1_macro", "log_loss"].contains(&name) {
        return Err(not_for(name, "a classifier", "accuracy, f1_macro, log_loss"));
    }
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
    if rows.is_empty() {
        return Ok(None);
    }
    let mut id = |c: &str| match classes.iter().position(|k| k == c) {
        Some(i) => i,
        None => {
            classes.push(c.to_string());
            classes.len() - 1
        }
    };
    let y: Vec<usize> = rows.iter().map(|&i| id(label[i].as_deref().unwrap_or_default())).collect();
    let yhat: Vec<usize> = rows.iter().map(|&i| id(pred[i].as_deref().unwrap_or_default())).collect();
    let k = classes.len();
    let columns: Vec<Vec<f64>> = probability.iter().map(|(_, i)| window.f64_values(*i)).collect();
    let mut proba = vec![0.0; rows.len() * k];
    for (r, &i) in rows.iter().enumerate() {
        for (c, col) in columns.iter().enumerate() {
            proba[r * k + c] = if col[i].is_nan() { 0.0 } else { col[i] };
        }
        if columns.is_empty() {
            proba[r * k + yhat[r]] = 1.0;
        }
    }
    let m = metrics::multiclass(&y, &yhat, &proba, k);
    let value = match name {
        "accuracy" => m.accuracy,
        "f1_macro" => m.f1_macro,
        _ => m.log_loss,
    };
    Ok(Some((value, rows.len())))
}
