//! The Open Inference Protocol v2 (KServe's `predict_v2`, Triton's HTTP
//! API): metadata documents, and inference requests and answers in JSON or
//! with the binary tensor extension (`binary.rs`).
//!
//! A model's inputs are one tensor per signature column, shape `[rows]`
//! (or `[rows, 1]`): BYTES for text columns; FP64, FP32, INT64, INT32 or
//! BOOL for number columns. Its outputs are `prediction` (FP64 for
//! regression, the BYTES class label for classification) and, for
//! classifiers, `probabilities` (FP64, `[rows, classes]`, columns in the
//! order of the model's classes, which the output's `classes` parameter
//! lists).

use crate::Result;
use crate::bad;
use crate::batch::Batch;
use crate::binary::{self, Dtype};
use crate::columns::{Builder, check_names, describe, frame, read_json};
use crate::served::Served;
use crate::write;
use flywheel_ml::{ColumnKind, Prediction};
use serde_json::{Map, Value, json};

pub const PREDICTION: &str = "prediction";
pub const PROBABILITIES: &str = "probabilities";

/// `GET /v2`.
pub fn server_metadata() -> Value {
    json!({ "name": "flywheel", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data", "model_repository"] })
}

/// `GET /v2/models/{name}[/versions/{v}]`: `served`'s inputs and outputs,
/// and every version of the model loaded (`versions`, in the split's order).
pub fn model_metadata(served: &Served, versions: &[i64]) -> Value {
    let inputs: Vec<Value> = served
        .model
        .signature
        .inputs
        .iter()
        .map(|i| json!({ "name": i.name, "datatype": kind_dtype(i.kind).as_str(), "shape": [-1] }))
        .collect();
    let mut outputs = vec![json!({
        "name": PREDICTION,
        "datatype": if served.is_classifier() { "BYTES" } else { "FP64" },
        "shape": [-1],
    })];
    if served.is_classifier() {
        outputs.push(json!({ "name": PROBABILITIES, "datatype": "FP64", "shape": [-1, served.model.classes.len()] }));
    }
    json!({
        "name": served.name,
        "versions": versions.iter().map(i64::to_string).collect::<Vec<_>>(),
        "platform": "flywheel",
        "inputs": inputs,
        "outputs": outputs,
    })
}

fn kind_dtype(kind: ColumnKind) -> Dtype {
    match kind {
        ColumnKind::Number => Dtype::Fp64,
        ColumnKind::Text => Dtype::Bytes,
    }
}

/// An inference request, read.
pub struct Infer {
    pub id: Option<String>,
    pub batch: Batch,
    /// The outputs to answer, each with whether in binary.
    pub outputs: Vec<(&'static str, bool)>,
}

/// Reads an inference request: its JSON header and the binary data after it.
pub fn parse_infer(served: &Served, header: &[u8], data: &[u8]) -> Result<Infer> {
    if data.is_empty()
        && let Some((id, batch)) = crate::fast::infer(served, header)
    {
        return Ok(Infer { id, batch, outputs: requested_outputs(served, None, false)? });
    }
    parse_general(served, header, data)
}

/// [`parse_infer`] the general way, the JSON read as a `serde_json::Value`
/// first: what the fast path must agree with.
pub(crate) fn parse_general(served: &Served, header: &[u8], mut data: &[u8]) -> Result<Infer> {
    let v = read_json(header)?;
    let Value::Object(obj) = v else {
        return Err(bad("the request must be a JSON object with `inputs`".into()));
    };
    if let Some(k) = obj.keys().find(|k| !["id", "parameters", "inputs", "outputs"].contains(&k.as_str())) {
        return Err(bad(format!("unknown field `{k}`: a request has id, parameters, inputs and outputs")));
    }
    let id = match obj.get("id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(bad(format!("`id` must be a string, got {}", describe(other)))),
    };
    let binary_all = flag(params(obj.get("parameters"), "parameters")?, "binary_data_output", "parameters")?;
    let Some(Value::Array(inputs)) = obj.get("inputs") else {
        return Err(bad("`inputs` must be a list of tensors".into()));
    };
    let names: Vec<&str> = inputs.iter().filter_map(|t| t.get("name").and_then(Value::as_str)).collect();
    if names.len() == inputs.len() {
        check_names(served, names)?;
    }
    let mut columns = Vec::new();
    let mut rows = None;
    for (i, t) in inputs.iter().enumerate() {
        let (name, b) = input(served, t, i, &mut data)?;
        if let Some(n) = rows.filter(|n| *n != b.len()) {
            return Err(bad(format!("input `{name}`: {} rows where the inputs before it have {n}", b.len())));
        }
        rows = Some(b.len());
        columns.push((name, b));
    }
    if !data.is_empty() {
        return Err(bad(format!("{} bytes of binary data after the last tensor", data.len())));
    }
    let outputs = requested_outputs(served, obj.get("outputs"), binary_all)?;
    Ok(Infer { id, batch: Batch::Frame(frame(served, columns)?), outputs })
}

/// One input tensor as a filled column; binary data is taken off `data`.
fn input(served: &Served, t: &Value, i: usize, data: &mut &[u8]) -> Result<(String, Builder)> {
    let Value::Object(t) = t else {
        return Err(bad(format!("inputs[{i}]: expected a tensor object, got {}", describe(t))));
    };
    let name = t.get("name").and_then(Value::as_str).ok_or_else(|| bad(format!("inputs[{i}]: `name` is missing")))?;
    let kind = served.input_kind(name).ok_or_else(|| bad(format!("input `{name}` is not one the model reads")))?;
    let dtype = dtype(t.get("datatype"), name, kind)?;
    let rows = shape(t.get("shape"), name)?;
    let p = params(t.get("parameters"), &format!("input `{name}` parameters"))?;
    let mut b = Builder::new(kind, rows);
    match p.and_then(|p| p.get("binary_data_size")) {
        Some(size) => {
            if t.contains_key("data") {
                return Err(bad(format!("input `{name}`: both `data` and binary_data_size")));
            }
            let size =
                size.as_u64().ok_or_else(|| bad(format!("input `{name}`: binary_data_size must be a byte count")))?
                    as usize;
            if size > data.len() {
                return Err(bad(format!(
                    "input `{name}`: binary_data_size {size}, {} bytes of binary data are left",
                    data.len()
                )));
            }
            let (raw, rest) = data.split_at(size);
            *data = rest;
            b.extend(binary::decode(dtype, raw, rows, name)?);
        }
        None => json_data(&mut b, t.get("data"), dtype, rows, name)?,
    }
    Ok((name.to_string(), b))
}

/// The datatype of a tensor, checked against the column's kind.
fn dtype(v: Option<&Value>, name: &str, kind: ColumnKind) -> Result<Dtype> {
    let s = v.and_then(Value::as_str).ok_or_else(|| bad(format!("input `{name}`: `datatype` is missing")))?;
    let d = Dtype::parse(s);
    match (kind, d) {
        (ColumnKind::Text, Some(Dtype::Bytes)) => Ok(Dtype::Bytes),
        (ColumnKind::Number, Some(d)) if d != Dtype::Bytes => Ok(d),
        (ColumnKind::Text, _) => Err(bad(format!("input `{name}`: datatype {s} for a text column; send BYTES"))),
        (ColumnKind::Number, _) => {
            Err(bad(format!("input `{name}`: datatype {s} for a number column; send FP64, FP32, INT64, INT32 or BOOL")))
        }
    }
}

/// The row count of a `[rows]` or `[rows, 1]` shape.
fn shape(v: Option<&Value>, name: &str) -> Result<usize> {
    let dims: Option<Vec<u64>> = v.and_then(Value::as_array).and_then(|a| a.iter().map(Value::as_u64).collect());
    match dims.as_deref() {
        // Every row takes at least a byte of the body, so a larger shape
        // cannot be what the request holds.
        Some([n]) | Some([n, 1]) if *n <= crate::BODY_LIMIT as u64 => Ok(*n as usize),
        Some([n]) | Some([n, 1]) => Err(bad(format!(
            "input `{name}`: shape [{n}] claims more rows than a request body of at most {} bytes can hold",
            crate::BODY_LIMIT
        ))),
        _ => Err(bad(format!(
            "input `{name}`: shape {} is not [rows] or [rows, 1] (one tensor per column)",
            v.map_or("missing".into(), Value::to_string)
        ))),
    }
}

/// Reads a tensor's JSON `data` (nested lists are read row-major).
fn json_data(b: &mut Builder, data: Option<&Value>, dtype: Dtype, rows: usize, name: &str) -> Result<()> {
    let data = data.ok_or_else(|| bad(format!("input `{name}`: `data` is missing")))?;
    let mut flat = Vec::with_capacity(rows.min(crate::RESERVE));
    flatten(data, &mut flat);
    if flat.len() != rows {
        return Err(bad(format!("input `{name}`: {} values in `data`, the shape says {rows}", flat.len())));
    }
    for (r, v) in flat.into_iter().enumerate() {
        let fits = match dtype {
            Dtype::Fp64 | Dtype::Fp32 => v.is_number() || v.is_null(),
            Dtype::Int64 | Dtype::Int32 => v.is_i64() || v.is_u64(),
            Dtype::Bool => v.is_boolean(),
            Dtype::Bytes => v.is_string() || v.is_null(),
        };
        if !fits {
            return Err(bad(format!("input `{name}` ({}): data[{r}] is {}", dtype.as_str(), describe(v))));
        }
        b.push_json(v, name, &|| format!(" data[{r}]"))?;
    }
    Ok(())
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        other => out.push(other),
    }
}

fn params<'a>(v: Option<&'a Value>, at: &str) -> Result<Option<&'a Map<String, Value>>> {
    match v {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(bad(format!("{at}: expected an object, got {}", describe(other)))),
    }
}

