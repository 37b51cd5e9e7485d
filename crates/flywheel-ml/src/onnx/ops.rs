//! The operators Flywheel runs itself: ONNX-ML's tree ensembles, `ZipMap`,
//! `Scaler`, `Imputer` and `ArrayFeatureExtractor`, and the `Cast`,
//! `Reshape` and `Identity` nodes that surround them in scikit-learn
//! exports (often on label tensors of text, which tract does not cast).

use super::TensorInfo;
use super::trees::{Aggregate, Attributes, Ensemble, Kind, Labels, Post};
use std::collections::HashMap;
use tract_onnx::pb;
use tract_onnx::prelude::{DatumType, Tensor, tract_ndarray};

pub enum NativeOp {
    Trees(Box<Ensemble>),
    ZipMap { classes: Vec<String> },
    Scaler { offset: Vec<f32>, scale: Vec<f32> },
    Imputer { values: Vec<f32>, replaced: f32 },
    ArrayFeatureExtractor,
    Cast { to: DatumType },
    Reshape,
    Identity,
}

const ML: &str = "ai.onnx.ml";

/// Whether Flywheel runs this node itself (tract runs the others).
pub fn is_native(n: &pb::NodeProto) -> bool {
    match n.domain.as_str() {
        ML => matches!(
            n.op_type.as_str(),
            "TreeEnsembleClassifier"
                | "TreeEnsembleRegressor"
                | "ZipMap"
                | "Scaler"
                | "Imputer"
                | "ArrayFeatureExtractor"
        ),
        "" | "ai.onnx" => matches!(n.op_type.as_str(), "Cast" | "Reshape" | "Identity"),
        _ => false,
    }
}

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn ints(n: &pb::NodeProto, name: &str) -> Vec<i64> {
    attr(n, name).map(|a| a.ints.clone()).unwrap_or_default()
}

