//! What people decide about a registered version — approval (pending,
//! approved, rejected, with who, when and why), tags and a description —
//! each change one IMMEDIATE transaction with its audit row; and what the
//! registry remembers of one model: its versions, the evaluation and
//! blessing of the run that made each, and its history.

use crate::records::{artifact_by_id, model_version_by_id};
use crate::registry::numbered_version;
use crate::{ApprovalState, ArtifactRecord, Change, MetadataError, MetadataStore, ModelVersion, Result};
use rusqlite::{Transaction, params};
use serde::Serialize;

/// One entry of a model's history, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub at: String,
    /// `register`, `set_alias`, `approve`, `reject`, `tag`, `untag`, `describe`.
    pub action: String,
    pub version: Option<i64>,
    pub alias: Option<String>,
    pub from_version: Option<i64>,
    pub run: Option<i64>,
    pub caller: Option<String>,
    pub reason: Option<String>,
    /// `key=value` for tags, the text for a description.
    pub detail: Option<String>,
}

/// What a prediction server did with a version, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingEvent {
    pub model: String,
    /// `serve_swap` or `serve_load_failed`.
    pub action: &'static str,
    pub alias: Option<String>,
    pub from_version: Option<i64>,
    pub version: i64,
    pub detail: Option<String>,
}

/// An artifact the run that made a version wrote about it: `evaluate`'s
/// metrics, `bless`'s blessing.
#[derive(Debug, Clone, Serialize)]
pub struct VersionReport {
    pub step: String,
    pub component: String,
    pub artifact: ArtifactRecord,
}

impl MetadataStore {
    /// Approves or rejects a version; returns the state it had. Deciding
    /// again what was decided is recorded again (a new reason, a new who).
    pub fn set_approval(
        &self,
        model_name: &str,
        version: i64,
        state: ApprovalState,
        change: Change,
    ) -> Result<ApprovalState> {
        self.in_registry_tx(|tx| {
            let id = existing_version(tx, model_name, version)?;
            let before = model_version_by_id(tx, id)?.approval.state;
            let now = flywheel_core::now_rfc3339();
            tx.execute(
                "UPDATE model_versions SET approval = ?2, approval_by = ?3, approval_at = ?4, approval_reason = ?5
                 WHERE id = ?1",
                params![id, state.as_str(), change.caller, now, change.reason],
            )?;
            let action = if state == ApprovalState::Rejected { "reject" } else { "approve" };
            audit(tx, model_name, version, action, change, None)?;
            Ok(before)
        })
    }

    /// Sets `tags` (key, value) and removes `untag` keys on a version.
    pub fn set_tags(
        &self,
        model_name: &str,
        version: i64,
        tags: &[(String, String)],
        untag: &[String],
        change: Change,
    ) -> Result<()> {
        self.in_registry_tx(|tx| {
            let id = existing_version(tx, model_name, version)?;
            for (k, v) in tags {
                tx.execute(
                    "INSERT INTO model_version_tags (version_id, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (version_id, key) DO UPDATE SET value = excluded.value",
                    params![id, k, v],
                )?;
                audit(tx, model_name, version, "tag", change, Some(&format!("{k}={v}")))?;
            }
            for k in untag {
                if tx.execute("DELETE FROM model_version_tags WHERE version_id = ?1 AND key = ?2", params![id, k])? > 0
                {
                    audit(tx, model_name, version, "untag", change, Some(k))?;
                }
            }
            Ok(())
        })
    }

    pub fn set_description(&self, model_name: &str, version: i64, text: &str, change: Change) -> Result<()> {
        self.in_registry_tx(|tx| {
            let id = existing_version(tx, model_name, version)?;
            tx.execute("UPDATE model_versions SET description = ?2 WHERE id = ?1", params![id, text])?;
            audit(tx, model_name, version, "describe", change, Some(text))
        })
    }

