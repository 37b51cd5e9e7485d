//! What a run and its steps came to, as the scheduler reports them to the
//! CLI (rendering, JSON) and to observers. Its own module so that the
//! launcher, which makes a [`StepOutcome`], and the scheduler, which
//! collects them, need not import each other.

use flywheel_metadata::{ExecStatus, RunStatus};
use serde::Serialize;
use serde_json::Value as Json;

#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    pub step: String,
    pub execution_id: Option<i64>,
    pub status: ExecStatus,
    pub cache_hit: bool,
    pub attempts: u32,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub summary: Json,
    /// Succeeded before a `resume` and was not run again.
    pub resumed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub run_id: i64,
    pub pipeline: String,
    pub status: RunStatus,
    pub duration_ms: i64,
    pub steps: Vec<StepOutcome>,
    pub error: Option<String>,
}
