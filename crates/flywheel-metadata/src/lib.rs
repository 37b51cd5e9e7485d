//! The metadata store: pipelines and their versions, runs, executions,
//! artifacts, the events that tie executions to their input and output
//! artifacts, and registered model versions.
//!
//! Embedded SQLite in WAL mode. Every change that must be all-or-nothing
//! (finishing an execution with its outputs, registering a model version) is
//! one transaction, so a process killed at any point leaves the store
//! consistent; runs left `running` by a dead process are marked `interrupted`
//! the next time the store is opened.

mod health;
mod migrations;
mod publish;
mod records;

pub use health::{History, IntegrityProblem, StaleExecution, check_database_file};
pub use publish::PublishOutcome;
pub use records::*;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
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
}

pub type Result<T> = std::result::Result<T, MetadataError>;

/// The execution a cache hit reuses, and its named outputs.
pub type CachedOutputs = (i64, Vec<(String, ArtifactRecord)>);

pub struct MetadataStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// Whether process `pid` on this host is still alive.
pub fn pid_alive(pid: i64) -> bool {
    if pid <= 0 || pid > i64::from(i32::MAX) {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn json_text(v: &Json) -> String {
    v.to_string()
}

fn parse_json(s: Option<String>) -> Result<Json> {
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

    fn conn(&self) -> MutexGuard<'_, Connection> {
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

    /// Marks runs whose process died (SIGKILL, power loss) as interrupted, so
    /// they never stay `running` forever and `resume` can finish them.
    pub fn reap_dead_runs(&self) -> Result<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let dead = health::dead_run_ids(&tx)?;
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

    /// Records a pipeline version (its name and file digest); returns its id.
    pub fn upsert_pipeline(&self, name: &str, digest: &str, path: &str, source: &str) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO pipelines (name, digest, path, source, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name, digest) DO UPDATE SET path = excluded.path",
            params![name, digest, path, source, flywheel_core::now_rfc3339()],
        )?;
        Ok(conn.query_row("SELECT id FROM pipelines WHERE name = ?1 AND digest = ?2", params![name, digest], |r| {
            r.get(0)
        })?)
    }

    pub fn create_run(
        &self,
        pipeline_id: i64,
        parameters: &Json,
        options: &Json,
        trigger: &str,
        started_by: &str,
    ) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO runs (pipeline_id, status, parameters, options, trigger, started_by, host, pid, started_at)
             VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                pipeline_id,
                json_text(parameters),
                json_text(options),
                trigger,
                started_by,
                hostname(),
                std::process::id(),
                flywheel_core::now_rfc3339()
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Takes over an unfinished run for `resume`.
    pub fn reopen_run(&self, run_id: i64) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE runs SET status = 'running', host = ?2, pid = ?3, ended_at = NULL, error = NULL WHERE id = ?1",
            params![run_id, hostname(), std::process::id()],
        )?;
        if n == 0 {
            return Err(MetadataError::NoRun(run_id));
        }
        Ok(())
    }

    pub fn finish_run(&self, run_id: i64, status: RunStatus, duration_ms: i64, error: Option<&str>) -> Result<()> {
        self.conn().execute(
            "UPDATE runs SET status = ?2, ended_at = ?3, duration_ms = COALESCE(duration_ms, 0) + ?4, error = ?5 WHERE id = ?1",
            params![run_id, status.as_str(), flywheel_core::now_rfc3339(), duration_ms, error],
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn start_execution(
        &self,
        run_id: i64,
        step: &str,
        component: &str,
        component_version: &str,
        parameters: &Json,
        cache_key: Option<&str>,
        log_path: &str,
        inputs: &[(String, i64)],
    ) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO executions (run_id, step, component, component_version, parameters, cache_key, status, started_at, log_path)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7, ?8)",
            params![run_id, step, component, component_version, json_text(parameters), cache_key, flywheel_core::now_rfc3339(), log_path],
        )?;
        let id = tx.last_insert_rowid();
        for (name, artifact_id) in inputs {
            tx.execute(
                "INSERT INTO events (execution_id, artifact_id, kind, name) VALUES (?1, ?2, 'input', ?3)",
                params![id, artifact_id, name],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Finishes an execution and records its outputs, all in one transaction.
    pub fn finish_execution(
        &self,
        execution_id: i64,
        result: &ExecutionResult,
    ) -> Result<Vec<(String, ArtifactRecord)>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut recorded = Vec::new();
        for (name, a) in &result.outputs {
            let id = upsert_artifact(&tx, a)?;
            tx.execute(
                "INSERT INTO events (execution_id, artifact_id, kind, name) VALUES (?1, ?2, 'output', ?3)",
                params![execution_id, id, name],
            )?;
            recorded.push((name.clone(), artifact_by_id(&tx, id)?));
        }
        for sig in &result.signals {
            tx.execute(
                "INSERT INTO signals (run_id, execution_id, kind, message, details, created_at)
                 SELECT run_id, id, ?2, ?3, ?4, ?5 FROM executions WHERE id = ?1",
                params![execution_id, sig.kind, sig.message, json_text(&sig.details), flywheel_core::now_rfc3339()],
            )?;
        }
        for c in &result.children {
            tx.execute(
                "INSERT INTO executions (run_id, step, component, component_version, parameters, status, started_at, ended_at, duration_ms, log_path, error, summary, parent_id)
                 SELECT run_id, step || ': ' || ?2, component, component_version, ?3, ?4, started_at, ?5, ?6, log_path, ?7, ?8, id FROM executions WHERE id = ?1",
                params![
                    execution_id,
                    c.name,
                    json_text(&c.parameters),
                    c.status.as_str(),
                    flywheel_core::now_rfc3339(),
                    c.duration_ms,
                    c.error,
                    json_text(&c.summary)
                ],
            )?;
        }
        tx.execute(
            "UPDATE executions SET status = ?2, cache_hit = ?3, attempts = ?4, ended_at = ?5, duration_ms = ?6, error = ?7, summary = ?8 WHERE id = ?1",
            params![
                execution_id,
                result.status.as_str(),
                result.cache_hit,
                result.attempts,
                flywheel_core::now_rfc3339(),
                result.duration_ms,
                result.error,
                json_text(&result.summary)
            ],
        )?;
        tx.commit()?;
        Ok(recorded)
    }

    /// Records a step that never started because an upstream step failed.
    pub fn record_skipped(&self, run_id: i64, step: &str, component: &str, version: &str, reason: &str) -> Result<i64> {
        let conn = self.conn();
        let now = flywheel_core::now_rfc3339();
        conn.execute(
            "INSERT INTO executions (run_id, step, component, component_version, parameters, status, started_at, ended_at, duration_ms, error)
             VALUES (?1, ?2, ?3, ?4, '{}', 'skipped', ?5, ?5, 0, ?6)",
            params![run_id, step, component, version, now, reason],
        )?;
        Ok(conn.last_insert_rowid())
    }

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
        let (id, created) = publish::register_in(&tx, model_name, artifact_id, run_id)?;
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

    pub fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!("{RUN_SELECT} ORDER BY r.id DESC LIMIT ?1"))?;
        let runs = st.query_map([limit as i64], run_from_row)?.collect::<std::result::Result<Vec<_>, _>>()?;
        runs.into_iter().map(|r| r.finish()).collect()
    }

    pub fn run(&self, run_id: i64) -> Result<RunRecord> {
        let conn = self.conn();
        conn.query_row(&format!("{RUN_SELECT} WHERE r.id = ?1"), [run_id], run_from_row)
            .optional()?
            .ok_or(MetadataError::NoRun(run_id))?
            .finish()
    }

    /// The pipeline file's text as it was when the run started.
    pub fn run_pipeline_source(&self, run_id: i64) -> Result<(String, String)> {
        self.conn()
            .query_row(
                "SELECT p.source, p.path FROM runs r JOIN pipelines p ON p.id = r.pipeline_id WHERE r.id = ?1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or(MetadataError::NoRun(run_id))
    }

    /// Every execution of a run, oldest first, with its input and output artifacts.
    pub fn executions(&self, run_id: i64) -> Result<Vec<ExecutionRecord>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!("{EXEC_SELECT} WHERE run_id = ?1 AND parent_id IS NULL ORDER BY id"))?;
        let rows = st.query_map([run_id], exec_from_row)?.collect::<std::result::Result<Vec<_>, _>>()?;
        rows.into_iter().map(|e| e.finish(&conn)).collect()
    }

    pub fn execution(&self, id: i64) -> Result<ExecutionRecord> {
        let conn = self.conn();
        let e = conn.query_row(&format!("{EXEC_SELECT} WHERE id = ?1"), [id], exec_from_row)?;
        e.finish(&conn)
    }

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

    /// Points `alias` of `model_name` at `version` (which must exist) and
    /// records the move in the audit log; returns the version it pointed
    /// at before, if any. One transaction.
    pub fn set_alias(
        &self,
        model_name: &str,
        alias: &str,
        version: i64,
        run_id: Option<i64>,
        caller: &str,
    ) -> Result<Option<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let before = publish::move_alias_in(&tx, model_name, alias, version, run_id, caller)?;
        tx.commit()?;
        Ok(before)
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

    /// The registry's audit log, newest first: (model, action, alias, from, to, run, caller, at).
    pub fn registry_audit(&self, limit: usize) -> Result<Vec<Json>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT model_name, action, alias, from_version, to_version, run_id, caller, at
             FROM registry_audit ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = st
            .query_map([limit as i64], |r| {
                Ok(serde_json::json!({
                    "model": r.get::<_, String>(0)?, "action": r.get::<_, String>(1)?,
                    "alias": r.get::<_, Option<String>>(2)?, "from_version": r.get::<_, Option<i64>>(3)?,
                    "to_version": r.get::<_, Option<i64>>(4)?, "run": r.get::<_, Option<i64>>(5)?,
                    "caller": r.get::<_, String>(6)?, "at": r.get::<_, String>(7)?,
                }))
            })?
            .collect::<std::result::Result<_, _>>()?;
        Ok(rows)
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

    /// Everything upstream and downstream of an artifact: the executions that
    /// produced or consumed it, transitively, with their artifacts.
    pub fn lineage(&self, artifact_id: i64) -> Result<Lineage> {
        let root = self.artifact(artifact_id)?;
        let conn = self.conn();
        let upstream = walk(&conn, artifact_id, Direction::Up)?;
        let downstream = walk(&conn, artifact_id, Direction::Down)?;
        let mut mst =
            conn.prepare("SELECT id FROM model_versions WHERE artifact_id = ?1 ORDER BY model_name, version")?;
        let ids: Vec<i64> = mst.query_map([artifact_id], |r| r.get(0))?.collect::<std::result::Result<_, _>>()?;
        let model_versions = ids.into_iter().map(|id| model_version_by_id(&conn, id)).collect::<Result<_>>()?;
        Ok(Lineage { artifact: root, model_versions, upstream, downstream })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Up,
    Down,
}