fn flag(p: Option<&Map<String, Value>>, key: &str, at: &str) -> Result<bool> {
    match p.and_then(|p| p.get(key)) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(bad(format!("{at}.{key}: expected true or false, got {}", describe(other)))),
    }
}

/// The outputs a request asks for (all when it names none), each with
/// whether it goes in binary.
fn requested_outputs(served: &Served, v: Option<&Value>, binary_all: bool) -> Result<Vec<(&'static str, bool)>> {
    let names: &[&'static str] = if served.is_classifier() { &[PREDICTION, PROBABILITIES] } else { &[PREDICTION] };
    let Some(v) = v else {
        return Ok(names.iter().map(|n| (*n, binary_all)).collect());
    };
    let Value::Array(list) = v else {
        return Err(bad(format!("`outputs` must be a list, got {}", describe(v))));
    };
    list.iter()
        .enumerate()
        .map(|(i, o)| {
            let name =
                o.get("name").and_then(Value::as_str).ok_or_else(|| bad(format!("outputs[{i}]: `name` is missing")))?;
            let known = names.iter().find(|n| **n == name).ok_or_else(|| {
                bad(format!("output `{name}` is not one model `{}` has: it answers {}", served.name, names.join(", ")))
            })?;
            let at = format!("output `{name}` parameters");
            let p = params(o.get("parameters"), &at)?;
            if p.and_then(|p| p.get("classification")).is_some_and(|c| c.as_u64() != Some(0)) {
                return Err(bad(format!(
                    "output `{name}`: the classification extension is not supported; read `probabilities`"
                )));
            }
            let binary = match p.and_then(|p| p.get("binary_data")) {
                None => binary_all,
                Some(_) => flag(p, "binary_data", &at)?,
            };
            Ok((*known, binary))
        })
        .collect()
}

/// An answer's body, and the length of its JSON header when binary data follows.
pub struct Encoded {
    pub body: Vec<u8>,
    pub header_len: Option<usize>,
}

/// The inference answer: JSON, with binary outputs after it when asked.
/// Written from borrowed slices (`write.rs`), the fields in the order the
/// protocol's examples give them.
pub fn answer(served: &Served, requested: &[(&'static str, bool)], id: &str, pred: &Prediction) -> Encoded {
    let mut body = Vec::with_capacity(answer_size(served, id, pred));
    let mut raw = Vec::new();
    body.extend_from_slice(&served.answer_parts().head);
    write::str(&mut body, id);
    body.extend_from_slice(br#","outputs":"#);
    write::list(&mut body, requested, |body, &(name, binary)| {
        let into = if binary { Some(&mut raw) } else { None };
        output(body, into, served, name, pred);
    });
    body.push(b'}');
    if requested.iter().all(|(_, binary)| !binary) {
        return Encoded { body, header_len: None };
    }
    let header_len = body.len();
    body.extend(raw);
    Encoded { body, header_len: Some(header_len) }
}

/// One output tensor, `{"name","datatype","shape","parameters","data"}`;
/// with `raw`, its data appended there in binary and its size a parameter.
fn output(body: &mut Vec<u8>, raw: Option<&mut Vec<u8>>, served: &Served, name: &str, pred: &Prediction) {
    let (classes, parts) = (&served.model.classes, served.answer_parts());
    let (datatype, rows, columns, data) = match (name, pred) {
        (PROBABILITIES, Prediction::Classes { probabilities: p, .. }) => {
            ("FP64", p.rows, Some(p.cols), Data::Num(&p.data))
        }
        (_, Prediction::Classes { labels, .. }) => ("BYTES", labels.len(), None, Data::Labels(labels)),
        (_, Prediction::Values(v)) => ("FP64", v.len(), None, Data::Num(v)),
    };
    body.extend_from_slice(br#"{"name":"#);
    write::str(body, name);
    body.extend_from_slice(br#","datatype":""#);
    body.extend_from_slice(datatype.as_bytes());
    body.extend_from_slice(br#"","shape":"#);
    write::list(body, std::iter::once(rows).chain(columns), write::count);
    body.extend_from_slice(br#","parameters":{"#);
    let probabilities = columns.is_some();
    if probabilities {
        body.extend_from_slice(br#""classes":"#);
        body.extend_from_slice(&parts.classes);
    }
    let Some(raw) = raw else {
        body.extend_from_slice(br#"},"data":"#);
        match data {
            Data::Num(v) => write::list(body, v, |body, &x| write::f64(body, x)),
            Data::Labels(l) => write::list(body, l, |body, &l| body.extend_from_slice(&parts.labels[l])),
        }
        body.push(b'}');
        return;
    };
    let before = raw.len();
    match data {
        Data::Num(v) => raw.extend(binary::encode_f64(v)),
        Data::Labels(l) => raw.extend(binary::encode_bytes(l.iter().map(|&l| classes[l].as_str()))),
    }
    body.extend_from_slice(if probabilities { br#","binary_data_size":"# } else { br#""binary_data_size":"# });
    write::count(body, raw.len() - before);
    body.extend_from_slice(b"}}");
}

/// An output's values: numbers, or class indexes into the model's classes.
enum Data<'a> {
    Num(&'a [f64]),
    Labels(&'a [usize]),
}

/// About what the JSON answer takes, so that it is written into one
/// allocation instead of growing by copies from serde's 128 bytes: the
/// names and classes, and per row a label and 24 bytes a number.
fn answer_size(served: &Served, id: &str, pred: &Prediction) -> usize {
    let classes: usize = served.model.classes.iter().map(|c| c.len() + 3).sum();
    let per_row = match pred {
        Prediction::Values(_) => 24,
        Prediction::Classes { probabilities, .. } => {
            served.model.classes.iter().map(String::len).max().unwrap_or(0) + 3 + 24 * probabilities.cols
        }
    };
    let rows = match pred {
        Prediction::Values(v) => v.len(),
        Prediction::Classes { labels, .. } => labels.len(),
    };
    (256 + served.name.len() + id.len() + 2 * classes).saturating_add(rows.saturating_mul(per_row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::served::test_classifier;
    use flywheel_ml::transform::Matrix;
    use proptest::prelude::*;

    /// The answer as serde derives it from the protocol's structure: what
    /// `answer` wrote before it wrote by hand, kept to check it against.
    mod reference {
        use super::*;

        #[derive(serde::Serialize)]
        struct Head<'a> {
            model_name: &'a str,
            model_version: String,
            id: &'a str,
            outputs: Vec<Tensor<'a>>,
        }

        #[derive(serde::Serialize)]
        struct Tensor<'a> {
            name: &'a str,
            datatype: &'static str,
            shape: Vec<usize>,
            parameters: Parameters<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            data: Option<serde_json::Value>,
        }

        #[derive(serde::Serialize, Default)]
        struct Parameters<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            classes: Option<&'a [String]>,
            #[serde(skip_serializing_if = "Option::is_none")]
            binary_data_size: Option<usize>,
        }

        pub fn answer(served: &Served, requested: &[(&'static str, bool)], id: &str, pred: &Prediction) -> Vec<u8> {
            let classes = &served.model.classes;
            let mut raw = Vec::new();
            let outputs = requested
                .iter()
                .map(|&(name, binary)| {
                    let (datatype, shape, data, bytes, classes) = match (name, pred) {
                        (PROBABILITIES, Prediction::Classes { probabilities: p, .. }) => (
                            "FP64",
                            vec![p.rows, p.cols],
                            json!(p.data),
                            binary::encode_f64(&p.data),
                            Some(&classes[..]),
                        ),
                        (_, Prediction::Classes { labels, .. }) => {
                            let l: Vec<&str> = labels.iter().map(|&l| classes[l].as_str()).collect();
                            ("BYTES", vec![l.len()], json!(l), binary::encode_bytes(l.iter().copied()), None)
                        }
                        (_, Prediction::Values(v)) => ("FP64", vec![v.len()], json!(v), binary::encode_f64(v), None),
                    };
                    let mut parameters = Parameters { classes, ..Parameters::default() };
                    let data = if binary {
                        parameters.binary_data_size = Some(bytes.len());
                        raw.extend(bytes);
                        None
                    } else {
                        Some(data)
                    };
                    Tensor { name, datatype, shape, parameters, data }
                })
                .collect();
            let head = Head { model_name: &served.name, model_version: served.version.to_string(), id, outputs };
            let mut body = serde_json::to_vec(&head).unwrap();
            body.extend(raw);
            body
        }
    }

    proptest! {
        #[test]
        fn the_answer_is_written_as_serde_would_write_it(
            id in "(\\PC|[\"\\\\\u{1}])*",
            rows in prop::collection::vec((0usize..2, -1e6f64..1e6, any::<u32>()), 0..4),
            binary in prop::collection::vec(any::<bool>(), 2),
            regression in any::<bool>(),
        ) {
            let served = test_classifier(["y\"es\u{1}", "été"]);
            let pred = if regression {
                Prediction::Values(rows.iter().map(|r| r.1 / f64::from(r.2.max(1))).collect())
            } else {
                let data = rows.iter().flat_map(|r| [1e-300 * r.1, f64::from(r.2)]).collect();
                Prediction::Classes {
                    probabilities: Matrix { rows: rows.len(), cols: 2, data },
                    labels: rows.iter().map(|r| r.0).collect(),
                }
            };
            let requested = [(PREDICTION, binary[0]), (PROBABILITIES, binary[1])];
            let requested = if regression { &requested[..1] } else { &requested[..] };
            let written = answer(&served, requested, &id, &pred);
            let expected = reference::answer(&served, requested, &id, &pred);
            prop_assert_eq!(String::from_utf8_lossy(&written.body), String::from_utf8_lossy(&expected));
            let any_binary = requested.iter().any(|r| r.1);
            if any_binary {
                let head = serde_json::from_slice::<serde_json::Value>(&expected[..written.header_len.unwrap()]);
                prop_assert!(head.is_ok());
            } else {
                prop_assert_eq!(written.header_len, None);
            }
        }
    }
}
