//! ONNX models made elsewhere (scikit-learn through skl2onnx, PyTorch, …).
//!
//! A graph runs as a list of steps in the file's node order. The ONNX-ML
//! operators that tract refuses or runs slowly — tree ensembles, `ZipMap`,
//! `Scaler`, `ArrayFeatureExtractor`, `Imputer` — and the casts and
//! reshapes around them run here (`ops`, `trees`); every maximal run of
//! other nodes (matrix products, activations, linear classifiers, …) is cut
//! out as its own sub-graph and compiled by tract once, at load (`load`).
//! Loading reads the file's bytes only: external tensor data (paths to other
//! files) and unknown operators are refused with the node's name.

mod load;
pub(crate) mod ops;
pub mod trees;

use crate::MlError;
use ops::NativeOp;
use std::collections::HashMap;
use std::sync::Arc;
use tract_onnx::prelude::*;

pub use tract_onnx::prelude::{DatumType, Tensor};

/// A value's type and its size past the batch axis (`None` where unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DatumType,
    /// Dimensions after the first (batch) one; empty for a `[N]` tensor.
    pub dims: Vec<Option<usize>>,
}

impl TensorInfo {
    /// Columns of a `[N, k]` tensor (1 for `[N]`).
    pub fn width(&self) -> Option<usize> {
        match self.dims.as_slice() {
            [] => Some(1),
            [k] => *k,
            _ => None,
        }
    }
}

/// A graph output; `classes` is set when it is a `ZipMap` (one
/// probability per class label, in this order).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputInfo {
    pub info: TensorInfo,
    pub classes: Option<Vec<String>>,
}

enum Step {
    Native {
        op: NativeOp,
        node: String,
        inputs: Vec<String>,
        outputs: Vec<String>,
    },
    Tract {
        plan: Arc<TypedRunnableModel>,
        nodes: String,
        inputs: Vec<String>,
        outputs: Vec<String>,
        /// Outputs that are class indices standing for these text labels.
        relabel: Vec<(usize, Vec<String>)>,
    },
}

/// A loaded, checked and compiled ONNX graph.
pub struct OnnxModel {
    inputs: Vec<TensorInfo>,
    outputs: Vec<OutputInfo>,
    constants: HashMap<String, Arc<Tensor>>,
    steps: Vec<Step>,
    /// The class labels that classifier nodes declare (first one found).
    classes: Option<Vec<String>>,
    metadata: Vec<(String, String)>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel").field("inputs", &self.inputs).field("outputs", &self.outputs).finish()
    }
}

thread_local! {
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic inside it into `Err(())` without the panic
/// message on stderr (it is reported as an error instead). Other panics
/// still print as before.
/// An error of a run, naming what was running.
fn run_err(what: &str, e: String) -> MlError {
    MlError::Data(format!("ONNX {what}: {e}"))
}

/// Runs one cut-out sub-graph through tract on the values computed so far.
fn run_tract(
    plan: &Arc<TypedRunnableModel>,
    nodes: &str,
    inputs: &[String],
    values: &HashMap<&str, Arc<Tensor>>,
) -> Result<TVec<TValue>, MlError> {
    let args = inputs
        .iter()
        .map(|s| values.get(s.as_str()).map(|t| t.as_ref().clone().into_tvalue()))
        .collect::<Option<TVec<TValue>>>()
        .ok_or_else(|| run_err(&format!("nodes {nodes}"), "an input of these nodes has no value".into()))?;
    // tract asserts on shapes a damaged graph can violate; loading a model
    // must fail, never abort the process.
    match caught(|| plan.run(args)) {
        Ok(r) => r.map_err(|e| run_err(&format!("nodes {nodes}"), format!("{e:#}"))),
        Err(_) => Err(run_err(
            &format!("nodes {nodes}"),
            "the ONNX runtime (tract) stopped on an internal check: the graph's shapes or weights are inconsistent"
                .into(),
        )),
    }
}

fn caught<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(|c| c.get()) {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    r.map_err(|_| ())
}

/// ONNX `TensorProto.DataType` codes this runtime feeds and reads.
fn dtype_of(code: i32) -> Option<DatumType> {
    Some(match code {
        1 => DatumType::F32,
        6 => DatumType::I32,
        7 => DatumType::I64,
        8 => DatumType::String,
        9 => DatumType::Bool,
        11 => DatumType::F64,
        _ => return None,
    })
}

impl OnnxModel {
    pub fn inputs(&self) -> &[TensorInfo] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[OutputInfo] {
        &self.outputs
    }

    /// Class labels declared by a classifier or `ZipMap` node, as text.
    pub fn classes(&self) -> Option<&[String]> {
        self.classes.as_deref()
    }

    /// The file's `metadata_props`.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The values a run starts from: the fed inputs, checked against the
    /// graph's input types, and the graph's constants.
    fn fed(&self, feeds: Vec<Tensor>) -> Result<HashMap<&str, Arc<Tensor>>, MlError> {
        if feeds.len() != self.inputs.len() {
            return Err(run_err("inputs", format!("{} tensors for {} inputs", feeds.len(), self.inputs.len())));
        }
        let mut values: HashMap<&str, Arc<Tensor>> = HashMap::new();
        for (info, t) in self.inputs.iter().zip(feeds) {
            if t.datum_type() != info.dtype {
                return Err(run_err(
                    "inputs",
                    format!("`{}` wants {:?} values, got {:?}", info.name, info.dtype, t.datum_type()),
                ));
            }
            values.insert(info.name.as_str(), Arc::new(t));
        }
        for (k, t) in &self.constants {
            values.insert(k.as_str(), t.clone());
        }
        Ok(values)
    }

    /// Runs the graph on `feeds` (one tensor per input, in `inputs()`
    /// order) and returns the graph's outputs in order.
    pub fn run(&self, feeds: Vec<Tensor>) -> Result<Vec<Tensor>, MlError> {
        let mut values = self.fed(feeds)?;
        for step in &self.steps {
            match step {
                Step::Native { op, node, inputs, outputs } => {
                    let args: Vec<Option<&Tensor>> =
                        inputs.iter().map(|s| values.get(s.as_str()).map(|t| t.as_ref())).collect();
                    let out = op.run(&args).map_err(|e| run_err(&format!("node {node}"), e))?;
                    for (name, t) in outputs.iter().zip(out) {
                        values.insert(name.as_str(), Arc::new(t));
                    }
                }
                Step::Tract { plan, nodes, inputs, outputs, relabel } => {
                    let out = run_tract(plan, nodes, inputs, &values)?;
                    for (k, (name, t)) in outputs.iter().zip(out).enumerate() {
                        let mut t = t.into_tensor();
                        if let Some((_, names)) = relabel.iter().find(|(j, _)| *j == k) {
                            t = ops::relabel(&t, names).map_err(|e| run_err(&format!("nodes {nodes}"), e))?;
                        }
                        values.insert(name.as_str(), Arc::new(t));
                    }
                }
            }
        }
        self.outputs
            .iter()
            .map(|o| {
                values
                    .get(o.info.name.as_str())
                    .map(|t| t.as_ref().clone())
                    .ok_or_else(|| run_err("outputs", format!("`{}` was not computed", o.info.name)))
            })
            .collect()
    }
}
