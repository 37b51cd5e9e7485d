//! An ONNX graph as a Flywheel model: which raw columns feed which graph
//! input, which outputs are the label, the class scores or the value. The
//! ONNX bytes travel inside the model document (base64), so an imported
//! model is as self-contained as a native one.

use crate::MlError;
use crate::frame::{Column, ColumnKind, Frame};
use crate::model::{Input, Model, Output, Prediction, Signature, Task};
use crate::onnx::{DatumType, OnnxModel, OutputInfo, Tensor, TensorInfo, ops};
use crate::transform::{Matrix, Transform};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// The key under which a signature may travel inside the ONNX file's
/// `metadata_props` (so one file carries both).
pub const METADATA_KEY: &str = "flywheel.signature";

/// What the person exporting the model tells Flywheel about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxSignature {
    /// Raw column names, in the order of the graph's input columns. May be
    /// left out when the graph has one `[N, 1]` input per column.
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    /// The column the model predicts (evaluation reads it).
    pub target: String,
    /// `classification` or `regression`; read from the graph's outputs when
    /// left out.
    #[serde(default)]
    pub task: Option<Task>,
}

impl OnnxSignature {
    pub fn from_json(bytes: &[u8], source: &str) -> Result<OnnxSignature, MlError> {
        serde_json::from_slice(bytes).map_err(|e| {
            MlError::Format(format!(
                "{source}: not a model signature (line {}, column {}): {e}; write \
                 {{\"inputs\": [\"col1\", \"col2\"], \"target\": \"label\"}}",
                e.line(),
                e.column()
            ))
        })
    }
}

/// One graph input and the raw columns that fill it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feed {
    pub input: String,
    pub columns: Vec<String>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct OnnxEstimator {
    pub feeds: Vec<Feed>,
    /// Graph output indices: the label (classification), and the class
    /// scores or the predicted value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<usize>,
    pub scores: usize,
    /// BLAKE3 of the ONNX bytes.
    pub digest: String,
    #[serde(with = "b64")]
    pub onnx: Vec<u8>,
    #[serde(skip)]
    runtime: OnceLock<Arc<OnnxModel>>,
}

impl PartialEq for OnnxEstimator {
    fn eq(&self, other: &Self) -> bool {
        self.feeds == other.feeds && self.label == other.label && self.scores == other.scores && self.onnx == other.onnx
    }
}

impl std::fmt::Debug for OnnxEstimator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxEstimator").field("feeds", &self.feeds).field("digest", &self.digest).finish()
    }
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

fn is_text(dt: DatumType) -> bool {
    dt == DatumType::String
}

impl OnnxEstimator {
    /// The compiled graph (compiled on first use; `Model::check` does it
    /// when a model is read).
    pub fn runtime(&self) -> Result<&Arc<OnnxModel>, MlError> {
        if let Some(r) = self.runtime.get() {
            return Ok(r);
        }
        let r = Arc::new(OnnxModel::load(&self.onnx)?);
        Ok(self.runtime.get_or_init(|| r))
    }

