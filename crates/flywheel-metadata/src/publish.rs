//! Publishing: registering a model version and moving an alias to it, as
//! one transaction with a compare-and-set on the alias. A run that blessed
//! its candidate against `production@2` may only move `production` if it
//! still points at 2; otherwise another run (or a person) moved it since,
//! and the candidate was never compared with what it would replace.

use crate::Change;
use crate::records::model_version_by_id;
use crate::registry::{alias_target, move_alias_in, register_in, version_id_of};
use crate::{MetadataStore, ModelVersion, Result};
use rusqlite::Transaction;

/// What [`MetadataStore::publish`] did.
#[derive(Debug, Clone)]
pub enum PublishOutcome {
    /// The version (new, or the one this artifact already had) and, when an
    /// alias was moved, the version it pointed at before.
    Published { version: Box<ModelVersion>, created: bool, alias_was: Option<i64> },
    /// The alias points elsewhere than expected: nothing was written.
    AliasMoved { current: Option<i64> },
    /// Guarded through another alias, the alias to move points at another
    /// version already (a canary being judged): nothing was written.
    AliasTaken { current: i64 },
}

/// Compare-and-set for a publish: the alias the candidate was compared
/// through, and the version it must still point at (`None`: nowhere).
pub type Expected<'a> = (&'a str, Option<i64>);

impl MetadataStore {
    /// Registers `artifact_id` under `model_name` and, with `alias`, points
    /// it at that version, all in one transaction. `expected` (when given)
    /// is the version the alias must point at right now (`None`: no version);
    /// if it does not, nothing is registered and nothing moves.
    pub fn publish(
        &self,
        model_name: &str,
        artifact_id: i64,
        run_id: Option<i64>,
        alias: Option<(&str, Option<Expected<'_>>)>,
        caller: &str,
    ) -> Result<PublishOutcome> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some((a, Some((checked, expected)))) = alias {
            let current = alias_target(&tx, model_name, checked)?;
            if checked != a {
                // Another alias was compared with: it must not have moved,
                // and the one to move must be free (or this artifact's
                // already: a resumed run publishing again).
                if current != expected {
                    return Ok(PublishOutcome::AliasMoved { current });
                }
                let mine = version_of(&tx, model_name, artifact_id)?.map(|v| v.version);
                if let Some(taken) = alias_target(&tx, model_name, a)?.filter(|t| Some(*t) != mine) {
                    return Ok(PublishOutcome::AliasTaken { current: taken });
                }
            } else if current != expected {
                // Already published by this very artifact (a resumed run
                // publishing again): nothing to do, and nothing to refuse.
                if let Some(v) = current
                    && let Some(version) = version_of(&tx, model_name, artifact_id)?
                    && version.version == v
                {
                    return Ok(PublishOutcome::Published {
                        version: Box::new(version),
                        created: false,
                        alias_was: current,
                    });
                }
                return Ok(PublishOutcome::AliasMoved { current });
            }
        }
        let (id, created) = register_in(&tx, model_name, artifact_id, run_id)?;
        let version = model_version_by_id(&tx, id)?;
        let alias_was = match alias {
            Some((a, _)) => {
                move_alias_in(&tx, model_name, a, version.version, run_id, Change { caller, reason: None })?
            }
            None => None,
        };
        tx.commit()?;
        Ok(PublishOutcome::Published { version: Box::new(version), created, alias_was })
    }
}

