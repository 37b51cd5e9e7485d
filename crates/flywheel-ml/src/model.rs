//! The model format: one self-describing JSON document holding the
//! signature (raw input columns and their kinds, outputs), the fitted
//! transform, the estimator's parameters, and metadata (training run, data
//! digests, metrics, settings). Reading it is parsing data and checking
//! that its parts agree; nothing in it is ever executed.

pub mod onnx_estimator;

pub use crate::link::sigmoid;

use crate::MlError;
use crate::frame::{ColumnKind, Frame, Names};
use crate::link::softmax;
use crate::transform::{Matrix, Transform};
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "flywheel.model/2";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Regression,
    Classification,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    pub kind: ColumnKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub name: String,
    /// `number` for a regression value or a probability, `text` for a label.
    pub kind: ColumnKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
}

/// The estimator's learned parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Estimator {
    /// value = w·x + b (least squares, ridge or lasso).
    Linear { algorithm: String, weights: Vec<f64>, intercept: f64 },
    /// Binary: one row, P(classes[1]) = σ(w·x + b). Multinomial: one row
    /// per class, probabilities by softmax.
    Logistic { coef: Vec<Vec<f64>>, intercept: Vec<f64> },
    /// Gradient-boosted trees: raw scores, then identity (regression),
    /// sigmoid (binary) or softmax (multiclass).
    Gbt(crate::tree::gbt::Gbt),
    /// A decision tree or a random forest (`algorithm`): the mean of the
    /// trees' leaves, a value or P(classes[1]).
    Forest { algorithm: String, forest: crate::tree::forest::Forest },
    /// A graph made elsewhere and imported (`crate::onnx`): it reads the
    /// raw columns itself, so the model's transform is empty.
    Onnx(Box<onnx_estimator::OnnxEstimator>),
}

/// A model's inputs by position in the frames named by one list
/// ([`Model::bind`]): a server builds every request's frame on its model's
/// list, and the transform then reads its columns without comparing names.
#[derive(Debug, Clone)]
pub struct Binding {
    names: Names,
    at: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub format: String,
    pub task: Task,
    pub target: String,
    /// Class labels, for classification (index = class id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    pub signature: Signature,
    pub transform: Transform,
    pub estimator: Estimator,
    /// Training run, data digests, settings, metrics: for people and lineage.
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// Predictions for a batch of rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    Values(Vec<f64>),
    /// Row-major probabilities (rows × classes) and the most probable class.
    Classes {
        probabilities: Matrix,
        labels: Vec<usize>,
    },
}

/// The path of the first `null` in `v` (how serde_json writes NaN and ±inf).
fn first_null(v: &serde_json::Value, path: String) -> Option<String> {
    match v {
        serde_json::Value::Null => Some(path),
        serde_json::Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| first_null(x, format!("{path}[{i}]"))),
        serde_json::Value::Object(m) => m.iter().find_map(|(k, x)| first_null(x, format!("{path}.{k}"))),
        _ => None,
    }
}

impl Model {
    /// Builds a model, deriving its signature from the transform.
    pub fn new(
        task: Task,
        target: String,
        classes: Vec<String>,
        transform: Transform,
        estimator: Estimator,
        metadata: serde_json::Value,
    ) -> Result<Model, MlError> {
        let inputs = transform.inputs().into_iter().map(|(name, kind)| Input { name, kind }).collect();
        let outputs = match task {
            Task::Regression => vec![Output { name: target.clone(), kind: ColumnKind::Number }],
            Task::Classification => std::iter::once(Output { name: target.clone(), kind: ColumnKind::Text })
                .chain(classes.iter().map(|c| Output { name: format!("probability({c})"), kind: ColumnKind::Number }))
                .collect(),
        };
        let m = Model {
            format: FORMAT.into(),
            task,
            target,
            classes,
            signature: Signature { inputs, outputs },
            transform,
            estimator,
            metadata,
        };
        m.check()?;
        // Only a fitted model can hold NaN or ±inf: JSON has no way to write
        // one, so a loaded model never does and is not walked again.
        if let Some(path) = m.non_finite_number() {
            return Err(MlError::Format(format!(
                "the model is inconsistent: `{path}` is not a finite number; the data it was fitted on likely holds infinite or extreme values"
            )));
        }
        Ok(m)
    }

