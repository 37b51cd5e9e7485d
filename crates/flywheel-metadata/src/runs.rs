//! Pipelines and runs: recording a pipeline version, starting, resuming
//! and finishing a run, listing runs; the host and process a run belongs
//! to (`health.rs` marks the runs of dead processes `interrupted`).

use crate::records::{RUN_SELECT, run_from_row};
use crate::{MetadataError, MetadataStore, Result, RunRecord, RunStatus, json_text};
use rusqlite::{OptionalExtension, params};
use serde_json::Value as Json;

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

impl MetadataStore {
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
}

#[cfg(test)]
mod tests {
    use crate::tests::store;
    use crate::{ExecStatus, MetadataStore, RunStatus};
    use serde_json::json;

    #[test]
    fn runs_of_dead_processes_are_interrupted() {
        let (dir, s) = store();
        let p = s.upsert_pipeline("demo", "abc", "p.toml", "").unwrap();
        let run = s.create_run(p, &json!({}), &json!({}), "manual", "t").unwrap();
        let e = s.start_execution(run, "a", "command", "1", &json!({}), None, "log", &[]).unwrap();
        // Pretend the run belongs to a process that no longer exists.
        s.conn().execute("UPDATE runs SET pid = 999999999 WHERE id = ?1", [run]).unwrap();
        drop(s);
        let s = MetadataStore::open(&dir.path().join("metadata.db")).unwrap();
        assert_eq!(s.run(run).unwrap().status, RunStatus::Interrupted);
        assert_eq!(s.execution(e).unwrap().status, ExecStatus::Interrupted);
    }
}
