//! `schema`: a data schema inferred from statistics — each column's type,
//! whether it may be missing, its categories (when few) and its numeric range.

use crate::table::{read_json, write_json};
use flywheel_core::{ArtifactType, Component, ComponentSpec, ExecContext, ExecError, ParamSpec, ParamType, PortSpec};
use serde_json::{Value as Json, json};

pub struct Schema;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "schema",
    version: "1",
    description: "Infers a schema (types, presence, categories, ranges) from statistics.",
    params: &[
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
            doc: "numeric ranges are widened by this share of the observed span on each side (default 0.1; 0 = strict)",
        },
    ],
    inputs: &[PortSpec { name: "statistics", ty: ArtifactType::Statistics, doc: "statistics of the training data" }],
    outputs: &[PortSpec { name: "schema", ty: ArtifactType::Schema, doc: "the schema as JSON" }],
    dynamic_ports: false,
};

pub fn infer(stats: &Json, max_categories: usize, margin: f64) -> Json {
    let mut columns = serde_json::Map::new();
    let empty = serde_json::Map::new();
    for (name, c) in stats["columns"].as_object().unwrap_or(&empty) {
        let ty = c["type"].as_str().unwrap_or("string");
        let mut col = json!({ "type": ty, "required": c["missing"].as_u64() == Some(0) });
        let o = col.as_object_mut().expect("object");
        if ty == "string" || ty == "bool" {
            let distinct = c["distinct"].as_u64().unwrap_or(u64::MAX) as usize;
            let top = c["top"].as_array();
            if distinct <= max_categories
                && let Some(top) = top
                && top.len() == distinct
            {
                let mut domain: Vec<&str> = top.iter().filter_map(|t| t["value"].as_str()).collect();
                domain.sort_unstable();
                o.insert("domain".into(), json!(domain));
            }
        }
        if (ty == "int" || ty == "float")
            && let (Some(min), Some(max)) = (c["min"].as_f64(), c["max"].as_f64())
        {
            let pad = (max - min) * margin;
            let (lo, hi) = if ty == "int" { ((min - pad).floor(), (max + pad).ceil()) } else { (min - pad, max + pad) };
            o.insert("min".into(), json!(lo));
            o.insert("max".into(), json!(hi));
        }
        columns.insert(name.clone(), col);
    }
    json!({ "columns": columns })
}

impl Component for Schema {
    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn execute(&self, ctx: &ExecContext) -> Result<(), ExecError> {
        let stats = read_json(&ctx.input("statistics")?.path)?;
        let max_categories = ctx.i64_param("max_categories").unwrap_or(50).max(0) as usize;
        let margin = ctx.f64_param("range_margin").unwrap_or(0.1);
        if !(0.0..=10.0).contains(&margin) {
            return Err(ExecError::failed(format!("`range_margin` = {margin} must be between 0 and 10")));
        }
        // A domain needs every distinct value; statistics keep the `top_k` most frequent.
        let schema = infer(&stats, max_categories, margin);
        let n = schema["columns"].as_object().map_or(0, |c| c.len());
        write_json(&ctx.output_path("schema"), &schema)?;
        ctx.set_properties("schema", json!({ "columns": n }));
        Ok(())
    }
}
