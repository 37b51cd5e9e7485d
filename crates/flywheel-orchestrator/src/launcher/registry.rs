//! The [`ModelRegistry`] an executor publishes through (`push`): the
//! launcher's narrow door to the model registry in the metadata store.

use flywheel_core::{AliasMove, InputArtifact, ModelRegistry, Published, RegisteredModel};
use flywheel_metadata::{MetadataStore, PublishOutcome};
use std::sync::Arc;

pub(super) struct Registry {
    pub(super) metadata: Arc<MetadataStore>,
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