/// Breadth-first over the event graph. Cache hits record the same artifact
/// as output of several executions; every node is visited once.
fn walk(conn: &Connection, start: i64, dir: Direction) -> Result<Vec<LineageEdge>> {
    let (near, far) = match dir {
        Direction::Up => ("output", "input"),
        Direction::Down => ("input", "output"),
    };
    let mut edges = Vec::new();
    let mut seen_artifacts = std::collections::HashSet::from([start]);
    let mut seen_execs = std::collections::HashSet::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(a) = queue.pop_front() {
        let mut st =
            conn.prepare("SELECT execution_id FROM events WHERE artifact_id = ?1 AND kind = ?2 ORDER BY execution_id")?;
        let execs: Vec<i64> = st.query_map(params![a, near], |r| r.get(0))?.collect::<std::result::Result<_, _>>()?;
        for e in execs {
            if !seen_execs.insert(e) {
                continue;
            }
            let exec = conn.query_row(&format!("{EXEC_SELECT} WHERE id = ?1"), [e], exec_from_row)?.finish(conn)?;
            let next: Vec<i64> =
                if far == "input" { &exec.inputs } else { &exec.outputs }.iter().map(|x| x.artifact.id).collect();
            for n in next {
                if seen_artifacts.insert(n) {
                    queue.push_back(n);
                }
            }
            edges.push(LineageEdge { via_artifact: a, execution: exec });
        }
    }
    Ok(edges)
}

