//! What people decide about versions and what the registry tells them:
//! approvals, tags and descriptions (each an audited transaction in the
//! metadata store), a model's card (`models show`: every version with its
//! metrics, blessing, approval, aliases, signature and the run that made
//! it) and its history (`models history`).

use crate::{Home, RegistryError, Resolved, Result};
use flywheel_core::{ModelRef, Selector};
use flywheel_metadata::{ApprovalState, Change, HistoryEntry, ModelVersion};
use serde::Serialize;
use serde_json::Value as Json;

/// One version as `models show` describes it.
#[derive(Debug, Clone, Serialize)]
pub struct VersionCard {
    #[serde(flatten)]
    pub version: ModelVersion,
    pub digest: String,
    /// The task, target and estimator the model artifact records.
    pub model: Json,
    /// What `evaluate` measured in the run that made it (overall and by slice).
    pub metrics: Option<Json>,
    /// Whether `bless` passed it in that run.
    pub blessing: Option<Json>,
    /// Inputs and outputs, read from the stored model; `None` with
    /// `unreadable` when the model cannot be read.
    pub signature: Option<flywheel_ml::model::Signature>,
    pub unreadable: Option<String>,
}

impl Home {
    /// The version a decision is about: a number or an alias, never "the
    /// latest", which may change between reading and deciding.
    pub fn decided_version(&self, r: &ModelRef, what: &str) -> Result<Resolved> {
        if r.selector == Selector::Latest {
            return Err(RegistryError::Reference(format!(
                "`{r}`: name the version to {what}, as NAME@VERSION or NAME@ALIAS"
            )));
        }
        self.resolve(r)
    }

    /// Approves or rejects a version; returns the resolved version and the state it had.
    pub fn decide(&self, r: &ModelRef, state: ApprovalState, change: Change) -> Result<(Resolved, ApprovalState)> {
        let what = if state == ApprovalState::Rejected { "reject" } else { "approve" };
        let resolved = self.decided_version(r, what)?;
        let before = self.metadata.set_approval(&r.name, resolved.version.version, state, change)?;
        Ok((resolved, before))
    }

    /// Sets `KEY=VALUE` tags and removes `untag` keys on a version; returns
    /// the version as it is after the change.
    pub fn tag(&self, r: &ModelRef, tags: &[String], untag: &[String], change: Change) -> Result<ModelVersion> {
        let resolved = self.decided_version(r, "tag")?;
        let pairs = tags.iter().map(|t| parse_tag(t)).collect::<Result<Vec<_>>>()?;
        for k in untag {
            flywheel_core::check_name("tag key", k).map_err(RegistryError::Reference)?;
        }
        let version = resolved.version.version;
        self.metadata.set_tags(&r.name, version, &pairs, untag, change)?;
        Ok(self.metadata.model_version(&r.name, Some(version))?)
    }

    pub fn describe(&self, r: &ModelRef, text: &str, change: Change) -> Result<Resolved> {
        let resolved = self.decided_version(r, "describe")?;
        self.metadata.set_description(&r.name, resolved.version.version, text, change)?;
        Ok(resolved)
    }

    /// Every version of `name`, oldest first, with what is known of each.
    pub async fn model_card(&self, name: &str) -> Result<Vec<VersionCard>> {
        let versions = self.metadata.versions_of(name)?;
        if versions.is_empty() {
            return Err(self.unknown_model(name));
        }
        let mut cards = Vec::with_capacity(versions.len());
        for version in versions {
            cards.push(self.version_card(version).await?);
        }
        Ok(cards)
    }

    async fn version_card(&self, version: ModelVersion) -> Result<VersionCard> {
        let artifact = self.metadata.artifact(version.artifact_id)?;
        let reports = self.metadata.version_reports(&version)?;
        let of = |ty: &str| reports.iter().find(|r| r.artifact.ty == ty).map(|r| r.artifact.properties.clone());
        let resolved = Resolved { version: version.clone(), artifact: artifact.clone() };
        let (signature, unreadable) = match self.model_file(&resolved).await {
            Ok(path) => match flywheel_data::model_file::load(&path) {
                Ok(m) => (Some(m.signature), None),
                Err(e) => (None, Some(e.to_string())),
            },
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(VersionCard {
            metrics: of("metrics"),
            blessing: of("blessing"),
            model: artifact.properties,
            digest: artifact.digest,
            version,
            signature,
            unreadable,
        })
    }

    /// Registrations and every audited change of `name`, oldest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let entries = self.metadata.model_history(name)?;
        if entries.is_empty() {
            return Err(self.unknown_model(name));
        }
        Ok(entries)
    }

    fn unknown_model(&self, name: &str) -> RegistryError {
        let mut names: Vec<String> =
            self.metadata.model_versions().map(|v| v.into_iter().map(|m| m.model_name).collect()).unwrap_or_default();
        names.dedup();
        let hint = flywheel_core::closest(name, names.iter().map(String::as_str))
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_else(|| {
                if names.is_empty() {
                    "; none is registered yet".into()
                } else {
                    format!("; models: {}", names.join(", "))
                }
            });
        RegistryError::Reference(format!("no model `{name}` is registered{hint}"))
    }
}

/// `KEY=VALUE`, the key a name (letters, digits, `-`, `_`, `.`).
fn parse_tag(text: &str) -> Result<(String, String)> {
    let Some((k, v)) = text.split_once('=') else {
        return Err(RegistryError::Reference(format!("tag `{text}`: write KEY=VALUE, e.g. `team=forecasting`")));
    };
    flywheel_core::check_name("tag key", k).map_err(RegistryError::Reference)?;
    Ok((k.to_string(), v.to_string()))
}
