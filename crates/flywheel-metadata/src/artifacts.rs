//! Artifacts: recorded once per digest and type, whether a step made them
//! or they were imported, and looked up by id or digest.

use crate::records::artifact_by_id;
use crate::{ArtifactRecord, MetadataError, MetadataStore, NewArtifact, Result, json_text};
use rusqlite::{OptionalExtension, Transaction, params};

impl MetadataStore {
    pub fn artifact(&self, id: i64) -> Result<ArtifactRecord> {
        artifact_by_id(&self.conn(), id).map_err(|e| match e {
            MetadataError::Sql(rusqlite::Error::QueryReturnedNoRows) => MetadataError::NoArtifact(id.to_string()),
            e => e,
        })
    }

    /// Records an artifact made outside a run (e.g. an imported model).
    pub fn record_artifact(&self, a: &NewArtifact) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id = upsert_artifact(&tx, a)?;
        tx.commit()?;
        Ok(id)
    }

    pub fn artifact_by_digest(&self, digest: &str, ty: &str) -> Result<Option<ArtifactRecord>> {
        let conn = self.conn();
        let id: Option<i64> = conn
            .query_row("SELECT id FROM artifacts WHERE digest = ?1 AND type = ?2", params![digest, ty], |r| r.get(0))
            .optional()?;
        id.map(|id| artifact_by_id(&conn, id)).transpose()
    }
}

pub(crate) fn upsert_artifact(tx: &Transaction<'_>, a: &NewArtifact) -> Result<i64> {
    tx.execute(
        "INSERT INTO artifacts (type, uri, digest, size, properties, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (digest, type) DO NOTHING",
        params![a.ty, a.uri, a.digest, a.size as i64, json_text(&a.properties), flywheel_core::now_rfc3339()],
    )?;
    Ok(tx
        .query_row("SELECT id FROM artifacts WHERE digest = ?1 AND type = ?2", params![a.digest, a.ty], |r| r.get(0))?)
}