fn upsert_artifact(tx: &Transaction<'_>, a: &NewArtifact) -> Result<i64> {
    tx.execute(
        "INSERT INTO artifacts (type, uri, digest, size, properties, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (digest, type) DO NOTHING",
        params![a.ty, a.uri, a.digest, a.size as i64, json_text(&a.properties), flywheel_core::now_rfc3339()],
    )?;
    Ok(tx
        .query_row("SELECT id FROM artifacts WHERE digest = ?1 AND type = ?2", params![a.digest, a.ty], |r| r.get(0))?)
}

fn artifact_by_id(conn: &Connection, id: i64) -> Result<ArtifactRecord> {
    let (id, ty, uri, digest, size, props, created_at): (i64, String, String, String, i64, Option<String>, String) =
        conn.query_row(
            "SELECT id, type, uri, digest, size, properties, created_at FROM artifacts WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )?;
    Ok(ArtifactRecord { id, ty, uri, digest, size: size as u64, properties: parse_json(props)?, created_at })
}

fn model_version_by_id(conn: &Connection, id: i64) -> Result<ModelVersion> {
    let mut mv = conn.query_row(
        "SELECT id, model_name, version, artifact_id, run_id, created_at FROM model_versions WHERE id = ?1",
        [id],
        |r| {
            Ok(ModelVersion {
                id: r.get(0)?,
                model_name: r.get(1)?,
                version: r.get(2)?,
                artifact_id: r.get(3)?,
                run_id: r.get(4)?,
                created_at: r.get(5)?,
                aliases: Vec::new(),
            })
        },
    )?;
    let mut st =
        conn.prepare("SELECT alias FROM model_aliases WHERE model_name = ?1 AND version = ?2 ORDER BY alias")?;
    mv.aliases =
        st.query_map(params![mv.model_name, mv.version], |r| r.get(0))?.collect::<std::result::Result<_, _>>()?;
    Ok(mv)
}

fn events_of(conn: &Connection, execution_id: i64, kind: &str) -> Result<Vec<(String, ArtifactRecord)>> {
    let mut st =
        conn.prepare("SELECT name, artifact_id FROM events WHERE execution_id = ?1 AND kind = ?2 ORDER BY id")?;
    let rows: Vec<(String, i64)> = st
        .query_map(params![execution_id, kind], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    rows.into_iter().map(|(n, id)| Ok((n, artifact_by_id(conn, id)?))).collect()
}

#[cfg(test)]
mod tests;
