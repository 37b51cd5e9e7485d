//! The cache phase: the step's cache key, and reuse of the outputs of the
//! newest succeeded execution with the same key while their blobs exist.

use super::StepJob;
use crate::Result;
use flywheel_core::{ModelRefResolution, Role};
use flywheel_metadata::{ArtifactRecord, ExecStatus, ExecutionResult, MetadataStore, NewArtifact};
use flywheel_registry::Home;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
        .map(|(p, v)| (p, path_digest(&resolve(&job.base_dir, v))))
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

/// A file's content digest; for a folder or glob of spans, the digest of
/// every span's name and content, so that a new or changed span is a new
/// key. `missing` when nothing can be read (the step then says why).
fn path_digest(path: &Path) -> String {
    let Ok(files) = flywheel_data::spans::spans(path) else { return "missing".into() };
    if files.len() == 1 && files[0] == path {
        return flywheel_artifacts::digest_file(path).map(|(d, _)| d).unwrap_or_else(|_| "missing".into());
    }
    let parts: Vec<String> = files
        .iter()
        .map(|f| {
            let name = f.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let digest = flywheel_artifacts::digest_file(f).map(|(d, _)| d).unwrap_or_else(|_| "missing".into());
            format!("{name}={digest}")
        })
        .collect();
    flywheel_core::digest_bytes(parts.join("\n").as_bytes())
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() { path.to_path_buf() } else { base.join(path) }
}

/// The execution whose outputs this step may reuse, and those outputs, if
/// caching is on for it and every output blob is still in the store.
pub(super) async fn lookup(
    home: &Home,
    job: &StepJob,
    key: &str,
) -> Result<Option<(i64, Vec<(String, ArtifactRecord)>)>> {
    // A publisher's effect lives in the registry, not in its outputs: a
    // cache hit would report a push that did not happen now.
    let publishes = job.component.role() == Role::Publisher;
    if !job.use_cache || !job.step.cache || publishes {
        return Ok(None);
    }
    let Some((cached_exec, outputs)) = home.metadata.find_cached(key)? else {
        return Ok(None);
    };
    let mut all_present = true;
    for (_, a) in &outputs {
        all_present &= home.artifacts.contains(&a.digest).await?;
    }
    Ok(all_present.then_some((cached_exec, outputs)))
}

/// How an execution served from `cached_exec`'s outputs ends.
pub(super) fn hit(
    meta: &MetadataStore,
    cached_exec: i64,
    outputs: &[(String, ArtifactRecord)],
    summary: Json,
    duration_ms: i64,
) -> Result<ExecutionResult> {
    Ok(ExecutionResult {
        status: ExecStatus::Succeeded,
        cache_hit: true,
        attempts: 0,
        duration_ms,
        error: None,
        summary,
        outputs: outputs.iter().map(|(n, a)| (n.clone(), to_new(a))).collect(),
        // The run saw what the cached execution saw.
        signals: meta.signals_of_execution(cached_exec)?,
        children: Vec::new(),
    })
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
