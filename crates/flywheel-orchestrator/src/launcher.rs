//! Runs one step: input resolution, caching, retries, timeout, outputs and
//! lineage. This is the only place that does these things; components only
//! read their inputs and write their outputs.

use crate::scheduler::StepOutcome;
use crate::{Event, Observer, Result};
use flywheel_core::{
    AliasMove, ArtifactType, CancelToken, Component, ExecContext, ExecError, InputArtifact, ModelRefResolution,
    ModelRegistry, Published, RegisteredModel, Role,
};
use flywheel_metadata::{
    ArtifactRecord, ExecStatus, ExecutionResult, MetadataStore, NewArtifact, NewChild, NewSignal, PublishOutcome,
};
use flywheel_pipeline::Step;
use flywheel_registry::Home;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a step needs from the run around it.
pub struct StepJob {
    pub run_id: i64,
    pub step: Step,
    pub component: Arc<dyn Component>,
    pub params: serde_json::Map<String, Json>,
    pub inputs: BTreeMap<String, ArtifactRecord>,
    pub base_dir: PathBuf,
    pub use_cache: bool,
    pub cancel: CancelToken,
}

pub type StepOutputs = BTreeMap<String, ArtifactRecord>;

/// The cache key: component, its version, resolved parameters, the content
/// digests of input artifacts (never their names or paths), and the content
/// of files named by `path` parameters.
pub fn cache_key(job: &StepJob, model_refs: &BTreeMap<String, ModelRefResolution>) -> String {
    let inputs: BTreeMap<&str, &str> = job.inputs.iter().map(|(k, a)| (k.as_str(), a.digest.as_str())).collect();
    let files: BTreeMap<&str, String> = job
        .step
        .path_params
        .iter()
        .filter_map(|p| job.params.get(p).and_then(Json::as_str).map(|v| (p.as_str(), v)))
        .map(|(p, v)| {
            let path = resolve(&job.base_dir, v);
            let digest = flywheel_artifacts::digest_file(&path).map(|(d, _)| d).unwrap_or_else(|_| "missing".into());
            (p, digest)
        })
        .collect();
    let mut key = json!({
        "component": job.step.component,
        "version": job.step.component_version,
        "params": job.params,
        "inputs": inputs,
        "files": files,
    });
    // How `@model:` inputs resolved (which alias, which version, or none)
    // is part of what a step like `bless` records, so it is part of the key.
    if !model_refs.is_empty() {
        key["model_refs"] = json!(model_refs);
    }
    flywheel_core::digest_bytes(key.to_string().as_bytes())
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() { path.to_path_buf() } else { base.join(path) }
}

struct Registry {
    metadata: Arc<MetadataStore>,
}

impl ModelRegistry for Registry {
    fn publish(
        &self,
        model_name: &str,
        model: &InputArtifact,
        run_id: i64,
        alias: Option<AliasMove>,
    ) -> std::result::Result<Published, String> {
        let artifact = self
            .metadata
            .artifact_by_digest(&model.digest, model.ty.as_str())
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("model artifact {} is not recorded", model.digest))?;
        let moving = alias.as_ref().map(|m| (m.alias.as_str(), m.expected));
        let outcome = self
            .metadata
            .publish(model_name, artifact.id, Some(run_id), moving, &format!("run {run_id}"))
            .map_err(|e| e.to_string())?;
        Ok(match outcome {
            PublishOutcome::Published { version, created, alias_was } => Published::Done {
                model: RegisteredModel { name: version.model_name, version: version.version, created },
                alias_was,
            },
            PublishOutcome::AliasMoved { current } => Published::AliasMoved { current },
        })
    }
}

/// Resolves the step's `@model:` inputs into `job.inputs`; returns how each
/// was resolved (for the executor) and, for required ones that found
/// nothing, why.
fn resolve_model_inputs(home: &Home, job: &mut StepJob) -> Result<(BTreeMap<String, ModelRefResolution>, Vec<String>)> {
    let mut refs = BTreeMap::new();
    let mut unresolved = Vec::new();
    for (port, (r, optional)) in &job.step.resolved_inputs {
        let found = home.resolve_input(r, job.run_id)?;
        let resolution = ModelRefResolution {
            model: r.model.name.clone(),
            alias: r.model.alias().map(str::to_string),
            version: found.as_ref().map(|f| f.1),
        };
        refs.insert(port.clone(), resolution);
        match found {
            Some((a, _)) => {
                job.inputs.insert(port.clone(), a);
            }
            None if *optional => {}
            None => unresolved.push(format!("input `{port}` = \"{r}\" found nothing: {}", Home::found_nothing(r))),
        }
    }
    Ok((refs, unresolved))
}

