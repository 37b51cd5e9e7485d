//! Registered models: a reference resolved to a version and its stored
//! model, ONNX files imported as versions, versions exported as files, and
//! aliases moved with their audit, each write one metadata transaction.

use crate::{Home, RegistryError, Result};
use flywheel_core::{ArtifactType, ModelInputRef, ModelRef, Selector};
use flywheel_metadata::{ArtifactRecord, Change, ModelVersion, NewArtifact};
use flywheel_ml::model::onnx_estimator::OnnxSignature;
use flywheel_ml::{Model, Task};
use serde_json::json;
use std::path::{Path, PathBuf};

/// A registered version and its model artifact.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub version: ModelVersion,
    pub artifact: ArtifactRecord,
}

impl Resolved {
    /// `name@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.version.model_name, self.version.version)
    }
}

/// What [`Home::import_onnx`] did.
#[derive(Debug)]
pub struct Imported {
    pub version: ModelVersion,
    /// False when the same model was already registered under this name.
    pub created: bool,
    pub model: Model,
}

impl Home {
    /// The version a reference names: the latest, a number, or where an alias points.
    pub fn resolve(&self, r: &ModelRef) -> Result<Resolved> {
        let version = match &r.selector {
            Selector::Latest => self.metadata.model_version(&r.name, None)?,
            Selector::Version(v) => self.metadata.model_version(&r.name, Some(*v))?,
            Selector::Alias(a) => self
                .metadata
                .aliased_version(&r.name, a)?
                .ok_or_else(|| RegistryError::NoAlias { model: r.name.clone(), alias: a.clone() })?,
        };
        let artifact = self.metadata.artifact(version.artifact_id)?;
        Ok(Resolved { version, artifact })
    }

    /// The stored model file of a version, checked against its digest.
    pub async fn model_file(&self, r: &Resolved) -> Result<PathBuf> {
        self.artifacts
            .local_path(&r.artifact.digest)
            .await
            .map_err(|source| RegistryError::Stored { reference: r.label(), source })
    }

    /// Resolves a reference and loads its model.
    pub async fn load_model(&self, r: &ModelRef) -> Result<(Resolved, Model)> {
        let resolved = self.resolve(r)?;
        let path = self.model_file(&resolved).await?;
        let model = flywheel_data::model_file::load(&path).map_err(|e| RegistryError::BadModel(e.to_string()))?;
        Ok((resolved, model))
    }

    /// Writes a registered model to `output` as Flywheel's JSON, with where
    /// it came from (model, version, run, digest) in its metadata.
    pub async fn export_model(&self, r: &ModelRef, output: &Path) -> Result<ModelVersion> {
        let (resolved, mut model) = self.load_model(r).await?;
        let mv = &resolved.version;
        if let Some(meta) = model.metadata.as_object_mut() {
            meta.insert(
                "registry".into(),
                json!({ "model": mv.model_name, "version": mv.version, "run": mv.run_id, "digest": resolved.artifact.digest }),
            );
        }
        let text = String::from_utf8(model.to_json()).map_err(|e| RegistryError::BadModel(e.to_string()))?;
        flywheel_data::write_atomic(output, &text)
            .map_err(|source| RegistryError::Write { path: output.to_path_buf(), source })?;
        Ok(resolved.version)
    }

    /// Registers an ONNX file (with its signature inside, or in a JSON file
    /// beside it) as a new version of `name`; the same model again is the
    /// version it already is.
    pub async fn import_onnx(
        &self,
        name: &str,
        file: &Path,
        signature: Option<&Path>,
        caller: &str,
    ) -> Result<Imported> {
        flywheel_core::check_name("model name", name).map_err(RegistryError::Reference)?;
        let read = |p: &Path| std::fs::read(p).map_err(|source| RegistryError::Read { path: p.to_path_buf(), source });
        let bytes = read(file)?;
        let signature = match signature {
            Some(p) => Some(
                OnnxSignature::from_json(&read(p)?, &p.display().to_string())
                    .map_err(|e| RegistryError::BadModel(e.to_string()))?,
            ),
            None => None,
        };
        let mut model = flywheel_ml::model::onnx_estimator::import(bytes, signature, &file.display().to_string())
            .map_err(|e| RegistryError::BadModel(e.to_string()))?;
        model.metadata = json!({ "imported_from": file.display().to_string(), "imported_by": caller });
        let stored = self.artifacts.put_bytes(model.to_json()).await?;
        let id = self.metadata.record_artifact(&NewArtifact {
            ty: ArtifactType::Model.as_str().into(),
            uri: stored.uri,
            digest: stored.digest,
            size: stored.size,
            properties: json!({ "task": model.task, "target": model.target, "estimator": "onnx" }),
        })?;
        let (version, created) = self.metadata.register_model_version(name, id, None)?;
        Ok(Imported { version, created, model })
    }

    /// Points `alias` at a version (audited, in one transaction); returns
    /// the version it pointed at before. With `expected`, only if the alias
    /// still points there (compare-and-set; `Some(None)`: nowhere yet).
    pub fn move_alias(
        &self,
        r: &ModelRef,
        alias: &str,
        expected: Option<Option<i64>>,
        change: Change,
    ) -> Result<Option<i64>> {
        let Some(version) = r.version() else {
            return Err(RegistryError::Reference(format!(
                "`{r}`: name the version to point `{alias}` at, as NAME@VERSION"
            )));
        };
        flywheel_core::check_alias(alias).map_err(RegistryError::Reference)?;
        Ok(self.metadata.set_alias_if(&r.name, alias, version, None, expected, change)?)
    }
}

/// "regression of `cnt`", "classification of `y` into a, b".
pub fn describe_task(model: &Model) -> String {
    match model.task {
        Task::Regression => format!("regression of `{}`", model.target),
        Task::Classification => format!("classification of `{}` into {}", model.target, model.classes.join(", ")),
    }
}

impl Home {
    /// What a pipeline's `@model:` input names, for a run: the artifact and
    /// the version it came from, or nothing.
    pub fn resolve_input(&self, r: &ModelInputRef, run_id: i64) -> Result<Option<(ArtifactRecord, i64)>> {
        Ok(self.metadata.resolve_model_ref(&r.model.name, &r.model.selector, r.input.as_deref(), run_id)?)
    }

    /// Why [`Home::resolve_input`] found nothing, for the step's error.
    pub fn found_nothing(r: &ModelInputRef) -> String {
        let model = &r.model.name;
        if r.logs {
            return format!("model `{model}` has no prediction log yet (`flywheel serve` writes it)");
        }
        match (&r.model.selector, &r.input) {
            (Selector::Alias(a), _) => {
                format!("no version of model `{model}` has the alias `{a}` (or it has no such input)")
            }
            (Selector::Version(v), _) => format!("model `{model}` has no version {v} (or it has no such input)"),
            (Selector::Latest, Some(i)) => {
                format!("no version of model `{model}` was registered before this run (or it has no input `{i}`)")
            }
            (Selector::Latest, None) => format!("no version of model `{model}` was registered before this run"),
        }
    }
}
