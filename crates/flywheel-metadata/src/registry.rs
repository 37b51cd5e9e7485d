//! The model registry: model versions, aliases with their audit log, and
//! what an `@model:NAME[@ALIAS][/INPUT]` reference names. Registering and
//! moving an alias are shared with publishing (`publish.rs`), which does
//! both in one transaction.

use crate::Change;
use crate::records::{artifact_by_id, model_version_by_id};
use crate::{ArtifactRecord, MetadataError, MetadataStore, ModelVersion, Result};
use rusqlite::{OptionalExtension, Transaction, params};

impl MetadataStore {
    /// Registers `artifact_id` as the next version of `model_name`; the same
    /// artifact registered twice keeps its first version.
    pub fn register_model_version(
        &self,
        model_name: &str,
        artifact_id: i64,
        run_id: Option<i64>,
    ) -> Result<(ModelVersion, bool)> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (id, created) = register_in(&tx, model_name, artifact_id, run_id)?;
        let mv = model_version_by_id(&tx, id)?;
        tx.commit()?;
        Ok((mv, created))
    }

    pub fn model_version(&self, model_name: &str, version: Option<i64>) -> Result<ModelVersion> {
        let conn = self.conn();
        let id: Option<i64> = match version {
            Some(v) => conn
                .query_row(
                    "SELECT id FROM model_versions WHERE model_name = ?1 AND version = ?2",
                    params![model_name, v],
                    |r| r.get(0),
                )
                .optional()?,
            None => conn
                .query_row(
                    "SELECT id FROM model_versions WHERE model_name = ?1 ORDER BY version DESC LIMIT 1",
                    [model_name],
                    |r| r.get(0),
                )
                .optional()?,
        };
        let label = version.map_or_else(|| model_name.to_string(), |v| format!("{model_name}@{v}"));
        let id = id.ok_or(MetadataError::NoModelVersion(label))?;
        model_version_by_id(&conn, id)
    }

    pub fn model_versions(&self) -> Result<Vec<ModelVersion>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT id FROM model_versions ORDER BY model_name, version")?;
        let ids: Vec<i64> = st.query_map([], |r| r.get(0))?.collect::<std::result::Result<_, _>>()?;
        ids.into_iter().map(|id| model_version_by_id(&conn, id)).collect()
    }

    /// Points `alias` of `model_name` at `version` (which must exist) and
    /// records the move in the audit log; returns the version it pointed
    /// at before, if any. One transaction.
    pub fn set_alias(
        &self,
        model_name: &str,
        alias: &str,
        version: i64,
        run_id: Option<i64>,
        change: Change,
    ) -> Result<Option<i64>> {
        self.set_alias_if(model_name, alias, version, run_id, None, change)
    }

    /// [`Self::set_alias`] with compare-and-set: with `expected`, moves the
    /// alias only if it still points there (`Some(None)`: nowhere), else
    /// [`MetadataError::AliasMoved`] and nothing changes.
    pub fn set_alias_if(
        &self,
        model_name: &str,
        alias: &str,
        version: i64,
        run_id: Option<i64>,
        expected: Option<Option<i64>>,
        change: Change,
    ) -> Result<Option<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(expected) = expected {
            let current = alias_target(&tx, model_name, alias)?;
            if current != expected {
                let (model, alias) = (model_name.to_string(), alias.to_string());
                return Err(MetadataError::AliasMoved { model, alias, expected, current });
            }
        }
        let before = move_alias_in(&tx, model_name, alias, version, run_id, change)?;
        tx.commit()?;
        Ok(before)
    }

    /// Removes `alias` of `model_name` if it still points at `expected`
    /// (compare-and-set, else [`MetadataError::AliasMoved`]), audited; one
    /// transaction. A canary rolled back, or promoted, leaves this way.
    pub fn remove_alias_if(&self, model_name: &str, alias: &str, expected: i64, change: Change) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current = alias_target(&tx, model_name, alias)?;
        if current != Some(expected) {
            let (model, alias) = (model_name.to_string(), alias.to_string());
            return Err(MetadataError::AliasMoved { model, alias, expected: Some(expected), current });
        }
        tx.execute("DELETE FROM model_aliases WHERE model_name = ?1 AND alias = ?2", params![model_name, alias])?;
        tx.execute(
            "INSERT INTO registry_audit (model_name, action, alias, from_version, to_version, caller, at, reason)
             VALUES (?1, 'remove_alias', ?2, ?3, NULL, ?4, ?5, ?6)",
            params![model_name, alias, expected, change.caller, flywheel_core::now_rfc3339(), change.reason],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The version `alias` points at, if any.
    pub fn aliased_version(&self, model_name: &str, alias: &str) -> Result<Option<ModelVersion>> {
        let conn = self.conn();
        let id: Option<i64> = conn
            .query_row(
                "SELECT mv.id FROM model_aliases a JOIN model_versions mv
                   ON mv.model_name = a.model_name AND mv.version = a.version
                 WHERE a.model_name = ?1 AND a.alias = ?2",
                params![model_name, alias],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| model_version_by_id(&conn, id)).transpose()
    }

    /// What `@model:NAME[@ALIAS|@VERSION][/INPUT]` names: the model
    /// artifact of the version `ALIAS` points at or `VERSION` names (or of
    /// the latest version registered before `before_run`), or, with
    /// `/INPUT`, the artifact that fed input `INPUT` of the step that
    /// produced it.
    pub fn resolve_model_ref(
        &self,
        model_name: &str,
        selector: &flywheel_core::Selector,
        input: Option<&str>,
        before_run: i64,
    ) -> Result<Option<(ArtifactRecord, i64)>> {
        use flywheel_core::Selector;
        let conn = self.conn();
        // The model artifact of the version the alias points at, of the
        // version named, or of the latest version registered before the run.
        let model: Option<(i64, i64)> = match selector {
            Selector::Version(v) => conn.query_row(
                "SELECT artifact_id, version FROM model_versions WHERE model_name = ?1 AND version = ?2",
                params![model_name, v],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
            Selector::Alias(a) => conn.query_row(
                "SELECT mv.artifact_id, mv.version FROM model_aliases a JOIN model_versions mv
                   ON mv.model_name = a.model_name AND mv.version = a.version
                 WHERE a.model_name = ?1 AND a.alias = ?2",
                params![model_name, a],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
            Selector::Latest => conn.query_row(
                "SELECT artifact_id, version FROM model_versions WHERE model_name = ?1 AND (run_id IS NULL OR run_id < ?2)
                 ORDER BY version DESC LIMIT 1",
                params![model_name, before_run],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
        }
        .optional()?;
        let Some((model, version)) = model else { return Ok(None) };
        let with_version = |a: ArtifactRecord| (a, version);
        match input {
            None => Ok(Some(with_version(artifact_by_id(&conn, model)?))),
            Some(input) => {
                let id: Option<i64> = conn
                    .query_row(
                        "SELECT e_in.artifact_id FROM events e_out
                         JOIN events e_in ON e_in.execution_id = e_out.execution_id AND e_in.kind = 'input' AND e_in.name = ?2
                         WHERE e_out.artifact_id = ?1 AND e_out.kind = 'output'
                         ORDER BY e_out.execution_id ASC LIMIT 1",
                        params![model, input],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(id.map(|id| artifact_by_id(&conn, id)).transpose()?.map(with_version))
            }
        }
    }
}

/// The row id of the version `artifact_id` has under `model_name`, if any.
pub(crate) fn version_id_of(tx: &Transaction, model_name: &str, artifact_id: i64) -> Result<Option<i64>> {
    Ok(tx
        .query_row(
            "SELECT id FROM model_versions WHERE model_name = ?1 AND artifact_id = ?2 ORDER BY version LIMIT 1",
            params![model_name, artifact_id],
            |r| r.get(0),
        )
        .optional()?)
}

/// The row id of `model_name@version`, if it exists.
pub(crate) fn numbered_version(tx: &Transaction, model_name: &str, version: i64) -> Result<Option<i64>> {
    Ok(tx
        .query_row(
            "SELECT id FROM model_versions WHERE model_name = ?1 AND version = ?2",
            params![model_name, version],
            |r| r.get(0),
        )
        .optional()?)
}

pub(crate) fn alias_target(tx: &Transaction, model_name: &str, alias: &str) -> Result<Option<i64>> {
    Ok(tx
        .query_row(
            "SELECT version FROM model_aliases WHERE model_name = ?1 AND alias = ?2",
            params![model_name, alias],
            |r| r.get(0),
        )
        .optional()?)
}

/// The id of `artifact_id`'s version of `model_name`, registering the next
/// version when it has none; `true` when it was created now.
pub(crate) fn register_in(
    tx: &Transaction,
    model_name: &str,
    artifact_id: i64,
    run_id: Option<i64>,
) -> Result<(i64, bool)> {
    if let Some(id) = version_id_of(tx, model_name, artifact_id)? {
        return Ok((id, false));
    }
    let next: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model_name = ?1",
        [model_name],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO model_versions (model_name, version, artifact_id, run_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![model_name, next, artifact_id, run_id, flywheel_core::now_rfc3339()],
    )?;
    Ok((tx.last_insert_rowid(), true))
}

/// Points `alias` at `version` (which must exist) and audits the move;
/// returns where it pointed before.
pub(crate) fn move_alias_in(
    tx: &Transaction,
    model_name: &str,
    alias: &str,
    version: i64,
    run_id: Option<i64>,
    change: Change,
) -> Result<Option<i64>> {
    if numbered_version(tx, model_name, version)?.is_none() {
        return Err(MetadataError::NoModelVersion(format!("{model_name}@{version}")));
    }
    let before = alias_target(tx, model_name, alias)?;
    if before == Some(version) {
        // Not a move: nothing to write or audit.
        return Ok(before);
    }
    let now = flywheel_core::now_rfc3339();
    tx.execute(
        "INSERT INTO model_aliases (model_name, alias, version, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (model_name, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
        params![model_name, alias, version, now],
    )?;
    tx.execute(
        "INSERT INTO registry_audit (model_name, action, alias, from_version, to_version, run_id, caller, at, reason)
         VALUES (?1, 'set_alias', ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![model_name, alias, before, version, run_id, change.caller, now, change.reason],
    )?;
    Ok(before)
}