pub async fn run_step(home: &Home, mut job: StepJob, observer: &dyn Observer) -> Result<(StepOutcome, StepOutputs)> {
    let started = Instant::now();
    let meta = &home.metadata;
    // Resolved inputs (`@model:NAME/INPUT`) are found now, so that their
    // digests are part of the cache key like any other input's.
    let (model_refs, unresolved) = resolve_model_inputs(home, &mut job)?;
    let key = cache_key(&job, &model_refs);
    let log_dir = home.logs_dir(job.run_id);
    std::fs::create_dir_all(&log_dir)?;
    let log_path = log_dir.join(format!("{}.log", job.step.name));
    let start = || start_execution(meta, &job, &key, &log_path);
    let elapsed = || started.elapsed().as_millis() as i64;
    if !unresolved.is_empty() {
        // The step cannot start: record why, without running it.
        let exec_id = start()?;
        let error = unresolved.join("; ");
        append_log(&log_path, &error);
        let result = ExecutionResult { duration_ms: elapsed(), ..ended(ExecStatus::Failed, error) };
        return finish_execution(meta, &job, exec_id, result);
    }

    // A publisher's effect lives in the registry, not in its outputs: a
    // cache hit would report a push that did not happen now.
    let publishes = job.component.role() == Role::Publisher;
    if job.use_cache
        && job.step.cache
        && !publishes
        && let Some((cached_exec, outputs)) = meta.find_cached(&key)?
    {
        let mut all_present = true;
        for (_, a) in &outputs {
            all_present &= home.artifacts.contains(&a.digest).await?;
        }
        if all_present {
            let summary = meta.execution(cached_exec).map(|e| e.summary).unwrap_or(Json::Null);
            let exec_id = start()?;
            std::fs::write(&log_path, format!("cache hit: reused the outputs of execution {cached_exec}\n"))?;
            let result = ExecutionResult {
                status: ExecStatus::Succeeded,
                cache_hit: true,
                attempts: 0,
                duration_ms: elapsed(),
                error: None,
                summary,
                outputs: outputs.iter().map(|(n, a)| (n.clone(), to_new(a))).collect(),
                // The run saw what the cached execution saw.
                signals: meta.signals_of_execution(cached_exec)?,
                children: Vec::new(),
            };
            return finish_execution(meta, &job, exec_id, result);
        }
    }

    let exec_id = start()?;
    let inputs = match local_inputs(home, &job).await {
        Ok(inputs) => inputs,
        Err(error) => {
            // A lost or corrupt input blob is this step's failure, named in
            // its log; the producer re-makes it on the next run.
            append_log(&log_path, &error);
            let result = ExecutionResult { duration_ms: elapsed(), ..ended(ExecStatus::Failed, error) };
            return finish_execution(meta, &job, exec_id, result);
        }
    };
    let registry: Arc<dyn ModelRegistry> = Arc::new(Registry { metadata: home.metadata.clone() });

    let max_attempts = job.step.retries + 1;
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        observer.event(&Event::StepStarted { step: job.step.name.clone(), attempt });
        let work = home.work_dir(exec_id, attempt);
        let result = attempt_once(&job, &inputs, &model_refs, &registry, &work, &log_path, attempt).await;
        match result {
            Ok(produced) => {
                let stored = store_outputs(home, &produced.outputs).await;
                let _ = std::fs::remove_dir_all(&work);
                break match stored {
                    Ok(outputs) => produced.into_result(outputs),
                    Err(e) => ended(ExecStatus::Failed, e),
                };
            }
            Err(AttemptError::Cancelled) => {
                let _ = std::fs::remove_dir_all(&work);
                break ended(ExecStatus::Cancelled, "cancelled".into());
            }
            Err(AttemptError::Failed(msg)) => {
                let _ = std::fs::remove_dir_all(&work);
                append_log(&log_path, &format!("attempt {attempt} failed: {msg}"));
                if attempt < max_attempts && !job.cancel.is_cancelled() {
                    let delay = job.step.retry_backoff.saturating_mul(1 << (attempt - 1).min(16));
                    let step = job.step.name.clone();
                    observer.event(&Event::StepRetrying { step, attempt, error: msg.clone(), delay });
                    if wait_unless_cancelled(delay, &job.cancel).await {
                        continue;
                    }
                    break ended(ExecStatus::Cancelled, "cancelled".into());
                }
                break ended(ExecStatus::Failed, msg);
            }
        }
    };
    let result = ExecutionResult { attempts: attempt, duration_ms: elapsed(), ..result };
    finish_execution(meta, &job, exec_id, result)
}

