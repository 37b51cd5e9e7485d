//! The step cache: the outputs of the newest succeeded execution with a
//! given cache key, for the launcher to reuse.

use crate::records::events_of;
use crate::{ArtifactRecord, MetadataStore, Result};
use rusqlite::OptionalExtension;

/// The execution a cache hit reuses, and its named outputs.
pub type CachedOutputs = (i64, Vec<(String, ArtifactRecord)>);

impl MetadataStore {
    /// The outputs of the newest succeeded execution with this cache key.
    pub fn find_cached(&self, cache_key: &str) -> Result<Option<CachedOutputs>> {
        let conn = self.conn();
        let exec: Option<i64> = conn
            .query_row(
                "SELECT id FROM executions WHERE cache_key = ?1 AND status = 'succeeded' ORDER BY id DESC LIMIT 1",
                [cache_key],
                |r| r.get(0),
            )
            .optional()?;
        let Some(exec) = exec else { return Ok(None) };
        let outputs = events_of(&conn, exec, "output")?;
        Ok(Some((exec, outputs)))
    }
}
