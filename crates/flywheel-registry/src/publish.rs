//! The [`ModelRegistry`] an executor publishes through (`push`): the
//! launcher hands executors the home as this narrow door, so a component
//! can register a version and move an alias (compare-and-set, one
//! transaction in the metadata store) and do nothing else to the stores.

use crate::Home;
use flywheel_core::{AliasMove, InputArtifact, ModelRegistry, Published, RegisteredModel};
use flywheel_metadata::PublishOutcome;

impl ModelRegistry for Home {
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
        let moving = alias.as_ref().map(|m| {
            let checked = m.checked.as_deref().unwrap_or(m.alias.as_str());
            (m.alias.as_str(), m.expected.map(|e| (checked, e)))
        });
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
            PublishOutcome::AliasTaken { current } => Published::AliasTaken { current },
        })
    }
}