/// The step's input artifacts as local files, each checked against its digest.
async fn local_inputs(home: &Home, job: &StepJob) -> std::result::Result<BTreeMap<String, InputArtifact>, String> {
    let mut inputs = BTreeMap::new();
    for (name, a) in &job.inputs {
        let path = home.artifacts.local_path(&a.digest).await.map_err(|e| format!("input `{name}`: {e}"))?;
        let ty = ArtifactType::parse(&a.ty).unwrap_or(ArtifactType::File);
        let input = InputArtifact { path, digest: a.digest.clone(), ty, properties: a.properties.clone() };
        inputs.insert(name.clone(), input);
    }
    Ok(inputs)
}

/// An execution that ended without outputs.
fn ended(status: ExecStatus, error: String) -> ExecutionResult {
    ExecutionResult {
        status,
        cache_hit: false,
        attempts: 0,
        duration_ms: 0,
        error: Some(error),
        summary: Json::Null,
        outputs: Vec::new(),
        signals: Vec::new(),
        children: Vec::new(),
    }
}

/// Sleeps `delay`; false when the run was cancelled meanwhile.
async fn wait_unless_cancelled(delay: Duration, cancel: &CancelToken) -> bool {
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline && !cancel.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(20).min(deadline - Instant::now())).await;
    }
    !cancel.is_cancelled()
}

/// Puts each written output into the artifact store.
async fn store_outputs(
    home: &Home,
    outputs: &[(String, ArtifactType, PathBuf, Json)],
) -> std::result::Result<Vec<(String, NewArtifact)>, String> {
    let mut stored = Vec::new();
    for (name, ty, path, props) in outputs {
        let s = home.artifacts.put_file(path).await.map_err(|e| e.to_string())?;
        let artifact = NewArtifact {
            ty: ty.as_str().into(),
            uri: s.uri,
            digest: s.digest,
            size: s.size,
            properties: props.clone(),
        };
        stored.push((name.clone(), artifact));
    }
    Ok(stored)
}

/// Records that the step started, with its parameters, cache key, log and inputs.
fn start_execution(meta: &MetadataStore, job: &StepJob, key: &str, log_path: &Path) -> Result<i64> {
    let input_ids: Vec<(String, i64)> = job.inputs.iter().map(|(k, a)| (k.clone(), a.id)).collect();
    Ok(meta.start_execution(
        job.run_id,
        &job.step.name,
        &job.step.component,
        &job.step.component_version,
        &Json::Object(job.params.clone()),
        Some(key),
        &log_path.display().to_string(),
        &input_ids,
    )?)
}

/// Records how the step ended (one transaction) and reports it.
fn finish_execution(
    meta: &MetadataStore,
    job: &StepJob,
    exec_id: i64,
    result: ExecutionResult,
) -> Result<(StepOutcome, StepOutputs)> {
    let recorded = meta.finish_execution(exec_id, &result)?;
    let outcome = StepOutcome {
        step: job.step.name.clone(),
        execution_id: Some(exec_id),
        status: result.status,
        cache_hit: result.cache_hit,
        attempts: result.attempts,
        duration_ms: result.duration_ms,
        error: result.error,
        summary: result.summary,
        resumed: false,
    };
    Ok((outcome, recorded.into_iter().collect()))
}

fn to_new(a: &ArtifactRecord) -> NewArtifact {
    NewArtifact {
        ty: a.ty.clone(),
        uri: a.uri.clone(),
        digest: a.digest.clone(),
        size: a.size,
        properties: a.properties.clone(),
    }
}

