//! The inputs phase: `@model:` references resolved through the registry
//! (and `@logs:` ones exported from the prediction log) into the step's inputs (before the cache key, which covers their
//! digests), then every input artifact made a local file checked against
//! its digest.

use super::StepJob;
use crate::Result;
use flywheel_core::{ArtifactType, InputArtifact, ModelRefResolution};
use flywheel_registry::Home;
use std::collections::BTreeMap;

/// Resolves the step's `@model:` inputs into `job.inputs`; returns how each
/// was resolved (for the executor) and, for required ones that found
/// nothing, why.
pub(super) async fn resolve_model_inputs(
    home: &Home,
    job: &mut StepJob,
) -> Result<(BTreeMap<String, ModelRefResolution>, Vec<String>)> {
    let mut refs = BTreeMap::new();
    let mut unresolved = Vec::new();
    for (port, (r, optional)) in &job.step.resolved_inputs {
        let found = if r.logs {
            home.log_dataset(&r.model.name).await?.map(|a| (a, 0))
        } else {
            home.resolve_input(r, job.run_id)?
        };
        let resolution = ModelRefResolution {
            model: r.model.name.clone(),
            alias: r.model.alias().map(str::to_string),
            version: found.as_ref().filter(|_| !r.logs).map(|f| f.1),
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
