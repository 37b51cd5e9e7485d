//! `validate`: checks a dataset against a schema. Missing columns and type
//! mismatches always fail the run; values outside a domain or range and
//! unexpected missing values fail it when they affect more than
//! `max_anomaly_fraction` of the rows, and are recorded as warnings otherwise.

use crate::table::{read_json, read_table, type_name, write_json};
use flywheel_core::{ArtifactType, Component, ComponentSpec, ExecContext, ExecError, ParamSpec, ParamType, PortSpec};
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;

pub struct Validate;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "validate",
    version: "1",
    description: "Checks data against a schema; stops the run on errors (missing column, type mismatch, unexpected values).",
    params: &[ParamSpec {
        name: "max_anomaly_fraction",
        ty: ParamType::Float,
        required: false,
        doc: "value anomalies affecting at most this share of rows are warnings, not errors (default 0.001)",
    }],
    inputs: &[
        PortSpec { name: "data", ty: ArtifactType::Dataset, doc: "the data to check" },
        PortSpec { name: "schema", ty: ArtifactType::Schema, doc: "the expected schema" },
    ],
    outputs: &[PortSpec { name: "report", ty: ArtifactType::ValidationReport, doc: "anomalies found (JSON)" }],
    dynamic_ports: false,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub column: String,
    pub kind: &'static str,
    pub error: bool,
    pub count: usize,
    pub fraction: f64,
    pub example: Option<String>,
    pub message: String,
}

impl Anomaly {
    fn to_json(&self) -> Json {
        json!({
            "column": self.column,
            "kind": self.kind,
            "severity": if self.error { "error" } else { "warning" },
            "count": self.count,
            "fraction": self.fraction,
            "example": self.example,
            "message": self.message,
        })
    }
}

pub fn check(t: &crate::table::Table, schema: &Json, max_fraction: f64) -> Vec<Anomaly> {
    let rows = t.rows().max(1);
    let mut out = Vec::new();
    let empty = serde_json::Map::new();
    let columns = schema["columns"].as_object().unwrap_or(&empty);
    let value_anomaly = |column: &str, kind: &'static str, count: usize, example: Option<String>, what: String| {
        let fraction = count as f64 / rows as f64;
        Anomaly {
            column: column.to_string(),
            kind,
            error: fraction > max_fraction,
            count,
            fraction,
            example,
            message: format!("{count} of {rows} rows ({:.2}%) {what}", 100.0 * fraction),
        }
    };
    for (name, expected) in columns {
        let Some(i) = t.column_index(name) else {
            out.push(Anomaly {
                column: name.clone(),
                kind: "missing_column",
                error: true,
                count: rows,
                fraction: 1.0,
                example: None,
                message: "the column is missing from the data".into(),
            });
            continue;
        };
        let want = expected["type"].as_str().unwrap_or("string");
        let got = type_name(t.schema.field(i).data_type());
        // An int column where floats are expected is fine; the reverse is not.
        if want != got && !(want == "float" && got == "int") {
            out.push(Anomaly {
                column: name.clone(),
                kind: "type_mismatch",
                error: true,
                count: rows,
                fraction: 1.0,
                example: None,
                message: format!("expected type {want}, found {got}"),
            });
            continue;
        }
        let texts = t.str_column(i);
        let missing = texts.iter().filter(|v| v.is_none()).count();
        if expected["required"].as_bool() == Some(true) && missing > 0 {
            out.push(value_anomaly(
                name,
                "unexpected_missing",
                missing,
                None,
                "are missing a value the schema requires".into(),
            ));
        }
        if let Some(domain) = expected["domain"].as_array() {
            let domain: BTreeSet<&str> = domain.iter().filter_map(Json::as_str).collect();
            let bad: Vec<&String> = texts.iter().flatten().filter(|v| !domain.contains(v.as_str())).collect();
            if !bad.is_empty() {
                let distinct: BTreeSet<&str> = bad.iter().map(|s| s.as_str()).collect();
                out.push(value_anomaly(
                    name,
                    "unexpected_category",
                    bad.len(),
                    Some(bad[0].clone()),
                    format!("have a category not in the schema ({} distinct, e.g. `{}`)", distinct.len(), bad[0]),
                ));
            }
        }
        let (lo, hi) = (expected["min"].as_f64(), expected["max"].as_f64());
        if lo.is_some() || hi.is_some() {
            let values = t.f64_column(i);
            let outside: Vec<f64> = values
                .into_iter()
                .flatten()
                .filter(|&x| lo.is_some_and(|l| x < l) || hi.is_some_and(|h| x > h))
                .collect();
            if !outside.is_empty() {
                out.push(value_anomaly(
                    name,
                    "out_of_range",
                    outside.len(),
                    Some(outside[0].to_string()),
                    format!(
                        "are outside [{}, {}] (e.g. {})",
                        lo.unwrap_or(f64::NEG_INFINITY),
                        hi.unwrap_or(f64::INFINITY),
                        outside[0]
                    ),
                ));
            }
        }
    }
    for f in t.schema.fields() {
        if !columns.contains_key(f.name()) {
            out.push(Anomaly {
                column: f.name().clone(),
                kind: "unexpected_column",
                error: false,
                count: rows,
                fraction: 1.0,
                example: None,
                message: "the column is not in the schema".into(),
            });
        }
    }
    out
}

