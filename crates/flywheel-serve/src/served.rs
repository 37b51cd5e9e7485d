//! One loaded model version, as the server holds it: the model, the
//! registered version it is, and the reference that chose it.

use axum::http::HeaderValue;
use flywheel_ml::{Binding, Column, ColumnKind, Frame, Model, Names, Prediction, Task, Text};
use std::sync::{Arc, OnceLock};

/// One loaded model version.
#[derive(Debug)]
pub struct Served {
    pub name: String,
    pub version: i64,
    /// What the user asked for (`clf@production`), to say why this version.
    pub reference: String,
    pub model: Model,
    /// `label()` as a header value, made once (a model name is ASCII).
    label_header: Option<HeaderValue>,
    /// What every OIP answer of this version writes alike, made once.
    answer_parts: AnswerParts,
    /// The signature's input names, shared by every request's frame.
    inputs: Names,
    /// Where the model finds its columns in a frame on `inputs`.
    binding: Option<Binding>,
    /// Whether a one-row request may be read as a row (`batch.rs`).
    takes_rows: bool,
    /// The signature's input kinds, in its order.
    kinds: Vec<ColumnKind>,
    /// The bytes of the first `dataframe_split` column list that named the
    /// inputs in the model's order, as the client wrote it (`fast.rs`).
    split_columns: OnceLock<Box<[u8]>>,
    /// How the first OIP request read whole in the model's order wrote
    /// each tensor around its row count (`fast.rs`).
    tensor_heads: OnceLock<Box<[TensorHead]>>,
}

/// The parts of an OIP answer that are the same for every request of a
/// version, in JSON: a one-row answer is mostly these.
#[derive(Debug)]
pub struct AnswerParts {
    /// `{"model_name":"…","model_version":"…","id":`
    pub head: Box<[u8]>,
    /// The classes as a list, `["no","yes"]`.
    pub classes: Box<[u8]>,
    /// Each class as a string, `"yes"`, by its index.
    pub labels: Vec<Box<[u8]>>,
}

impl AnswerParts {
    fn new(name: &str, version: i64, classes: &[String]) -> Self {
        let mut head = br#"{"model_name":"#.to_vec();
        crate::write::str(&mut head, name);
        head.extend_from_slice(br#","model_version":"#);
        crate::write::str(&mut head, &version.to_string());
        head.extend_from_slice(br#","id":"#);
        let mut list = Vec::new();
        crate::write::list(&mut list, classes, |out, c| crate::write::str(out, c));
        let labels = classes
            .iter()
            .map(|c| {
                let mut out = Vec::with_capacity(c.len() + 2);
                crate::write::str(&mut out, c);
                out.into()
            })
            .collect();
        AnswerParts { head: head.into(), classes: list.into(), labels }
    }
}

/// One JSON tensor as a client wrote it, without its row count and its
/// values: the bytes from its `{` to the count in its shape, and from
/// after the count to the `[` that opens its data (which comes last).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorHead {
    pub before_count: Box<[u8]>,
    pub before_data: Box<[u8]>,
}

/// The longest column list remembered: a list padded with white space is
/// read, not kept.
const SPLIT_COLUMNS_MAX: usize = 64 << 10;

impl Served {
    pub fn new(name: String, version: i64, reference: String, model: Model) -> Self {
        let label_header = HeaderValue::try_from(format!("{name}@{version}")).ok();
        let inputs: Names = Arc::new(model.signature.inputs.iter().map(|i| Arc::from(i.name.as_str())).collect());
        let binding = model.bind(&inputs);
        let kinds: Vec<ColumnKind> = model.signature.inputs.iter().map(|i| i.kind).collect();
        let numbers = kinds.iter().all(|k| *k == ColumnKind::Number);
        let takes_rows = numbers && binding.is_some() && model.takes_numbers();
        let answer_parts = AnswerParts::new(&name, version, &model.classes);
        Served {
            name,
            version,
            reference,
            model,
            label_header,
            answer_parts,
            inputs,
            binding,
            takes_rows,
            kinds,
            split_columns: OnceLock::new(),
            tensor_heads: OnceLock::new(),
        }
    }

