//! What a replay sends, prepared before the first request: the served
//! model and its inputs (asked of the server), the data read with the
//! inputs' types, its rows in time order, and the label of each row.

use crate::{ClientError, Conn, Target, error_message};
use flywheel_data::batch::{ReadOptions, Table, seconds, type_name};
use flywheel_ml::Frame;
use serde_json::Value as Json;
use std::path::Path;

/// The model a replay's requests are for, as the server describes it.
#[derive(Debug, Clone)]
pub struct Served {
    pub name: String,
    /// `(input, OIP datatype)`, in the model's order.
    pub inputs: Vec<(String, String)>,
    /// Whether it predicts numbers (its `prediction` output is FP64): what
    /// its feedback labels must be.
    pub numeric: bool,
}

/// The data, ready to send.
#[derive(Debug)]
pub struct Plan {
    /// The model's inputs, rows in the order they are sent.
    pub frame: Frame,
    /// Per row (in the same order), its label; `None` when missing.
    pub labels: Option<Vec<Option<Json>>>,
    /// Labels left out: not numbers, for a model that predicts numbers.
    pub unusable_labels: usize,
    /// The first and last time of the rows sent (seconds since 1970, or
    /// the time column's own numbers), when ordered by time.
    pub span: Option<(f64, f64)>,
    /// Rows without a time, sent after the others.
    pub untimed: usize,
}

/// Which model the server serves for the replay: `wanted`, or the only
/// one it serves; its inputs from its OIP metadata.
pub async fn served(conn: &mut Conn, target: &Target, wanted: Option<&str>) -> Result<Served, ClientError> {
    let name = match wanted {
        Some(name) => name.to_string(),
        None => only_model(conn, target).await?,
    };
    // The name goes into paths as it is.
    flywheel_core::check_name("model", &name).map_err(|why| ClientError::Input(format!("--model: {why}")))?;
    let what = format!("the metadata of model `{name}`");
    let (status, body) = conn.get(&target.path(&format!("/v2/models/{name}"))).await?;
    if !status.is_success() {
        return Err(ClientError::Refused { what, status: status.as_u16(), message: error_message(&body) });
    }
    let bad = |why: &str| ClientError::Answer { endpoint: format!("/v2/models/{name}"), why: why.into() };
    let meta: Json = serde_json::from_slice(&body).map_err(|_| bad("not JSON"))?;
    let inputs = meta["inputs"].as_array().ok_or_else(|| bad("no `inputs`"))?;
    let inputs = inputs
        .iter()
        .map(|i| match (i["name"].as_str(), i["datatype"].as_str()) {
            (Some(n), Some(d)) => Ok((n.to_string(), d.to_string())),
            _ => Err(bad("an input without `name` or `datatype`")),
        })
        .collect::<Result<_, _>>()?;
    let outputs = meta["outputs"].as_array().ok_or_else(|| bad("no `outputs`"))?;
    let prediction = outputs.iter().find(|o| o["name"] == "prediction").ok_or_else(|| bad("no `prediction` output"))?;
    let numeric = prediction["datatype"].as_str() != Some("BYTES");
    Ok(Served { name, inputs, numeric })
}

/// The one model the server serves (its model repository index).
async fn only_model(conn: &mut Conn, target: &Target) -> Result<String, ClientError> {
    let what = "the models the server serves".to_string();
    let (status, body) = conn.post(&target.path("/v2/repository/index"), "{}".into()).await?;
    if !status.is_success() {
        return Err(ClientError::Refused { what, status: status.as_u16(), message: error_message(&body) });
    }
    let index: Json = serde_json::from_slice(&body)
        .map_err(|_| ClientError::Answer { endpoint: "/v2/repository/index".into(), why: "not JSON".into() })?;
    let mut names: Vec<String> =
        index.as_array().into_iter().flatten().filter_map(|m| m["name"].as_str().map(str::to_string)).collect();
    names.dedup();
    match names.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ClientError::Input(format!("{} serves no model", target.url))),
        many => Err(ClientError::Input(format!(
            "{} serves several models ({}): name one with --model",
            target.url,
            many.join(", ")
        ))),
    }
}

/// What to read from the data beside the model's inputs.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    pub labels: Option<String>,
    pub time: Option<String>,
    /// Send the first `limit` rows (in time order) only.
    pub limit: Option<usize>,
}

/// Reads `path` with the inputs' types and orders its rows.
pub fn plan(path: &Path, served: &Served, columns: &Columns) -> Result<Plan, ClientError> {
    let mut opts = ReadOptions::default();
    for (name, datatype) in &served.inputs {
        opts.hints.insert(name.clone(), if datatype == "BYTES" { "string" } else { "float" }.to_string());
    }
    let table = flywheel_data::table::read_table(path, &opts)?;
    check_columns(path, &table, served, columns)?;
    let keys = columns.time.as_deref().map(|name| time_keys(path, &table, name)).transpose()?;
    let mut order: Vec<usize> = (0..table.rows()).collect();
    if let Some(keys) = &keys {
        by_time(&mut order, keys);
    }
    order.truncate(columns.limit.unwrap_or(usize::MAX));
    let timed: Vec<f64> = keys.iter().flat_map(|k| order.iter().filter_map(|&i| k[i])).collect();
    let span = timed.first().zip(timed.last()).map(|(a, b)| (*a, *b));
    let untimed = if keys.is_some() { order.len() - timed.len() } else { 0 };
    let names: Vec<String> = served.inputs.iter().map(|(n, _)| n.clone()).collect();
    let frame = flywheel_data::model_file::to_frame(&table, &names)?.take(&order);
    let mut unusable_labels = 0;
    let labels = columns.labels.as_deref().map(|name| {
        let (all, unusable) = label_values(&table, name, served.numeric);
        unusable_labels = order.iter().filter(|&&i| unusable[i]).count();
        order.iter().map(|&i| all[i].clone()).collect()
    });
    Ok(Plan { frame, labels, unusable_labels, span, untimed })
}