    /// The versions of one model, oldest first (none: an unknown model).
    pub fn versions_of(&self, model_name: &str) -> Result<Vec<ModelVersion>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT id FROM model_versions WHERE model_name = ?1 ORDER BY version")?;
        let ids: Vec<i64> = st.query_map([model_name], |r| r.get(0))?.collect::<std::result::Result<_, _>>()?;
        ids.into_iter().map(|id| model_version_by_id(&conn, id)).collect()
    }

    /// What the run that registered `mv` wrote about its model: the outputs
    /// of that run's steps that read the model artifact.
    pub fn version_reports(&self, mv: &ModelVersion) -> Result<Vec<VersionReport>> {
        let Some(run_id) = mv.run_id else { return Ok(Vec::new()) };
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT e.step, e.component, o.artifact_id FROM events i
             JOIN executions e ON e.id = i.execution_id AND e.run_id = ?2 AND e.parent_id IS NULL
             JOIN events o ON o.execution_id = e.id AND o.kind = 'output'
             WHERE i.artifact_id = ?1 AND i.kind = 'input' ORDER BY e.id, o.id",
        )?;
        let rows: Vec<(String, String, i64)> = st
            .query_map(params![mv.artifact_id, run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<std::result::Result<_, _>>()?;
        rows.into_iter()
            .map(|(step, component, id)| Ok(VersionReport { step, component, artifact: artifact_by_id(&conn, id)? }))
            .collect()
    }

    /// Everything that happened to one model, oldest first: registrations
    /// and every audited change.
    pub fn model_history(&self, model_name: &str) -> Result<Vec<HistoryEntry>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT created_at, 'register', version, NULL, NULL, run_id, NULL, NULL, NULL, 0, id
               FROM model_versions WHERE model_name = ?1
             UNION ALL
             SELECT at, action, COALESCE(version, to_version), alias, from_version, run_id, caller, reason, detail, 1, id
               FROM registry_audit WHERE model_name = ?1
             ORDER BY 1, 10, 11",
        )?;
        let rows = st.query_map([model_name], history_entry)?.collect::<std::result::Result<_, _>>()?;
        Ok(rows)
    }

    /// The audit log of every model, newest first: (model, change).
    pub fn registry_audit(&self, limit: usize) -> Result<Vec<(String, HistoryEntry)>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT at, action, COALESCE(version, to_version), alias, from_version, run_id, caller, reason, detail, model_name
             FROM registry_audit ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = st
            .query_map([limit as i64], |r| Ok((r.get(9)?, history_entry(r)?)))?
            .collect::<std::result::Result<_, _>>()?;
        Ok(rows)
    }

    /// Records what a prediction server did with a version an alias points
    /// at (`serve_swap`: now answering; `serve_load_failed`: refused, with
    /// why in `detail`) in the model's audit log, so `models history` tells
    /// when each version started answering.
    pub fn record_serving(&self, event: &ServingEvent, change: Change) -> Result<()> {
        self.in_registry_tx(|tx| {
            tx.execute(
                "INSERT INTO registry_audit (model_name, action, alias, from_version, version, caller, at, reason, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    event.model,
                    event.action,
                    event.alias,
                    event.from_version,
                    event.version,
                    change.caller,
                    flywheel_core::now_rfc3339(),
                    change.reason,
                    event.detail
                ],
            )?;
            Ok(())
        })
    }

    /// Runs `f` in one IMMEDIATE transaction: registry writers queue here,
    /// readers (WAL) never wait.
    fn in_registry_tx<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// A history entry from the first nine columns of a row, in the field order.
fn history_entry(r: &rusqlite::Row) -> rusqlite::Result<HistoryEntry> {
    Ok(HistoryEntry {
        at: r.get(0)?,
        action: r.get(1)?,
        version: r.get(2)?,
        alias: r.get(3)?,
        from_version: r.get(4)?,
        run: r.get(5)?,
        caller: r.get(6)?,
        reason: r.get(7)?,
        detail: r.get(8)?,
    })
}

fn existing_version(tx: &Transaction, model_name: &str, version: i64) -> Result<i64> {
    numbered_version(tx, model_name, version)?
        .ok_or_else(|| MetadataError::NoModelVersion(format!("{model_name}@{version}")))
}

