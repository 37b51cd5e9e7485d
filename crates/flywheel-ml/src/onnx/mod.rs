//! ONNX models made elsewhere (scikit-learn through skl2onnx, PyTorch, …).
//!
//! A graph runs as a list of steps in the file's node order. The ONNX-ML
//! operators that tract refuses or runs slowly — tree ensembles, `ZipMap`,
//! `Scaler`, `ArrayFeatureExtractor`, `Imputer` — and the casts and
//! reshapes around them run here (`ops`, `trees`); every maximal run of
//! other nodes (matrix products, activations, linear classifiers, …) is cut
//! out as its own sub-graph and compiled by tract once, at load. Loading
//! reads the file's bytes only: external tensor data (paths to other files)
//! and unknown operators are refused with the node's name.

pub(crate) mod ops;
pub mod trees;

use crate::MlError;
use ops::NativeOp;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tract_onnx::pb;
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

fn format_err(msg: impl std::fmt::Display) -> MlError {
    MlError::Format(format!("not a usable ONNX model: {msg}"))
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

fn code_of(dt: DatumType) -> i32 {
    match dt {
        DatumType::F32 => 1,
        DatumType::I32 => 6,
        DatumType::I64 => 7,
        DatumType::String => 8,
        DatumType::Bool => 9,
        DatumType::F64 => 11,
        _ => 0,
    }
}

fn value_info(v: &pb::ValueInfoProto) -> Result<TensorInfo, MlError> {
    use pb::tensor_shape_proto::dimension::Value;
    use pb::type_proto::Value as T;
    let Some(T::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(format_err(format!("input `{}` is not a tensor (sequences and maps cannot be fed)", v.name)));
    };
    let dtype = dtype_of(t.elem_type).ok_or_else(|| {
        format_err(format!("input `{}` has element type {} which is not supported", v.name, t.elem_type))
    })?;
    let dims: Vec<Option<usize>> = t
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(Value::DimValue(k)) if k > 0 => Some(k as usize),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if dims.is_empty() || dims.len() > 2 {
        return Err(format_err(format!(
            "input `{}` has {} dimensions; Flywheel feeds [rows] or [rows, columns] tensors",
            v.name,
            dims.len()
        )));
    }
    Ok(TensorInfo { name: v.name.clone(), dtype, dims: dims[1..].to_vec() })
}

fn shaped_value_info(info: &TensorInfo) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let mut dim = vec![Dimension { value: Some(Value::DimParam("N".into())), ..Default::default() }];
    for d in &info.dims {
        dim.push(Dimension {
            value: Some(match d {
                Some(k) => Value::DimValue(*k as i64),
                None => Value::DimParam(format!("{}_{}", info.name, dim.len())),
            }),
            ..Default::default()
        });
    }
    pb::ValueInfoProto {
        name: info.name.clone(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: code_of(info.dtype),
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn uses_external_data(t: &pb::TensorProto) -> bool {
    t.data_location == Some(1) || !t.external_data.is_empty()
}

fn node_label(n: &pb::NodeProto) -> String {
    if n.name.is_empty() { format!("`{}`", n.op_type) } else { format!("`{}` ({})", n.name, n.op_type) }
}

impl OnnxModel {
    /// Parses, checks and compiles an ONNX file's bytes.
    pub fn load(bytes: &[u8]) -> Result<OnnxModel, MlError> {
        use tract_onnx::prelude::Framework;
        let onnx = tract_onnx::onnx();
        let proto = onnx
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|e| format_err(format!("the bytes are not an ONNX protobuf ({e})")))?;
        let Some(graph) = proto.graph.as_ref().filter(|g| !g.node.is_empty() && proto.ir_version > 0) else {
            return Err(format_err("the file holds no graph (is it an ONNX file?)"));
        };
        for t in &graph.initializer {
            if uses_external_data(t) {
                return Err(format_err(format!(
                    "tensor `{}` is stored in an external file; save the model with its weights inside \
                     (onnx.save_model(..., save_as_external_data=False))",
                    t.name
                )));
            }
        }
        let mut constants = HashMap::new();
        for t in &graph.initializer {
            let tensor = tract_onnx::tensor::load_tensor(&tract_onnx::data_resolver::FopenDataResolver, t, None)
                .map_err(|e| format_err(format!("initializer `{}`: {e}", t.name)))?;
            constants.insert(t.name.clone(), Arc::new(tensor));
        }
        let initializer_names: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<TensorInfo> = graph
            .input
            .iter()
            .filter(|v| !initializer_names.contains(v.name.as_str()))
            .map(value_info)
            .collect::<Result<_, _>>()?;
        if inputs.is_empty() {
            return Err(format_err("the graph has no inputs"));
        }

        // Which tensors are read after each node: a tract segment exports
        // only what later steps or the graph's outputs use.
        let graph_outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
        let mut known: HashMap<String, TensorInfo> = inputs.iter().map(|i| (i.name.clone(), i.clone())).collect();
        let mut steps = Vec::new();
        let mut classes: Option<Vec<String>> = None;
        let mut zipmaps: HashMap<String, Vec<String>> = HashMap::new();
        let nodes = &graph.node;
        let mut i = 0;
        while i < nodes.len() {
            let node = &nodes[i];
            for input in node.input.iter().filter(|s| !s.is_empty()) {
                if !known.contains_key(input) && !constants.contains_key(input) {
                    return Err(format_err(format!(
                        "node {} reads `{input}`, which no earlier node, input or initializer makes \
                         (nodes must be in topological order)",
                        node_label(node)
                    )));
                }
            }
            let in_infos: Vec<Option<&TensorInfo>> = node.input.iter().map(|s| known.get(s)).collect();
            if let Some(op) =
                NativeOp::parse(node, &in_infos).map_err(|e| format_err(format!("node {}: {e}", node_label(node))))?
            {
                let out = op
                    .output_infos(&in_infos, &constants, node)
                    .map_err(|e| format_err(format!("node {}: {e}", node_label(node))))?;
                if let Some(c) = op.classes() {
                    if classes.is_none() {
                        classes = Some(c.clone());
                    }
                    if matches!(op, NativeOp::ZipMap { .. }) {
                        zipmaps.insert(node.output[0].clone(), c);
                    }
                }
                for info in out {
                    known.insert(info.name.clone(), info);
                }
                steps.push(Step::Native {
                    op,
                    node: node_label(node),
                    inputs: node.input.clone(),
                    outputs: node.output.clone(),
                });
                i += 1;
                continue;
            }
            // A run of nodes for tract: up to the next native node.
            let start = i;
            while i < nodes.len() && !ops::is_native(&nodes[i]) {
                i += 1;
            }
            let run = &nodes[start..i];
            if let Some(c) = run.iter().find_map(ops::attr_labels) {
                classes.get_or_insert(c);
            }
            let produced: HashSet<&str> = run.iter().flat_map(|n| n.output.iter().map(|s| s.as_str())).collect();
            let mut seg_inputs: Vec<String> = Vec::new();
            for n in run {
                for s in n.input.iter().filter(|s| !s.is_empty()) {
                    if !produced.contains(s.as_str()) && !constants.contains_key(s) && !seg_inputs.contains(s) {
                        seg_inputs.push(s.clone());
                    }
                }
            }
            let read_later: HashSet<&str> = nodes[i..]
                .iter()
                .flat_map(|n| n.input.iter().map(|s| s.as_str()))
                .chain(graph_outputs.iter().map(|s| s.as_str()))
                .collect();
            let seg_outputs: Vec<String> = run
                .iter()
                .flat_map(|n| n.output.iter())
                .filter(|s| !s.is_empty() && read_later.contains(s.as_str()))
                .cloned()
                .collect();
            let label = run.iter().map(node_label).collect::<Vec<_>>().join(", ");
            // tract's linear classifier computes in the label's type and
            // cannot with text labels: give it class indices, and map its
            // label output back to the text after the run.
            let mut run = run.to_vec();
            let mut relabels: Vec<(String, Vec<String>)> = Vec::new();
            for n in run.iter_mut().filter(|n| n.op_type == "LinearClassifier") {
                if let Some(a) = n.attribute.iter_mut().find(|a| a.name == "classlabels_strings") {
                    let names: Vec<String> =
                        a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect();
                    *a = pb::AttributeProto {
                        name: "classlabels_ints".into(),
                        r#type: pb::attribute_proto::AttributeType::Ints as i32,
                        ints: (0..names.len() as i64).collect(),
                        ..Default::default()
                    };
                    relabels.push((n.output[0].clone(), names));
                }
            }
            for (out, _) in &relabels {
                if run.iter().any(|n| n.input.contains(out)) {
                    return Err(format_err(format!(
                        "nodes {label}: the text labels of `{out}` are used inside a tract sub-graph"
                    )));
                }
            }
            // A node may read a value nothing before it defines (a damaged
            // file): say which, rather than index into the map.
            let seg_infos = seg_inputs
                .iter()
                .map(|s| {
                    known.get(s).map(shaped_value_info).ok_or_else(|| {
                        format_err(format!(
                            "nodes {label} read `{s}`, which no input, initializer or earlier node defines"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let run = run.as_slice();
            let used: HashSet<&str> = run.iter().flat_map(|n| n.input.iter().map(|s| s.as_str())).collect();
            let sub = pb::ModelProto {
                ir_version: proto.ir_version,
                opset_import: proto.opset_import.clone(),
                graph: Some(pb::GraphProto {
                    node: run.to_vec(),
                    name: "segment".into(),
                    initializer: graph.initializer.iter().filter(|t| used.contains(t.name.as_str())).cloned().collect(),
                    input: seg_infos,
                    output: seg_outputs
                        .iter()
                        .map(|s| pb::ValueInfoProto { name: s.clone(), ..Default::default() })
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let typed = onnx
                .model_for_proto_model(&sub)
                .and_then(|m| m.into_optimized())
                .map_err(|e| format_err(format!("nodes {label}: {e:#}")))?;
            for (k, name) in seg_outputs.iter().enumerate() {
                let fact = typed.output_fact(k).map_err(|e| format_err(format!("nodes {label}: {e}")))?;
                let dims = fact.shape.iter().skip(1).map(|d| d.to_i64().ok().map(|k| k as usize)).collect();
                known.insert(name.clone(), TensorInfo { name: name.clone(), dtype: fact.datum_type, dims });
            }
            let plan = typed.into_runnable().map_err(|e| format_err(format!("nodes {label}: {e}")))?;
            let relabel: Vec<(usize, Vec<String>)> = relabels
                .into_iter()
                .filter_map(|(out, names)| seg_outputs.iter().position(|s| *s == out).map(|k| (k, names)))
                .collect();
            for (k, _) in &relabel {
                if let Some(info) = known.get_mut(&seg_outputs[*k]) {
                    info.dtype = DatumType::String;
                }
            }
            steps.push(Step::Tract { plan, nodes: label, inputs: seg_inputs, outputs: seg_outputs, relabel });
        }
        let outputs = graph_outputs
            .iter()
            .map(|name| {
                let info = known
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format_err(format!("graph output `{name}` is made by no node")))?;
                Ok(OutputInfo { info, classes: zipmaps.get(name).cloned() })
            })
            .collect::<Result<_, MlError>>()?;
        let metadata = proto.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect();
        Ok(OnnxModel { inputs, outputs, constants, steps, classes, metadata })
    }

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

    /// Runs the graph on `feeds` (one tensor per input, in `inputs()`
    /// order) and returns the graph's outputs in order.
    pub fn run(&self, feeds: Vec<Tensor>) -> Result<Vec<Tensor>, MlError> {
        let run_err = |what: &str, e: String| MlError::Data(format!("ONNX {what}: {e}"));
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
                    let args = inputs
                        .iter()
                        .map(|s| values.get(s.as_str()).map(|t| t.as_ref().clone().into_tvalue()))
                        .collect::<Option<TVec<TValue>>>()
                        .ok_or_else(|| {
                            run_err(&format!("nodes {nodes}"), "an input of these nodes has no value".into())
                        })?;
                    // tract asserts on shapes a damaged graph can violate;
                    // loading a model must fail, never abort the process.
                    let ran = caught(|| plan.run(args));
                    let out = match ran {
                        Ok(r) => r.map_err(|e| run_err(&format!("nodes {nodes}"), format!("{e:#}")))?,
                        Err(_) => {
                            return Err(run_err(
                                &format!("nodes {nodes}"),
                                "the ONNX runtime (tract) stopped on an internal check: the graph's shapes or weights are inconsistent".into(),
                            ));
                        }
                    };
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