fn append_log(path: &Path, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

enum AttemptError {
    Failed(String),
    Cancelled,
}

/// What one successful attempt produced, before its outputs are stored.
struct Produced {
    outputs: Vec<(String, ArtifactType, PathBuf, Json)>,
    summary: Json,
    signals: Vec<NewSignal>,
    children: Vec<NewChild>,
    /// Set when the executor declined its effect (`ctx.refuse`).
    refusal: Option<String>,
}

impl Produced {
    fn into_result(self, outputs: Vec<(String, NewArtifact)>) -> ExecutionResult {
        let status = if self.refusal.is_some() { ExecStatus::Refused } else { ExecStatus::Succeeded };
        ExecutionResult {
            status,
            cache_hit: false,
            attempts: 0,
            duration_ms: 0,
            error: self.refusal,
            summary: self.summary,
            outputs,
            signals: self.signals,
            children: self.children,
        }
    }
}

async fn attempt_once(
    job: &StepJob,
    inputs: &BTreeMap<String, InputArtifact>,
    model_refs: &BTreeMap<String, ModelRefResolution>,
    registry: &Arc<dyn ModelRegistry>,
    work: &Path,
    log_path: &Path,
    attempt: u32,
) -> std::result::Result<Produced, AttemptError> {
    let io = |e: std::io::Error| {
        AttemptError::Failed(format!("cannot prepare the step's work folder {}: {e}", work.display()))
    };
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).map_err(io)?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log_path).map_err(io)?;
    // The step's own token: cancelled by a timeout, or by the run's token.
    let token = CancelToken::new();
    let ctx = ExecContext::new(
        job.step.name.clone(),
        job.run_id,
        job.params.clone(),
        inputs.clone(),
        job.step.outputs.clone(),
        work.to_path_buf(),
        job.base_dir.clone(),
        token.clone(),
        registry.clone(),
        log_path.to_path_buf(),
        Box::new(log),
    )
    .with_model_refs(model_refs.clone());
    ctx.log(format!(
        "== {} attempt {attempt} ({} {}) ==",
        job.step.name, job.step.component, job.step.component_version
    ));
    let component = job.component.clone();
    let ctx = Arc::new(ctx);
    let task_ctx = ctx.clone();
    let mut handle = tokio::task::spawn_blocking(move || component.execute(&task_ctx));
    let deadline = job.step.timeout.map(|t| Instant::now() + t);
    let mut timed_out = false;
    // Components stop at their next cancellation check; one that does not
    // within the grace period is abandoned (its thread ends on its own).
    let grace = Duration::from_secs(5);
    let mut stop_requested: Option<Instant> = None;
    let joined = loop {
        tokio::select! {
            r = &mut handle => break Some(r),
            _ = tokio::time::sleep(Duration::from_millis(25)) => {
                if job.cancel.is_cancelled() && stop_requested.is_none() {
                    token.cancel();
                    stop_requested = Some(Instant::now());
                }
                if let Some(d) = deadline && !timed_out && Instant::now() >= d {
                    timed_out = true;
                    token.cancel();
                    stop_requested = Some(Instant::now());
                }
                if stop_requested.is_some_and(|t| t.elapsed() > grace) {
                    break None;
                }
            }
        }
    };
    let result = match joined {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(ExecError::failed(format!("the component panicked: {e}"))),
        None if timed_out => Err(ExecError::failed("timed out")),
        None => Err(ExecError::Cancelled),
    };
    if timed_out {
        let t = job.step.timeout.unwrap_or_default();
        ctx.log(format!("timed out after {t:?}"));
        return Err(AttemptError::Failed(format!("timed out after {}", humanize(t))));
    }
    match result {
        Ok(()) => {}
        Err(ExecError::Cancelled) => return Err(AttemptError::Cancelled),
        Err(e) => {
            ctx.log(format!("error: {e}"));
            return Err(AttemptError::Failed(e.to_string()));
        }
    }
    let properties = ctx.take_properties();
    let summary = Json::Object(ctx.take_summary());
    let mut produced = Vec::new();
    for (name, ty) in &job.step.outputs {
        let path = work.join(name);
        if !path.is_file() {
            return Err(AttemptError::Failed(format!(
                "component `{}` did not write its output `{name}` (expected a file at {})",
                job.step.component,
                path.display()
            )));
        }
        produced.push((name.clone(), *ty, path, properties.get(name).cloned().unwrap_or(json!({}))));
    }
    let signals =
        ctx.take_signals().into_iter().map(|(kind, message, details)| NewSignal { kind, message, details }).collect();
    let children = ctx
        .take_children()
        .into_iter()
        .map(|c| NewChild {
            name: c.name,
            parameters: c.parameters,
            status: if c.succeeded { ExecStatus::Succeeded } else { ExecStatus::Failed },
            duration_ms: c.duration_ms,
            summary: c.summary,
            error: c.error,
        })
        .collect();
    Ok(Produced { outputs: produced, summary, signals, children, refusal: ctx.take_refusal() })
}

pub fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}
