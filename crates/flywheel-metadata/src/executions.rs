//! Executions of a run's steps: started with their input events, finished
//! with their outputs, signals and child executions in one transaction,
//! recorded as skipped, and read back with their artifacts.

use crate::artifacts::upsert_artifact;
use crate::records::{EXEC_SELECT, artifact_by_id, exec_from_row};
use crate::{ArtifactRecord, ExecutionRecord, ExecutionResult, MetadataStore, Result, json_text};
use rusqlite::params;
use serde_json::Value as Json;

impl MetadataStore {
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
}

#[cfg(test)]
mod tests {
    use crate::tests::{artifact, done, store};
    use crate::{ExecStatus, NewChild};
    use serde_json::json;

    #[test]
    fn child_executions_belong_to_their_step_and_are_not_steps() {
        let (_d, s) = store();
        let p = s.upsert_pipeline("p", "d", "p.toml", "").unwrap();
        let run = s.create_run(p, &json!({}), &json!({}), "manual", "tester").unwrap();
        let e = s.start_execution(run, "tune", "tune", "1", &json!({}), None, "log", &[]).unwrap();
        let mut result = done(vec![("best".into(), artifact("b1", "hyperparameters"))]);
        result.children = (1..=2)
            .map(|i| NewChild {
                name: format!("trial {i}"),
                parameters: json!({ "alpha": i }),
                status: if i == 1 { ExecStatus::Succeeded } else { ExecStatus::Failed },
                duration_ms: 5,
                summary: json!({ "mean": 0.5 }),
                error: (i == 2).then(|| "diverged".to_string()),
            })
            .collect();
        s.finish_execution(e, &result).unwrap();
        let execs = s.executions(run).unwrap();
        assert_eq!(execs.len(), 1, "trials are not steps");
        let children = &execs[0].children;
        assert_eq!(children.iter().map(|c| c.step.as_str()).collect::<Vec<_>>(), ["tune: trial 1", "tune: trial 2"]);
        assert_eq!(children[0].parameters, json!({ "alpha": 1 }));
        assert_eq!(children[1].status, ExecStatus::Failed);
        assert_eq!(children[1].error.as_deref(), Some("diverged"));
        assert_eq!(children[0].run_id, run);
    }
}
