//! Rows of the metadata store as Rust values (serializable for `--json`).

use crate::{Result, parse_json};
use rusqlite::{Connection, Row, params};
use serde::Serialize;
use serde_json::Value as Json;

macro_rules! status_enum {
    ($name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum!(RunStatus {
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
    Interrupted => "interrupted",
    Refused => "refused",
});

status_enum!(ExecStatus {
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
    Skipped => "skipped",
    Interrupted => "interrupted",
    Refused => "refused",
});

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub pipeline: String,
    pub pipeline_digest: String,
    pub pipeline_path: String,
    pub status: RunStatus,
    pub parameters: Json,
    pub options: Json,
    pub trigger: String,
    pub started_by: String,
    pub host: String,
    pub pid: i64,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
}

pub(crate) struct RawRun(RunRecord, String, Option<String>, Option<String>);

impl RawRun {
    pub(crate) fn finish(self) -> Result<RunRecord> {
        let RawRun(mut r, status, params, options) = self;
        r.status = RunStatus::parse(&status).unwrap_or(RunStatus::Failed);
        r.parameters = parse_json(params)?;
        r.options = parse_json(options)?;
        Ok(r)
    }
}

pub(crate) const RUN_SELECT: &str = "SELECT r.id, p.name, p.digest, p.path, r.status, r.parameters, r.options, r.trigger, r.started_by, r.host, r.pid, r.started_at, r.ended_at, r.duration_ms, r.error FROM runs r JOIN pipelines p ON p.id = r.pipeline_id";

pub(crate) fn run_from_row(r: &Row<'_>) -> rusqlite::Result<RawRun> {
    Ok(RawRun(
        RunRecord {
            id: r.get(0)?,
            pipeline: r.get(1)?,
            pipeline_digest: r.get(2)?,
            pipeline_path: r.get(3)?,
            status: RunStatus::Running,
            parameters: Json::Null,
            options: Json::Null,
            trigger: r.get(7)?,
            started_by: r.get(8)?,
            host: r.get(9)?,
            pid: r.get(10)?,
            started_at: r.get(11)?,
            ended_at: r.get(12)?,
            duration_ms: r.get(13)?,
            error: r.get(14)?,
        },
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactRecord {
    pub id: i64,
    #[serde(rename = "type")]
    pub ty: String,
    pub uri: String,
    pub digest: String,
    pub size: u64,
    pub properties: Json,
    pub created_at: String,
}

/// An artifact about to be recorded.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    pub ty: String,
    pub uri: String,
    pub digest: String,
    pub size: u64,
    pub properties: Json,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamedArtifact {
    pub name: String,
    pub artifact: ArtifactRecord,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExecutionRecord {
    pub id: i64,
    pub run_id: i64,
    pub step: String,
    pub component: String,
    pub component_version: String,
    pub parameters: Json,
    pub cache_key: Option<String>,
    pub status: ExecStatus,
    pub cache_hit: bool,
    pub attempts: i64,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub log_path: Option<String>,
    pub error: Option<String>,
    pub summary: Json,
    pub inputs: Vec<NamedArtifact>,
    pub outputs: Vec<NamedArtifact>,
    /// Child executions (tuning trials), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ExecutionRecord>,
}

pub(crate) struct RawExec(ExecutionRecord, String, Option<String>, Option<String>);

impl RawExec {
    pub(crate) fn finish(self, conn: &Connection) -> Result<ExecutionRecord> {
        let RawExec(mut e, status, params, summary) = self;
        e.status = ExecStatus::parse(&status).unwrap_or(ExecStatus::Failed);
        e.parameters = parse_json(params)?;
        e.summary = parse_json(summary)?;
        let named = |v: Vec<(String, ArtifactRecord)>| {
            v.into_iter().map(|(name, artifact)| NamedArtifact { name, artifact }).collect()
        };
        e.inputs = named(events_of(conn, e.id, "input")?);
        e.outputs = named(events_of(conn, e.id, "output")?);
        let mut st = conn.prepare(&format!("{EXEC_SELECT} WHERE parent_id = ?1 ORDER BY id"))?;
        let children = st.query_map([e.id], exec_from_row)?.collect::<std::result::Result<Vec<_>, _>>()?;
        e.children = children.into_iter().map(|c| c.finish(conn)).collect::<Result<_>>()?;
        Ok(e)
    }
}

pub(crate) const EXEC_SELECT: &str = "SELECT id, run_id, step, component, component_version, parameters, cache_key, status, cache_hit, attempts, started_at, ended_at, duration_ms, log_path, error, summary FROM executions";

pub(crate) fn exec_from_row(r: &Row<'_>) -> rusqlite::Result<RawExec> {
    Ok(RawExec(
        ExecutionRecord {
            id: r.get(0)?,
            run_id: r.get(1)?,
            step: r.get(2)?,
            component: r.get(3)?,
            component_version: r.get(4)?,
            parameters: Json::Null,
            cache_key: r.get(6)?,
            status: ExecStatus::Running,
            cache_hit: r.get(8)?,
            attempts: r.get(9)?,
            started_at: r.get(10)?,
            ended_at: r.get(11)?,
            duration_ms: r.get(12)?,
            log_path: r.get(13)?,
            error: r.get(14)?,
            summary: Json::Null,
            inputs: Vec::new(),
            outputs: Vec::new(),
            children: Vec::new(),
        },
        r.get(7)?,
        r.get(5)?,
        r.get(15)?,
    ))
}

/// How an execution ended, with the artifacts it produced (or reused).
#[derive(Debug, Clone)]
pub struct ExecutionResult {
    pub status: ExecStatus,
    pub cache_hit: bool,
    pub attempts: u32,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub summary: Json,
    pub outputs: Vec<(String, NewArtifact)>,
    /// Signals for triggers (e.g. drift), recorded with the execution.
    pub signals: Vec<NewSignal>,
    /// Work inside the step (tuning trials), recorded as child executions.
    pub children: Vec<NewChild>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewChild {
    pub name: String,
    pub parameters: Json,
    pub status: ExecStatus,
    pub duration_ms: i64,
    pub summary: Json,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewSignal {
    pub kind: String,
    pub message: String,
    pub details: Json,
}

/// Something a run noticed that later triggers read, e.g. "retraining
/// recommended: 5 of 20 columns drifted".
#[derive(Debug, Clone, Serialize)]
pub struct Signal {
    pub id: i64,
    pub run_id: i64,
    pub execution_id: i64,
    pub kind: String,
    pub message: String,
    pub details: Json,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelVersion {
    pub id: i64,
    pub model_name: String,
    pub version: i64,
    pub artifact_id: i64,
    pub run_id: Option<i64>,
    pub created_at: String,
    /// Aliases (`production`, `staging`, …) that point at this version.
    pub aliases: Vec<String>,
    pub approval: Approval,
    pub description: Option<String>,
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Who changes the registry, and why (for its audit log).
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub caller: &'a str,
    pub reason: Option<&'a str>,
}

/// Whether a person let a version go to production: `pending` until
/// someone approves or rejects it, with who, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub state: ApprovalState,
    pub by: Option<String>,
    pub at: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> ApprovalState {
        match s {
            "approved" => ApprovalState::Approved,
            "rejected" => ApprovalState::Rejected,
            _ => ApprovalState::Pending,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LineageEdge {
    /// The artifact through which this execution was reached.
    pub via_artifact: i64,
    pub execution: ExecutionRecord,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lineage {
    pub artifact: ArtifactRecord,
    pub model_versions: Vec<ModelVersion>,
    pub upstream: Vec<LineageEdge>,
    pub downstream: Vec<LineageEdge>,
}

pub(crate) fn artifact_by_id(conn: &Connection, id: i64) -> Result<ArtifactRecord> {
    let (id, ty, uri, digest, size, props, created_at): (i64, String, String, String, i64, Option<String>, String) =
        conn.query_row(
            "SELECT id, type, uri, digest, size, properties, created_at FROM artifacts WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )?;
    Ok(ArtifactRecord { id, ty, uri, digest, size: size as u64, properties: parse_json(props)?, created_at })
}

pub(crate) fn model_version_by_id(conn: &Connection, id: i64) -> Result<ModelVersion> {
    let mut mv = conn.query_row(
        "SELECT id, model_name, version, artifact_id, run_id, created_at,
                approval, approval_by, approval_at, approval_reason, description
         FROM model_versions WHERE id = ?1",
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
                approval: Approval {
                    state: ApprovalState::parse(&r.get::<_, String>(6)?),
                    by: r.get(7)?,
                    at: r.get(8)?,
                    reason: r.get(9)?,
                },
                description: r.get(10)?,
                tags: Default::default(),
            })
        },
    )?;
    let mut tags = conn.prepare("SELECT key, value FROM model_version_tags WHERE version_id = ?1 ORDER BY key")?;
    mv.tags = tags.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<std::result::Result<_, _>>()?;
    let mut st =
        conn.prepare("SELECT alias FROM model_aliases WHERE model_name = ?1 AND version = ?2 ORDER BY alias")?;
    mv.aliases =
        st.query_map(params![mv.model_name, mv.version], |r| r.get(0))?.collect::<std::result::Result<_, _>>()?;
    Ok(mv)
}

pub(crate) fn events_of(conn: &Connection, execution_id: i64, kind: &str) -> Result<Vec<(String, ArtifactRecord)>> {
    let mut st =
        conn.prepare("SELECT name, artifact_id FROM events WHERE execution_id = ?1 AND kind = ?2 ORDER BY id")?;
    let rows: Vec<(String, i64)> = st
        .query_map(params![execution_id, kind], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    rows.into_iter().map(|(n, id)| Ok((n, artifact_by_id(conn, id)?))).collect()
}