    /// `name@version`, as the `x-flywheel-model-version` header says it.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// [`label`](Self::label) as a header value; cloned without a copy.
    pub fn label_header(&self) -> Option<HeaderValue> {
        self.label_header.clone()
    }

    /// The fixed parts of this version's OIP answers.
    pub fn answer_parts(&self) -> &AnswerParts {
        &self.answer_parts
    }

    /// The kind of the input column `name`, if the model reads it.
    pub fn input_kind(&self, name: &str) -> Option<ColumnKind> {
        self.model.signature.inputs.iter().find(|i| i.name == name).map(|i| i.kind)
    }

    /// The kind of input `name`, which callers usually give at `hint`
    /// (the model's order): found there without a search.
    pub fn input_kind_at(&self, hint: usize, name: &str) -> Option<ColumnKind> {
        match self.model.signature.inputs.get(hint) {
            Some(i) if i.name == name => Some(i.kind),
            _ => self.input_kind(name),
        }
    }

    /// The input names in the model's order, as a frame holds them.
    pub fn input_names_shared(&self) -> &[Arc<str>] {
        &self.inputs
    }

    /// The input names as one list, which the frames of requests share.
    pub fn input_list(&self) -> &Names {
        &self.inputs
    }

    /// The model's prediction for `frame`, its columns found by position
    /// when the frame is on [`input_list`](Self::input_list).
    pub fn predict(&self, frame: &Frame) -> Result<Prediction, flywheel_ml::MlError> {
        self.model.predict_bound(frame, self.binding.as_ref())
    }

    /// Whether a one-row request is read as a row of numbers, not as a
    /// frame: the model reads numbers alone, each as a value or a bucket.
    pub fn takes_rows(&self) -> bool {
        self.takes_rows
    }

    /// The prediction for one row of numbers in the model's input order,
    /// as [`predict`](Self::predict) gives it for that row as a frame;
    /// `None` when it is not one the model takes so (an infinity, which
    /// the frame's refusal names).
    pub fn predict_row(&self, values: &[f64]) -> Option<Result<Prediction, flywheel_ml::MlError>> {
        self.model.predict_numbers(values, self.binding.as_ref()?)
    }

    /// The input kinds in the model's order.
    pub fn input_kinds(&self) -> &[ColumnKind] {
        &self.kinds
    }

    /// The column list remembered by [`remember_split_columns`](Self::remember_split_columns).
    pub fn split_columns(&self) -> Option<&[u8]> {
        self.split_columns.get().map(|b| &b[..])
    }

    /// Keeps `list`, the bytes of a JSON list naming the inputs in the
    /// model's order, when none is kept yet.
    pub fn remember_split_columns(&self, list: &[u8]) {
        if list.len() <= SPLIT_COLUMNS_MAX && self.split_columns.get().is_none() {
            _ = self.split_columns.set(list.into());
        }
    }

    /// The tensor heads remembered by [`remember_tensor_heads`](Self::remember_tensor_heads),
    /// one per input in the model's order.
    pub fn tensor_heads(&self) -> Option<&[TensorHead]> {
        self.tensor_heads.get().map(|h| &h[..])
    }

    /// Keeps `heads`, one per input in the model's order, when none are
    /// kept yet and they are not padded past `SPLIT_COLUMNS_MAX` in all.
    pub fn remember_tensor_heads(&self, heads: Vec<TensorHead>) {
        let size: usize = heads.iter().map(|h| h.before_count.len() + h.before_data.len()).sum();
        if heads.len() == self.inputs.len() && size <= SPLIT_COLUMNS_MAX && self.tensor_heads.get().is_none() {
            _ = self.tensor_heads.set(heads.into());
        }
    }

    pub fn input_names(&self) -> Vec<&str> {
        self.model.signature.inputs.iter().map(|i| i.name.as_str()).collect()
    }

