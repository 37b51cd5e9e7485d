//! The contract between the launcher and a component's executor.
//!
//! The launcher resolves inputs to local files, hands the executor its
//! parameters, collects whatever the executor wrote under `output_dir`, and
//! records it. An executor therefore never touches the metadata or artifact
//! store; the only side door is [`ModelRegistry`], for `push`.

use crate::spec::ArtifactType;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The component ran and reports a problem (bad data, bad parameter value, …).
    #[error("{0}")]
    Failed(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ExecError {
    pub fn failed(msg: impl Into<String>) -> Self {
        ExecError::Failed(msg.into())
    }
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ExecError::Io { context: context.into(), source }
    }
}

/// Shared flag that asks running work to stop (Ctrl-C, timeout).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// Returns `Err(Cancelled)` once cancellation was requested; executors call
    /// it between units of work.
    pub fn check(&self) -> Result<(), ExecError> {
        if self.is_cancelled() { Err(ExecError::Cancelled) } else { Ok(()) }
    }
}

/// An input artifact, already materialized as a local file.
#[derive(Debug, Clone)]
pub struct InputArtifact {
    pub path: PathBuf,
    pub digest: String,
    pub ty: ArtifactType,
    pub properties: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredModel {
    pub name: String,
    pub version: i64,
    /// False when this exact model was already registered under that name.
    pub created: bool,
}

/// What an input written `@model:NAME[@ALIAS][/INPUT]` resolved to when the
/// step started: the registered version it named, or `None` when nothing
/// was registered (an optional input left unconnected). `bless` records it,
/// so that `push` can move an alias only if it still points there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelRefResolution {
    pub model: String,
    pub alias: Option<String>,
    pub version: Option<i64>,
}

/// An alias move asked of [`ModelRegistry::publish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasMove {
    pub alias: String,
    /// Compare-and-set: the version the alias must still point at (`None`:
    /// it must point nowhere), or no condition when nothing was compared.
    pub expected: Option<Option<i64>>,
    /// The alias `expected` is about, when it is not `alias`: a canary is
    /// pushed after a comparison with `production`, which must still point
    /// where it did; the canary alias itself moves unconditionally.
    pub checked: Option<String>,
}

/// What [`ModelRegistry::publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Registered (or found already registered) and, if asked, the alias moved.
    Done { model: RegisteredModel, alias_was: Option<i64> },
    /// The alias no longer points where expected (it points at `current`):
    /// nothing was registered and nothing moved.
    AliasMoved { current: Option<i64> },
    /// The alias to move (a canary) points at another version still: the
    /// one being judged is not replaced; nothing was registered.
    AliasTaken { current: i64 },
}

/// Registration of model versions, implemented by the launcher over the
/// metadata store.
pub trait ModelRegistry: Send + Sync {
    /// Registers `model` as a version of `model_name` and moves `alias` to
    /// it, in one transaction; with an expectation, only if the alias still
    /// points where expected.
    fn publish(
        &self,
        model_name: &str,
        model: &InputArtifact,
        run_id: i64,
        alias: Option<AliasMove>,
    ) -> Result<Published, String>;
}

pub struct ExecContext {
    pub step: String,
    pub run_id: i64,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub inputs: BTreeMap<String, InputArtifact>,
    /// Declared outputs: the executor writes each one at `output_path(name)`.
    pub outputs: Vec<(String, ArtifactType)>,
    pub output_dir: PathBuf,
    /// The pipeline file's folder: relative paths in parameters are relative to it.
    pub base_dir: PathBuf,
    pub cancel: CancelToken,
    pub registry: Arc<dyn ModelRegistry>,
    pub log_path: PathBuf,
    log: Mutex<Box<dyn Write + Send>>,
    properties: Mutex<BTreeMap<String, serde_json::Value>>,
    summary: Mutex<serde_json::Map<String, serde_json::Value>>,
    signals: Mutex<Vec<(String, String, serde_json::Value)>>,
    children: Mutex<Vec<ChildRecord>>,
    /// Inputs written `@model:…`, by port, as the launcher resolved them.
    model_refs: BTreeMap<String, ModelRefResolution>,
    refusal: Mutex<Option<String>>,
    /// A temporary output folder of a test context, removed with it.
    owned_dir: Option<PathBuf>,
}

