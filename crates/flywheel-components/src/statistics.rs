//! `statistics`: per-column statistics of a dataset, in one streaming pass
//! with mergeable sketches (see `flywheel_stats::profile` for what is exact
//! and what is within a stated error).

use crate::profile::profile_file;
use crate::table::write_json;
use flywheel_core::{
    ArtifactType, Component, ComponentSpec, ExecContext, ExecError, ParamProblem, ParamSpec, ParamType, PortSpec,
};
use serde_json::json;

pub struct Statistics;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "statistics",
    version: "2",
    description: "Computes per-column statistics: count, missing, zeros, NaN/inf, min, max, mean, std, quantiles, histograms, distinct values, top values.",
    params: &[ParamSpec {
        name: "top_k",
        ty: ParamType::Int,
        required: false,
        doc: "how many most frequent values to keep per column (default 50)",
    }],
    inputs: &[PortSpec { name: "data", ty: ArtifactType::Dataset, doc: "the dataset to describe", optional: false }],
    outputs: &[PortSpec {
        name: "statistics",
        ty: ArtifactType::Statistics,
        doc: "statistics as JSON",
        optional: false,
    }],
    dynamic_ports: false,
};

/// At least one top value per column is kept.
fn check_top_k(params: &serde_json::Map<String, serde_json::Value>) -> Vec<ParamProblem> {
    match params.get("top_k").and_then(serde_json::Value::as_i64) {
        Some(k) if k < 1 => vec![ParamProblem::value(&["top_k"], format!("`top_k` must be at least 1, not {k}"))],
        _ => Vec::new(),
    }
}

impl Component for Statistics {
    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn check_params(&self, params: &serde_json::Map<String, serde_json::Value>) -> Vec<ParamProblem> {
        check_top_k(params)
    }

    fn execute(&self, ctx: &ExecContext) -> Result<(), ExecError> {
        let data = ctx.input("data")?;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let profile = profile_file(&data.path, &Default::default(), threads)?;
        let top_k = ctx.i64_param("top_k").unwrap_or(50).max(1) as usize;
        let stats = profile.to_json(top_k);
        write_json(&ctx.output_path("statistics"), &stats)?;
        ctx.set_properties("statistics", json!({ "rows": profile.rows, "columns": profile.columns.len() }));
        ctx.log(format!("described {} rows × {} columns", profile.rows, profile.columns.len()));
        Ok(())
    }
}
