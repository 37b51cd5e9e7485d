//! `statistics`: per-column statistics of a dataset.
//!
//! Exact, in memory, for this first version: quantiles by sorting (linear
//! interpolation, as numpy's default), sample standard deviation (ddof = 1,
//! as pandas), mean by Welford's update for numerical stability.

use crate::table::{Table, read_table, type_name, write_json};
use flywheel_core::{ArtifactType, Component, ComponentSpec, ExecContext, ExecError, ParamSpec, ParamType, PortSpec};
use serde_json::{Value as Json, json};
use std::collections::HashMap;

pub struct Statistics;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "statistics",
    version: "1",
    description: "Computes per-column statistics: count, missing, min, max, mean, std, quantiles, distinct values, top values.",
    params: &[ParamSpec {
        name: "top_k",
        ty: ParamType::Int,
        required: false,
        doc: "how many most frequent values to keep per column (default 50)",
    }],
    inputs: &[PortSpec { name: "data", ty: ArtifactType::Dataset, doc: "the dataset to describe" }],
    outputs: &[PortSpec { name: "statistics", ty: ArtifactType::Statistics, doc: "statistics as JSON" }],
    dynamic_ports: false,
};

pub const QUANTILES: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99];

/// Quantile of sorted values with linear interpolation (numpy's default).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn num(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number)
}

fn top_values(counts: HashMap<String, usize>, k: usize) -> Vec<Json> {
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.into_iter().take(k).map(|(value, count)| json!({ "value": value, "count": count })).collect()
}

/// Statistics of every column, as the JSON the `statistics` artifact holds.
pub fn describe(t: &Table, top_k: usize) -> Json {
    let rows = t.rows();
    let mut columns = serde_json::Map::new();
    for (i, f) in t.schema.fields().iter().enumerate() {
        let ty = type_name(f.data_type());
        let texts = t.str_column(i);
        let missing = texts.iter().filter(|v| v.is_none()).count();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for v in texts.into_iter().flatten() {
            *counts.entry(v).or_default() += 1;
        }
        let distinct = counts.len();
        let mut col = json!({
            "type": ty,
            "count": rows - missing,
            "missing": missing,
            "distinct": distinct,
        });
        if ty == "int" || ty == "float" || ty == "bool" {
            let mut values: Vec<f64> = t.f64_column(i).into_iter().flatten().collect();
            let n = values.len();
            let (mut mean, mut m2) = (0.0f64, 0.0f64);
            for (k, &x) in values.iter().enumerate() {
                let d = x - mean;
                mean += d / (k + 1) as f64;
                m2 += d * (x - mean);
            }
            values.sort_by(f64::total_cmp);
            let o = col.as_object_mut().expect("object");
            o.insert("zeros".into(), json!(values.iter().filter(|&&x| x == 0.0).count()));
            if n > 0 {
                o.insert("min".into(), num(values[0]));
                o.insert("max".into(), num(values[n - 1]));
                o.insert("mean".into(), num(mean));
                o.insert("std".into(), if n > 1 { num((m2 / (n - 1) as f64).sqrt()) } else { Json::Null });
                let q: serde_json::Map<String, Json> =
                    QUANTILES.iter().map(|&q| (q.to_string(), num(quantile_sorted(&values, q)))).collect();
                o.insert("quantiles".into(), Json::Object(q));
            }
        }
        if ty == "string" || ty == "bool" || distinct <= top_k.max(20) {
            col.as_object_mut().expect("object").insert("top".into(), Json::Array(top_values(counts, top_k)));
        }
        columns.insert(f.name().clone(), col);
    }
    json!({ "rows": rows, "columns": columns })
}

impl Component for Statistics {
    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn execute(&self, ctx: &ExecContext) -> Result<(), ExecError> {
        let data = ctx.input("data")?;
        let t = read_table(&data.path, &Default::default())?;
        let top_k = ctx.i64_param("top_k").unwrap_or(50).max(1) as usize;
        let stats = describe(&t, top_k);
        write_json(&ctx.output_path("statistics"), &stats)?;
        ctx.set_properties("statistics", json!({ "rows": t.rows(), "columns": t.schema.fields().len() }));
        ctx.log(format!("described {} rows × {} columns", t.rows(), t.schema.fields().len()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), 2.5);
        assert_eq!(quantile_sorted(&v, 0.25), 1.75);
        assert_eq!(quantile_sorted(&v, 1.0), 4.0);
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }
}