    /// Checks the feeds and outputs against the graph and the model's task.
    pub fn check(&self, task: Task, classes: &[String], inputs: &[Input]) -> Result<(), MlError> {
        let bad = |m: String| Err(MlError::Format(format!("the model is inconsistent: {m}")));
        if blake3::hash(&self.onnx).to_hex().as_str() != self.digest {
            return bad("the ONNX bytes do not match their digest".into());
        }
        let rt = self.runtime()?;
        let graph_inputs: Vec<&str> = rt.inputs().iter().map(|i| i.name.as_str()).collect();
        let fed: Vec<&str> = self.feeds.iter().map(|f| f.input.as_str()).collect();
        if graph_inputs != fed {
            return bad(format!("the graph's inputs are {graph_inputs:?} but the model feeds {fed:?}"));
        }
        let columns: Vec<&str> = self.feeds.iter().flat_map(|f| f.columns.iter().map(|c| c.as_str())).collect();
        let declared: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        if columns != declared {
            return bad("the signature's inputs are not the columns fed to the graph".into());
        }
        for (feed, info) in self.feeds.iter().zip(rt.inputs()) {
            if let Some(w) = info.width()
                && w != feed.columns.len()
            {
                return bad(format!("input `{}` takes {w} columns, {} are fed", info.name, feed.columns.len()));
            }
            if is_text(info.dtype) && feed.columns.len() != 1 {
                return bad(format!("text input `{}` must be fed one column", info.name));
            }
        }
        let n_out = rt.outputs().len();
        if self.scores >= n_out || self.label.is_some_and(|l| l >= n_out) {
            return bad(format!("an output index beyond the graph's {n_out} outputs"));
        }
        match (task, self.label) {
            (Task::Classification, Some(_)) if classes.len() >= 2 => Ok(()),
            (Task::Regression, None) => Ok(()),
            _ => bad(format!("a {task:?} model with {} classes and label output {:?}", classes.len(), self.label)),
        }
    }

    fn feed_tensors(&self, rt: &OnnxModel, frame: &Frame) -> Result<Vec<Tensor>, MlError> {
        let rows = frame.rows();
        let mut feeds = Vec::with_capacity(self.feeds.len());
        for (feed, info) in self.feeds.iter().zip(rt.inputs()) {
            let cols: Vec<&Column> = feed
                .columns
                .iter()
                .map(|c| frame.column(c).ok_or_else(|| MlError::Data(format!("the data has no column `{c}`"))))
                .collect::<Result<_, _>>()?;
            let k = cols.len();
            let shape: Vec<usize> = if info.dims.is_empty() { vec![rows] } else { vec![rows, k] };
            let t = if is_text(info.dtype) {
                let Column::Text(t) = cols[0] else {
                    return Err(MlError::Data(format!(
                        "column `{}` must be text for input `{}`",
                        feed.columns[0], info.name
                    )));
                };
                let values: Vec<String> = (0..rows).map(|i| t.get(i).unwrap_or("").to_string()).collect();
                ops::tensor(&shape, values).map_err(MlError::Data)?
            } else {
                let mut x = vec![0.0f64; rows * k];
                for (j, c) in cols.iter().enumerate() {
                    let Column::Num(v) = c else {
                        return Err(MlError::Data(format!(
                            "column `{}` must be numbers for input `{}`",
                            feed.columns[j], info.name
                        )));
                    };
                    for (i, value) in v.iter().enumerate() {
                        x[i * k + j] = *value;
                    }
                }
                let t = ops::tensor(&shape, x).map_err(MlError::Data)?;
                t.cast_to_dt(info.dtype).map_err(|e| MlError::Data(e.to_string()))?.into_owned()
            };
            feeds.push(t);
        }
        Ok(feeds)
    }