    /// Checks that the parts agree (a hand-edited or truncated file fails here).
    pub fn check(&self) -> Result<(), MlError> {
        let bad = |msg: String| Err(MlError::Format(format!("the model is inconsistent: {msg}")));
        if self.format != FORMAT {
            return Err(MlError::Format(format!(
                "model format `{}` is not supported by this build of Flywheel (it reads `{FORMAT}`)",
                self.format
            )));
        }
        let width = self.transform.width();
        if let Estimator::Onnx(o) = &self.estimator {
            if width != 0 {
                return bad("an imported ONNX model with a Flywheel transform".into());
            }
            return o.check(self.task, &self.classes, &self.signature.inputs);
        }
        self.check_estimator(width).map_err(|m| MlError::Format(format!("the model is inconsistent: {m}")))?;
        let inputs: Vec<(String, ColumnKind)> =
            self.signature.inputs.iter().map(|i| (i.name.clone(), i.kind)).collect();
        if inputs != self.transform.inputs() {
            return bad("the signature's inputs are not the transform's columns".into());
        }
        Ok(())
    }

    /// Whether the native estimator fits the task, the classes and the
    /// transform's `width` features; the error is the bare inconsistency.
    fn check_estimator(&self, width: usize) -> Result<(), String> {
        match (&self.estimator, self.task) {
            (Estimator::Linear { weights, .. }, Task::Regression) => {
                if weights.len() != width {
                    return Err(format!("{} weights for {width} features", weights.len()));
                }
            }
            (Estimator::Logistic { coef, intercept }, Task::Classification) => {
                let rows = if self.classes.len() == 2 { 1 } else { self.classes.len() };
                if self.classes.len() < 2 || coef.len() != rows || intercept.len() != rows {
                    return Err(format!("{} coefficient rows for {} classes", coef.len(), self.classes.len()));
                }
                if let Some(r) = coef.iter().find(|r| r.len() != width) {
                    return Err(format!("{} coefficients for {width} features", r.len()));
                }
            }
            (Estimator::Gbt(g), task) => {
                use crate::tree::gbt::Loss;
                let fits = match (g.loss, task) {
                    (Loss::SquaredError, Task::Regression) => true,
                    (Loss::Binary, Task::Classification) => self.classes.len() == 2,
                    (Loss::Multinomial(k), Task::Classification) => self.classes.len() == k && k > 2,
                    _ => false,
                };
                if !fits {
                    return Err(format!(
                        "a {:?} ensemble for a {task:?} task with {} classes",
                        g.loss,
                        self.classes.len()
                    ));
                }
                g.check(width).map_err(|e| e.to_string())?;
            }
            (Estimator::Forest { forest, .. }, task) => {
                let expected = match (task, self.classes.len()) {
                    (Task::Regression, _) | (Task::Classification, 2) => 0,
                    (Task::Classification, k) => k,
                };
                if forest.classes != expected {
                    return Err(format!(
                        "a tree model for {} classes in a model with {}",
                        forest.classes,
                        self.classes.len()
                    ));
                }
                forest.check(width).map_err(|e| e.to_string())?;
            }
            (e, t) => return Err(format!("a {} estimator for a {t:?} task", estimator_name(e))),
        }
        Ok(())
    }

    /// Where the fitted transform or estimator holds a NaN or ±inf, if
    /// anywhere (JSON cannot store one, so such a model could not be loaded
    /// back). Imported ONNX graphs keep their numbers in their own bytes.
    fn non_finite_number(&self) -> Option<String> {
        if matches!(self.estimator, Estimator::Onnx(_)) {
            return None;
        }
        let transform = serde_json::to_value(&self.transform).ok()?;
        let estimator = serde_json::to_value(&self.estimator).ok()?;
        first_null(&transform, "transform".into()).or_else(|| first_null(&estimator, "estimator".into()))
    }