impl Drop for ExecContext {
    fn drop(&mut self) {
        if let Some(dir) = &self.owned_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// One unit of work inside a step (a tuning trial), recorded as a child
/// execution of the step's execution with its own parameters and scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildRecord {
    /// e.g. `trial 3`
    pub name: String,
    pub parameters: serde_json::Value,
    pub succeeded: bool,
    pub duration_ms: i64,
    pub summary: serde_json::Value,
    pub error: Option<String>,
}

impl ExecContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        step: String,
        run_id: i64,
        params: serde_json::Map<String, serde_json::Value>,
        inputs: BTreeMap<String, InputArtifact>,
        outputs: Vec<(String, ArtifactType)>,
        output_dir: PathBuf,
        base_dir: PathBuf,
        cancel: CancelToken,
        registry: Arc<dyn ModelRegistry>,
        log_path: PathBuf,
        log: Box<dyn Write + Send>,
    ) -> Self {
        Self {
            step,
            run_id,
            params,
            inputs,
            outputs,
            output_dir,
            base_dir,
            cancel,
            registry,
            log_path,
            log: Mutex::new(log),
            properties: Mutex::new(BTreeMap::new()),
            summary: Mutex::new(serde_json::Map::new()),
            signals: Mutex::new(Vec::new()),
            children: Mutex::new(Vec::new()),
            model_refs: BTreeMap::new(),
            refusal: Mutex::new(None),
            owned_dir: None,
        }
    }

    pub(crate) fn owning_output_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.owned_dir = dir;
        self
    }

    /// Tells the executor how its `@model:` inputs were resolved.
    pub fn with_model_refs(mut self, refs: BTreeMap<String, ModelRefResolution>) -> Self {
        self.model_refs = refs;
        self
    }

    /// How input `port` (written `@model:…`) was resolved, if it was one.
    pub fn model_ref(&self, port: &str) -> Option<&ModelRefResolution> {
        self.model_refs.get(port)
    }

    /// Ends the step as `refused`: it ran, wrote its outputs, and decided
    /// not to do its effect (a push of an unblessed model). Not a failure,
    /// not a success either; the run reports it.
    pub fn refuse(&self, reason: impl Into<String>) {
        if let Ok(mut r) = self.refusal.lock() {
            *r = Some(reason.into());
        }
    }

    pub fn take_refusal(&self) -> Option<String> {
        self.refusal.lock().map(|mut r| r.take()).unwrap_or_default()
    }

    /// Appends one line to the step's log.
    pub fn log(&self, line: impl AsRef<str>) {
        if let Ok(mut w) = self.log.lock() {
            // A log that cannot be written must not fail the step.
            let _ = writeln!(w, "{}", line.as_ref());
        }
    }

    pub fn input(&self, name: &str) -> Result<&InputArtifact, ExecError> {
        self.inputs.get(name).ok_or_else(|| ExecError::failed(format!("input `{name}` is not connected")))
    }

    pub fn output_path(&self, name: &str) -> PathBuf {
        self.output_dir.join(name)
    }

    /// Properties recorded on the output artifact (row counts, metrics, …).
    pub fn set_properties(&self, output: &str, props: serde_json::Value) {
        if let Ok(mut p) = self.properties.lock() {
            p.insert(output.to_string(), props);
        }
    }

    pub fn take_properties(&self) -> BTreeMap<String, serde_json::Value> {
        self.properties.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default()
    }

    /// A short key/value summary shown to the user after the run
    /// (e.g. metrics, the pushed version).
    pub fn add_summary(&self, key: &str, value: serde_json::Value) {
        if let Ok(mut s) = self.summary.lock() {
            s.insert(key.to_string(), value);
        }
    }

    pub fn take_summary(&self) -> serde_json::Map<String, serde_json::Value> {
        self.summary.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default()
    }

    /// A signal for triggers (kind, a sentence for people, details), recorded
    /// in the metadata store with the execution when it succeeds.
    pub fn emit_signal(&self, kind: &str, message: impl Into<String>, details: serde_json::Value) {
        if let Ok(mut s) = self.signals.lock() {
            s.push((kind.to_string(), message.into(), details));
        }
    }

    /// A context for work done inside this step with other parameters,
    /// inputs and output folder (a tuning trial, or `train` with tuned
    /// parameters): same run, step, cancel token, registry and base folder.
    pub fn derive(
        &self,
        params: serde_json::Map<String, serde_json::Value>,
        inputs: BTreeMap<String, InputArtifact>,
        outputs: Vec<(String, ArtifactType)>,
        output_dir: PathBuf,
        log: Box<dyn Write + Send>,
    ) -> ExecContext {
        ExecContext::new(
            self.step.clone(),
            self.run_id,
            params,
            inputs,
            outputs,
            output_dir,
            self.base_dir.clone(),
            self.cancel.clone(),
            self.registry.clone(),
            self.log_path.clone(),
            log,
        )
        .with_model_refs(self.model_refs.clone())
    }

    /// Takes over what a derived context recorded: output properties,
    /// summary, signals and children.
    pub fn absorb(&self, child: &ExecContext) {
        for (k, v) in child.take_properties() {
            self.set_properties(&k, v);
        }
        for (k, v) in child.take_summary() {
            self.add_summary(&k, v);
        }
        for (kind, message, details) in child.take_signals() {
            self.emit_signal(&kind, message, details);
        }
        for c in child.take_children() {
            self.record_child(c);
        }
    }

    pub fn record_child(&self, child: ChildRecord) {
        if let Ok(mut c) = self.children.lock() {
            c.push(child);
        }
    }

    pub fn take_children(&self) -> Vec<ChildRecord> {
        self.children.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default()
    }

    pub fn take_signals(&self) -> Vec<(String, String, serde_json::Value)> {
        self.signals.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default()
    }

    /// Resolves a path parameter against the pipeline file's folder.
    pub fn resolve_path(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() { path.to_path_buf() } else { self.base_dir.join(path) }
    }
}

