//! The bodies of both protocols the server speaks, built from a model
//! frame: MLflow's `dataframe_split` for `/invocations` and OIP v2 tensors
//! for `/v2/models/{name}/infer`; and their answers read back.

use crate::ClientError;
use hyper::body::Bytes;
use serde_json::{Value as Json, json};

/// A number for JSON: NaN (missing) as `null`, as the server reads it.
fn number(v: f64) -> Json {
    serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)
}

/// The values of rows `rows` of one frame column, as JSON.
pub fn column_values(col: &flywheel_ml::Column, rows: std::ops::Range<usize>) -> Vec<Json> {
    match col {
        flywheel_ml::Column::Num(v) => v[rows].iter().map(|x| number(*x)).collect(),
        flywheel_ml::Column::Text(t) => rows.map(|r| t.get(r).map_or(Json::Null, |s| json!(s))).collect(),
    }
}

/// `POST /invocations` of rows `rows`: `{"dataframe_split": {...}}`.
pub fn invocations_body(frame: &flywheel_ml::Frame, rows: std::ops::Range<usize>) -> Bytes {
    let columns: Vec<Vec<Json>> = frame.columns().map(|(_, c)| column_values(c, rows.clone())).collect();
    let data: Vec<Json> =
        (0..rows.len()).map(|r| Json::Array(columns.iter().map(|c| c[r].clone()).collect())).collect();
    let columns: Vec<&str> = frame.names().iter().map(|n| &**n).collect();
    let body = json!({ "dataframe_split": { "columns": columns, "data": data } });
    Bytes::from(body.to_string())
}

/// `POST /v2/models/{name}/infer` of rows `rows`: one tensor per column.
pub fn infer_body(frame: &flywheel_ml::Frame, rows: std::ops::Range<usize>) -> Bytes {
    let inputs: Vec<Json> = frame
        .columns()
        .map(|(name, c)| {
            let datatype = match c {
                flywheel_ml::Column::Num(_) => "FP64",
                flywheel_ml::Column::Text(_) => "BYTES",
            };
            json!({ "name": name, "datatype": datatype, "shape": [rows.len()], "data": column_values(c, rows.clone()) })
        })
        .collect();
    Bytes::from(json!({ "inputs": inputs }).to_string())
}

/// What an endpoint answered for a batch: numbers (regression) or labels,
/// and for OIP classifiers the probabilities, row-major.
#[derive(Debug, Default)]
pub struct Answer {
    pub values: Vec<Json>,
    pub probabilities: Option<Vec<Json>>,
}

/// Reads `{"predictions": [...]}`.
pub fn read_invocations(body: &[u8]) -> Result<Answer, ClientError> {
    let bad = |why: String| ClientError::Answer { endpoint: "/invocations".into(), why };
    let v: Json = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let values = v["predictions"].as_array().ok_or_else(|| bad("no `predictions` list".into()))?.clone();
    Ok(Answer { values, probabilities: None })
}

/// Reads an OIP answer's `prediction` and `probabilities` outputs.
pub fn read_infer(body: &[u8]) -> Result<Answer, ClientError> {
    let bad = |why: String| ClientError::Answer { endpoint: "/v2 infer".into(), why };
    let v: Json = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let outputs = v["outputs"].as_array().ok_or_else(|| bad("no `outputs`".into()))?;
    let data = |name: &str| outputs.iter().find(|o| o["name"] == name).and_then(|o| o["data"].as_array()).cloned();
    let values = data("prediction").ok_or_else(|| bad("no `prediction` output".into()))?;
    Ok(Answer { values, probabilities: data("probabilities") })
}
