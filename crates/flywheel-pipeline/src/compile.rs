//! Compilation: `PipelineConfig` → `Pipeline`, checking everything before
//! anything runs. Every problem is collected, then reported together.

use crate::PipelineError;
use crate::config::{Located, PipelineConfig, StepConfig};
use crate::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::graph::topo_order;
use crate::publishing::{StepView, unread_infra_blessings};
use flywheel_core::{ArtifactType, ComponentRegistry, ComponentSpec, ParamType};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Parameter {
    pub default: Json,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRef {
    pub step: String,
    pub output: String,
    pub step_index: usize,
}

pub use flywheel_core::ModelInputRef;

/// Port → (reference, whether the port may stay empty).
pub type ResolvedInputs = BTreeMap<String, (ModelInputRef, bool)>;

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub component: String,
    pub component_version: String,
    /// Parameter values as written, `${name}` references not yet substituted.
    pub params: serde_json::Map<String, Json>,
    /// Names of the parameters whose type is `path` (their files feed the cache key).
    pub path_params: Vec<String>,
    pub inputs: BTreeMap<String, InputRef>,
    /// Inputs resolved from the metadata store when the step runs
    /// (`@model:NAME/INPUT`), with whether the port may stay empty.
    pub resolved_inputs: ResolvedInputs,
    /// Those references as written, when they name a pipeline parameter
    /// (`@model:${model_name}@production`): [`Step::for_run`] resolves them
    /// again with the run's values, which `--set` may change.
    pub model_inputs: BTreeMap<String, String>,
    pub outputs: Vec<(String, ArtifactType)>,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub timeout: Option<Duration>,
    pub cache: bool,
    /// Indices (into `Pipeline::steps`) of the steps this one reads from.
    pub deps: Vec<usize>,
}

/// A validated pipeline: steps in topological order.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub description: Option<String>,
    pub path: PathBuf,
    pub base_dir: PathBuf,
    pub source: String,
    /// blake3 of the file's text: the pipeline's version.
    pub digest: String,
    pub parameters: BTreeMap<String, Parameter>,
    pub steps: Vec<Step>,
}

pub fn compile_file(path: &Path, components: &ComponentRegistry) -> Result<Pipeline, PipelineError> {
    let source =
        std::fs::read_to_string(path).map_err(|source| PipelineError::Read { path: path.to_path_buf(), source })?;
    compile(&source, path, components)
}

pub fn compile(source: &str, path: &Path, components: &ComponentRegistry) -> Result<Pipeline, PipelineError> {
    compile_source(source, path, components, None)
}

/// Compiles a file as `flywheel run --set NAME=VALUE …` will run it: the
/// file must be valid with its defaults, and the overrides must be valid
/// too — a `--set` that makes a reference or a parameter wrong is reported
/// at the place that uses it, before anything runs.
pub fn compile_file_with(
    path: &Path,
    components: &ComponentRegistry,
    overrides: &[(String, String)],
) -> Result<Pipeline, PipelineError> {
    let pipeline = compile_file(path, components)?;
    if overrides.is_empty() {
        return Ok(pipeline);
    }
    let values = pipeline.parameter_values(overrides)?;
    compile_source(&pipeline.source, path, components, Some(&values))
}

fn compile_source(
    source: &str,
    path: &Path,
    components: &ComponentRegistry,
    values: Option<&BTreeMap<String, Json>>,
) -> Result<Pipeline, PipelineError> {
    let mut errors = Vec::new();
    let cfg = PipelineConfig::parse(source, &mut errors);
    let pipeline = cfg.and_then(|cfg| Compiler { components, errors: &mut errors, values }.compile(cfg, source, path));
    match pipeline {
        Some(p) if errors.is_empty() => Ok(p),
        _ => {
            errors.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
            Err(PipelineError::Invalid(Diagnostics {
                file: path.to_path_buf(),
                source: source.to_string(),
                items: errors,
            }))
        }
    }
}

struct Compiler<'a> {
    components: &'a ComponentRegistry,
    errors: &'a mut Vec<Diagnostic>,
    /// Parameter values to check with instead of the defaults (a run's `--set`).
    values: Option<&'a BTreeMap<String, Json>>,
}

/// Finds `${name}` references in a string: (byte offset in the string, name).
fn references(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(i) = s[rest..].find("${") {
        let start = rest + i;
        match s[start + 2..].find('}') {
            Some(j) => {
                out.push((start, &s[start + 2..start + 2 + j]));
                rest = start + 2 + j + 1;
            }
            None => break,
        }
    }
    out
}

