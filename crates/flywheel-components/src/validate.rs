//! `validate`: checks a dataset against the schema. Error anomalies (a
//! missing column, a type mismatch, values outside range or domain beyond
//! `max_violation`, …; see docs/anomalies.md) stop the run with a message
//! naming each column, kind and count; warnings are recorded in the report.
//!
//! With a `baseline` (e.g. `"@model:NAME/data"`, the data the latest
//! registered model was trained on), it also measures drift column by
//! column (`flywheel drift`'s methods and defaults) and records a `drift`
//! signal in the metadata store — "retraining recommended: 5 of 20 columns
//! drifted" — for triggers to read. Drift never fails the step.

use flywheel_core::{
    ArtifactType, ComponentSpec, ExecContext, ExecError, ParamProblem, ParamSpec, ParamType, PortSpec, TypedComponent,
};
use flywheel_data::profiling::profile_file_with;
use flywheel_data::table::write_json;
use flywheel_stats::profile::EXACT_QUANTILE_LIMIT;
use flywheel_stats::schema::{Schema, Severity, check, checks_for};
use serde_json::json;
use std::collections::BTreeMap;

pub struct Validate;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "validate",
    version: "3",
    description: "Checks data against a schema; stops the run on error anomalies (missing column, type mismatch, unexpected values).",
    params: &[
        ParamSpec {
            name: "environment",
            ty: ParamType::String,
            required: false,
            doc: "the environment the data comes from (e.g. SERVING), as the schema declares",
        },
        ParamSpec {
            name: "drift_share",
            ty: ParamType::Float,
            required: false,
            doc: "retraining is recommended when at least this share of columns drift from the baseline (default 0.5)",
        },
    ],
    inputs: &[
        PortSpec { name: "data", ty: ArtifactType::Dataset, doc: "the data to check", optional: false },
        PortSpec { name: "schema", ty: ArtifactType::Schema, doc: "the expected schema", optional: false },
        PortSpec {
            name: "baseline",
            ty: ArtifactType::Dataset,
            doc: "data to measure drift against, e.g. \"@model:NAME/data\" (the production model's training data)",
            optional: true,
        },
    ],
    outputs: &[PortSpec {
        name: "report",
        ty: ArtifactType::ValidationReport,
        doc: "anomalies found (JSON)",
        optional: false,
    }],
    dynamic_ports: false,
};

impl Validate {
    fn drift(
        &self,
        params: &Params,
        ctx: &ExecContext,
        baseline: &std::path::Path,
    ) -> Result<serde_json::Value, ExecError> {
        let reference = flywheel_data::table::read_table(baseline, &Default::default())?;
        let current = flywheel_data::table::read_table(&ctx.input("data")?.path, &Default::default())?;
        let opts = flywheel_data::dataset_drift::DriftOptions { drift_share: params.drift_share, ..Default::default() };
        let r = flywheel_data::dataset_drift::dataset_drift(&reference, &current, &opts)
            .map_err(|e| ExecError::failed(e.to_string()))?;
        let drifted: Vec<&String> = r.columns.iter().filter(|(_, c)| c.drift.drift).map(|(n, _)| n).collect();
        let message = if r.dataset_drift {
            format!("retraining recommended: {} of {} columns drifted", r.drifted_columns, r.compared_columns)
        } else {
            format!("no dataset drift: {} of {} columns drifted", r.drifted_columns, r.compared_columns)
        };
        let columns: serde_json::Map<String, serde_json::Value> = r
            .columns
            .iter()
            .map(|(n, c)| {
                (n.clone(), json!({ "method": c.drift.method, "score": c.drift.score, "threshold": c.drift.threshold, "drift": c.drift.drift }))
            })
            .collect();
        let details = json!({
            "dataset_drift": r.dataset_drift,
            "drift_share": r.drift_share,
            "drifted_columns": drifted,
            "compared_columns": r.compared_columns,
            "columns": columns,
        });
        ctx.log(&message);
        ctx.emit_signal("drift", message.clone(), details.clone());
        ctx.add_summary("drift", json!(message));
        Ok(details)
    }
}

/// `validate`'s parameters (see [`SPEC`]).
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub environment: Option<String>,
    /// `None`: drift's own default.
    pub drift_share: Option<f64>,
}

/// `drift_share` is a share of columns: a number from 0 to 1.
fn check_drift_share(params: &Params) -> Vec<ParamProblem> {
    let Some(v) = params.drift_share else { return Vec::new() };
    if (0.0..=1.0).contains(&v) {
        return Vec::new();
    }
    vec![
        ParamProblem::value(&["drift_share"], format!("`drift_share` = {v} is not a share of columns"))
            .help("write a number from 0 to 1, e.g. 0.5: retraining is recommended when half the columns drift"),
    ]
}

impl TypedComponent for Validate {
    type Params = Params;

    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn role(&self) -> flywheel_core::Role {
        flywheel_core::Role::Gate
    }

    fn check(&self, params: &Params) -> Vec<ParamProblem> {
        check_drift_share(params)
    }

    fn run(&self, params: Params, ctx: &ExecContext) -> Result<(), ExecError> {
        let schema_path = &ctx.input("schema")?.path;
        let text = std::fs::read_to_string(schema_path).map_err(|e| ExecError::io("cannot read the schema", e))?;
        let schema = Schema::parse(&text, "schema").map_err(|e| ExecError::failed(e.to_string()))?;
        let environment = params.environment.clone().or_else(|| schema.dataset.default_environment.clone());
        if let Some(e) = &environment
            && !schema.dataset.environments.contains(e)
        {
            return Err(ExecError::failed(format!(
                "`environment` = \"{e}\" is not declared in the schema's [dataset] environments"
            )));
        }
        let checks: BTreeMap<_, _> = schema.columns.iter().map(|(n, r)| (n.clone(), checks_for(r))).collect();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let profile =
            profile_file_with(&ctx.input("data")?.path, &Default::default(), threads, EXACT_QUANTILE_LIMIT, &checks)?;
        let anomalies = check(&schema, profile.rows, &profile.columns, environment.as_deref());
        let errors: Vec<_> = anomalies.iter().filter(|a| a.severity == Severity::Error).collect();
        let warnings = anomalies.len() - errors.len();
        for a in &anomalies {
            let sev = if a.severity == Severity::Error { "error" } else { "warning" };
            ctx.log(format!("{sev}: column `{}`: {}: {}", a.column.as_deref().unwrap_or("-"), a.kind, a.message));
        }
        if !errors.is_empty() {
            let lines: Vec<String> = errors
                .iter()
                .map(|a| format!("  column `{}`: {} — {}", a.column.as_deref().unwrap_or("-"), a.kind, a.message))
                .collect();
            return Err(ExecError::failed(format!(
                "data validation found {} error(s) in {} rows:\n{}",
                errors.len(),
                profile.rows,
                lines.join("\n")
            )));
        }
        let drift = match ctx.inputs.get("baseline") {
            Some(b) => Some(self.drift(&params, ctx, &b.path)?),
            None => {
                ctx.log("no baseline: drift not measured");
                None
            }
        };
        let report =
            json!({ "rows": profile.rows, "errors": 0, "warnings": warnings, "anomalies": anomalies, "drift": drift });
        write_json(&ctx.output_path("report"), &report)?;
        ctx.set_properties("report", json!({ "errors": 0, "warnings": warnings, "rows": profile.rows }));
        ctx.add_summary("anomalies", json!({ "errors": 0, "warnings": warnings }));
        Ok(())
    }
}
