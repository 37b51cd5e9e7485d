//! The execute phase: attempts of the executor, each in a fresh work folder
//! with its own cancellation token (cancelled by the step's timeout or the
//! run's token) and the step's log file, retried with exponential backoff.

use super::Launch;
use super::outputs::{self, Produced};
use crate::display::humanize;
use crate::{Event, Observer, Result};
use flywheel_core::{CancelToken, ExecContext, ExecError, InputArtifact, ModelRegistry};
use flywheel_metadata::{ExecStatus, ExecutionResult};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) enum AttemptError {
    Failed(String),
    Cancelled,
}

/// Runs attempts until one succeeds (its outputs then stored), the retries
/// are spent, or the run is cancelled.
pub(super) async fn run_attempts(
    l: &Launch<'_>,
    exec_id: i64,
    inputs: &BTreeMap<String, InputArtifact>,
    observer: &dyn Observer,
) -> Result<ExecutionResult> {
    let job = &l.job;
    let registry: Arc<dyn ModelRegistry> = Arc::new(l.home.clone());
    let max_attempts = job.step.retries + 1;
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        observer.event(&Event::StepStarted { step: job.step.name.clone(), attempt });
        let work = l.home.work_dir(exec_id, attempt);
        match attempt_once(l, inputs, &registry, &work, attempt).await {
            Ok(produced) => {
                fail_point!(job.failures, ExecutorReturned);
                break outputs::store(l, produced, &work).await?;
            }
            Err(AttemptError::Cancelled) => {
                let _ = std::fs::remove_dir_all(&work);
                break outputs::ended(ExecStatus::Cancelled, "cancelled".into());
            }
            Err(AttemptError::Failed(msg)) => {
                let _ = std::fs::remove_dir_all(&work);
                append_log(&l.log_path, &format!("attempt {attempt} failed: {msg}"));
                if attempt < max_attempts && !job.cancel.is_cancelled() {
                    if back_off(l, attempt, msg, observer).await {
                        continue;
                    }
                    break outputs::ended(ExecStatus::Cancelled, "cancelled".into());
                }
                break outputs::ended(ExecStatus::Failed, msg);
            }
        }
    };
    Ok(ExecutionResult { attempts: attempt, duration_ms: l.elapsed_ms(), ..result })
}

/// Waits before the next attempt (the backoff doubling each time); false
/// when the run was cancelled meanwhile.
async fn back_off(l: &Launch<'_>, attempt: u32, error: String, observer: &dyn Observer) -> bool {
    let job = &l.job;
    let delay = job.step.retry_backoff.saturating_mul(1 << (attempt - 1).min(16));
    let step = job.step.name.clone();
    observer.event(&Event::StepRetrying { step, attempt, error, delay });
    wait_unless_cancelled(delay, &job.cancel).await
}

/// Sleeps `delay`; false when the run was cancelled meanwhile.
async fn wait_unless_cancelled(delay: Duration, cancel: &CancelToken) -> bool {
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline && !cancel.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(20).min(deadline - Instant::now())).await;
    }
    !cancel.is_cancelled()
}

/// One run of the executor, and what it wrote.
async fn attempt_once(
    l: &Launch<'_>,
    inputs: &BTreeMap<String, InputArtifact>,
    registry: &Arc<dyn ModelRegistry>,
    work: &Path,
    attempt: u32,
) -> std::result::Result<Produced, AttemptError> {
    let job = &l.job;
    // The step's own token: cancelled by a timeout, or by the run's token.
    let token = CancelToken::new();
    let ctx = Arc::new(prepare(l, inputs, registry, work, token.clone(), attempt)?);
    let (joined, timed_out) = supervise(l, &ctx, &token).await;
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
    outputs::collect(&ctx, job, work).map_err(AttemptError::Failed)
}

/// A fresh work folder and the context the executor gets.
fn prepare(
    l: &Launch<'_>,
    inputs: &BTreeMap<String, InputArtifact>,
    registry: &Arc<dyn ModelRegistry>,
    work: &Path,
    token: CancelToken,
    attempt: u32,
) -> std::result::Result<ExecContext, AttemptError> {
    let job = &l.job;
    let io = |e: std::io::Error| {
        AttemptError::Failed(format!("cannot prepare the step's work folder {}: {e}", work.display()))
    };
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).map_err(io)?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&l.log_path).map_err(io)?;
    let ctx = ExecContext::new(
        job.step.name.clone(),
        job.run_id,
        job.params.clone(),
        inputs.clone(),
        job.step.outputs.clone(),
        work.to_path_buf(),
        job.base_dir.clone(),
        token,
        registry.clone(),
        l.log_path.clone(),
        Box::new(log),
    )
    .with_model_refs(l.model_refs.clone());
    ctx.log(format!(
        "== {} attempt {attempt} ({} {}) ==",
        job.step.name, job.step.component, job.step.component_version
    ));
    Ok(ctx)
}

type Joined = std::result::Result<std::result::Result<(), ExecError>, tokio::task::JoinError>;

/// Runs the executor on a blocking thread until it returns, cancelling its
/// token when the run is cancelled or the timeout passes. `None` when it
/// did not stop within the grace period after that; true when it timed out.
async fn supervise(l: &Launch<'_>, ctx: &Arc<ExecContext>, token: &CancelToken) -> (Option<Joined>, bool) {
    let job = &l.job;
    let component = job.component.clone();
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
    (joined, timed_out)
}

pub(super) fn append_log(path: &Path, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}