/// How a step relates to the rest of its run; the scheduler and launcher
/// act on it, so a component only declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Produces artifacts and nothing else.
    Ordinary,
    /// Data validation: when it fails, every step that does not feed it is
    /// skipped (a failed validation stops training).
    Gate,
    /// Changes what is published (registry versions, aliases): runs after
    /// every other step of its run and only if all of them succeeded; never
    /// served from the cache, since its effect lives outside the artifact store.
    Publisher,
}

/// A component: its typed spec plus the executor that does the work, as
/// the compiler and the launcher see it. A component implements
/// [`crate::TypedComponent`] and gets this through its adapter, which reads
/// `ctx.params` into the component's parameter struct.
pub trait Component: Send + Sync {
    fn spec(&self) -> &'static crate::spec::ComponentSpec;
    fn execute(&self, ctx: &ExecContext) -> Result<(), ExecError>;
    fn role(&self) -> Role {
        Role::Ordinary
    }

    /// Problems in a step's parameters that can be known before anything
    /// runs (a rule that does not parse, an unknown metric, a bad name).
    /// The compiler calls it with the parameters after `${param}`
    /// substitution; a parameter of the wrong type, or whose value still
    /// refers to another parameter, is left out, so the types here are the
    /// spec's. Components check with the parsers their executor uses, so
    /// that `check` and a run never disagree.
    fn check_params(&self, _params: &serde_json::Map<String, serde_json::Value>) -> Vec<crate::spec::ParamProblem> {
        Vec::new()
    }
}

/// The components a pipeline may use, looked up by name.
#[derive(Clone, Default)]
pub struct ComponentRegistry {
    components: Vec<Arc<dyn Component>>,
}

impl ComponentRegistry {
    pub fn new(components: Vec<Arc<dyn Component>>) -> Self {
        Self { components }
    }
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Component>> {
        self.components.iter().find(|c| c.spec().name == name)
    }
    pub fn spec(&self, name: &str) -> Option<&'static crate::spec::ComponentSpec> {
        self.get(name).map(|c| c.spec())
    }
    pub fn names(&self) -> Vec<&'static str> {
        self.components.iter().map(|c| c.spec().name).collect()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Component>> {
        self.components.iter()
    }
}