fn version_of(tx: &Transaction, model_name: &str, artifact_id: i64) -> Result<Option<ModelVersion>> {
    version_id_of(tx, model_name, artifact_id)?.map(|id| model_version_by_id(tx, id)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store_with_model() -> (tempfile::TempDir, MetadataStore, i64, i64, i64) {
        let dir = tempfile::tempdir().unwrap();
        let s = MetadataStore::open(&dir.path().join("m.db")).unwrap();
        let p = s.upsert_pipeline("p", "d", "p.toml", "").unwrap();
        let run = s.create_run(p, &json!({}), &json!({}), "manual", "me").unwrap();
        let new = |d: &str| crate::NewArtifact {
            ty: "model".into(),
            uri: format!("blob:{d}"),
            digest: d.into(),
            size: 1,
            properties: json!({}),
        };
        let a = s.record_artifact(&new("a")).unwrap();
        let b = s.record_artifact(&new("b")).unwrap();
        (dir, s, run, a, b)
    }

    #[test]
    fn an_alias_moves_only_if_it_still_points_where_the_blessing_compared() {
        let (_d, s, run, a, b) = store_with_model();
        // Blessed against no production: only valid while there is none.
        let first = s.publish("m", a, Some(run), Some(("production", Some(("production", None)))), "t").unwrap();
        assert!(matches!(first, PublishOutcome::Published { alias_was: None, created: true, .. }));
        // A second run also blessed against none: production is 1 now.
        let raced = s.publish("m", b, Some(run), Some(("production", Some(("production", None)))), "t").unwrap();
        assert!(matches!(raced, PublishOutcome::AliasMoved { current: Some(1) }), "{raced:?}");
        // Nothing was registered by the refused publish.
        assert!(s.model_version("m", Some(2)).is_err());
        let ok = s.publish("m", b, Some(run), Some(("production", Some(("production", Some(1))))), "t").unwrap();
        assert!(matches!(ok, PublishOutcome::Published { alias_was: Some(1), .. }));
        assert_eq!(s.aliased_version("m", "production").unwrap().unwrap().version, 2);
        // Publishing the same artifact again (a resumed run) is not a race.
        let again = s.publish("m", b, Some(run), Some(("production", Some(("production", Some(1))))), "t").unwrap();
        assert!(matches!(again, PublishOutcome::Published { created: false, alias_was: Some(2), .. }));
        assert_eq!(s.registry_audit(10).unwrap().len(), 2, "no move was audited for the repeat");
    }

    #[test]
    fn a_canary_moves_only_while_production_is_still_the_one_compared_with() {
        let (_d, s, run, a, b) = store_with_model();
        s.publish("m", a, Some(run), Some(("production", None)), "t").unwrap();
        // Compared with production 1, pushed to canary: canary moves, production stays.
        let canary = s.publish("m", b, Some(run), Some(("canary", Some(("production", Some(1))))), "t").unwrap();
        assert!(matches!(canary, PublishOutcome::Published { alias_was: None, created: true, .. }), "{canary:?}");
        assert_eq!(s.aliased_version("m", "canary").unwrap().unwrap().version, 2);
        assert_eq!(s.aliased_version("m", "production").unwrap().unwrap().version, 1);
        // Production moved meanwhile: the comparison no longer holds.
        s.set_alias("m", "production", 2, None, crate::Change { caller: "t", reason: None }).unwrap();
        let stale = s.publish("m", a, Some(run), Some(("canary", Some(("production", Some(1))))), "t").unwrap();
        assert!(matches!(stale, PublishOutcome::AliasMoved { current: Some(2) }), "{stale:?}");
        // A canary being judged is not replaced by another; the same one
        // published again (a resumed run) is not a conflict.
        let again = s.publish("m", b, Some(run), Some(("canary", Some(("production", Some(2))))), "t").unwrap();
        assert!(matches!(again, PublishOutcome::Published { created: false, .. }), "{again:?}");
        let third = s
            .record_artifact(&crate::NewArtifact {
                ty: "model".into(),
                uri: "blob:c".into(),
                digest: "c".into(),
                size: 1,
                properties: json!({}),
            })
            .unwrap();
        let taken = s.publish("m", third, Some(run), Some(("canary", Some(("production", Some(2))))), "t").unwrap();
        assert!(matches!(taken, PublishOutcome::AliasTaken { current: 2 }), "{taken:?}");
        assert_eq!(s.aliased_version("m", "canary").unwrap().unwrap().version, 2, "untouched");
        // Removing an alias is compare-and-set too, and audited.
        let change = || crate::Change { caller: "t", reason: Some("rolled back") };
        assert!(s.remove_alias_if("m", "canary", 1, change()).is_err());
        s.remove_alias_if("m", "canary", 2, change()).unwrap();
        assert!(s.aliased_version("m", "canary").unwrap().is_none());
        let audit = s.registry_audit(1).unwrap();
        assert_eq!(audit[0].1.action, "remove_alias");
    }
}