impl Component for Validate {
    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn execute(&self, ctx: &ExecContext) -> Result<(), ExecError> {
        let t = read_table(&ctx.input("data")?.path, &Default::default())?;
        let schema = read_json(&ctx.input("schema")?.path)?;
        let max_fraction = ctx.f64_param("max_anomaly_fraction").unwrap_or(0.001);
        let anomalies = check(&t, &schema, max_fraction);
        let errors: Vec<&Anomaly> = anomalies.iter().filter(|a| a.error).collect();
        let warnings = anomalies.len() - errors.len();
        for a in &anomalies {
            ctx.log(format!(
                "{}: column `{}`: {}: {}",
                if a.error { "error" } else { "warning" },
                a.column,
                a.kind,
                a.message
            ));
        }
        let report = json!({
            "rows": t.rows(),
            "errors": errors.len(),
            "warnings": warnings,
            "anomalies": anomalies.iter().map(Anomaly::to_json).collect::<Vec<_>>(),
        });
        if !errors.is_empty() {
            let lines: Vec<String> =
                errors.iter().map(|a| format!("  column `{}`: {} — {}", a.column, a.kind, a.message)).collect();
            return Err(ExecError::failed(format!(
                "data validation found {} error(s) in {} rows:\n{}",
                errors.len(),
                t.rows(),
                lines.join("\n")
            )));
        }
        write_json(&ctx.output_path("report"), &report)?;
        ctx.set_properties("report", json!({ "errors": 0, "warnings": warnings, "rows": t.rows() }));
        ctx.add_summary("anomalies", json!({ "errors": 0, "warnings": warnings }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Table;
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{Field, Schema};
    use std::sync::Arc;

    fn table(cols: Vec<(&str, ArrayRef)>) -> Table {
        let schema = Arc::new(Schema::new(
            cols.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a)| a).collect()).unwrap();
        Table { schema, batches: vec![batch] }
    }

    fn kinds(a: &[Anomaly]) -> Vec<(&str, &str, bool, usize)> {
        a.iter().map(|x| (x.column.as_str(), x.kind, x.error, x.count)).collect()
    }

    #[test]
    fn finds_each_kind_with_counts() {
        let schema = json!({ "columns": {
            "age": { "type": "int", "required": true, "min": 0.0, "max": 100.0 },
            "color": { "type": "string", "required": false, "domain": ["blue", "red"] },
            "score": { "type": "float", "required": true },
            "gone": { "type": "string", "required": true },
            "name": { "type": "int", "required": true },
        }});
        let t = table(vec![
            ("age", Arc::new(Int64Array::from(vec![Some(5), Some(130), None, Some(40)])) as ArrayRef),
            ("color", Arc::new(StringArray::from(vec![Some("red"), Some("green"), Some("green"), None]))),
            ("score", Arc::new(Int64Array::from(vec![1, 2, 3, 4]))),
            ("name", Arc::new(StringArray::from(vec!["a", "b", "c", "d"]))),
            ("extra", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0]))),
        ]);
        let found = check(&t, &schema, 0.3);
        assert_eq!(
            kinds(&found),
            [
                ("age", "unexpected_missing", false, 1),
                ("age", "out_of_range", false, 1),
                ("color", "unexpected_category", true, 2),
                ("gone", "missing_column", true, 4),
                ("name", "type_mismatch", true, 4),
                ("extra", "unexpected_column", false, 4),
            ]
        );
        assert_eq!(found[1].example.as_deref(), Some("130"));
        assert_eq!(
            found[2].message,
            "2 of 4 rows (50.00%) have a category not in the schema (1 distinct, e.g. `green`)"
        );
    }

    #[test]
    fn clean_data_has_no_anomalies() {
        let schema = json!({ "columns": { "x": { "type": "float", "required": true, "min": 0.0, "max": 1.0 } } });
        let t = table(vec![("x", Arc::new(Float64Array::from(vec![0.0, 0.5, 1.0])) as ArrayRef)]);
        assert!(check(&t, &schema, 0.0).is_empty());
    }
}
