//! Loading an ONNX file: parse the protobuf, refuse what cannot be run
//! from the bytes alone, then walk the nodes in file order, turning each
//! operator Flywheel runs itself into a native step and each maximal run
//! of other nodes into one tract sub-graph, compiled here once.

use super::ops::{self, NativeOp};
use super::{OnnxModel, OutputInfo, Step, TensorInfo, dtype_of};
use crate::MlError;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tract_onnx::pb;
use tract_onnx::prelude::*;

impl OnnxModel {
    /// Parses, checks and compiles an ONNX file's bytes.
    pub fn load(bytes: &[u8]) -> Result<OnnxModel, MlError> {
        let onnx = tract_onnx::onnx();
        let proto = onnx
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|e| format_err(format!("the bytes are not an ONNX protobuf ({e})")))?;
        let Some(graph) = proto.graph.as_ref().filter(|g| !g.node.is_empty() && proto.ir_version > 0) else {
            return Err(format_err("the file holds no graph (is it an ONNX file?)"));
        };
        let constants = load_constants(graph)?;
        let inputs = graph_inputs(graph)?;
        let mut walk = Walk {
            onnx: &onnx,
            proto: &proto,
            graph,
            graph_outputs: graph.output.iter().map(|o| o.name.clone()).collect(),
            known: inputs.iter().map(|i| (i.name.clone(), i.clone())).collect(),
            constants,
            steps: Vec::new(),
            classes: None,
            zipmaps: HashMap::new(),
        };
        let nodes = &graph.node;
        let mut i = 0;
        while i < nodes.len() {
            walk.check_inputs_known(&nodes[i])?;
            if walk.native_step(&nodes[i])? {
                i += 1;
                continue;
            }
            // A run of nodes for tract: up to the next native node.
            let start = i;
            while i < nodes.len() && !ops::is_native(&nodes[i]) {
                i += 1;
            }
            walk.tract_step(start, i)?;
        }
        let outputs = walk.outputs()?;
        let metadata = proto.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect();
        let Walk { constants, steps, classes, .. } = walk;
        Ok(OnnxModel { inputs, outputs, constants, steps, classes, metadata })
    }
}

/// The graph's initializers as tensors, refusing weights kept in other files.
fn load_constants(graph: &pb::GraphProto) -> Result<HashMap<String, Arc<Tensor>>, MlError> {
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
    Ok(constants)
}

/// The inputs a caller feeds: the graph's inputs that are not initializers.
fn graph_inputs(graph: &pb::GraphProto) -> Result<Vec<TensorInfo>, MlError> {
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
    Ok(inputs)
}

/// What the walk over the nodes has learned so far: the type and shape of
/// every value made, the steps, and the class labels nodes declare.
struct Walk<'a> {
    onnx: &'a tract_onnx::Onnx,
    proto: &'a pb::ModelProto,
    graph: &'a pb::GraphProto,
    /// Read after the last node: a tract segment exports what later steps
    /// or the graph's outputs use, nothing else.
    graph_outputs: Vec<String>,
    known: HashMap<String, TensorInfo>,
    constants: HashMap<String, Arc<Tensor>>,
    steps: Vec<Step>,
    classes: Option<Vec<String>>,
    zipmaps: HashMap<String, Vec<String>>,
}