/// Replaces `${name}` references with parameter values. A string that is
/// exactly one reference takes the parameter's value with its type.
pub fn substitute(value: &Json, values: &BTreeMap<String, Json>) -> Json {
    match value {
        Json::String(s) => {
            let refs = references(s);
            if refs.len() == 1
                && refs[0].0 == 0
                && s.len() == refs[0].1.len() + 3
                && let Some(v) = values.get(refs[0].1)
            {
                return v.clone();
            }
            let mut out = s.clone();
            for (_, name) in refs {
                if let Some(v) = values.get(name) {
                    let text = match v {
                        Json::String(x) => x.clone(),
                        other => other.to_string(),
                    };
                    out = out.replace(&format!("${{{name}}}"), &text);
                }
            }
            Json::String(out)
        }
        Json::Array(items) => Json::Array(items.iter().map(|i| substitute(i, values)).collect()),
        Json::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), substitute(v, values))).collect()),
        other => other.clone(),
    }
}

/// [`substitute`] of a text that must stay a text (a reference).
fn substitute_text(s: &str, values: &BTreeMap<String, Json>) -> String {
    match substitute(&Json::String(s.to_string()), values) {
        Json::String(t) => t,
        other => other.to_string(),
    }
}

/// Whether a value still holds a `${name}` reference.
fn mentions_parameter(v: &Json) -> bool {
    match v {
        Json::String(s) => !references(s).is_empty(),
        Json::Array(items) => items.iter().any(mentions_parameter),
        Json::Object(m) => m.values().any(mentions_parameter),
        _ => false,
    }
}

/// Parses durations such as `250ms`, `30s`, `5m`, `2h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    // A value past what a Duration holds is no duration, not a panic.
    Duration::try_from_secs_f64(secs).ok()
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') && !s.starts_with('-')
}

/// The declared steps, by name, with the outputs each produces: what an
/// input `step.output` is checked against.
struct StepGraph<'a> {
    steps: &'a [StepConfig],
    index: HashMap<&'a str, usize>,
    outputs: &'a [Vec<(String, ArtifactType)>],
}

