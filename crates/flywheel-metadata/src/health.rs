//! The store's health: refusing a database that is missing, empty or not a
//! database beside a home with history, closing what dead processes left
//! `running`, and the read-only checks `flywheel doctor` reports.

use crate::{MetadataError, MetadataStore, Result, RunRecord, RunStatus, hostname, pid_alive};
use rusqlite::{Connection, params};
use serde::Serialize;
use std::collections::HashSet;
use std::path::Path;

/// What a home holds beside its database. A database that is missing or
/// empty beside any of it means the history was lost, not that the home is new.
#[derive(Debug, Clone, Copy, Default)]
pub struct History {
    pub blobs: usize,
    pub run_logs: usize,
}

impl History {
    pub fn is_empty(&self) -> bool {
        self.blobs == 0 && self.run_logs == 0
    }
}

/// Refuses a database file that is missing or empty while the home holds
/// artifacts or run logs, and a file that is not a SQLite database.
pub fn check_database_file(path: &Path, history: &History) -> Result<()> {
    let state = match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => "empty (0 bytes)",
        Ok(_) => return check_header(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "missing",
        // Unreadable: opening it reports why.
        Err(_) => return Ok(()),
    };
    if history.is_empty() {
        return Ok(());
    }
    Err(MetadataError::Lost { path: path.to_path_buf(), state, blobs: history.blobs, run_logs: history.run_logs })
}

/// A non-empty file must start with SQLite's 16-byte header.
pub(crate) fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else { return Ok(()) };
    let mut head = Vec::with_capacity(16);
    if f.by_ref().take(16).read_to_end(&mut head).is_err() || head.is_empty() {
        return Ok(());
    }
    if head != b"SQLite format 3\0" {
        return Err(MetadataError::NotSqlite { path: path.to_path_buf() });
    }
    Ok(())
}

/// Names what SQLite says about a damaged file instead of a bare SQL error.
pub(crate) fn classify(path: &Path, e: rusqlite::Error) -> MetadataError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => MetadataError::NotSqlite { path: path.to_path_buf() },
        Some(ErrorCode::DatabaseCorrupt) => MetadataError::Damaged { path: path.to_path_buf(), source: e },
        _ => MetadataError::Open { path: path.to_path_buf(), source: e },
    }
}