fn audit(
    tx: &Transaction,
    model_name: &str,
    version: i64,
    action: &str,
    change: Change,
    detail: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO registry_audit (model_name, action, version, caller, at, reason, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![model_name, action, version, change.caller, flywheel_core::now_rfc3339(), change.reason, detail],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::tests::{artifact, store};
    use crate::{ApprovalState, Change, MetadataError};

    const ANA: Change = Change { caller: "ana", reason: Some("slices checked") };

    #[test]
    fn what_a_server_did_with_a_version_is_in_the_models_history() {
        let (_d, s) = store();
        let a = s.record_artifact(&artifact("m1", "model")).unwrap();
        s.register_model_version("bikes", a, None).unwrap();
        let event = crate::ServingEvent {
            model: "bikes".into(),
            action: "serve_load_failed",
            alias: Some("production".into()),
            from_version: Some(1),
            version: 2,
            detail: Some("corrupt".into()),
        };
        s.record_serving(&event, Change { caller: "serve@h:1", reason: None }).unwrap();
        let h = s.model_history("bikes").unwrap();
        let last = h.last().unwrap();
        assert_eq!((last.action.as_str(), last.version, last.from_version), ("serve_load_failed", Some(2), Some(1)));
        assert_eq!((last.alias.as_deref(), last.detail.as_deref()), (Some("production"), Some("corrupt")));
        assert_eq!(s.registry_audit(1).unwrap()[0].1, *last);
    }

    #[test]
    fn decisions_tags_and_descriptions_are_recorded_with_who_and_why() {
        let (_d, s) = store();
        let a = s.record_artifact(&artifact("m1", "model")).unwrap();
        s.register_model_version("bikes", a, None).unwrap();
        assert_eq!(s.model_version("bikes", Some(1)).unwrap().approval.state, ApprovalState::Pending);
        assert_eq!(s.set_approval("bikes", 1, ApprovalState::Approved, ANA).unwrap(), ApprovalState::Pending);
        let no_reason = Change { caller: "bo", reason: None };
        s.set_tags("bikes", 1, &[("team".into(), "fc".into())], &[], no_reason).unwrap();
        s.set_tags("bikes", 1, &[("team".into(), "ml".into())], &["absent".into()], no_reason).unwrap();
        s.set_description("bikes", 1, "first", no_reason).unwrap();
        let mv = s.model_version("bikes", Some(1)).unwrap();
        assert_eq!((mv.approval.state, mv.approval.by.as_deref()), (ApprovalState::Approved, Some("ana")));
        assert_eq!(mv.approval.reason.as_deref(), Some("slices checked"));
        assert_eq!(mv.tags.get("team").map(String::as_str), Some("ml"));
        assert_eq!(mv.description.as_deref(), Some("first"));
        let actions: Vec<String> = s.model_history("bikes").unwrap().into_iter().map(|e| e.action).collect();
        // Removing a tag that is not there changes nothing and is not audited.
        assert_eq!(actions, ["register", "approve", "tag", "tag", "describe"]);
    }

    #[test]
    fn a_change_to_a_version_that_does_not_exist_changes_nothing() {
        let (_d, s) = store();
        let err = s.set_approval("bikes", 3, ApprovalState::Rejected, ANA).unwrap_err();
        assert!(matches!(err, MetadataError::NoModelVersion(ref v) if v == "bikes@3"), "{err}");
        assert!(s.set_tags("bikes", 3, &[("k".into(), "v".into())], &[], ANA).is_err());
        assert!(s.registry_audit(10).unwrap().is_empty());
    }

    #[test]
    fn a_registry_read_does_not_wait_for_a_writer() {
        let (dir, s) = store();
        let a = s.record_artifact(&artifact("m1", "model")).unwrap();
        s.register_model_version("bikes", a, None).unwrap();
        // Another process holds the write lock (a pipeline publishing).
        let writer = rusqlite::Connection::open(dir.path().join("metadata.db")).unwrap();
        // WAL is what lets readers see the last commit while a write is under way.
        let mode: String = writer.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        writer.execute_batch("BEGIN IMMEDIATE; UPDATE model_versions SET description = 'x';").unwrap();
        let started = std::time::Instant::now();
        assert_eq!(s.versions_of("bikes").unwrap()[0].description, None, "the uncommitted write is not seen");
        assert!(s.model_history("bikes").unwrap().len() == 1);
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "the read waited for the writer");
        writer.execute_batch("ROLLBACK").unwrap();
    }
}