impl Compiler<'_> {
    fn err(&mut self, msg: impl Into<String>, span: &std::ops::Range<usize>, help: Option<String>) {
        self.errors.push(Diagnostic::new(msg, Some(span.clone())).with_help(help));
    }

    fn compile(mut self, cfg: PipelineConfig, source: &str, path: &Path) -> Option<Pipeline> {
        let (parameters, defaults) = self.parameters(&cfg);
        if let Some(name) = &cfg.name
            && let Err(e) = flywheel_core::check_name("pipeline name", &name.value)
        {
            self.err(e, &name.span, None);
        }
        let specs: Vec<Option<&'static ComponentSpec>> = cfg.steps.iter().map(|s| self.component_of(s)).collect();
        // Output types of every step, needed to check its consumers.
        let outputs: Vec<Vec<(String, ArtifactType)>> =
            cfg.steps.iter().zip(&specs).map(|(s, spec)| self.outputs_of(s, *spec)).collect();
        let graph = StepGraph {
            steps: &cfg.steps,
            index: cfg.steps.iter().enumerate().map(|(i, s)| (s.name.value.as_str(), i)).collect(),
            outputs: &outputs,
        };
        let steps: Vec<Step> =
            cfg.steps.iter().enumerate().map(|(i, s)| self.step(s, specs[i], &graph, &defaults)).collect();
        let views: Vec<StepView> = cfg
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepView { config: s, spec: specs[i], role: self.role_of(specs[i]), outputs: &outputs[i] })
            .collect();
        self.errors.extend(unread_infra_blessings(&views));
        let steps = self.in_topological_order(steps, &cfg.steps)?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Some(Pipeline {
            name: cfg.name.map(|n| n.value).unwrap_or_default(),
            description: cfg.description,
            path: path.to_path_buf(),
            base_dir,
            source: source.to_string(),
            digest: flywheel_core::digest_bytes(source.as_bytes()),
            parameters,
            steps,
        })
    }

    /// The declared parameters, and the values `${name}` takes while
    /// compiling: the defaults, overridden by `run --set`.
    fn parameters(&mut self, cfg: &PipelineConfig) -> (BTreeMap<String, Parameter>, BTreeMap<String, Json>) {
        let mut parameters = BTreeMap::new();
        for p in &cfg.parameters {
            if !valid_name(&p.name.value) {
                self.err(
                    format!("parameter name `{}` may use only letters, digits, `_` and `-`", p.name.value),
                    &p.name.span,
                    None,
                );
            }
            parameters.insert(
                p.name.value.clone(),
                Parameter { default: p.default.value.clone(), description: p.description.clone() },
            );
        }
        let mut defaults: BTreeMap<String, Json> =
            parameters.iter().map(|(k, v)| (k.clone(), v.default.clone())).collect();
        if let Some(values) = self.values {
            defaults.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        (parameters, defaults)
    }

    /// One step checked against its component's spec, in declaration order
    /// (`deps` index the declared steps until [`Self::in_topological_order`]).
    fn step(
        &mut self,
        s: &StepConfig,
        spec: Option<&'static ComponentSpec>,
        graph: &StepGraph,
        defaults: &BTreeMap<String, Json>,
    ) -> Step {
        if !valid_name(&s.name.value) {
            self.err(
                format!("step name `{}` may use only letters, digits, `_` and `-`", s.name.value),
                &s.name.span,
                None,
            );
        }
        let params = self.params_of(s, spec, defaults);
        let (inputs, resolved_inputs, deps) = self.inputs_of(s, spec, graph, defaults);
        let model_inputs = s
            .inputs
            .iter()
            .filter(|(_, r)| r.value.starts_with('@') && !references(&r.value).is_empty())
            .map(|(port, r)| (port.value.clone(), r.value.clone()))
            .collect();
        let retry_backoff =
            self.duration(s.retry_backoff.as_ref(), "retry_backoff", defaults).unwrap_or(Duration::from_secs(1));
        let timeout = self.duration(s.timeout.as_ref(), "timeout", defaults);
        let path_params = spec
            .map(|sp| sp.params.iter().filter(|p| p.ty == ParamType::Path).map(|p| p.name.to_string()).collect())
            .unwrap_or_default();
        let outputs = graph.outputs[graph.index[s.name.value.as_str()]].clone();
        Step {
            name: s.name.value.clone(),
            component: spec.map_or_else(String::new, |c| c.name.to_string()),
            component_version: spec.map_or_else(String::new, |c| c.version.to_string()),
            params,
            path_params,
            inputs,
            resolved_inputs,
            model_inputs,
            outputs,
            retries: s.retries.as_ref().map_or(0, |r| r.value as u32),
            retry_backoff,
            timeout,
            cache: s.cache.unwrap_or(true),
            deps,
        }
    }

    /// The steps in an order where each comes after those it reads from,
    /// with `deps` and inputs re-indexed; `None` after a cycle (reported as
    /// its path) or any error found so far.
    fn in_topological_order(&mut self, steps: Vec<Step>, declared: &[StepConfig]) -> Option<Vec<Step>> {
        let deps: Vec<Vec<usize>> = steps.iter().map(|s| s.deps.clone()).collect();
        let order = match topo_order(&deps) {
            Ok(order) => order,
            Err(cycle) => {
                let names: Vec<&str> = cycle.iter().map(|&i| steps[i].name.as_str()).collect();
                let path = format!("{} → {}", names.join(" → "), names[0]);
                self.err(
                    format!("steps form a cycle: {path}"),
                    &declared[cycle[0]].name.span,
                    Some(
                        "a step cannot read, directly or not, from its own outputs; remove one of these inputs".into(),
                    ),
                );
                return None;
            }
        };
        if !self.errors.is_empty() {
            return None;
        }
        let mut new_index = vec![0; steps.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let mut ordered: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
        let steps = order
            .iter()
            .filter_map(|&old| ordered[old].take())
            .map(|mut s| {
                s.deps = s.deps.iter().map(|&d| new_index[d]).collect();
                for r in s.inputs.values_mut() {
                    r.step_index = new_index[r.step_index];
                }
                s
            })
            .collect();
        Some(steps)
    }

    fn duration(
        &mut self,
        v: Option<&Located<String>>,
        key: &str,
        defaults: &BTreeMap<String, Json>,
    ) -> Option<Duration> {
        let v = v?;
        self.check_references(&Json::String(v.value.clone()), &v.span, defaults);
        let text = substitute_text(&v.value, defaults);
        if mentions_parameter(&Json::String(text.clone())) {
            return None; // an unknown parameter, reported above
        }
        match parse_duration(&text) {
            Some(d) => Some(d),
            None => {
                self.err(
                    format!("`{key}` = \"{text}\" is not a duration"),
                    &v.span,
                    Some("write e.g. \"500ms\", \"30s\", \"5m\" or \"1h\"".into()),
                );
                None
            }
        }
    }

    fn role_of(&self, spec: Option<&'static ComponentSpec>) -> flywheel_core::Role {
        spec.and_then(|s| self.components.get(s.name)).map_or(flywheel_core::Role::Ordinary, |c| c.role())
    }

    fn component_of(&mut self, s: &StepConfig) -> Option<&'static ComponentSpec> {
        let Some(c) = &s.component else {
            let names = self.components.names().join(", ");
            self.err(
                format!("step `{}` has no `component`", s.name.value),
                &s.name.span,
                Some(format!("built-in components: {names}")),
            );
            return None;
        };
        match self.components.spec(&c.value) {
            Some(spec) => Some(spec),
            None => {
                let help = did_you_mean(&c.value, self.components.names())
                    .or_else(|| Some(format!("built-in components: {}", self.components.names().join(", "))));
                self.err(format!("unknown component `{}`", c.value), &c.span, help);
                None
            }
        }
    }

    fn outputs_of(&mut self, s: &StepConfig, spec: Option<&'static ComponentSpec>) -> Vec<(String, ArtifactType)> {
        let Some(spec) = spec else { return Vec::new() };
        if spec.dynamic_ports {
            let mut out = Vec::new();
            for (name, ty) in &s.outputs {
                if !valid_name(&name.value) {
                    self.err(
                        format!("output name `{}` may use only letters, digits, `_` and `-`", name.value),
                        &name.span,
                        None,
                    );
                }
                match ArtifactType::parse(&ty.value).filter(|t| *t != ArtifactType::Any) {
                    Some(t) => out.push((name.value.clone(), t)),
                    None => {
                        let names: Vec<&str> = ArtifactType::NAMED.iter().map(|t| t.as_str()).collect();
                        let help = did_you_mean(&ty.value, names.iter().copied())
                            .or_else(|| Some(format!("artifact types: {}", names.join(", "))));
                        self.err(format!("unknown artifact type `{}`", ty.value), &ty.span, help);
                    }
                }
            }
            out
        } else {
            if let Some((name, _)) = s.outputs.first() {
                self.err(
                    format!(
                        "component `{}` declares its own outputs; `outputs` is only for `command` steps",
                        spec.name
                    ),
                    &name.span,
                    None,
                );
            }
            spec.outputs.iter().map(|o| (o.name.to_string(), o.ty)).collect()
        }
    }

    fn params_of(
        &mut self,
        s: &StepConfig,
        spec: Option<&'static ComponentSpec>,
        defaults: &BTreeMap<String, Json>,
    ) -> serde_json::Map<String, Json> {
        let mut params = serde_json::Map::new();
        // Parameters of the right type, substituted: what the component checks.
        let mut checked = serde_json::Map::new();
        for (name, value) in &s.params {
            self.check_references(&value.value, &value.span, defaults);
            params.insert(name.value.clone(), value.value.clone());
            let Some(spec) = spec else { continue };
            match spec.param(&name.value) {
                None => {
                    let names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
                    let help = did_you_mean(&name.value, names.iter().copied()).or_else(|| {
                        Some(format!("`{}` takes: {}", spec.name, flywheel_core::spec::quoted_list(&names)))
                    });
                    self.err(
                        format!("unknown parameter `{}` for component `{}`", name.value, spec.name),
                        &name.span,
                        help,
                    );
                }
                Some(p) => {
                    let resolved = substitute(&value.value, defaults);
                    if let Err(e) = p.ty.check(&resolved) {
                        self.err(
                            format!("parameter `{}` of step `{}`: {e}", name.value, s.name.value),
                            &value.span,
                            (!p.doc.is_empty()).then(|| format!("`{}`: {}", p.name, p.doc)),
                        );
                    } else if !mentions_parameter(&resolved) {
                        checked.insert(name.value.clone(), resolved);
                    }
                }
            }
        }
        let registry = self.components;
        if let Some(component) = spec.and_then(|sp| registry.get(sp.name)) {
            for problem in component.check_params(&checked) {
                self.param_problem(s, problem);
            }
        }
        if let Some(spec) = spec {
            for p in spec.params.iter().filter(|p| p.required) {
                if !params.contains_key(p.name) {
                    self.err(
                        format!("step `{}` is missing parameter `{}` ({})", s.name.value, p.name, p.ty.describe()),
                        &s.name.span,
                        Some(format!("add `params = {{ {} = … }}`: {}", p.name, p.doc)),
                    );
                }
            }
        }
        params
    }

    /// Reports a component's problem at the place its path was written:
    /// the deepest written part of the path (a value substituted from a
    /// parameter has no places inside it).
    fn param_problem(&mut self, s: &StepConfig, p: flywheel_core::ParamProblem) {
        let place = (1..=p.path.len()).rev().find_map(|n| {
            s.param_places.iter().find(|pl| pl.path[..] == p.path[..n]).map(|pl| (pl, n == p.path.len()))
        });
        let span = match place {
            Some((pl, exact)) if exact && p.at_key => pl.key.clone(),
            Some((pl, _)) => pl.value.clone(),
            None => s.name.span.clone(),
        };
        self.err(format!("step `{}`: {}", s.name.value, p.message), &span, p.help);
    }

    fn check_references(&mut self, value: &Json, span: &std::ops::Range<usize>, defaults: &BTreeMap<String, Json>) {
        match value {
            Json::String(s) => {
                for (_, name) in references(s) {
                    if !defaults.contains_key(name) {
                        let help = did_you_mean(name, defaults.keys().map(String::as_str))
                            .or_else(|| Some("declare it under [parameters]".to_string()));
                        self.err(format!("unknown pipeline parameter `${{{name}}}`"), span, help);
                    }
                }
            }
            Json::Array(items) => items.iter().for_each(|i| self.check_references(i, span, defaults)),
            Json::Object(m) => m.values().for_each(|v| self.check_references(v, span, defaults)),
            _ => {}
        }
    }

    fn inputs_of(
        &mut self,
        s: &StepConfig,
        spec: Option<&'static ComponentSpec>,
        graph: &StepGraph,
        defaults: &BTreeMap<String, Json>,
    ) -> (BTreeMap<String, InputRef>, ResolvedInputs, Vec<usize>) {
        let mut inputs = BTreeMap::new();
        let mut resolved = BTreeMap::new();
        let mut deps = Vec::new();
        for (port, reference) in &s.inputs {
            if reference.value.starts_with('@') {
                if let Some(r) = self.model_input(port, reference, spec, defaults) {
                    resolved.insert(port.value.clone(), r);
                }
                continue;
            }
            let port_ty = self.port_type(port, spec);
            if let Some(input) = self.step_input(s, port, reference, port_ty, graph) {
                if !deps.contains(&input.step_index) {
                    deps.push(input.step_index);
                }
                inputs.insert(port.value.clone(), input);
            }
        }
        self.missing_inputs(s, spec);
        (inputs, resolved, deps)
    }

    /// An input taken from the registry (`@model:…`), with whether its port
    /// may stay empty.
    fn model_input(
        &mut self,
        port: &Located<String>,
        reference: &Located<String>,
        spec: Option<&'static ComponentSpec>,
        defaults: &BTreeMap<String, Json>,
    ) -> Option<(ModelInputRef, bool)> {
        self.check_references(&Json::String(reference.value.clone()), &reference.span, defaults);
        let text = substitute_text(&reference.value, defaults);
        if mentions_parameter(&Json::String(text.clone())) {
            return None; // an unknown parameter, reported above
        }
        match ModelInputRef::parse(&text) {
            Ok(r) => {
                let declared = spec.and_then(|sp| sp.input(&port.value));
                let optional = declared.is_some_and(|p| p.optional);
                if let Some(sp) = spec.filter(|sp| !sp.dynamic_ports && sp.input(&port.value).is_none()) {
                    let help = did_you_mean(&port.value, sp.inputs.iter().map(|p| p.name));
                    self.err(format!("unknown input `{}`", port.value), &port.span, help);
                }
                if let Some(p) =
                    declared.filter(|p| r.logs && !matches!(p.ty, ArtifactType::Dataset | ArtifactType::Any))
                {
                    self.err(
                        format!(
                            "input `{}` takes a {}, but `{text}` is a dataset (the prediction log)",
                            port.value, p.ty
                        ),
                        &reference.span,
                        Some("wire `@logs:MODEL` to a dataset input, such as `ingest`'s `logs`".into()),
                    );
                }
                Some((r, optional))
            }
            Err(why) => {
                self.err(
                    format!("input `{}` = \"{text}\" is not a resolvable reference: {why}", port.value),
                    &reference.span,
                    Some("write `@model:MODEL[@ALIAS|@VERSION][/INPUT]`, e.g. \"@model:bike-sharing@production\" for the production model, or \"@model:bike-sharing@production/data\" for the data it was trained on; or `@logs:MODEL` for its prediction log with feedback labels".into()),
                );
                None
            }
        }
    }

    /// The artifact type a port accepts; `None` when unknown (reported).
    fn port_type(&mut self, port: &Located<String>, spec: Option<&'static ComponentSpec>) -> Option<ArtifactType> {
        let spec = spec?;
        if spec.dynamic_ports {
            return Some(ArtifactType::Any);
        }
        if let Some(p) = spec.input(&port.value) {
            return Some(p.ty);
        }
        let names: Vec<&str> = spec.inputs.iter().map(|p| p.name).collect();
        let help = did_you_mean(&port.value, names.iter().copied())
            .or_else(|| Some(format!("`{}` takes inputs: {}", spec.name, flywheel_core::spec::quoted_list(&names))));
        self.err(format!("unknown input `{}` for component `{}`", port.value, spec.name), &port.span, help);
        None
    }

    /// An input read from another step's output (`step.output`), checked
    /// against what that step produces and what the port accepts.
    fn step_input(
        &mut self,
        s: &StepConfig,
        port: &Located<String>,
        reference: &Located<String>,
        port_ty: Option<ArtifactType>,
        graph: &StepGraph,
    ) -> Option<InputRef> {
        let Some((step_name, output)) = reference.value.split_once('.') else {
            self.err(
                format!(
                    "input `{}` = \"{}\" must name a step's output as \"step.output\"",
                    port.value, reference.value
                ),
                &reference.span,
                Some("e.g. `data = \"ingest.train\"`".into()),
            );
            return None;
        };
        let Some(&j) = graph.index.get(step_name) else {
            let help = did_you_mean(step_name, graph.steps.iter().map(|x| x.name.value.as_str()));
            self.err(format!("input `{}` reads from unknown step `{step_name}`", port.value), &reference.span, help);
            return None;
        };
        // The producer's component is missing or unknown: already reported.
        graph.steps[j].component.as_ref().filter(|c| self.components.spec(&c.value).is_some())?;
        let Some((_, ty)) = graph.outputs[j].iter().find(|(n, _)| n == output) else {
            let names: Vec<&str> = graph.outputs[j].iter().map(|(n, _)| n.as_str()).collect();
            let help = did_you_mean(output, names.iter().copied())
                .or_else(|| Some(format!("step `{step_name}` produces: {}", flywheel_core::spec::quoted_list(&names))));
            self.err(format!("step `{step_name}` has no output `{output}`"), &reference.span, help);
            return None;
        };
        if let Some(port_ty) = port_ty
            && !ty.fits(port_ty)
        {
            self.err(
                format!(
                    "input `{}` of step `{}` expects a {port_ty}, but `{}` is a {ty}",
                    port.value, s.name.value, reference.value
                ),
                &reference.span,
                None,
            );
        }
        Some(InputRef { step: step_name.to_string(), output: output.to_string(), step_index: j })
    }

    /// Every required input of the component must be wired.
    fn missing_inputs(&mut self, s: &StepConfig, spec: Option<&'static ComponentSpec>) {
        let Some(spec) = spec.filter(|s| !s.dynamic_ports) else { return };
        for p in spec.inputs.iter().filter(|p| !p.optional) {
            if !s.inputs.iter().any(|(n, _)| n.value == p.name) {
                self.err(
                    format!("step `{}` is missing input `{}` (a {})", s.name.value, p.name, p.ty),
                    &s.name.span,
                    Some(format!("add `inputs = {{ {} = \"<step>.<output>\" }}`: {}", p.name, p.doc)),
                );
            }
        }
    }
}

