//! MLflow's scoring format (`POST /invocations`, what `mlflow models serve`
//! takes): JSON with one of `dataframe_split`, `dataframe_records`,
//! `instances` or `inputs`, or a CSV body with a header row; the answer is
//! `{"predictions": [...]}` (numbers for regression, class labels for
//! classification).

use crate::bad;
use crate::batch::Batch;
use crate::columns::{Builder, check_names, describe, frame, read_json};
use crate::served::Served;
use crate::write;
use crate::{Result, ServeError};
use flywheel_ml::{Frame, Prediction};
use serde_json::{Map, Value};

const FORMATS: [&str; 4] = ["dataframe_split", "dataframe_records", "instances", "inputs"];

/// The frame a request body holds, by its content type.
pub fn parse(served: &Served, content_type: Option<&str>, body: &[u8]) -> Result<Batch> {
    let media = content_type.map(|c| c.split(';').next().unwrap_or("").trim());
    let is = |m: &str| media.is_none_or(|given| given.eq_ignore_ascii_case(m));
    if is("application/json") {
        match crate::fast::dataframe_split(served, body) {
            Some(batch) => Ok(batch),
            None => parse_general(served, body).map(Batch::Frame),
        }
    } else if is("text/csv") {
        parse_csv(served, body).map(Batch::Frame)
    } else {
        Err(ServeError::Unsupported(format!(
            "content type `{}` is not taken by /invocations: send application/json or text/csv",
            media.unwrap_or_default().to_ascii_lowercase()
        )))
    }
}

/// A JSON body read the general way, as a `serde_json::Value` first: what
/// the fast path must agree with.
pub(crate) fn parse_general(served: &Served, body: &[u8]) -> Result<Frame> {
    parse_json(served, &read_json(body)?)
}

fn parse_json(served: &Served, v: &Value) -> Result<Frame> {
    let Value::Object(obj) = v else {
        return Err(bad(format!("the body must be a JSON object with one of {}", FORMATS.join(", "))));
    };
    if let Some(k) = obj.keys().find(|k| !FORMATS.contains(&k.as_str()) && *k != "params") {
        return Err(bad(format!("unknown field `{k}`: the body takes one of {} (and `params`)", FORMATS.join(", "))));
    }
    let given: Vec<&str> = FORMATS.iter().copied().filter(|f| obj.contains_key(*f)).collect();
    let [format] = given[..] else {
        return Err(bad(format!("the body must have exactly one of {}, it has {}", FORMATS.join(", "), given.len())));
    };
    let v = &obj[format];
    match (format, v) {
        ("dataframe_split", _) => split(served, v),
        ("dataframe_records", Value::Array(rows)) => records(served, rows, format),
        (_, Value::Array(rows)) if format != "dataframe_records" => records(served, rows, format),
        ("instances" | "inputs", Value::Object(cols)) => columnar(served, cols, format),
        _ => Err(bad(format!(
            "`{format}` must be a list of rows{}",
            if format == "dataframe_records" { "" } else { " or an object of columns" }
        ))),
    }
}

/// `{"columns": [...], "data": [[...], ...]}`.
fn split(served: &Served, v: &Value) -> Result<Frame> {
    let (Some(Value::Array(columns)), Some(Value::Array(data))) = (v.get("columns"), v.get("data")) else {
        return Err(bad("`dataframe_split` must have `columns` (a list of names) and `data` (a list of rows)".into()));
    };
    let names: Vec<&str> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            c.as_str().ok_or_else(|| bad(format!("dataframe_split.columns[{i}]: expected a name, got {}", describe(c))))
        })
        .collect::<Result<_>>()?;
    check_names(served, names.iter().copied())?;
    let mut builders = builders(served, &names, data.len());
    for (r, row) in data.iter().enumerate() {
        let Value::Array(values) = row else {
            return Err(bad(format!("dataframe_split.data[{r}]: expected a list of values, got {}", describe(row))));
        };
        if values.len() != names.len() {
            return Err(bad(format!("dataframe_split.data[{r}]: {} values for {} columns", values.len(), names.len())));
        }
        for ((name, b), v) in builders.iter_mut().zip(values) {
            b.push_json(v, name, &|| format!(" (dataframe_split.data[{r}])"))?;
        }
    }
    frame(served, builders)
}

