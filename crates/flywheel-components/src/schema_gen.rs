//! `schema`: the data schema a pipeline validates against — inferred from
//! training statistics, or a curated file (`path`) that a person keeps in
//! git. Written as the same TOML `flywheel schema infer` writes.

use flywheel_core::{ArtifactType, Component, ComponentSpec, ExecContext, ExecError, ParamSpec, ParamType, PortSpec};
use flywheel_data::table::read_json;
use flywheel_stats::schema::Schema as DataSchema;
use serde_json::json;

pub struct Schema;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "schema",
    version: "2",
    description: "A data schema: inferred from statistics, or a curated TOML file (`path`).",
    params: &[
        ParamSpec {
            name: "path",
            ty: ParamType::Path,
            required: false,
            doc: "a curated schema file to use instead of inferring one",
        },
        ParamSpec {
            name: "max_categories",
            ty: ParamType::Int,
            required: false,
            doc: "a text column with at most this many distinct values gets a category domain (default 50)",
        },
        ParamSpec {
            name: "range_margin",
            ty: ParamType::Float,
            required: false,
            doc: "inferred numeric ranges are widened by this share of the observed span on each side (default 0.1; 0 = strict)",
        },
        ParamSpec {
            name: "max_violation",
            ty: ParamType::Float,
            required: false,
            doc: "share of values an inferred schema tolerates outside range or domain as a warning (default 0.001)",
        },
    ],
    inputs: &[PortSpec {
        name: "statistics",
        ty: ArtifactType::Statistics,
        doc: "statistics of the training data",
        optional: false,
    }],
    outputs: &[PortSpec { name: "schema", ty: ArtifactType::Schema, doc: "the schema (TOML)", optional: false }],
    dynamic_ports: false,
};

impl Component for Schema {
    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn execute(&self, ctx: &ExecContext) -> Result<(), ExecError> {
        let (text, columns) = match ctx.str_param("path") {
            Some(p) => {
                let path = ctx.resolve_path(p);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ExecError::failed(format!("cannot read schema {}: {e}", path.display())))?;
                let schema = DataSchema::parse(&text, &path.display().to_string())
                    .map_err(|e| ExecError::failed(e.to_string()))?;
                ctx.log(format!("using the curated schema {}", path.display()));
                (text, schema.columns.len())
            }
            None => {
                let stats = read_json(&ctx.input("statistics")?.path)?;
                let max_categories = ctx.i64_param("max_categories").unwrap_or(50).max(0) as usize;
                let margin = ctx.f64_param("range_margin").unwrap_or(0.1);
                let violation = ctx.f64_param("max_violation").unwrap_or(0.001);
                if !(0.0..=10.0).contains(&margin) {
                    return Err(ExecError::failed(format!("`range_margin` = {margin} must be between 0 and 10")));
                }
                if !(0.0..=1.0).contains(&violation) {
                    return Err(ExecError::failed(format!("`max_violation` = {violation} must be between 0 and 1")));
                }
                let schema = DataSchema::infer_from_statistics(&stats, max_categories, margin, violation);
                (
                    schema.to_toml("Schema inferred by the pipeline's `schema` step from the training statistics."),
                    schema.columns.len(),
                )
            }
        };
        std::fs::write(ctx.output_path("schema"), text).map_err(|e| ExecError::io("cannot write the schema", e))?;
        ctx.set_properties("schema", json!({ "columns": columns }));
        Ok(())
    }
}
