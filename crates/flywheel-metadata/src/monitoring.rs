//! Monitoring's record: the windows of logged predictions scored, per
//! model in order, with their scores and alerts (migration 8).

use crate::{MetadataStore, Result};
use rusqlite::{OptionalExtension, params};

/// A window scored, to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWindow {
    pub model_name: String,
    /// The version that answered its rows.
    pub version: i64,
    /// Microseconds since 1970 of its first and last logged row.
    pub first_us: i64,
    pub last_us: i64,
    pub rows: i64,
    pub labeled: i64,
    pub alerts: i64,
    /// The monitor's scores, as JSON.
    pub scores: serde_json::Value,
    pub at_us: i64,
}

/// A recorded window.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorWindow {
    pub id: i64,
    pub window: NewWindow,
}

impl MetadataStore {
    /// Records a window and what it keeps to merge with others (`sketch`,
    /// JSON), in one transaction.
    pub fn record_window(&self, w: &NewWindow, sketch: Option<&str>) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO monitor_windows (model_name, version, first_us, last_us, rows, labeled, alerts, scores, at_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                w.model_name,
                w.version,
                w.first_us,
                w.last_us,
                w.rows,
                w.labeled,
                w.alerts,
                w.scores.to_string(),
                w.at_us
            ],
        )?;
        let id = tx.last_insert_rowid();
        if let Some(sketch) = sketch {
            tx.execute("INSERT INTO window_sketches (window_id, sketch) VALUES (?1, ?2)", params![id, sketch])?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// A window scored again (late labels): its labeled rows, alerts and
    /// scores, and its sketch when it keeps one, in one transaction.
    pub fn rescore_window(
        &self,
        id: i64,
        (labeled, alerts): (i64, i64),
        scores: &serde_json::Value,
        sketch: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE monitor_windows SET labeled = ?2, alerts = ?3, scores = ?4 WHERE id = ?1",
            params![id, labeled, alerts, scores.to_string()],
        )?;
        if let Some(sketch) = sketch {
            tx.execute("UPDATE window_sketches SET sketch = ?2 WHERE window_id = ?1", params![id, sketch])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The sketches of windows `ids` that keep one (windows recorded before
    /// schema 12 do not), by id.
    pub fn window_sketches(&self, ids: &[i64]) -> Result<std::collections::HashMap<i64, String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT sketch FROM window_sketches WHERE window_id = ?1")?;
        let mut out = std::collections::HashMap::new();
        for &id in ids {
            let found: Option<String> = stmt.query_row(params![id], |r| r.get(0)).optional()?;
            if let Some(s) = found {
                out.insert(id, s);
            }
        }
        Ok(out)
    }

    /// The windows of `model` holding request times in `[from, to]`, oldest first.
    pub fn windows_covering(&self, model: &str, from_us: i64, to_us: i64) -> Result<Vec<MonitorWindow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, model_name, version, first_us, last_us, rows, labeled, alerts, scores, at_us
               FROM monitor_windows WHERE model_name = ?1 AND last_us >= ?2 AND first_us <= ?3 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![model, from_us, to_us], window_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The latest window of `model@version`.
    pub fn last_window_of(&self, model: &str, version: i64) -> Result<Option<MonitorWindow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, model_name, version, first_us, last_us, rows, labeled, alerts, scores, at_us
               FROM monitor_windows WHERE model_name = ?1 AND version = ?2 ORDER BY id DESC LIMIT 1",
        )?;
        Ok(stmt.query_row(params![model, version], window_from_row).optional()?)
    }

    /// The latest `limit` windows of `model` (of every model when `None`), newest first.
    pub fn windows(&self, model: Option<&str>, limit: i64) -> Result<Vec<MonitorWindow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, model_name, version, first_us, last_us, rows, labeled, alerts, scores, at_us
               FROM monitor_windows WHERE ?1 IS NULL OR model_name = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![model, limit], window_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn window_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MonitorWindow> {
    let scores: String = r.get(8)?;
    Ok(MonitorWindow {
        id: r.get(0)?,
        window: NewWindow {
            model_name: r.get(1)?,
            version: r.get(2)?,
            first_us: r.get(3)?,
            last_us: r.get(4)?,
            rows: r.get(5)?,
            labeled: r.get(6)?,
            alerts: r.get(7)?,
            scores: serde_json::from_str(&scores).unwrap_or(serde_json::Value::Null),
            at_us: r.get(9)?,
        },
    })
}