    pub fn from_json(bytes: &[u8]) -> Result<Model, MlError> {
        let m: Model = serde_json::from_slice(bytes).map_err(|e| {
            let hint = if e.to_string().starts_with("invalid type: null") {
                " (a number the model needs is missing: JSON writes NaN and infinity as null, so the model that was saved held a non-finite value or was edited)"
            } else {
                ""
            };
            MlError::Format(format!("not a Flywheel model (line {}, column {}): {e}{hint}", e.line(), e.column()))
        })?;
        m.check()?;
        Ok(m)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn feature_names(&self) -> Vec<String> {
        self.transform.feature_names()
    }

    /// Transforms raw columns and predicts.
    pub fn predict(&self, frame: &Frame) -> Result<Prediction, MlError> {
        self.predict_bound(frame, None)
    }

    /// Where the transform finds each column it reads in frames named by
    /// `names`, or `None` when one of them is not there.
    pub fn bind(&self, names: &Names) -> Option<Binding> {
        let at = self.transform.columns.iter().map(|ct| names.iter().position(|n| **n == *ct.column));
        Some(Binding { names: names.clone(), at: at.collect::<Option<_>>()? })
    }

    /// [`predict`](Self::predict), the columns found by `binding`'s
    /// positions when the frame is named by its list.
    pub fn predict_bound(&self, frame: &Frame, binding: Option<&Binding>) -> Result<Prediction, MlError> {
        frame.check_finite()?;
        let at = binding.filter(|b| frame.has_names(&b.names)).map(|b| &b.at[..]);
        self.predict_rows(frame, 0..frame.rows(), &mut Matrix::zeros(0, 0), at)
    }

    /// Whether [`predict_numbers`](Self::predict_numbers) takes this model:
    /// a native one whose every input is a number written as a value or a
    /// bucket.
    pub fn takes_numbers(&self) -> bool {
        !matches!(self.estimator, Estimator::Onnx(_)) && self.transform.takes_numbers()
    }

    /// The prediction for one row given as numbers alone, in the order of
    /// `binding`'s names (a server's one-row request, read without a
    /// column per input): what [`predict_bound`](Self::predict_bound) gives
    /// for the same row as a frame, through the same transform and model.
    /// `None` when the model is not one [`takes_numbers`](Self::takes_numbers)
    /// takes, the row is not as long as the names, or a value is infinite
    /// (the frame's refusal names it).
    pub fn predict_numbers(&self, values: &[f64], binding: &Binding) -> Option<Result<Prediction, MlError>> {
        let onnx = matches!(self.estimator, Estimator::Onnx(_));
        if onnx || values.len() != binding.names.len() || values.iter().any(|x| x.is_infinite()) {
            return None;
        }
        let width = self.transform.width();
        // Not `Matrix::zeros`: calloc's bookkeeping cost more than this
        // row's few zeros, all of which the transform overwrites.
        let mut data = Vec::with_capacity(width);
        data.resize(width, 0.0);
        let mut x = Matrix { rows: 1, cols: width, data };
        self.transform.apply_numbers(values, &binding.at, &mut x.data)?;
        Some(self.predict_features(&x))
    }

    /// Predicts the rows `range` of `frame`, with their features written
    /// into `x`, a buffer the caller keeps from block to block.
    fn predict_rows(
        &self,
        frame: &Frame,
        range: std::ops::Range<usize>,
        x: &mut Matrix,
        at: Option<&[usize]>,
    ) -> Result<Prediction, MlError> {
        if let Estimator::Onnx(o) = &self.estimator {
            return if range == (0..frame.rows()) {
                o.predict(frame, &self.classes)
            } else {
                o.predict(&frame.slice(range.start, range.end), &self.classes)
            };
        }
        self.transform.apply_rows_at(frame, range, x, at)?;
        self.predict_features(x)
    }

    /// Predicts in blocks of rows on `threads` threads (transform and model
    /// both run per block, so memory stays bounded by the block size).
    pub fn predict_parallel(&self, frame: &Frame, threads: usize) -> Result<Prediction, MlError> {
        const BLOCK: usize = 65_536;
        frame.check_finite()?;
        let n = frame.rows();
        let blocks: Vec<(usize, usize)> =
            (0..n.div_ceil(BLOCK)).map(|b| (b * BLOCK, ((b + 1) * BLOCK).min(n))).collect();
        let threads = threads.clamp(1, blocks.len().max(1));
        let run = |k: usize| -> Result<Vec<(usize, Prediction)>, MlError> {
            let mut x = Matrix::zeros(0, 0);
            blocks
                .iter()
                .enumerate()
                .skip(k)
                .step_by(threads)
                .map(|(i, &(a, b))| Ok((i, self.predict_rows(frame, a..b, &mut x, None)?)))
                .collect()
        };
        let mut parts: Vec<(usize, Prediction)> = if threads == 1 {
            run(0)?
        } else {
            let results: Vec<Result<Vec<(usize, Prediction)>, MlError>> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..threads).map(|k| s.spawn(move || run(k))).collect();
                hs.into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(MlError::Training("prediction worker panicked".into()))))
                    .collect()
            });
            let mut all = Vec::new();
            for r in results {
                all.extend(r?);
            }
            all
        };
        parts.sort_by_key(|(i, _)| *i);
        let mut values = Vec::new();
        let mut probs = Vec::new();
        let mut labels = Vec::new();
        let mut cols = 0;
        for (_, p) in parts {
            match p {
                Prediction::Values(v) => values.extend(v),
                Prediction::Classes { probabilities, labels: l } => {
                    cols = probabilities.cols;
                    probs.extend(probabilities.data);
                    labels.extend(l);
                }
            }
        }
        Ok(match self.task {
            Task::Regression => Prediction::Values(values),
            Task::Classification => {
                let cols = if cols == 0 { self.classes.len() } else { cols };
                Prediction::Classes { probabilities: Matrix { rows: labels.len(), cols, data: probs }, labels }
            }
        })
    }

    /// Predicts from already transformed features.
    pub fn predict_features(&self, x: &Matrix) -> Result<Prediction, MlError> {
        Ok(match &self.estimator {
            Estimator::Onnx(_) => {
                return Err(MlError::Data("an imported ONNX model reads raw columns, not features".into()));
            }
            Estimator::Linear { weights, intercept, .. } => {
                Prediction::Values((0..x.rows).map(|i| dot(x.row(i), weights) + intercept).collect())
            }
            Estimator::Forest { forest, .. } => match self.task {
                Task::Regression => Prediction::Values(forest.predict(x)),
                Task::Classification if forest.classes > 0 => {
                    with_labels(Matrix { rows: x.rows, cols: forest.classes, data: forest.predict_proba(x) })
                }
                Task::Classification => {
                    let v = forest.predict(x);
                    with_labels(Matrix { rows: x.rows, cols: 2, data: v.iter().flat_map(|q| [1.0 - q, *q]).collect() })
                }
            },
            Estimator::Gbt(g) => {
                let raw = g.raw(x);
                match self.task {
                    Task::Regression => Prediction::Values(raw),
                    Task::Classification => with_labels(gbt_probabilities(&raw, x.rows, self.classes.len())),
                }
            }
            Estimator::Logistic { coef, intercept } => {
                with_labels(logistic_probabilities(x, coef, intercept, self.classes.len()))
            }
        })
    }
}