/// Runs recorded `running` on this host by a process that no longer exists.
pub(crate) fn dead_run_ids(conn: &Connection) -> Result<Vec<i64>> {
    let mut st = conn.prepare("SELECT id, pid FROM runs WHERE status = 'running' AND host = ?1 ORDER BY id")?;
    let candidates: Vec<(i64, i64)> =
        st.query_map([hostname()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<std::result::Result<_, _>>()?;
    // Our own pid on a `running` run at open time can only be a recycled
    // pid of a dead process: treat it as dead too.
    let me = i64::from(std::process::id());
    Ok(candidates.into_iter().filter(|&(_, pid)| !pid_alive(pid) || pid == me).map(|(id, _)| id).collect())
}

/// An execution still `running` under a run that is not.
#[derive(Debug, Clone, Serialize)]
pub struct StaleExecution {
    pub id: i64,
    pub run_id: i64,
    pub step: String,
    pub run_status: RunStatus,
}

/// A problem `PRAGMA integrity_check` or `foreign_key_check` reports.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrityProblem {
    pub check: &'static str,
    pub message: String,
}

const STALE_EXECUTIONS: &str =
    "SELECT e.id, e.run_id, e.step, r.status FROM executions e JOIN runs r ON r.id = e.run_id
     WHERE e.status = 'running' AND r.status <> 'running' ORDER BY e.id";

impl MetadataStore {
    /// Marks runs whose process died (SIGKILL, power loss) as interrupted, so
    /// they never stay `running` forever and `resume` can finish them.
    pub fn reap_dead_runs(&self) -> Result<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let dead = dead_run_ids(&tx)?;
        let now = flywheel_core::now_rfc3339();
        for &id in &dead {
            tx.execute(
                "UPDATE executions SET status = 'interrupted', ended_at = ?2, error = 'the process running it stopped (killed or crashed)' WHERE run_id = ?1 AND status = 'running'",
                params![id, now],
            )?;
            tx.execute(
                "UPDATE runs SET status = 'interrupted', ended_at = ?2, error = 'the process running it stopped (killed or crashed); `flywheel resume` finishes it' WHERE id = ?1",
                params![id, now],
            )?;
        }
        tx.commit()?;
        Ok(dead)
    }

    /// Closes executions left `running` under a run that ended (failed,
    /// interrupted, …): the process that ran them gave up on them.
    pub fn close_stale_executions(&self) -> Result<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let ids: Vec<i64> = {
            let mut st = tx.prepare(STALE_EXECUTIONS)?;
            st.query_map([], |r| r.get(0))?.collect::<std::result::Result<_, _>>()?
        };
        let now = flywheel_core::now_rfc3339();
        for id in &ids {
            tx.execute(
                "UPDATE executions SET status = 'interrupted', ended_at = ?2,
                   error = 'left running when its run ended; `flywheel resume` runs the step again'
                 WHERE id = ?1 AND status = 'running'",
                params![id, now],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Executions `running` under a run that is not (what
    /// [`MetadataStore::close_stale_executions`] would close).
    pub fn stale_executions(&self) -> Result<Vec<StaleExecution>> {
        let conn = self.conn();
        let mut st = conn.prepare(STALE_EXECUTIONS)?;
        let rows: Vec<(i64, i64, String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<std::result::Result<_, _>>()?;
        Ok(rows
            .into_iter()
            .map(|(id, run_id, step, status)| StaleExecution {
                id,
                run_id,
                step,
                run_status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
            })
            .collect())
    }

    /// Runs left `running` by a dead process on this host (what
    /// [`MetadataStore::reap_dead_runs`] would mark interrupted).
    pub fn dead_runs(&self) -> Result<Vec<RunRecord>> {
        let ids = dead_run_ids(&self.conn())?;
        ids.into_iter().map(|id| self.run(id)).collect()
    }

    /// Ids of executions still `running` (their work folders are in use).
    pub fn running_execution_ids(&self) -> Result<HashSet<i64>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT id FROM executions WHERE status = 'running'")?;
        Ok(st.query_map([], |r| r.get(0))?.collect::<std::result::Result<_, _>>()?)
    }

    /// Every recorded artifact as (id, type, digest), by digest.
    pub fn artifact_digests(&self) -> Result<Vec<(i64, String, String)>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT id, type, digest FROM artifacts ORDER BY digest, id")?;
        Ok(st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<std::result::Result<_, _>>()?)
    }

    /// How many runs and executions (steps, not trials) the store holds.
    pub fn counts(&self) -> Result<(i64, i64)> {
        let conn = self.conn();
        let runs = conn.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))?;
        let execs = conn.query_row("SELECT COUNT(*) FROM executions WHERE parent_id IS NULL", [], |r| r.get(0))?;
        Ok((runs, execs))
    }

    /// What SQLite's integrity and foreign key checks find; empty when sound.
    pub fn integrity_problems(&self) -> Result<Vec<IntegrityProblem>> {
        let conn = self.conn();
        let mut problems = Vec::new();
        let mut st = conn.prepare("PRAGMA integrity_check")?;
        for row in st.query_map([], |r| r.get::<_, String>(0))? {
            let message = row?;
            if message != "ok" {
                problems.push(IntegrityProblem { check: "integrity_check", message });
            }
        }
        let mut st = conn.prepare("PRAGMA foreign_key_check")?;
        let rows =
            st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, String>(2)?)))?;
        for row in rows {
            let (table, rowid, parent) = row?;
            let row = rowid.map_or_else(|| "a row".to_string(), |id| format!("row {id}"));
            problems.push(IntegrityProblem {
                check: "foreign_key_check",
                message: format!("{row} of `{table}` names a `{parent}` row that does not exist"),
            });
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExecStatus;
    use serde_json::json;

    #[test]
    fn a_missing_or_empty_database_is_refused_only_beside_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.db");
        let history = History { blobs: 2, run_logs: 1 };
        check_database_file(&path, &History::default()).unwrap();
        let e = check_database_file(&path, &history).unwrap_err();
        assert!(matches!(e, MetadataError::Lost { state: "missing", .. }), "{e}");
        std::fs::write(&path, b"").unwrap();
        let e = check_database_file(&path, &history).unwrap_err().to_string();
        assert!(e.contains("empty (0 bytes)") && e.contains("2 artifact blob(s)") && e.contains("backup"), "{e}");
        check_database_file(&path, &History::default()).unwrap();
        drop(MetadataStore::open(&path).unwrap());
        check_database_file(&path, &history).unwrap();
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.db");
        std::fs::write(&path, "name,value\nnot,a database\n".repeat(200)).unwrap();
        let e = MetadataStore::open(&path).err().expect("refused");
        assert!(matches!(e, MetadataError::NotSqlite { .. }), "{e}");
        assert!(e.to_string().contains("is not a SQLite database"), "{e}");
        assert!(check_database_file(&path, &History::default()).is_err());
    }

    #[test]
    fn executions_left_running_under_an_ended_run_are_closed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.db");
        let s = MetadataStore::open(&path).unwrap();
        let p = s.upsert_pipeline("demo", "abc", "p.toml", "").unwrap();
        let run = s.create_run(p, &json!({}), &json!({}), "manual", "t").unwrap();
        let stale = s.start_execution(run, "a", "command", "1", &json!({}), None, "log", &[]).unwrap();
        s.finish_run(run, RunStatus::Failed, 1, Some("boom")).unwrap();
        // A live run's running execution is left alone.
        let live = s.create_run(p, &json!({}), &json!({}), "manual", "t").unwrap();
        let busy = s.start_execution(live, "b", "command", "1", &json!({}), None, "log", &[]).unwrap();
        s.conn().execute("UPDATE runs SET pid = 1 WHERE id = ?1", [live]).unwrap();

        let found = s.stale_executions().unwrap();
        assert_eq!(found.iter().map(|e| (e.id, e.run_status)).collect::<Vec<_>>(), [(stale, RunStatus::Failed)]);
        drop(s);
        let s = MetadataStore::open(&path).unwrap();
        assert_eq!(s.execution(stale).unwrap().status, ExecStatus::Interrupted);
        assert_eq!(s.execution(busy).unwrap().status, ExecStatus::Running);
        assert!(s.stale_executions().unwrap().is_empty());
        assert_eq!(s.running_execution_ids().unwrap(), HashSet::from([busy]));
        assert!(s.integrity_problems().unwrap().is_empty());
    }

    #[test]
    fn open_unreaped_reports_dead_runs_without_changing_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.db");
        let s = MetadataStore::open(&path).unwrap();
        let p = s.upsert_pipeline("demo", "abc", "p.toml", "").unwrap();
        let run = s.create_run(p, &json!({}), &json!({}), "manual", "t").unwrap();
        s.conn().execute("UPDATE runs SET pid = 999999999 WHERE id = ?1", [run]).unwrap();
        drop(s);
        let s = MetadataStore::open_unreaped(&path).unwrap();
        assert_eq!(s.dead_runs().unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [run]);
        assert_eq!(s.run(run).unwrap().status, RunStatus::Running);
        assert_eq!(s.reap_dead_runs().unwrap(), [run]);
        assert!(s.dead_runs().unwrap().is_empty());
    }
}
