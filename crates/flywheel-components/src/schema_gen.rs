//! `schema`: the data schema a pipeline validates against — inferred from
//! training statistics, or a curated file (`path`) that a person keeps in
//! git. Written as the same TOML `flywheel schema infer` writes.

use flywheel_core::{
    ArtifactType, ComponentSpec, ExecContext, ExecError, ParamSpec, ParamType, PortSpec, TypedComponent,
};
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

/// `schema`'s parameters (see [`SPEC`]).
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub path: Option<String>,
    #[serde(default = "default_max_categories")]
    pub max_categories: i64,
    #[serde(default = "default_range_margin")]
    pub range_margin: f64,
    #[serde(default = "default_max_violation")]
    pub max_violation: f64,
}

fn default_max_categories() -> i64 {
    50
}
fn default_range_margin() -> f64 {
    0.1
}
fn default_max_violation() -> f64 {
    0.001
}

impl TypedComponent for Schema {
    type Params = Params;

    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn run(&self, params: Params, ctx: &ExecContext) -> Result<(), ExecError> {
        let (text, columns) = match &params.path {
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
                let max_categories = params.max_categories.max(0) as usize;
                let (margin, violation) = (params.range_margin, params.max_violation);
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

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::Component;

    /// Statistics of a tiny CSV, as the `statistics` step writes them, in `dir`.
    fn statistics(dir: &std::path::Path) -> std::path::PathBuf {
        let csv = dir.join("tiny.csv");
        std::fs::write(&csv, "temp,season\n1.5,winter\n2.5,summer\n3.5,summer\n").unwrap();
        let ctx = ExecContext::builder()
            .input_file("data", ArtifactType::Dataset, &csv)
            .output("statistics", ArtifactType::Statistics)
            .output_dir(dir)
            .build();
        crate::statistics::Statistics.execute(&ctx).unwrap();
        ctx.output_path("statistics")
    }

    #[test]
    fn a_schema_is_inferred_from_statistics_of_a_tiny_csv() {
        let dir = tempfile::tempdir().unwrap();
        let stats = statistics(dir.path());
        let ctx = ExecContext::builder()
            .input_file("statistics", ArtifactType::Statistics, &stats)
            .output("schema", ArtifactType::Schema)
            .build();
        Schema.execute(&ctx).unwrap();
        assert_eq!(ctx.take_properties()["schema"], json!({ "columns": 2 }));
        let text = std::fs::read_to_string(ctx.output_path("schema")).unwrap();
        let schema = DataSchema::parse(&text, "schema").unwrap();
        let mut names: Vec<&str> = schema.columns.iter().map(|(name, _)| name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["season", "temp"]);
    }

    #[test]
    fn a_margin_out_of_range_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let stats = statistics(dir.path());
        let ctx = ExecContext::builder()
            .param("range_margin", json!(20))
            .input_file("statistics", ArtifactType::Statistics, &stats)
            .output("schema", ArtifactType::Schema)
            .build();
        let e = Schema.execute(&ctx).unwrap_err();
        assert_eq!(e.to_string(), "`range_margin` = 20 must be between 0 and 10");
    }
}