/// Class probabilities with the most probable class of each row.
fn with_labels(probabilities: Matrix) -> Prediction {
    let labels = argmax_rows(&probabilities);
    Prediction::Classes { probabilities, labels }
}

/// Boosted trees' raw scores (one per row, or `k` per row) as class probabilities.
fn gbt_probabilities(raw: &[f64], rows: usize, k: usize) -> Matrix {
    let mut p = Matrix::zeros(rows, k);
    for i in 0..rows {
        let out = &mut p.data[i * k..(i + 1) * k];
        if k == 2 {
            let q = sigmoid(raw[i]);
            out[0] = 1.0 - q;
            out[1] = q;
        } else {
            softmax(&raw[i * k..(i + 1) * k], out);
        }
    }
    p
}

/// Logistic regression's class probabilities: a sigmoid for one row of
/// coefficients, else a softmax over `k`.
fn logistic_probabilities(x: &Matrix, coef: &[Vec<f64>], intercept: &[f64], k: usize) -> Matrix {
    let mut p = Matrix::zeros(x.rows, k);
    for i in 0..x.rows {
        let row = x.row(i);
        let out = &mut p.data[i * k..(i + 1) * k];
        if coef.len() == 1 {
            let q = sigmoid(dot(row, &coef[0]) + intercept[0]);
            out[0] = 1.0 - q;
            out[1] = q;
        } else {
            let z: Vec<f64> = (0..k).map(|c| dot(row, &coef[c]) + intercept[c]).collect();
            softmax(&z, out);
        }
    }
    p
}

/// The most probable class per row; ties go to the first, as numpy's argmax.
fn argmax_rows(p: &Matrix) -> Vec<usize> {
    (0..p.rows)
        .map(|i| {
            let r = p.row(i);
            (0..p.cols).fold(0, |b, c| if r[c] > r[b] { c } else { b })
        })
        .collect()
}