    pub fn predict(&self, frame: &Frame, classes: &[String]) -> Result<Prediction, MlError> {
        let rt = self.runtime()?;
        let out = rt.run(self.feed_tensors(rt, frame)?)?;
        let rows = frame.rows();
        let scores = ops::f64s(&out[self.scores]).map_err(MlError::Data)?;
        let Some(label) = self.label else {
            if scores.len() != rows {
                return Err(MlError::Data(format!("the graph gave {} values for {rows} rows", scores.len())));
            }
            return Ok(Prediction::Values(scores));
        };
        let k = classes.len();
        if scores.len() != rows * k {
            return Err(MlError::Data(format!("the graph gave {} scores for {rows} rows × {k} classes", scores.len())));
        }
        let names = label_text(&out[label])?;
        let index: std::collections::HashMap<&str, usize> =
            classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
        let labels = names
            .iter()
            .map(|n| {
                index.get(n.as_str()).copied().ok_or_else(|| {
                    MlError::Data(format!("the graph predicted class `{n}`, which is not one of {classes:?}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Prediction::Classes { probabilities: Matrix { rows, cols: k, data: scores }, labels })
    }
}

fn label_text(t: &Tensor) -> Result<Vec<String>, MlError> {
    if is_text(t.datum_type()) {
        let v = t.to_plain_array_view::<String>().map_err(|e| MlError::Data(e.to_string()))?;
        Ok(v.iter().cloned().collect())
    } else {
        let t = t.cast_to::<i64>().map_err(|e| MlError::Data(e.to_string()))?;
        let v = t.to_plain_array_view::<i64>().map_err(|e| MlError::Data(e.to_string()))?;
        Ok(v.iter().map(|x| x.to_string()).collect())
    }
}

/// Builds a model from an ONNX file's bytes and its signature (given, or
/// read from the file's `metadata_props`). `source` names the file in
/// errors.
pub fn import(bytes: Vec<u8>, signature: Option<OnnxSignature>, source: &str) -> Result<Model, MlError> {
    let err = |m: String| MlError::Format(format!("{source}: {m}"));
    let rt = OnnxModel::load(&bytes).map_err(|e| err(e.to_string()))?;
    let signature = read_signature(signature, &rt, source)?;
    let inputs = rt.inputs();
    let feeds = feeds(&signature, inputs).map_err(err)?;
    let Heads { task, label, scores, classes } = heads(&signature, &rt).map_err(err)?;
    let kinds: Vec<Input> = feeds
        .iter()
        .zip(inputs)
        .flat_map(|(f, i)| {
            let kind = if is_text(i.dtype) { ColumnKind::Text } else { ColumnKind::Number };
            f.columns.iter().map(move |c| Input { name: c.clone(), kind })
        })
        .collect();
    let outputs = match task {
        Task::Regression => vec![Output { name: signature.target.clone(), kind: ColumnKind::Number }],
        Task::Classification => std::iter::once(Output { name: signature.target.clone(), kind: ColumnKind::Text })
            .chain(classes.iter().map(|c| Output { name: format!("probability({c})"), kind: ColumnKind::Number }))
            .collect(),
    };
    let digest = blake3::hash(&bytes).to_hex().to_string();
    let est = OnnxEstimator { feeds, label, scores, digest, onnx: bytes, runtime: OnceLock::from(Arc::new(rt)) };
    let model = Model {
        format: crate::model::FORMAT.into(),
        task,
        target: signature.target.clone(),
        classes,
        signature: Signature { inputs: kinds, outputs },
        transform: Transform { columns: Vec::new() },
        estimator: crate::model::Estimator::Onnx(Box::new(est)),
        metadata: serde_json::json!({ "source": source }),
    };
    model.check().map_err(|e| err(e.to_string()))?;
    // One row of zeros (empty text) must run and give the declared shapes:
    // a signature that does not fit the graph fails here, not in serving.
    let probe = zero_row(&model.signature)?;
    model.predict(&probe).map_err(|e| err(format!("a test row does not run through the graph: {e}")))?;
    Ok(model)
}

/// The signature given, else the one stored in the file; its target must be named.
fn read_signature(given: Option<OnnxSignature>, rt: &OnnxModel, source: &str) -> Result<OnnxSignature, MlError> {
    let err = |m: String| MlError::Format(format!("{source}: {m}"));
    let signature = match given {
        Some(s) => s,
        None => match rt.metadata(METADATA_KEY) {
            Some(text) => OnnxSignature::from_json(text.as_bytes(), &format!("{source} ({METADATA_KEY})"))?,
            None => {
                return Err(err(format!(
                    "no signature: give one with --signature FILE (JSON: {{\"inputs\": [\"col1\", …], \"target\": \
                     \"label\"}}) or store it in the file's metadata_props under `{METADATA_KEY}`"
                )));
            }
        },
    };
    if signature.target.trim().is_empty() {
        return Err(err("the signature's `target` is empty; name the column the model predicts".into()));
    }
    Ok(signature)
}

/// Columns per graph input: the signature's list for one input, else one
/// column per `[N, 1]` input, named as the input. Errors are bare messages.
fn feeds(signature: &OnnxSignature, inputs: &[TensorInfo]) -> Result<Vec<Feed>, String> {
    let feeds: Vec<Feed> = match (&signature.inputs, inputs) {
        (Some(cols), [one]) => {
            if let Some(w) = one.width()
                && w != cols.len()
            {
                return Err(format!(
                    "the graph's input `{}` takes {w} columns but the signature names {}: {cols:?}",
                    one.name,
                    cols.len()
                ));
            }
            vec![Feed { input: one.name.clone(), columns: cols.clone() }]
        }
        (cols, many) => {
            if let Some(i) = many.iter().find(|i| i.width() != Some(1)) {
                return Err(format!(
                    "the graph has {} inputs and `{}` is not one column wide; with several inputs each must be \
                     [N, 1] and is fed the column of its name",
                    many.len(),
                    i.name
                ));
            }
            if let Some(cols) = cols {
                let names: Vec<&str> = many.iter().map(|i| i.name.as_str()).collect();
                if cols.iter().map(|c| c.as_str()).ne(names.iter().copied()) {
                    return Err(format!(
                        "the signature's inputs {cols:?} are not the graph's inputs {names:?} (with several inputs \
                         each is fed the column of its name)"
                    ));
                }
            }
            many.iter().map(|i| Feed { input: i.name.clone(), columns: vec![i.name.clone()] }).collect()
        }
    };
    let mut seen = std::collections::HashSet::new();
    if let Some(c) = feeds.iter().flat_map(|f| &f.columns).find(|c| !seen.insert(c.as_str())) {
        return Err(format!("column `{c}` is listed twice in the signature"));
    }
    Ok(feeds)
}

/// The task and the graph outputs that carry the answer.
struct Heads {
    task: Task,
    label: Option<usize>,
    scores: usize,
    classes: Vec<String>,
}

/// Outputs: a label (integers or text) and scores (numbers). Errors are bare messages.
fn heads(signature: &OnnxSignature, rt: &OnnxModel) -> Result<Heads, String> {
    let outs = rt.outputs();
    let label = outs.iter().position(|o| matches!(o.info.dtype, DatumType::I64 | DatumType::I32 | DatumType::String));
    let numeric = |o: &&OutputInfo| matches!(o.info.dtype, DatumType::F32 | DatumType::F64);
    let scores = outs
        .iter()
        .position(|o| numeric(&o))
        .ok_or_else(|| "the graph has no numeric output (scores, probabilities or values)".to_string())?;
    let task = match (signature.task, label) {
        (Some(Task::Regression), _) | (None, None) => Task::Regression,
        (Some(Task::Classification), None) => {
            return Err("the signature says classification but the graph has no label output".into());
        }
        (_, Some(_)) => Task::Classification,
    };
    let (label, classes) = match task {
        Task::Regression => (None, Vec::new()),
        Task::Classification => {
            let classes = outs[scores]
                .classes
                .clone()
                .or_else(|| rt.classes().map(|c| c.to_vec()))
                .ok_or_else(|| "the graph declares no class labels".to_string())?;
            (label, classes)
        }
    };
    Ok(Heads { task, label, scores, classes })
}

/// One row per input column: 0 for numbers, empty text.
fn zero_row(signature: &Signature) -> Result<Frame, MlError> {
    let mut probe = Frame::new();
    for i in &signature.inputs {
        let col = match i.kind {
            ColumnKind::Number => Column::Num(vec![0.0]),
            ColumnKind::Text => Column::Text(crate::frame::Text::encode([Some("")])),
        };
        probe.push(i.name.clone(), col)?;
    }
    Ok(probe)
}
