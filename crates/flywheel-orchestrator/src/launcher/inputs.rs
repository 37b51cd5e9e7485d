//! The inputs phase: `@model:` references resolved from the metadata store
//! into the step's inputs (before the cache key, which covers their
//! digests), then every input artifact made a local file checked against
//! its digest.

use super::StepJob;
use crate::Result;
use crate::home::Home;
use flywheel_core::{ArtifactType, InputArtifact, ModelRefResolution};
use flywheel_metadata::MetadataStore;
use std::collections::BTreeMap;

/// Resolves the step's `@model:` inputs into `job.inputs`; returns how each
/// was resolved (for the executor) and, for required ones that found
/// nothing, why.
pub(super) fn resolve_model_inputs(
    meta: &MetadataStore,
    job: &mut StepJob,
) -> Result<(BTreeMap<String, ModelRefResolution>, Vec<String>)> {
    let mut refs = BTreeMap::new();
    let mut unresolved = Vec::new();
    for (port, (r, optional)) in &job.step.resolved_inputs {
        let found = meta.resolve_model_ref(&r.model, r.alias.as_deref(), r.input.as_deref(), job.run_id)?;
        refs.insert(
            port.clone(),
            ModelRefResolution { model: r.model.clone(), alias: r.alias.clone(), version: found.as_ref().map(|f| f.1) },
        );
        match found {
            Some((a, _)) => {
                job.inputs.insert(port.clone(), a);
            }
            None if *optional => {}
            None => unresolved.push(format!(
                "input `{port}` = \"{r}\" found nothing: {}",
                found_nothing(&r.model, r.alias.as_deref(), r.input.as_deref())
            )),
        }
    }
    Ok((refs, unresolved))
}

/// Why a reference found nothing, in the words of what it asked for.
fn found_nothing(model: &str, alias: Option<&str>, input: Option<&str>) -> String {
    match (alias, input) {
        (Some(a), _) => format!("no version of model `{model}` has the alias `{a}` (or it has no such input)"),
        (None, Some(i)) => {
            format!("no version of model `{model}` was registered before this run (or it has no input `{i}`)")
        }
        (None, None) => format!("no version of model `{model}` was registered before this run"),
    }
}

/// The step's input artifacts as local files, each checked against its digest.
pub(super) async fn local_inputs(
    home: &Home,
    job: &StepJob,
) -> std::result::Result<BTreeMap<String, InputArtifact>, String> {
    let mut inputs = BTreeMap::new();
    for (name, a) in &job.inputs {
        let path = home.artifacts.local_path(&a.digest).await.map_err(|e| format!("input `{name}`: {e}"))?;
        let ty = ArtifactType::parse(&a.ty).unwrap_or(ArtifactType::File);
        let input = InputArtifact { path, digest: a.digest.clone(), ty, properties: a.properties.clone() };
        inputs.insert(name.clone(), input);
    }
    Ok(inputs)
}
