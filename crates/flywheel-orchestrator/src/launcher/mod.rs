//! Runs one step, in the phases TFX's launcher delegates to its helpers:
//! resolve the inputs ([`inputs`]), compute the cache key and reuse a
//! previous execution's outputs ([`cache`]), run the executor with retries,
//! timeout and cancellation ([`execute`]), then check and store what it
//! wrote and finish the execution ([`outputs`]). This is the only place that
//! does these things; components only read their inputs and write their
//! outputs.

mod cache;
mod execute;
mod inputs;
mod outputs;

pub use cache::cache_key;

use crate::outcome::StepOutcome;
use crate::{Observer, Result};
use flywheel_core::{CancelToken, Component, ModelRefResolution};
use flywheel_metadata::{ArtifactRecord, ExecStatus, ExecutionResult};
use flywheel_pipeline::Step;
use flywheel_registry::Home;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

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
    /// Failures a test planned (see `failpoint`).
    #[cfg(test)]
    pub(crate) failures: Arc<crate::failpoint::FailPlan>,
}

pub type StepOutputs = BTreeMap<String, ArtifactRecord>;

/// A step between its phases: the job with its inputs resolved, and what
/// every phase records the execution with.
struct Launch<'a> {
    home: &'a Home,
    job: StepJob,
    model_refs: BTreeMap<String, ModelRefResolution>,
    key: String,
    log_path: PathBuf,
    started: Instant,
}

pub async fn run_step(home: &Home, mut job: StepJob, observer: &dyn Observer) -> Result<(StepOutcome, StepOutputs)> {
    let started = Instant::now();
    // Resolved inputs (`@model:NAME/INPUT`) are found now, so that their
    // digests are part of the cache key like any other input's.
    let (model_refs, unresolved) = inputs::resolve_model_inputs(home, &mut job).await?;
    let key = cache_key(&job, &model_refs);
    fail_point!(job.failures, InputsResolved);
    let log_dir = home.logs_dir(job.run_id);
    std::fs::create_dir_all(&log_dir)?;
    let log_path = log_dir.join(format!("{}.log", job.step.name));
    let launch = Launch { home, job, model_refs, key, log_path, started };
    if !unresolved.is_empty() {
        // The step cannot start: record why, without running it.
        let exec_id = launch.start()?;
        return launch.fail(exec_id, unresolved.join("; "));
    }
    if let Some(outcome) = launch.reuse_cached().await? {
        return Ok(outcome);
    }
    let exec_id = launch.start()?;
    let inputs = match inputs::local_inputs(home, &launch.job).await {
        Ok(inputs) => inputs,
        // A lost or corrupt input blob is this step's failure, named in
        // its log; the producer re-makes it on the next run.
        Err(error) => return launch.fail(exec_id, error),
    };
    let result = execute::run_attempts(&launch, exec_id, &inputs, observer).await?;
    launch.finish(exec_id, result)
}

impl Launch<'_> {
    fn elapsed_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    /// Records that the step started, with its parameters, cache key, log and inputs.
    fn start(&self) -> Result<i64> {
        let job = &self.job;
        let input_ids: Vec<(String, i64)> = job.inputs.iter().map(|(k, a)| (k.clone(), a.id)).collect();
        Ok(self.home.metadata.start_execution(
            job.run_id,
            &job.step.name,
            &job.step.component,
            &job.step.component_version,
            &Json::Object(job.params.clone()),
            Some(&self.key),
            &self.log_path.display().to_string(),
            &input_ids,
        )?)
    }

    /// Ends a started execution as failed before any attempt, saying why in its log.
    fn fail(&self, exec_id: i64, error: String) -> Result<(StepOutcome, StepOutputs)> {
        execute::append_log(&self.log_path, &error);
        let result = ExecutionResult { duration_ms: self.elapsed_ms(), ..outputs::ended(ExecStatus::Failed, error) };
        self.finish(exec_id, result)
    }

    /// On a cache hit whose blobs still exist, records an execution with
    /// the previous outputs; `None` when the step has to run.
    async fn reuse_cached(&self) -> Result<Option<(StepOutcome, StepOutputs)>> {
        let Some((cached_exec, outputs)) = cache::lookup(self.home, &self.job, &self.key).await? else {
            return Ok(None);
        };
        let meta = &self.home.metadata;
        let summary = meta.execution(cached_exec).map(|e| e.summary).unwrap_or(Json::Null);
        let exec_id = self.start()?;
        std::fs::write(&self.log_path, format!("cache hit: reused the outputs of execution {cached_exec}\n"))?;
        let result = cache::hit(meta, cached_exec, &outputs, summary, self.elapsed_ms())?;
        self.finish(exec_id, result).map(Some)
    }

    fn finish(&self, exec_id: i64, result: ExecutionResult) -> Result<(StepOutcome, StepOutputs)> {
        outputs::finish_execution(&self.home.metadata, &self.job, exec_id, result)
    }
}
