//! Lineage: everything upstream and downstream of an artifact, walked
//! over the events that tie executions to their inputs and outputs.

use crate::records::{EXEC_SELECT, exec_from_row, model_version_by_id};
use crate::{Lineage, LineageEdge, MetadataStore, Result};
use rusqlite::{Connection, OptionalExtension, params};

impl MetadataStore {
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

impl MetadataStore {
    /// The newest statistics artifact computed from `artifact_id` (a step
    /// that took it as input and gave statistics out), if any: what a
    /// dataset is compared with without reading it again.
    pub fn statistics_of(&self, artifact_id: i64) -> Result<Option<crate::ArtifactRecord>> {
        let conn = self.conn();
        let id: Option<i64> = conn
            .query_row(
                "SELECT e_out.artifact_id FROM events e_in
                 JOIN events e_out ON e_out.execution_id = e_in.execution_id AND e_out.kind = 'output'
                 JOIN artifacts a ON a.id = e_out.artifact_id AND a.type = 'statistics'
                 WHERE e_in.artifact_id = ?1 AND e_in.kind = 'input'
                 ORDER BY e_out.execution_id DESC LIMIT 1",
                [artifact_id],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| crate::records::artifact_by_id(&conn, id)).transpose()
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
