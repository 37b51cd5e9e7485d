//! Signals executions emit (drift, …): read newest first, and repeated by
//! a cache hit from the execution that first recorded them.

use crate::{MetadataStore, NewSignal, Result, Signal, parse_json};
use rusqlite::params;

impl MetadataStore {
    /// Signals, newest first, optionally of one run.
    pub fn signals(&self, run_id: Option<i64>, limit: usize) -> Result<Vec<Signal>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, run_id, execution_id, kind, message, details, created_at FROM signals
             WHERE (?1 IS NULL OR run_id = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![run_id, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, Option<String>>(5)?, r.get(6)?))
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, run_id, execution_id, kind, message, details, created_at)| {
                Ok(Signal { id, run_id, execution_id, kind, message, details: parse_json(details)?, created_at })
            })
            .collect()
    }

    /// The signals one execution recorded (for a cache hit to repeat them).
    pub fn signals_of_execution(&self, execution_id: i64) -> Result<Vec<NewSignal>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT kind, message, details FROM signals WHERE execution_id = ?1 ORDER BY id")?;
        let rows = st
            .query_map([execution_id], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<String>>(2)?)))?
            .collect::<std::result::Result<Vec<(String, String, Option<String>)>, _>>()?;
        rows.into_iter().map(|(kind, message, d)| Ok(NewSignal { kind, message, details: parse_json(d)? })).collect()
    }
}
