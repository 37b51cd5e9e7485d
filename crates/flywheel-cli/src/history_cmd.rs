//! What the home remembers: `runs list`, `runs show`, `lineage`,
//! `signals` and the list of registered models.

use crate::exit::Failure;
use crate::{models_cmd, open_home, render};
use flywheel_orchestrator::Home;
use std::path::Path;

pub fn runs_list(home_dir: &Path, json: bool, limit: usize) -> Result<u8, Failure> {
    let home = open_home(home_dir)?;
    let runs = home.metadata.list_runs(limit)?;
    render::runs_list(&runs, json);
    Ok(0)
}

pub fn run_show(home_dir: &Path, run: i64, json: bool) -> Result<u8, Failure> {
    let home = open_home(home_dir)?;
    let record = home.metadata.run(run)?;
    let executions = home.metadata.executions(run)?;
    let signals = home.metadata.signals(Some(run), 100)?;
    render::run_show(&record, &executions, &signals, json);
    Ok(0)
}

pub fn lineage(home_dir: &Path, id: &str, json: bool) -> Result<u8, Failure> {
    let home = open_home(home_dir)?;
    let artifact_id = resolve_lineage_target(&home, id)?;
    let lineage = home.metadata.lineage(artifact_id)?;
    render::lineage(&lineage, json);
    Ok(0)
}

/// `12` is an artifact id; `name@3` a model version; `name` its latest version.
fn resolve_lineage_target(home: &Home, id: &str) -> Result<i64, Failure> {
    if let Ok(n) = id.parse::<i64>() {
        return Ok(n);
    }
    Ok(home.resolve(&models_cmd::model_ref(id)?)?.version.artifact_id)
}

pub fn signals(home_dir: &Path, json: bool, limit: usize) -> Result<u8, Failure> {
    let home = open_home(home_dir)?;
    render::signals(&home.metadata.signals(None, limit)?, json);
    Ok(0)
}

pub fn models(home_dir: &Path, json: bool) -> Result<u8, Failure> {
    let home = open_home(home_dir)?;
    let versions = home.metadata.model_versions()?;
    render::models(&versions, json);
    Ok(0)
}