/// A list of rows: objects by column name, or bare values for a model
/// with one input.
fn records(served: &Served, rows: &[Value], format: &str) -> Result<Frame> {
    let inputs = served.input_names();
    if let [only] = inputs[..]
        && format != "dataframe_records"
        && rows.iter().all(|r| !r.is_object())
    {
        let mut b = Builder::new(served.model.signature.inputs[0].kind, rows.len());
        for (r, v) in rows.iter().enumerate() {
            b.push_json(v, only, &|| format!(" ({format}[{r}])"))?;
        }
        return frame(served, vec![(only.to_string(), b)]);
    }
    let mut seen: Vec<&str> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let Value::Object(o) = row else {
            return Err(bad(format!("{format}[{r}]: expected an object of column values, got {}", describe(row))));
        };
        seen.extend(o.keys().map(String::as_str).filter(|k| !seen.contains(k)).collect::<Vec<_>>());
    }
    check_names(served, seen)?;
    let mut builders = builders(served, &inputs, rows.len());
    for (r, row) in rows.iter().enumerate() {
        for (name, b) in &mut builders {
            // A key absent from one row is a missing value, as pandas reads it.
            b.push_json(row.get(name.as_str()).unwrap_or(&Value::Null), name, &|| format!(" ({format}[{r}])"))?;
        }
    }
    frame(served, builders)
}

/// `{"column": [values...], ...}`.
fn columnar(served: &Served, cols: &Map<String, Value>, format: &str) -> Result<Frame> {
    check_names(served, cols.keys().map(String::as_str))?;
    let mut rows = None;
    let mut out = Vec::new();
    for (name, v) in cols {
        let Value::Array(values) = v else {
            return Err(bad(format!("{format}.{name}: expected a list of values, got {}", describe(v))));
        };
        if let Some(n) = rows.filter(|n| *n != values.len()) {
            return Err(bad(format!("{format}.{name}: {} values where the other inputs have {n}", values.len())));
        }
        rows = Some(values.len());
        let mut b = Builder::new(served.input_kind(name).unwrap_or(flywheel_ml::ColumnKind::Text), values.len());
        for (r, x) in values.iter().enumerate() {
            b.push_json(x, name, &|| format!(" ({format}.{name}[{r}])"))?;
        }
        out.push((name.clone(), b));
    }
    frame(served, out)
}

/// A CSV body: a header row naming the inputs, then one row per line.
fn parse_csv(served: &Served, body: &[u8]) -> Result<Frame> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(body);
    let header = reader.headers().map_err(|e| bad(format!("CSV header: {e}")))?.clone();
    let names: Vec<&str> = header.iter().collect();
    check_names(served, names.iter().copied())?;
    let mut builders = builders(served, &names, 0);
    for record in reader.records() {
        let record = record.map_err(|e| bad(format!("CSV {}", csv_error(&e))))?;
        let line = record.position().map_or(0, |p| p.line());
        for ((name, b), field) in builders.iter_mut().zip(record.iter()) {
            b.push_field(field, name, line)?;
        }
    }
    frame(served, builders)
}

fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
            format!("line {}: {len} fields where the header has {expected_len}", pos.as_ref().map_or(0, |p| p.line()))
        }
        csv::ErrorKind::Utf8 { pos, .. } => {
            format!("line {}: not UTF-8 text", pos.as_ref().map_or(0, |p| p.line()))
        }
        _ => e.to_string(),
    }
}

fn builders(served: &Served, names: &[&str], rows: usize) -> Vec<(String, Builder)> {
    names
        .iter()
        .map(|n| {
            let kind = served.input_kind(n).unwrap_or(flywheel_ml::ColumnKind::Text);
            (n.to_string(), Builder::new(kind, rows))
        })
        .collect()
}

/// `{"predictions": [...]}`: values, or class labels, written from the
/// prediction as it is (`write.rs`).
pub fn answer(served: &Served, pred: &Prediction) -> Vec<u8> {
    let classes = &served.model.classes;
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(br#"{"predictions":"#);
    match pred {
        Prediction::Values(v) => {
            body.reserve(24 * v.len());
            write::list(&mut body, v, |body, &x| write::f64(body, x));
        }
        Prediction::Classes { labels, .. } => {
            body.reserve(labels.first().map_or(0, |&l| classes[l].len() + 3) * labels.len());
            write::list(&mut body, labels, |body, &l| write::str(body, &classes[l]));
        }
    }
    body.push(b'}');
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::served::{test_classifier, test_served};
    use flywheel_ml::transform::Matrix;

    #[test]
    fn predictions_are_written_as_serde_json_writes_them() {
        let values = vec![0.1, -2.5e-300, 1e21, 3.0];
        let answer = String::from_utf8(super::answer(&test_served(1, "m@1"), &Prediction::Values(values.clone())));
        assert_eq!(answer.unwrap(), serde_json::json!({ "predictions": values }).to_string());
        let served = test_classifier(["y\"es\u{1}", "été"]);
        let probabilities = Matrix { rows: 3, cols: 2, data: vec![0.5; 6] };
        let pred = Prediction::Classes { probabilities, labels: vec![1, 0, 1] };
        let expected = serde_json::json!({ "predictions": ["été", "y\"es\u{1}", "été"] }).to_string();
        assert_eq!(String::from_utf8(super::answer(&served, &pred)).unwrap(), expected);
    }
}