impl Walk<'_> {
    fn check_inputs_known(&self, node: &pb::NodeProto) -> Result<(), MlError> {
        for input in node.input.iter().filter(|s| !s.is_empty()) {
            if !self.known.contains_key(input) && !self.constants.contains_key(input) {
                return Err(format_err(format!(
                    "node {} reads `{input}`, which no earlier node, input or initializer makes \
                     (nodes must be in topological order)",
                    node_label(node)
                )));
            }
        }
        Ok(())
    }

    /// Adds `node` as a native step if Flywheel runs its operator itself;
    /// `false` when tract is to run it.
    fn native_step(&mut self, node: &pb::NodeProto) -> Result<bool, MlError> {
        let in_infos: Vec<Option<&TensorInfo>> = node.input.iter().map(|s| self.known.get(s)).collect();
        let Some(op) =
            NativeOp::parse(node, &in_infos).map_err(|e| format_err(format!("node {}: {e}", node_label(node))))?
        else {
            return Ok(false);
        };
        let out = op
            .output_infos(&in_infos, &self.constants, node)
            .map_err(|e| format_err(format!("node {}: {e}", node_label(node))))?;
        if let Some(c) = op.classes() {
            if self.classes.is_none() {
                self.classes = Some(c.clone());
            }
            if matches!(op, NativeOp::ZipMap { .. }) {
                self.zipmaps.insert(node.output[0].clone(), c);
            }
        }
        for info in out {
            self.known.insert(info.name.clone(), info);
        }
        self.steps.push(Step::Native {
            op,
            node: node_label(node),
            inputs: node.input.clone(),
            outputs: node.output.clone(),
        });
        Ok(true)
    }

    /// Compiles nodes `start..end` as one tract sub-graph and adds it as a step.
    fn tract_step(&mut self, start: usize, end: usize) -> Result<(), MlError> {
        let nodes = &self.graph.node;
        let run = &nodes[start..end];
        if let Some(c) = run.iter().find_map(ops::attr_labels) {
            self.classes.get_or_insert(c);
        }
        let (seg_inputs, seg_outputs) = self.segment_io(run, &nodes[end..]);
        let label = run.iter().map(node_label).collect::<Vec<_>>().join(", ");
        let mut run = run.to_vec();
        let relabels = text_labels_as_indices(&mut run, &label)?;
        // A node may read a value nothing before it defines (a damaged
        // file): say which, rather than index into the map.
        let seg_infos = seg_inputs
            .iter()
            .map(|s| {
                self.known.get(s).map(shaped_value_info).ok_or_else(|| {
                    format_err(format!("nodes {label} read `{s}`, which no input, initializer or earlier node defines"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sub = self.segment_model(&run, seg_infos, &seg_outputs);
        let typed = self
            .onnx
            .model_for_proto_model(&sub)
            .and_then(|m| m.into_optimized())
            .map_err(|e| format_err(format!("nodes {label}: {e:#}")))?;
        for (k, name) in seg_outputs.iter().enumerate() {
            let fact = typed.output_fact(k).map_err(|e| format_err(format!("nodes {label}: {e}")))?;
            let dims = fact.shape.iter().skip(1).map(|d| d.to_i64().ok().map(|k| k as usize)).collect();
            self.known.insert(name.clone(), TensorInfo { name: name.clone(), dtype: fact.datum_type, dims });
        }
        let plan = typed.into_runnable().map_err(|e| format_err(format!("nodes {label}: {e}")))?;
        let relabel: Vec<(usize, Vec<String>)> = relabels
            .into_iter()
            .filter_map(|(out, names)| seg_outputs.iter().position(|s| *s == out).map(|k| (k, names)))
            .collect();
        for (k, _) in &relabel {
            if let Some(info) = self.known.get_mut(&seg_outputs[*k]) {
                info.dtype = DatumType::String;
            }
        }
        self.steps.push(Step::Tract { plan, nodes: label, inputs: seg_inputs, outputs: seg_outputs, relabel });
        Ok(())
    }

    /// A segment's inputs (values it reads that it does not make, constants
    /// aside) and outputs (values it makes that `later` nodes or the graph's
    /// outputs read).
    fn segment_io(&self, run: &[pb::NodeProto], later: &[pb::NodeProto]) -> (Vec<String>, Vec<String>) {
        let produced: HashSet<&str> = run.iter().flat_map(|n| n.output.iter().map(|s| s.as_str())).collect();
        let mut seg_inputs: Vec<String> = Vec::new();
        for n in run {
            for s in n.input.iter().filter(|s| !s.is_empty()) {
                if !produced.contains(s.as_str()) && !self.constants.contains_key(s) && !seg_inputs.contains(s) {
                    seg_inputs.push(s.clone());
                }
            }
        }
        let read_later: HashSet<&str> = later
            .iter()
            .flat_map(|n| n.input.iter().map(|s| s.as_str()))
            .chain(self.graph_outputs.iter().map(|s| s.as_str()))
            .collect();
        let seg_outputs: Vec<String> = run
            .iter()
            .flat_map(|n| n.output.iter())
            .filter(|s| !s.is_empty() && read_later.contains(s.as_str()))
            .cloned()
            .collect();
        (seg_inputs, seg_outputs)
    }

    /// The segment as a model of its own, with the initializers it reads.
    fn segment_model(
        &self,
        run: &[pb::NodeProto],
        inputs: Vec<pb::ValueInfoProto>,
        outputs: &[String],
    ) -> pb::ModelProto {
        let used: HashSet<&str> = run.iter().flat_map(|n| n.input.iter().map(|s| s.as_str())).collect();
        pb::ModelProto {
            ir_version: self.proto.ir_version,
            opset_import: self.proto.opset_import.clone(),
            graph: Some(pb::GraphProto {
                node: run.to_vec(),
                name: "segment".into(),
                initializer: self
                    .graph
                    .initializer
                    .iter()
                    .filter(|t| used.contains(t.name.as_str()))
                    .cloned()
                    .collect(),
                input: inputs,
                output: outputs.iter().map(|s| pb::ValueInfoProto { name: s.clone(), ..Default::default() }).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The graph's outputs, each with the type the walk found for it.
    fn outputs(&self) -> Result<Vec<OutputInfo>, MlError> {
        self.graph_outputs
            .iter()
            .map(|name| {
                let info = self
                    .known
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format_err(format!("graph output `{name}` is made by no node")))?;
                Ok(OutputInfo { info, classes: self.zipmaps.get(name).cloned() })
            })
            .collect()
    }
}

/// tract's linear classifier computes in the label's type and cannot with
/// text labels: gives it class indices instead, and returns each relabelled
/// output with its text labels, to map back after the run.
fn text_labels_as_indices(run: &mut [pb::NodeProto], label: &str) -> Result<Vec<(String, Vec<String>)>, MlError> {
    let mut relabels: Vec<(String, Vec<String>)> = Vec::new();
    for n in run.iter_mut().filter(|n| n.op_type == "LinearClassifier") {
        if let Some(a) = n.attribute.iter_mut().find(|a| a.name == "classlabels_strings") {
            let names: Vec<String> = a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect();
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
    Ok(relabels)
}

fn format_err(msg: impl std::fmt::Display) -> MlError {
    MlError::Format(format!("not a usable ONNX model: {msg}"))
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