fn text(n: &pb::NodeProto, name: &str) -> Option<String> {
    attr(n, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

fn strings(n: &pb::NodeProto, name: &str) -> Vec<String> {
    attr(n, name)
        .map(|a| a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
        .unwrap_or_default()
}

/// A float list, from `name` or its opset-3 `name_as_tensor` (doubles).
fn floats(n: &pb::NodeProto, name: &str) -> Result<Vec<f64>, String> {
    if let Some(t) = attr(n, &format!("{name}_as_tensor")).and_then(|a| a.t.as_ref()) {
        let t = tract_onnx::tensor::load_tensor(&tract_onnx::data_resolver::FopenDataResolver, t, None)
            .map_err(|e| format!("attribute {name}_as_tensor: {e}"))?;
        return f64s(&t);
    }
    Ok(attr(n, name).map(|a| a.floats.iter().map(|&v| v as f64).collect()).unwrap_or_default())
}

/// Class labels declared on a classifier node, as text.
pub fn attr_labels(n: &pb::NodeProto) -> Option<Vec<String>> {
    labels(n).map(|l| l.as_text())
}

fn labels(n: &pb::NodeProto) -> Option<Labels> {
    for name in ["classlabels_int64s", "classlabels_ints"] {
        let v = ints(n, name);
        if !v.is_empty() {
            return Some(Labels::Ints(v));
        }
    }
    let s = strings(n, "classlabels_strings");
    (!s.is_empty()).then_some(Labels::Strings(s))
}

fn post(n: &pb::NodeProto) -> Result<Post, String> {
    Ok(match text(n, "post_transform").as_deref().unwrap_or("NONE") {
        "NONE" => Post::None,
        "LOGISTIC" => Post::Logistic,
        "SOFTMAX" => Post::Softmax,
        "SOFTMAX_ZERO" => Post::SoftmaxZero,
        other => {
            return Err(format!("post_transform {other} is not supported (NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO)"));
        }
    })
}

pub fn f64s(t: &Tensor) -> Result<Vec<f64>, String> {
    let t = t.cast_to::<f64>().map_err(|e| e.to_string())?;
    let view = t.to_plain_array_view::<f64>().map_err(|e| e.to_string())?;
    Ok(view.iter().copied().collect())
}

fn f32s(t: &Tensor) -> Result<Vec<f32>, String> {
    let t = t.cast_to::<f32>().map_err(|e| e.to_string())?;
    let view = t.to_plain_array_view::<f32>().map_err(|e| e.to_string())?;
    Ok(view.iter().copied().collect())
}

pub fn tensor<T: tract_onnx::prelude::Datum>(shape: &[usize], data: Vec<T>) -> Result<Tensor, String> {
    tract_ndarray::ArrayD::from_shape_vec(tract_ndarray::IxDyn(shape), data)
        .map(Tensor::from)
        .map_err(|e| e.to_string())
}

/// Class indices → their text labels.
pub fn relabel(t: &Tensor, names: &[String]) -> Result<Tensor, String> {
    let idx = f64s(t)?;
    let labels = idx
        .iter()
        .map(|&i| names.get(i as usize).cloned().ok_or_else(|| format!("class index {i} of {}", names.len())))
        .collect::<Result<Vec<_>, _>>()?;
    tensor(t.shape(), labels)
}

/// Rows and columns of a `[N]` or `[N, k]` tensor.
fn matrix_shape(t: &Tensor) -> Result<(usize, usize), String> {
    match t.shape() {
        [n] => Ok((*n, 1)),
        [n, k] => Ok((*n, *k)),
        s => Err(format!("expected a [rows, columns] tensor, got shape {s:?}")),
    }
}

impl NativeOp {
    /// The op for a node Flywheel runs itself, or `None` for tract's.
    pub fn parse(n: &pb::NodeProto, inputs: &[Option<&TensorInfo>]) -> Result<Option<NativeOp>, String> {
        if !is_native(n) {
            return Ok(None);
        }
        let op = match n.op_type.as_str() {
            "TreeEnsembleClassifier" | "TreeEnsembleRegressor" => {
                let single = inputs.first().copied().flatten().is_none_or(|i| i.dtype != DatumType::F64);
                NativeOp::Trees(Box::new(Ensemble::new(tree_attributes(n)?, single)?))
            }
            "ZipMap" => NativeOp::ZipMap { classes: labels(n).ok_or("ZipMap declares no class labels")?.as_text() },
            "Scaler" => {
                let offset: Vec<f32> = floats(n, "offset")?.into_iter().map(|v| v as f32).collect();
                let scale: Vec<f32> = floats(n, "scale")?.into_iter().map(|v| v as f32).collect();
                NativeOp::Scaler { offset, scale }
            }
            "Imputer" => {
                let values: Vec<f32> = floats(n, "imputed_value_floats")?.into_iter().map(|v| v as f32).collect();
                if values.is_empty() {
                    return Err("only imputed_value_floats is supported".into());
                }
                let replaced = attr(n, "replaced_value_float").map(|a| a.f).unwrap_or(f32::NAN);
                NativeOp::Imputer { values, replaced }
            }
            "ArrayFeatureExtractor" => NativeOp::ArrayFeatureExtractor,
            "Cast" => {
                let code = attr(n, "to").map(|a| a.i).unwrap_or(0) as i32;
                let to = super::dtype_of(code).ok_or_else(|| format!("Cast to type {code} is not supported"))?;
                NativeOp::Cast { to }
            }
            "Reshape" => NativeOp::Reshape,
            _ => NativeOp::Identity,
        };
        Ok(Some(op))
    }

    /// Class labels this node declares (classifiers and `ZipMap`).
    pub fn classes(&self) -> Option<Vec<String>> {
        match self {
            NativeOp::Trees(e) => match &e.kind {
                Kind::Classifier { labels, .. } => Some(labels.as_text()),
                Kind::Regressor { .. } => None,
            },
            NativeOp::ZipMap { classes } => Some(classes.clone()),
            _ => None,
        }
    }

    /// The types and widths of the node's outputs, checked against its
    /// inputs where they are known.
    pub fn output_infos(
        &self,
        inputs: &[Option<&TensorInfo>],
        constants: &HashMap<String, std::sync::Arc<Tensor>>,
        n: &pb::NodeProto,
    ) -> Result<Vec<TensorInfo>, String> {
        let first = inputs.first().copied().flatten();
        let named = |k: usize, dtype: DatumType, dims: Vec<Option<usize>>| TensorInfo {
            name: n.output.get(k).cloned().unwrap_or_default(),
            dtype,
            dims,
        };
        if let Some(w) = first.and_then(|i| i.width()) {
            self.check_width(w)?;
        }
        Ok(match self {
            NativeOp::Trees(e) => match &e.kind {
                Kind::Classifier { labels, .. } => {
                    let dt = if matches!(labels, Labels::Ints(_)) { DatumType::I64 } else { DatumType::String };
                    vec![named(0, dt, vec![]), named(1, DatumType::F32, vec![Some(labels.len())])]
                }
                Kind::Regressor { targets, .. } => vec![named(0, DatumType::F32, vec![Some(*targets)])],
            },
            NativeOp::Scaler { .. } | NativeOp::Imputer { .. } => {
                vec![named(0, DatumType::F32, first.map(|i| i.dims.clone()).unwrap_or(vec![None]))]
            }
            NativeOp::ZipMap { classes } => vec![named(0, DatumType::F32, vec![Some(classes.len())])],
            NativeOp::ArrayFeatureExtractor => {
                let dt = first
                    .map(|i| i.dtype)
                    .or_else(|| n.input.first().and_then(|s| constants.get(s)).map(|t| t.datum_type()))
                    .unwrap_or(DatumType::F32);
                vec![named(0, dt, vec![None])]
            }
            NativeOp::Cast { to } => vec![named(0, *to, first.map(|i| i.dims.clone()).unwrap_or_default())],
            NativeOp::Reshape => {
                let shape = n.input.get(1).and_then(|s| constants.get(s)).map(|t| f64s(t)).transpose()?;
                let dims = match shape.as_deref() {
                    Some([-1.0]) => vec![],
                    Some([-1.0, k]) if *k > 0.0 => vec![Some(*k as usize)],
                    _ => vec![None],
                };
                let dt = first.map(|i| i.dtype).unwrap_or(DatumType::F32);
                vec![named(0, dt, dims)]
            }
            NativeOp::Identity => vec![named(
                0,
                first.map(|i| i.dtype).unwrap_or(DatumType::F32),
                first.map(|i| i.dims.clone()).unwrap_or_default(),
            )],
        })
    }

    /// Refuses a first input of `w` columns that the node's attributes do not fit.
    fn check_width(&self, w: usize) -> Result<(), String> {
        match self {
            NativeOp::Trees(e) if w < e.width() => {
                Err(format!("the trees read feature {} but the input has {w} columns", e.width() - 1))
            }
            NativeOp::Scaler { offset, scale } => {
                for (what, v) in [("offset", offset), ("scale", scale)] {
                    if v.len() != 1 && v.len() != w {
                        return Err(format!("{} {what} values for {w} columns", v.len()));
                    }
                }
                Ok(())
            }
            NativeOp::Imputer { values, .. } if values.len() != 1 && values.len() != w => {
                Err(format!("{} imputed values for {w} columns", values.len()))
            }
            NativeOp::ZipMap { classes } if w != classes.len() => {
                Err(format!("{} class labels for {w} probability columns", classes.len()))
            }
            _ => Ok(()),
        }
    }

    pub fn run(&self, args: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
        let arg = |k: usize| args.get(k).copied().flatten().ok_or_else(|| format!("input {k} is missing"));
        let x = arg(0)?;
        match self {
            NativeOp::Trees(e) => run_trees(e, x),
            NativeOp::Scaler { offset, scale } => {
                let (rows, cols) = matrix_shape(x)?;
                let mut v = f32s(x)?;
                let pick = |p: &[f32], j: usize| if p.len() == 1 { p[0] } else { p.get(j).copied().unwrap_or(0.0) };
                for i in 0..rows {
                    for j in 0..cols {
                        let c = &mut v[i * cols + j];
                        *c = (*c - pick(offset, j)) * pick(scale, j);
                    }
                }
                Ok(vec![tensor(x.shape(), v)?])
            }
            NativeOp::Imputer { values, replaced } => {
                let (rows, cols) = matrix_shape(x)?;
                let mut v = f32s(x)?;
                for i in 0..rows {
                    for j in 0..cols {
                        let c = &mut v[i * cols + j];
                        if (replaced.is_nan() && c.is_nan()) || *c == *replaced {
                            *c = if values.len() == 1 { values[0] } else { values[j] };
                        }
                    }
                }
                Ok(vec![tensor(x.shape(), v)?])
            }
            NativeOp::ZipMap { .. } | NativeOp::Identity => Ok(vec![x.clone()]),
            NativeOp::Cast { to } => {
                Ok(vec![x.cast_to_dt(*to).map_err(|e| format!("cannot cast to {to:?}: {e}"))?.into_owned()])
            }
            NativeOp::Reshape => reshape(x, arg(1)?),
            NativeOp::ArrayFeatureExtractor => extract(x, arg(1)?),
        }
    }
}

/// A tree ensemble over a `[rows, cols]` input: the values, or a label and
/// the class scores.
fn run_trees(e: &Ensemble, x: &Tensor) -> Result<Vec<Tensor>, String> {
    let (rows, cols) = matrix_shape(x)?;
    if cols < e.width() {
        return Err(format!("the trees read feature {} but the input has {cols} columns", e.width() - 1));
    }
    let values = f64s(x)?;
    let k = e.outputs();
    let mut out = vec![0.0; rows * k];
    match &e.kind {
        Kind::Regressor { .. } => {
            par_rows(rows, cols, k, &values, &mut out, None, |x, r, o, _| e.regress(x, r, cols, o))
        }
        Kind::Classifier { labels, .. } => {
            let mut idx = vec![0usize; rows];
            par_rows(rows, cols, k, &values, &mut out, Some(&mut idx), |x, r, o, l| {
                e.classify(x, r, cols, l.unwrap_or(&mut []), o)
            });
            let probs = tensor(&[rows, k], out.into_iter().map(|v| v as f32).collect())?;
            let label = match labels {
                Labels::Ints(v) => tensor(&[rows], idx.iter().map(|&i| v[i]).collect())?,
                Labels::Strings(v) => tensor(&[rows], idx.iter().map(|&i| v[i].clone()).collect())?,
            };
            return Ok(vec![label, probs]);
        }
    }
    Ok(vec![tensor(&[rows, k], out.into_iter().map(|v| v as f32).collect())?])
}

/// ONNX `Reshape`: 0 keeps the input's dimension, -1 takes what is left.
fn reshape(x: &Tensor, spec: &Tensor) -> Result<Vec<Tensor>, String> {
    let spec: Vec<i64> = f64s(spec)?.into_iter().map(|v| v as i64).collect();
    let volume: usize = x.shape().iter().product();
    let known: usize = spec
        .iter()
        .enumerate()
        .map(|(i, &d)| if d == 0 { x.shape().get(i).copied().unwrap_or(1) } else { d.max(1) as usize })
        .product();
    let shape: Vec<usize> = spec
        .iter()
        .enumerate()
        .map(|(i, &d)| match d {
            -1 => volume / known.max(1),
            0 => x.shape().get(i).copied().unwrap_or(1),
            d => d as usize,
        })
        .collect();
    x.clone().into_shape(&shape).map(|t| vec![t]).map_err(|e| format!("cannot reshape to {spec:?}: {e}"))
}

/// ONNX-ML `ArrayFeatureExtractor`: the given indices of the last axis.
fn extract(x: &Tensor, indices: &Tensor) -> Result<Vec<Tensor>, String> {
    let idx: Vec<usize> = f64s(indices)?.into_iter().map(|v| v as usize).collect();
    let shape = x.shape();
    let last = *shape.last().ok_or("cannot index a scalar")?;
    if let Some(bad) = idx.iter().find(|&&i| i >= last) {
        return Err(format!("index {bad} is outside the {last} values"));
    }
    let outer: usize = shape[..shape.len() - 1].iter().product();
    let mut out_shape: Vec<usize> = if shape.len() == 1 { vec![1] } else { shape[..shape.len() - 1].to_vec() };
    out_shape.push(idx.len());
    let x = x.clone().into_shape(&[outer, last]).map_err(|e| e.to_string())?;
    let picked = (0..outer).flat_map(|r| idx.iter().map(move |&c| (r, c)));
    macro_rules! gather {
        ($t:ty) => {{
            let v = x.to_plain_array_view::<$t>().map_err(|e| e.to_string())?;
            tensor(&out_shape, picked.map(|(r, c)| v[[r, c]].clone()).collect::<Vec<$t>>())?
        }};
    }
    let t = match x.datum_type() {
        DatumType::F32 => gather!(f32),
        DatumType::F64 => gather!(f64),
        DatumType::I64 => gather!(i64),
        DatumType::I32 => gather!(i32),
        DatumType::String => gather!(String),
        other => return Err(format!("cannot index {other:?} values")),
    };
    Ok(vec![t])
}

/// A tree ensemble node's attributes, the classifier's labels or the
/// regressor's targets and aggregate included.
fn tree_attributes(n: &pb::NodeProto) -> Result<Attributes, String> {
    let (leaf, kind) = if n.op_type == "TreeEnsembleClassifier" {
        let labels = labels(n).ok_or("the classifier declares no class labels")?;
        ("class", Kind::Classifier { labels, one_class: false, all_positive: false })
    } else {
        let aggregate = match text(n, "aggregate_function").as_deref().unwrap_or("SUM") {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => return Err(format!("aggregate_function {other} is not supported")),
        };
        let targets = attr(n, "n_targets").map(|a| a.i).unwrap_or(1).max(1) as usize;
        ("target", Kind::Regressor { targets, aggregate })
    };
    Ok(Attributes {
        tree_ids: ints(n, "nodes_treeids"),
        node_ids: ints(n, "nodes_nodeids"),
        features: ints(n, "nodes_featureids"),
        thresholds: floats(n, "nodes_values")?,
        modes: strings(n, "nodes_modes"),
        true_ids: ints(n, "nodes_truenodeids"),
        false_ids: ints(n, "nodes_falsenodeids"),
        missing_true: ints(n, "nodes_missing_value_tracks_true"),
        leaf_tree_ids: ints(n, &format!("{leaf}_treeids")),
        leaf_node_ids: ints(n, &format!("{leaf}_nodeids")),
        leaf_targets: ints(n, &format!("{leaf}_ids")),
        leaf_weights: floats(n, &format!("{leaf}_weights"))?,
        base: floats(n, "base_values")?,
        post: post(n)?,
        kind,
    })
}

/// Runs `f` on blocks of rows on the machine's cores (large batches only).
fn par_rows(
    rows: usize,
    cols: usize,
    k: usize,
    x: &[f64],
    out: &mut [f64],
    labels: Option<&mut [usize]>,
    f: impl Fn(&[f64], usize, &mut [f64], Option<&mut [usize]>) + Sync,
) {
    const MIN_BLOCK: usize = 4096;
    let threads = crate::par::cores();
    if threads == 1 || rows < 2 * MIN_BLOCK {
        f(x, rows, out, labels);
        return;
    }
    let block = rows.div_ceil(threads).max(MIN_BLOCK);
    std::thread::scope(|s| {
        let mut labels = labels;
        for (b, o) in out.chunks_mut(block * k).enumerate() {
            let r = o.len() / k;
            let xs = &x[b * block * cols..(b * block + r) * cols];
            let l = labels.as_mut().map(|l| {
                let (head, tail) = std::mem::take(l).split_at_mut(r);
                *l = tail;
                head
            });
            let f = &f;
            s.spawn(move || f(xs, r, o, l));
        }
    });
}