impl Pipeline {
    /// Parameter values for a run: defaults, overridden by `--set NAME=VALUE`.
    /// An override is parsed as the type of the parameter's default.
    /// `@model:` references that use a parameter must stay valid with the
    /// overrides.
    pub fn resolve_parameters(&self, overrides: &[(String, String)]) -> Result<BTreeMap<String, Json>, PipelineError> {
        let values = self.parameter_values(overrides)?;
        for step in &self.steps {
            if let Err(e) = step.model_inputs_for(&values) {
                let set: Vec<String> = overrides.iter().map(|(n, v)| format!("--set {n}={v}")).collect();
                return Err(PipelineError::Override(format!("{}: step `{}`: {e}", set.join(" "), step.name)));
            }
        }
        Ok(values)
    }

    /// Defaults, overridden by `--set NAME=VALUE`, each parsed as its default's type.
    fn parameter_values(&self, overrides: &[(String, String)]) -> Result<BTreeMap<String, Json>, PipelineError> {
        let mut values: BTreeMap<String, Json> =
            self.parameters.iter().map(|(k, p)| (k.clone(), p.default.clone())).collect();
        for (name, raw) in overrides {
            let Some(param) = self.parameters.get(name) else {
                let declared: Vec<&str> = self.parameters.keys().map(String::as_str).collect();
                let hint = did_you_mean(name, declared.iter().copied()).unwrap_or_else(|| {
                    if declared.is_empty() {
                        "the pipeline declares no parameters".into()
                    } else {
                        format!("declared parameters: {}", flywheel_core::spec::quoted_list(&declared))
                    }
                });
                return Err(PipelineError::Override(format!(
                    "--set {name}={raw}: pipeline `{}` has no parameter `{name}`; {hint}",
                    self.name
                )));
            };
            let value = parse_like(&param.default, raw).ok_or_else(|| {
                PipelineError::Override(format!(
                    "--set {name}={raw}: `{raw}` is not {} like the default `{}`",
                    kind(&param.default),
                    param.default
                ))
            })?;
            values.insert(name.clone(), value);
        }
        Ok(values)
    }
}

