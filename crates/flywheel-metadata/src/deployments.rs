//! `flywheel up`'s record: the deployments of the home and the state of
//! each of their triggers (migration 9), and their canaries (migration 10).

use crate::{MetadataStore, Result};
use rusqlite::{OptionalExtension, params};

/// A deployment recorded in the home.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRecord {
    pub name: String,
    /// The deployment file, as given when it was recorded.
    pub path: String,
    pub digest: String,
    pub model_name: String,
    pub recorded_us: i64,
}

/// What one trigger of a deployment did last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriggerRecord {
    pub fired_us: Option<i64>,
    pub used_window: i64,
    pub looked_us: Option<i64>,
    /// When the state began: windows that began before never fire it.
    pub since_us: i64,
}

/// A version sent out as a deployment's canary, and how that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryRecord {
    pub deployment: String,
    pub version: i64,
    pub started_us: i64,
    pub decided_us: Option<i64>,
    /// `promoted` or `rolled back`; `None` while it holds.
    pub outcome: Option<String>,
    pub reason: Option<String>,
}

/// A run asked for by hand, waiting for `up`'s `on_demand` trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub id: i64,
    pub deployment: String,
    pub reason: String,
    pub requested_by: String,
    pub at_us: i64,
}

/// A `flywheel up` process that serves this home.
#[derive(Debug, Clone, PartialEq)]
pub struct UpRecord {
    pub pid: i64,
    pub host: String,
    pub addr: String,
    pub deployments: String,
    pub started_us: i64,
}

/// A file a `new_data` trigger watches.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchedFile {
    pub path: String,
    pub size: i64,
    pub mtime_us: i64,
    /// When this size and time were first seen.
    pub seen_us: i64,
    /// When a run took it at this size and time.
    pub taken_us: Option<i64>,
}

impl MetadataStore {
    /// Notes `path` as seen with this size and time: a file new, or changed
    /// since it was last seen, starts settling now and is not taken.
    pub fn see_file(
        &self,
        deployment: &str,
        key: &str,
        path: &str,
        size: i64,
        mtime_us: i64,
        now_us: i64,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO watched_files (deployment, trigger_key, path, size, mtime_us, seen_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (deployment, trigger_key, path) DO UPDATE SET size = ?4, mtime_us = ?5, seen_us = ?6, taken_us = NULL
             WHERE size != ?4 OR mtime_us != ?5",
            params![deployment, key, path, size, mtime_us, now_us],
        )?;
        Ok(())
    }