/// Every input, the label and the time column must be in the data.
fn check_columns(path: &Path, table: &Table, served: &Served, columns: &Columns) -> Result<(), ClientError> {
    let have = table.column_names();
    let named = |c: &str| -> Option<String> {
        if have.iter().any(|h| h == c) {
            return None;
        }
        let hint = flywheel_core::closest(c, have.iter().map(String::as_str))
            .map(|h| format!(" (did you mean `{h}`?)"))
            .unwrap_or_default();
        Some(format!("`{c}`{hint}"))
    };
    let missing: Vec<String> = served.inputs.iter().filter_map(|(n, _)| named(n)).collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("model `{}` reads {} which the data does not have", served.name, missing.join(", ")));
    }
    for (flag, column) in [("--labels", &columns.labels), ("--time-column", &columns.time)] {
        if let Some(missing) = column.as_deref().and_then(named) {
            problems.push(format!("{flag}: the data has no column {missing}"));
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(ClientError::Input(format!("{}: {}", path.display(), problems.join("; ")))),
    }
}

/// Orders row indices by time, stably (rows of one time keep the file's
/// order), rows without a time last.
fn by_time(order: &mut [usize], keys: &[Option<f64>]) {
    order.sort_by(|&a, &b| match (keys[a], keys[b]) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

/// The time column as numbers: dates and timestamps as seconds since
/// 1970, numbers as they are, text parsed as ISO 8601 (or as a number:
/// a column the model reads as text may be read as text here too).
fn time_keys(path: &Path, table: &Table, name: &str) -> Result<Vec<Option<f64>>, ClientError> {
    let i = table.column_index(name).ok_or_else(|| ClientError::Input(format!("no column `{name}`")))?;
    match type_name(table.schema.field(i).data_type()) {
        "timestamp" => Ok(table
            .batches
            .iter()
            .flat_map(|b| {
                let s = seconds(b.column(i));
                if s.len() == b.num_rows() { s } else { vec![None; b.num_rows()] }
            })
            .collect()),
        "int" | "float" | "bool" => Ok(table.f64_column(i)),
        _ => table
            .str_column(i)
            .into_iter()
            .enumerate()
            .map(|(row, v)| match v {
                None => Ok(None),
                Some(s) => match (flywheel_stats::time::parse(s.trim()), s.trim().parse::<f64>()) {
                    (Some(t), _) => Ok(Some(t.micros as f64 / 1e6)),
                    (None, Ok(n)) if n.is_finite() => Ok(Some(n)),
                    (None, _) => Err(ClientError::Input(format!(
                        "{}: --time-column `{name}`, data row {}: `{s}` is not a date or time \
                         (expected ISO 8601, like 2012-01-01 13:00:00, or a number)",
                        path.display(),
                        row + 1
                    ))),
                },
            })
            .collect(),
    }
}

/// A column's values as feedback labels, typed by what the model predicts
/// (not by how the file's column was read): for a regressor, numbers (a
/// value that is no number is left out and flagged), for a classifier,
/// the text as written (a boolean `true`, a class `1`, not `1.0`).
fn label_values(table: &Table, name: &str, numeric: bool) -> (Vec<Option<Json>>, Vec<bool>) {
    let Some(i) = table.column_index(name) else { return (Vec::new(), Vec::new()) };
    let is_number = matches!(type_name(table.schema.field(i).data_type()), "int" | "float");
    let text = if numeric && is_number { Vec::new() } else { table.str_column(i) };
    if !numeric {
        let labels: Vec<Option<Json>> = text.into_iter().map(|v| v.map(Json::String)).collect();
        let n = labels.len();
        return (labels, vec![false; n]);
    }
    if is_number {
        let labels: Vec<Option<Json>> = table.f64_column(i).into_iter().map(|v| v.and_then(number)).collect();
        let n = labels.len();
        return (labels, vec![false; n]);
    }
    let parsed: Vec<(Option<Json>, bool)> = text
        .into_iter()
        .map(|v| match v.map(|s| s.trim().parse::<f64>()) {
            None => (None, false),
            Some(Ok(x)) if x.is_finite() => (number(x), false),
            Some(_) => (None, true),
        })
        .collect();
    parsed.into_iter().unzip()
}

fn number(v: f64) -> Option<Json> {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        return Some(Json::from(v as i64));
    }
    serde_json::Number::from_f64(v).map(Json::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_take_the_type_the_model_predicts_not_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(&path, "n,b,dirty\n1,true,3\n2.5,false,abc\n,true,\n").unwrap();
        let t = flywheel_data::table::read_table(&path, &ReadOptions::default()).unwrap();
        // A classifier of booleans gets the text written, not 1 and 0.
        let (labels, bad) = label_values(&t, "b", false);
        assert_eq!(
            (labels, bad),
            (vec![Some(json!("true")), Some(json!("false")), Some(json!("true"))], vec![false; 3])
        );
        // A regressor gets numbers; whole ones as integers.
        let (labels, bad) = label_values(&t, "n", true);
        assert_eq!((labels, bad), (vec![Some(json!(1)), Some(json!(2.5)), None], vec![false; 3]));
        // One value that is no number is left out alone, and flagged.
        let (labels, bad) = label_values(&t, "dirty", true);
        assert_eq!((labels, bad), (vec![Some(json!(3)), None, None], vec![false, true, false]));
    }
}
