//! The metadata store: pipelines and their versions, runs, executions,
//! artifacts, the events that tie executions to their input and output
//! artifacts, and registered model versions.
//!
//! Embedded SQLite in WAL mode. Every change that must be all-or-nothing
//! (finishing an execution with its outputs, registering a model version) is
//! one transaction, so a process killed at any point leaves the store
//! consistent; runs left `running` by a dead process are marked `interrupted`
//! the next time the store is opened.
//!
//! This file holds the error type, the one connection every query goes
//! through (`MetadataStore::conn`), opening and migrating; the queries live
//! in one module per concern, each with its own `impl MetadataStore`.

mod artifacts;
mod cache;
mod deployments;
mod executions;
mod governance;
mod health;
mod lineage;
mod migrations;
mod monitoring;
mod publish;
mod records;
mod registry;
mod request_blocks;
mod runs;
mod serving_log;
mod signals;

pub use cache::CachedOutputs;
pub use deployments::{CanaryRecord, DeploymentRecord, RunRequest, TriggerRecord, UpRecord, WatchedFile};
pub use governance::{HistoryEntry, ServingEvent, VersionReport};
pub use health::{History, IntegrityProblem, StaleExecution, check_database_file};
pub use monitoring::{MonitorWindow, NewWindow};
pub use publish::PublishOutcome;
pub use records::*;
pub use request_blocks::RequestIds;
pub use runs::{hostname, pid_alive};
pub use serving_log::{Feedback, Label, LoggedRequest, NewSegment, RequestRow, Segment, TargetKind};

use rusqlite::{Connection, params};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot open metadata store {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("metadata store {} was written by a newer Flywheel (schema {found}, this build knows {known}); upgrade flywheel", path.display())]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error(
        "metadata store {} is {state}, but this home holds {blobs} artifact blob(s) and {run_logs} run log folder(s): its history of runs would be lost. Restore metadata.db from a backup; to start a new history instead, move the home folder away (or choose another with --home)",
        path.display()
    )]
    Lost { path: PathBuf, state: &'static str, blobs: usize, run_logs: usize },
    #[error(
        "{} is not a SQLite database (it does not start with the SQLite header): it was overwritten, or is not Flywheel's. Restore it from a backup, or move the home folder away to start a new one",
        path.display()
    )]
    NotSqlite { path: PathBuf },
    #[error("metadata store {} is damaged ({source}); `flywheel doctor` checks it; restore it from a backup", path.display())]
    Damaged {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("metadata store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("metadata store holds invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no run {0}; `flywheel runs list` shows the runs")]
    NoRun(i64),
    #[error("no artifact {0}; `flywheel runs show RUN` lists a run's artifacts")]
    NoArtifact(String),
    #[error("no model version {0}")]
    NoModelVersion(String),
    /// Compare-and-set: the alias no longer points where the caller checked.
    #[error("{model}@{alias} points at {}, not {}: nothing moved; look again (`flywheel models show {model}`) and retry", at(*current), at(*expected))]
    AliasMoved { model: String, alias: String, expected: Option<i64>, current: Option<i64> },
}

fn at(v: Option<i64>) -> String {
    v.map_or_else(|| "no version".into(), |v| format!("version {v}"))
}

pub type Result<T> = std::result::Result<T, MetadataError>;

pub struct MetadataStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

pub(crate) fn json_text(v: &Json) -> String {
    v.to_string()
}

pub(crate) fn parse_json(s: Option<String>) -> Result<Json> {
    match s {
        Some(s) if !s.is_empty() => Ok(serde_json::from_str(&s)?),
        _ => Ok(Json::Null),
    }
}

impl MetadataStore {
    /// Opens (creating if needed) the store, migrates it, and closes what
    /// dead processes left `running`.
    pub fn open(path: &Path) -> Result<Self> {
        let store = Self::open_unreaped(path)?;
        store.reap_dead_runs()?;
        store.close_stale_executions()?;
        Ok(store)
    }

    /// Opens and migrates the store without changing any run or execution,
    /// so that `flywheel doctor` can report what it finds before repairing.
    pub fn open_unreaped(path: &Path) -> Result<Self> {
        health::check_header(path)?;
        let open_err = |source| MetadataError::Open { path: path.to_path_buf(), source };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(open_err)?;
        let setup = |conn: &Connection| -> rusqlite::Result<()> {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")
        };
        setup(&conn).map_err(|e| health::classify(path, e))?;
        let store = Self { conn: Mutex::new(conn), path: path.to_path_buf() };
        store.migrate().map_err(|e| match e {
            MetadataError::Sql(e) => health::classify(path, e),
            e => e,
        })?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
            [],
        )?;
        let current: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
        let known = migrations::MIGRATIONS.last().map_or(0, |m| m.0);
        if current > known {
            return Err(MetadataError::TooNew { path: self.path.clone(), found: current, known });
        }
        for (version, sql) in migrations::MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, flywheel_core::now_rfc3339()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.conn().query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests;