    /// The inputs read, as `a (number), b (text)` in name order: what a
    /// caller must send.
    pub fn inputs_text(&self) -> String {
        let mut inputs: Vec<String> =
            self.model.signature.inputs.iter().map(|i| format!("{} ({})", i.name, i.kind.as_str())).collect();
        inputs.sort();
        inputs.join(", ")
    }

    pub fn is_classifier(&self) -> bool {
        self.model.task == Task::Classification
    }

    /// Predicts one row of plain values (0 for numbers, a missing value for
    /// text: an empty text is no date, and a date-time input refuses it),
    /// so that a version that cannot answer is found before it is swapped
    /// in and its first request does not pay for first use. The frame is on
    /// the model's name list, as a request's is, so the bound path is tried.
    pub fn warm(&self) -> Result<(), String> {
        let columns = self
            .kinds
            .iter()
            .map(|kind| match kind {
                ColumnKind::Number => Column::Num(vec![0.0]),
                ColumnKind::Text => Column::Text(Text::encode([None::<&str>])),
            })
            .collect();
        let frame = Frame::with_names(self.inputs.clone(), columns).map_err(|e| e.to_string())?;
        self.predict(&frame).map(|_| ()).map_err(|e| format!("it fails on a first prediction: {e}"))
    }
}

/// Version 1 of `m`, a classifier of one number column into `classes`, for unit tests.
#[cfg(test)]
pub(crate) fn test_classifier(classes: [&str; 2]) -> Served {
    use flywheel_ml::{Estimator, transform};
    let mut f = Frame::new();
    f.push("x", Column::Num(vec![1.0, 2.0, 4.0])).unwrap_or_else(|e| panic!("{e}"));
    let t = transform::fit(&f, &["x".into()], &Default::default(), transform::LINEAR_DEFAULTS)
        .unwrap_or_else(|e| panic!("{e}"));
    let est = Estimator::Logistic { coef: vec![vec![0.5; t.width()]], intercept: vec![0.1] };
    let classes = classes.iter().map(|c| (*c).to_string()).collect();
    let model = Model::new(Task::Classification, "y".into(), classes, t, est, serde_json::json!({}))
        .unwrap_or_else(|e| panic!("{e}"));
    Served::new("m".into(), 1, "m@1".into(), model)
}

/// A one-column regression version of model `m`, for unit tests.
#[cfg(test)]
pub(crate) fn test_served(version: i64, reference: &str) -> Served {
    use flywheel_ml::{Column, Estimator, Frame, transform};
    let mut f = Frame::new();
    f.push("x", Column::Num(vec![1.0, 2.0, 4.0])).unwrap_or_else(|e| panic!("{e}"));
    let t = transform::fit(&f, &["x".into()], &Default::default(), transform::TREE_DEFAULTS)
        .unwrap_or_else(|e| panic!("{e}"));
    let est = Estimator::Linear { algorithm: "ols".into(), weights: vec![2.0], intercept: 1.0 };
    let model = Model::new(Task::Regression, "y".into(), vec![], t, est, serde_json::json!({}))
        .unwrap_or_else(|e| panic!("{e}"));
    Served::new("m".into(), version, reference.into(), model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_ml::{Estimator, transform};

    #[test]
    fn a_model_reading_a_date_time_text_column_warms() {
        let mut f = Frame::new();
        let days = ["2011-01-01 00:00:00", "2011-06-01 13:00:00", "2012-03-04 08:00:00"];
        f.push("when", Column::Text(Text::encode(days.iter().map(|d| Some(*d))))).unwrap();
        let declared = [("when".to_string(), "datetime(month, hour)".to_string())].into_iter().collect();
        let t = transform::fit(&f, &["when".into()], &declared, transform::TREE_DEFAULTS).unwrap();
        let est = Estimator::Linear { algorithm: "ols".into(), weights: vec![0.5, 0.25], intercept: 1.0 };
        let model = Model::new(Task::Regression, "y".into(), vec![], t, est, serde_json::json!({})).unwrap();
        let served = Served::new("m".into(), 1, "m@production".into(), model);
        served.warm().unwrap();
    }
}
