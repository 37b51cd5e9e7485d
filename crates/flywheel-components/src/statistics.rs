//! `statistics`: per-column statistics of a dataset, in one streaming pass
//! with mergeable sketches (see `flywheel_stats::profile` for what is exact
//! and what is within a stated error).

use flywheel_core::{
    ArtifactType, CancelToken, ComponentSpec, ExecContext, ExecError, ParamProblem, ParamSpec, ParamType, PortSpec,
    TypedComponent,
};
use flywheel_data::profiling::profile_file;
use flywheel_data::table::write_json;
use serde_json::json;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

pub struct Statistics;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "statistics",
    version: "3",
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

/// `statistics`' parameters (see [`SPEC`]).
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_top_k")]
    pub top_k: i64,
}

fn default_top_k() -> i64 {
    50
}

/// At least one top value per column is kept.
fn check_top_k(params: &Params) -> Vec<ParamProblem> {
    match params.top_k {
        k if k < 1 => vec![ParamProblem::value(&["top_k"], format!("`top_k` must be at least 1, not {k}"))],
        _ => Vec::new(),
    }
}

impl TypedComponent for Statistics {
    type Params = Params;

    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn check(&self, params: &Params) -> Vec<ParamProblem> {
        check_top_k(params)
    }

    fn run(&self, params: Params, ctx: &ExecContext) -> Result<(), ExecError> {
        let data = ctx.input("data")?;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let path = data.path.clone();
        let profile = unless_cancelled(&ctx.cancel, move || profile_file(&path, &Default::default(), threads))??;
        let top_k = params.top_k.max(1) as usize;
        let mut stats = profile.to_json(top_k);
        // Kept for drift (monitoring compares served windows with it): the
        // data's distribution without its rows.
        let reference = flywheel_data::dataset_drift::DatasetReference::from_profile(&profile);
        stats["reference"] = serde_json::to_value(&reference).map_err(|e| ExecError::failed(e.to_string()))?;
        write_json(&ctx.output_path("statistics"), &stats)?;
        ctx.set_properties("statistics", json!({ "rows": profile.rows, "columns": profile.columns.len() }));
        ctx.log(format!("described {} rows × {} columns", profile.rows, profile.columns.len()));
        Ok(())
    }
}

/// Runs `work` on a thread of its own and returns its result, or
/// `Cancelled` within a few milliseconds of a cancel request. The profile
/// pass has no cancellation check of its own, so a cancelled step leaves
/// it to finish in the background (it writes nothing; the CLI exits soon
/// after, ending it).
fn unless_cancelled<T: Send + 'static>(
    cancel: &CancelToken,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ExecError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("statistics".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| ExecError::io("cannot start the statistics thread", e))?;
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Timeout) => cancel.check()?,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(ExecError::failed("the statistics pass stopped without a result (a bug; see the log)"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_cancelled_statistics_pass_returns_at_once() {
        let cancel = CancelToken::new();
        let c = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            c.cancel();
        });
        let started = Instant::now();
        let r = unless_cancelled(&cancel, || std::thread::sleep(Duration::from_secs(10)));
        assert!(matches!(r, Err(ExecError::Cancelled)), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert_eq!(unless_cancelled(&CancelToken::new(), || 7).unwrap(), 7);
    }

    use flywheel_core::{ArtifactType, Component};

    /// A `statistics` step over a three-row CSV written in `dir`.
    fn step(dir: &std::path::Path, params: serde_json::Value) -> ExecContext {
        let csv = dir.join("tiny.csv");
        std::fs::write(&csv, "temp,season\n1.5,winter\n2.5,summer\n,summer\n").unwrap();
        ExecContext::builder()
            .params(params)
            .input_file("data", ArtifactType::Dataset, &csv)
            .output("statistics", ArtifactType::Statistics)
            .build()
    }

    #[test]
    fn statistics_of_a_tiny_csv() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = step(dir.path(), json!({ "top_k": 1 }));
        Statistics.execute(&ctx).unwrap();
        assert_eq!(ctx.take_properties()["statistics"], json!({ "rows": 3, "columns": 2 }));
        let written = flywheel_data::table::read_json(&ctx.output_path("statistics")).unwrap();
        let text = written.to_string();
        assert!(text.contains("\"temp\"") && text.contains("\"season\""), "{text}");
    }

    #[test]
    fn a_bad_top_k_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = Statistics.execute(&step(dir.path(), json!({ "top_k": "many" }))).unwrap_err();
        assert_eq!(e.to_string(), "parameter `top_k`: expected an integer, found a string");
        let problems = Statistics.check_params(json!({ "top_k": 0 }).as_object().unwrap());
        assert_eq!(problems[0].message, "`top_k` must be at least 1, not 0");
    }
}
