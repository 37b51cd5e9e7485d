//! The outputs phase: check that the executor wrote every declared output,
//! put each into the artifact store, and finish the execution (status,
//! output events, signals, child executions) in one transaction.

use super::{Launch, StepJob, StepOutputs};
use crate::Result;
use crate::outcome::StepOutcome;
use flywheel_core::{ArtifactType, ExecContext};
use flywheel_metadata::{ExecStatus, ExecutionResult, MetadataStore, NewArtifact, NewChild, NewSignal};
use flywheel_registry::Home;
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};

/// What one successful attempt produced, before its outputs are stored.
pub(super) struct Produced {
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

/// What the executor left in `ctx` and `work`, once every declared output
/// is found written.
pub(super) fn collect(ctx: &ExecContext, job: &StepJob, work: &Path) -> std::result::Result<Produced, String> {
    let properties = ctx.take_properties();
    let summary = Json::Object(ctx.take_summary());
    let mut produced = Vec::new();
    for (name, ty) in &job.step.outputs {
        let path = work.join(name);
        if !path.is_file() {
            return Err(format!(
                "component `{}` did not write its output `{name}` (expected a file at {})",
                job.step.component,
                path.display()
            ));
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

/// Stores what an attempt produced and clears its work folder; how the
/// execution ends (failed if a blob could not be stored).
pub(super) async fn store(l: &Launch<'_>, produced: Produced, work: &Path) -> Result<ExecutionResult> {
    let stored = store_outputs(l.home, &produced.outputs).await;
    fail_point!(l.job.failures, OutputsStored, if stored.is_ok());
    let _ = std::fs::remove_dir_all(work);
    Ok(match stored {
        Ok(outputs) => produced.into_result(outputs),
        Err(e) => ended(ExecStatus::Failed, e),
    })
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

/// An execution that ended without outputs.
pub(super) fn ended(status: ExecStatus, error: String) -> ExecutionResult {
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

/// Records how the step ended (one transaction) and reports it.
pub(super) fn finish_execution(
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