    /// The files the trigger `key` of `deployment` has seen, by path.
    pub fn watched_files(&self, deployment: &str, key: &str) -> Result<Vec<WatchedFile>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT path, size, mtime_us, seen_us, taken_us FROM watched_files
             WHERE deployment = ?1 AND trigger_key = ?2 ORDER BY path",
        )?;
        let rows = stmt.query_map(params![deployment, key], |r| {
            Ok(WatchedFile {
                path: r.get(0)?,
                size: r.get(1)?,
                mtime_us: r.get(2)?,
                seen_us: r.get(3)?,
                taken_us: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks files taken by a run, at the size and time they were seen.
    pub fn take_files(&self, deployment: &str, key: &str, paths: &[String], now_us: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for p in paths {
            tx.execute(
                "UPDATE watched_files SET taken_us = ?4 WHERE deployment = ?1 AND trigger_key = ?2 AND path = ?3",
                params![deployment, key, p, now_us],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records this process as an `up` serving at `addr`.
    pub fn record_up(&self, addr: &str, deployments: &str, now_us: i64) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO up_processes (pid, host, addr, deployments, started_us) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![i64::from(std::process::id()), crate::hostname(), addr, deployments, now_us],
        )?;
        Ok(())
    }

    /// Claims the home for this process's `up`, before it starts anything:
    /// refused (the holder returned) while another `up` on this host is
    /// alive (`still_up` says whether a recorded pid still is one); records
    /// left by a killed one are cleared. One transaction, so two starting at
    /// once cannot both claim it.
    pub fn claim_up(&self, deployments: &str, now_us: i64, still_up: impl Fn(i64) -> bool) -> Result<Option<UpRecord>> {
        let me = i64::from(std::process::id());
        let host = crate::hostname();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let recorded: Vec<UpRecord> = {
            let mut stmt = tx.prepare("SELECT pid, host, addr, deployments, started_us FROM up_processes")?;
            let rows = stmt.query_map([], up_from_row)?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for other in recorded.into_iter().filter(|o| o.host == host && o.pid != me) {
            if still_up(other.pid) {
                return Ok(Some(other));
            }
            tx.execute("DELETE FROM up_processes WHERE pid = ?1 AND host = ?2", params![other.pid, host])?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO up_processes (pid, host, addr, deployments, started_us) VALUES (?1, ?2, '', ?3, ?4)",
            params![me, host, deployments, now_us],
        )?;
        tx.commit()?;
        Ok(None)
    }

    /// This process stopped being an `up`.
    pub fn clear_up(&self) -> Result<()> {
        self.conn().execute(
            "DELETE FROM up_processes WHERE pid = ?1 AND host = ?2",
            params![i64::from(std::process::id()), crate::hostname()],
        )?;
        Ok(())
    }

    /// The `up` processes recorded, alive or not (a killed one stays until
    /// the next `up` on its host replaces or clears it).
    pub fn ups(&self) -> Result<Vec<UpRecord>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT pid, host, addr, deployments, started_us FROM up_processes ORDER BY started_us")?;
        let rows = stmt.query_map([], up_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Asks for a run of `deployment`; its id.
    pub fn request_run(&self, deployment: &str, reason: &str, by: &str, now_us: i64) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO run_requests (deployment, reason, requested_by, at_us) VALUES (?1, ?2, ?3, ?4)",
            params![deployment, reason, by, now_us],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Queues a firing of `deployment` behind its run under way. One
    /// stands for all: a later firing adds only its `new_files` (a
    /// `new_data` firing's) to the one queued.
    pub fn queue_firing(&self, deployment: &str, reason: &str, new_files: &[String], at_us: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let queued: Option<String> = tx
            .query_row("SELECT new_files FROM queued_firings WHERE deployment = ?1", params![deployment], |r| r.get(0))
            .optional()?;
        let mut files: Vec<String> = queued.as_deref().and_then(|f| serde_json::from_str(f).ok()).unwrap_or_default();
        for f in new_files {
            if !files.contains(f) {
                files.push(f.clone());
            }
        }
        files.sort();
        let files = serde_json::to_string(&files).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "INSERT INTO queued_firings (deployment, reason, new_files, at_us) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(deployment) DO UPDATE SET new_files = excluded.new_files",
            params![deployment, reason, files, at_us],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Takes `deployment`'s queued firing (its reason and new files), if
    /// any: it is removed as it is read, so that it starts one run.
    pub fn take_queued_firing(&self, deployment: &str) -> Result<Option<(String, Vec<String>)>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let queued: Option<(String, String)> = tx
            .query_row("SELECT reason, new_files FROM queued_firings WHERE deployment = ?1", params![deployment], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        tx.execute("DELETE FROM queued_firings WHERE deployment = ?1", params![deployment])?;
        tx.commit()?;
        Ok(queued.map(|(reason, files)| (reason, serde_json::from_str(&files).unwrap_or_default())))
    }

    /// The requests for `deployment` no trigger has taken yet, oldest first.
    pub fn pending_run_requests(&self, deployment: &str) -> Result<Vec<RunRequest>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, deployment, reason, requested_by, at_us FROM run_requests
             WHERE deployment = ?1 AND taken_us IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map(params![deployment], |r| {
            Ok(RunRequest {
                id: r.get(0)?,
                deployment: r.get(1)?,
                reason: r.get(2)?,
                requested_by: r.get(3)?,
                at_us: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks requests taken, with what became of them.
    pub fn take_run_requests(&self, ids: &[i64], outcome: &str, now_us: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for id in ids {
            tx.execute(
                "UPDATE run_requests SET taken_us = ?2, outcome = ?3 WHERE id = ?1 AND taken_us IS NULL",
                params![id, now_us, outcome],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The canary record of `version`, starting it now if there is none.
    pub fn canary(&self, deployment: &str, version: i64, now_us: i64) -> Result<CanaryRecord> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO canaries (deployment, version, started_us) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![deployment, version, now_us],
        )?;
        Ok(conn.query_row(
            "SELECT deployment, version, started_us, decided_us, outcome, reason FROM canaries
             WHERE deployment = ?1 AND version = ?2",
            params![deployment, version],
            canary_from_row,
        )?)
    }

    /// The canaries of `deployment`, newest first.
    pub fn canaries(&self, deployment: &str, limit: usize) -> Result<Vec<CanaryRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT deployment, version, started_us, decided_us, outcome, reason FROM canaries
             WHERE deployment = ?1 ORDER BY started_us DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![deployment, limit as i64], canary_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Forgets what `deployment`'s triggers and canaries did: it starts
    /// afresh (the quickstart, replaying its story from the start).
    pub fn forget_deployment_state(&self, deployment: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM trigger_states WHERE deployment = ?1", params![deployment])?;
        tx.execute("DELETE FROM canaries WHERE deployment = ?1", params![deployment])?;
        tx.commit()?;
        Ok(())
    }

    /// Records how the canary `version` ended.
    pub fn decide_canary(
        &self,
        deployment: &str,
        version: i64,
        outcome: &str,
        reason: &str,
        now_us: i64,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE canaries SET decided_us = ?3, outcome = ?4, reason = ?5 WHERE deployment = ?1 AND version = ?2",
            params![deployment, version, now_us, outcome, reason],
        )?;
        Ok(())
    }

    /// Records `d`, replacing any record of the same name or file (a
    /// deployment renamed in its file is still one deployment).
    pub fn record_deployment(&self, d: &DeploymentRecord) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM deployments WHERE name = ?1 OR path = ?2", params![d.name, d.path])?;
        tx.execute(
            "INSERT INTO deployments (name, path, digest, model_name, recorded_us) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![d.name, d.path, d.digest, d.model_name, d.recorded_us],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn deployments(&self) -> Result<Vec<DeploymentRecord>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT name, path, digest, model_name, recorded_us FROM deployments ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(DeploymentRecord {
                name: r.get(0)?,
                path: r.get(1)?,
                digest: r.get(2)?,
                model_name: r.get(3)?,
                recorded_us: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The trigger `key` (its kind and settings) of `deployment`, if it was
    /// ever saved (a trigger changed in the file starts afresh).
    pub fn trigger_state(&self, deployment: &str, key: &str) -> Result<Option<TriggerRecord>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT fired_us, used_window, looked_us, COALESCE(since_us, 0) FROM trigger_states
                 WHERE deployment = ?1 AND trigger_key = ?2",
                params![deployment, key],
                |r| {
                    Ok(TriggerRecord {
                        fired_us: r.get(0)?,
                        used_window: r.get(1)?,
                        looked_us: r.get(2)?,
                        since_us: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn save_trigger_state(&self, deployment: &str, key: &str, t: &TriggerRecord) -> Result<()> {
        self.conn().execute(
            "INSERT INTO trigger_states (deployment, trigger_key, fired_us, used_window, looked_us, since_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(deployment, trigger_key)
             DO UPDATE SET fired_us = ?3, used_window = ?4, looked_us = ?5, since_us = ?6",
            params![deployment, key, t.fired_us, t.used_window, t.looked_us, t.since_us],
        )?;
        Ok(())
    }
}

fn up_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UpRecord> {
    Ok(UpRecord { pid: r.get(0)?, host: r.get(1)?, addr: r.get(2)?, deployments: r.get(3)?, started_us: r.get(4)? })
}

fn canary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CanaryRecord> {
    Ok(CanaryRecord {
        deployment: r.get(0)?,
        version: r.get(1)?,
        started_us: r.get(2)?,
        decided_us: r.get(3)?,
        outcome: r.get(4)?,
        reason: r.get(5)?,
    })
}