fn estimator_name(e: &Estimator) -> &'static str {
    match e {
        Estimator::Linear { .. } => "linear",
        Estimator::Logistic { .. } => "logistic",
        Estimator::Gbt(_) => "gradient boosting",
        Estimator::Forest { .. } => "tree",
        Estimator::Onnx(_) => "onnx",
    }
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Column;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn model() -> (Model, Frame) {
        let mut f = Frame::new();
        f.push("x", Column::Num(vec![0.0, 1.0, 2.0])).unwrap();
        let t = crate::transform::fit(
            &f,
            &["x".into()],
            &BTreeMap::from([("x".into(), "standardize".into())]),
            crate::transform::LINEAR_DEFAULTS,
        )
        .unwrap();
        let est = Estimator::Logistic { coef: vec![vec![2.0]], intercept: vec![0.0] };
        (
            Model::new(
                Task::Classification,
                "y".into(),
                vec!["no".into(), "yes".into()],
                t,
                est,
                serde_json::json!({}),
            )
            .unwrap(),
            f,
        )
    }

    #[test]
    fn round_trips_and_predicts_the_same() {
        let (m, f) = model();
        let back = Model::from_json(&m.to_json()).unwrap();
        assert_eq!(back, m);
        let Prediction::Classes { probabilities, labels } = back.predict(&f).unwrap() else { panic!() };
        assert_eq!(labels, [0, 0, 1]);
        assert!((probabilities.get(1, 1) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn inconsistent_or_foreign_files_are_refused() {
        let (m, _) = model();
        let mut v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        v["estimator"]["coef"][0] = serde_json::json!([1.0, 2.0]);
        let e = Model::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err().to_string();
        assert!(e.contains("2 coefficients for 1 features"), "{e}");
        v["format"] = "flywheel.model/9".into();
        assert!(Model::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err().to_string().contains("not supported"));
        assert!(Model::from_json(b"\x80\x04pickle").unwrap_err().to_string().contains("not a Flywheel model"));
    }

    #[test]
    fn non_finite_fitted_numbers_are_refused_with_where_they_are() {
        let (m, f) = model();
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let est = Estimator::Logistic { coef: vec![vec![bad]], intercept: vec![0.0] };
            let e = Model::new(m.task, m.target.clone(), m.classes.clone(), m.transform.clone(), est, json!({}))
                .unwrap_err()
                .to_string();
            assert!(e.contains("`estimator.coef[0][0]` is not a finite number"), "{e}");
        }
        // And ±inf in the data is refused at prediction, as at training.
        let mut g = Frame::new();
        g.push("x", Column::Num(vec![0.0, f64::INFINITY])).unwrap();
        let e = m.predict(&g).unwrap_err().to_string();
        assert!(e.contains("column `x` holds inf on data row 2"), "{e}");
        assert!(m.predict(&f).is_ok());
    }
}

#[cfg(test)]
mod parallel_tests {
    use super::*;
    use crate::frame::{Column, Text};
    use std::collections::BTreeMap;

    #[test]
    fn parallel_blocks_predict_what_one_pass_predicts() {
        let n = 150_000;
        let mut f = Frame::new();
        f.push("x", Column::Num((0..n).map(|i| (i % 1000) as f64 / 100.0 - 5.0).collect())).unwrap();
        let codes: Vec<Option<&str>> = (0..n).map(|i| [Some("a"), Some("b"), None][i % 3]).collect();
        f.push("c", Column::Text(Text::encode(codes))).unwrap();
        let t =
            crate::transform::fit(&f, &["x".into(), "c".into()], &BTreeMap::new(), crate::transform::LINEAR_DEFAULTS)
                .unwrap();
        let w = t.width();
        let est =
            Estimator::Logistic { coef: vec![(0..w).map(|j| j as f64 * 0.3 - 0.5).collect()], intercept: vec![0.1] };
        let m =
            Model::new(Task::Classification, "y".into(), vec!["n".into(), "y".into()], t, est, serde_json::json!({}))
                .unwrap();
        assert_eq!(m.predict_parallel(&f, 3).unwrap(), m.predict(&f).unwrap());
    }

    /// A binary logistic model over `t`'s features, with set weights.
    fn logistic(t: crate::transform::Transform) -> Model {
        let est = Estimator::Logistic {
            coef: vec![(0..t.width()).map(|j| j as f64 * 0.3 - 0.5).collect()],
            intercept: vec![0.1],
        };
        Model::new(Task::Classification, "y".into(), vec!["n".into(), "y".into()], t, est, serde_json::json!({}))
            .unwrap()
    }

    #[test]
    fn a_bound_model_reads_its_columns_by_position_and_predicts_what_it_predicts_by_name() {
        let mut f = Frame::new();
        f.push("x", Column::Num(vec![0.5, -1.0, 2.0, f64::NAN])).unwrap();
        f.push("c", Column::Text(Text::encode([Some("a"), None, Some("b"), Some("a")]))).unwrap();
        let t =
            crate::transform::fit(&f, &["x".into(), "c".into()], &BTreeMap::new(), crate::transform::LINEAR_DEFAULTS)
                .unwrap();
        let m = logistic(t);
        // The frame's order is not the transform's: the binding says where.
        let names: Names = std::sync::Arc::new(vec!["c".into(), "x".into()]);
        let b = m.bind(&names).unwrap();
        assert_eq!(b.at, [1, 0]);
        let columns = |f: &Frame| vec![f.column("c").unwrap().clone(), f.column("x").unwrap().clone()];
        for i in 0..f.rows() {
            let one = f.slice(i, i + 1);
            let shared = Frame::with_names(names.clone(), columns(&one)).unwrap();
            assert_eq!(m.predict_bound(&shared, Some(&b)).unwrap(), m.predict(&one).unwrap(), "row {i}");
        }
        let all = Frame::with_names(names.clone(), columns(&f)).unwrap();
        assert_eq!(m.predict_bound(&all, Some(&b)).unwrap(), m.predict(&f).unwrap());
        // Columns given under each other's names are refused by their kind, as by name.
        let swapped = Frame::with_names(names.clone(), vec![columns(&f)[1].clone(), columns(&f)[0].clone()]).unwrap();
        let e = m.predict_bound(&swapped, Some(&b)).unwrap_err().to_string();
        assert!(e.contains("to hold numbers, but it holds text"), "{e}");
        assert!(m.bind(&std::sync::Arc::new(vec!["x".into()])).is_none(), "`c` is not there");
    }

    #[test]
    fn a_row_of_numbers_is_predicted_as_the_same_row_of_a_frame_to_the_bit() {
        let mut f = Frame::new();
        f.push("x", Column::Num(vec![0.5, -1.0, 2.0, f64::NAN, 7.5])).unwrap();
        f.push("y", Column::Num(vec![3.0, f64::NAN, 0.25, 1e6, -0.5])).unwrap();
        f.push("z", Column::Num(vec![1.0, 2.0, 3.0, 4.0, f64::NAN])).unwrap();
        let decl = BTreeMap::from([
            ("x".to_string(), "indicator | impute(median) | clip(-0.5, 4) | standardize".to_string()),
            ("y".to_string(), "indicator | log1p | minmax".to_string()),
            ("z".to_string(), "bucketize(2)".to_string()),
        ]);
        let t =
            crate::transform::fit(&f, &["x".into(), "y".into(), "z".into()], &decl, crate::transform::LINEAR_DEFAULTS)
                .unwrap();
        let m = logistic(t);
        assert!(m.takes_numbers());
        // The row's order is the names', not the transform's.
        let names: Names = std::sync::Arc::new(vec!["z".into(), "x".into(), "y".into()]);
        let b = m.bind(&names).unwrap();
        let bits = |p: &Prediction| match p {
            Prediction::Classes { probabilities, labels } => {
                (probabilities.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), labels.clone())
            }
            Prediction::Values(_) => unreachable!("a classifier"),
        };
        for i in 0..f.rows() {
            let value = |c: &str| match f.column(c).unwrap() {
                Column::Num(v) => v[i],
                Column::Text(_) => unreachable!("numbers"),
            };
            let row = [value("z"), value("x"), value("y")];
            let alone = m.predict_numbers(&row, &b).unwrap().unwrap();
            assert_eq!(bits(&alone), bits(&m.predict(&f.slice(i, i + 1)).unwrap()), "row {i}");
        }
        assert!(m.predict_numbers(&[1.0, f64::INFINITY, 0.0], &b).is_none(), "the frame names an infinity");
        assert!(m.predict_numbers(&[1.0, 2.0], &b).is_none(), "a short row");
        // A number read as a date, or a text input, is not a row of numbers.
        let dated = BTreeMap::from([("x".to_string(), "datetime(hour)".to_string())]);
        let t = crate::transform::fit(&f, &["x".into()], &dated, crate::transform::LINEAR_DEFAULTS).unwrap();
        let est = Estimator::Linear { algorithm: "ridge".into(), weights: vec![1.0; t.width()], intercept: 0.0 };
        let m = Model::new(Task::Regression, "y".into(), vec![], t, est, serde_json::json!({})).unwrap();
        assert!(!m.takes_numbers());
        let b = m.bind(&std::sync::Arc::new(vec!["x".into()])).unwrap();
        assert!(m.predict_numbers(&[0.5], &b).is_none());
    }
}