impl Step {
    pub fn resolve_params(&self, values: &BTreeMap<String, Json>) -> serde_json::Map<String, Json> {
        self.params.iter().map(|(k, v)| (k.clone(), substitute(v, values))).collect()
    }

    /// The `@model:` references with a run's parameter values.
    pub fn model_inputs_for(&self, values: &BTreeMap<String, Json>) -> Result<ResolvedInputs, String> {
        let mut resolved = self.resolved_inputs.clone();
        for (port, text) in &self.model_inputs {
            let text = substitute_text(text, values);
            let r = ModelInputRef::parse(&text)
                .map_err(|why| format!("input `{port}` = \"{text}\" is not a resolvable reference: {why}"))?;
            if let Some(entry) = resolved.get_mut(port) {
                entry.0 = r;
            }
        }
        Ok(resolved)
    }

    /// This step as a run with these parameter values runs it: its
    /// `@model:` references resolved with them. The values have passed
    /// [`Pipeline::resolve_parameters`], which refuses any that make a
    /// reference invalid; should one still not parse, the step keeps the
    /// reference compiled from the defaults.
    pub fn for_run(&self, values: &BTreeMap<String, Json>) -> Step {
        let mut step = self.clone();
        if let Ok(resolved) = self.model_inputs_for(values) {
            step.resolved_inputs = resolved;
        }
        step
    }
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Bool(_) => "a boolean",
        Json::Number(n) if n.is_i64() => "an integer",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list (JSON)",
        _ => "a table (JSON)",
    }
}

fn parse_like(default: &Json, raw: &str) -> Option<Json> {
    match default {
        Json::Bool(_) => raw.parse::<bool>().ok().map(Json::Bool),
        Json::Number(n) if n.is_i64() => raw.parse::<i64>().ok().map(Json::from),
        Json::Number(_) => raw.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Json::Number),
        Json::String(_) => Some(Json::String(raw.to_string())),
        Json::Array(_) => serde_json::from_str::<Json>(raw).ok().filter(Json::is_array),
        _ => serde_json::from_str::<Json>(raw).ok().filter(Json::is_object),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn substitutes_whole_and_partial_references() {
        let values: BTreeMap<String, Json> = [("n".to_string(), json!(3)), ("dir".to_string(), json!("d"))].into();
        assert_eq!(substitute(&json!("${n}"), &values), json!(3));
        assert_eq!(substitute(&json!("${dir}/x_${n}.csv"), &values), json!("d/x_3.csv"));
        assert_eq!(substitute(&json!(["${n}"]), &values), json!([3]));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("1000000000000000000000s"), None, "past what a Duration holds");
    }
}
