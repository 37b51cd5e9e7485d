//! `evaluate`: metrics of a model on the evaluation data.

use crate::metrics;
use crate::model::{Kind, Model};
use crate::table::{read_table, write_json};
use flywheel_core::{ArtifactType, Component, ComponentSpec, ExecContext, ExecError, PortSpec};
use serde_json::json;

pub struct Evaluate;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "evaluate",
    version: "1",
    description: "Evaluates a model: RMSE, MAE, R² (regression) or accuracy, precision, recall, F1, ROC AUC, log loss (classification).",
    params: &[],
    inputs: &[
        PortSpec { name: "model", ty: ArtifactType::Model, doc: "the model to evaluate", optional: false },
        PortSpec {
            name: "data",
            ty: ArtifactType::Dataset,
            doc: "evaluation data with the target column",
            optional: false,
        },
    ],
    outputs: &[PortSpec { name: "metrics", ty: ArtifactType::Metrics, doc: "metrics as JSON", optional: false }],
    dynamic_ports: false,
};

fn num(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

impl Component for Evaluate {
    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn execute(&self, ctx: &ExecContext) -> Result<(), ExecError> {
        let model = Model::load(&ctx.input("model")?.path)?;
        let t = read_table(&ctx.input("data")?.path, &Default::default())?;
        let ti = t
            .column_index(&model.target)
            .ok_or_else(|| ExecError::failed(format!("the evaluation data has no target column `{}`", model.target)))?;
        let keep: Vec<bool> = t.str_column(ti).iter().map(Option::is_some).collect();
        let skipped = keep.iter().filter(|k| !**k).count();
        let t = if skipped > 0 { t.filter(&keep).map_err(|e| ExecError::failed(e.to_string()))? } else { t };
        if t.rows() == 0 {
            return Err(ExecError::failed(format!("no evaluation row has a `{}` value", model.target)));
        }
        let pred = model.predict(&t)?;
        let m = match model.kind {
            Kind::Linear => {
                let y: Vec<f64> = t.f64_column(ti).into_iter().map(|v| v.unwrap_or(f64::NAN)).collect();
                let (rmse, mae, r2) = metrics::regression(&y, &pred);
                json!({ "task": "regression", "rows": t.rows(), "rmse": num(rmse), "mae": num(mae), "r2": num(r2) })
            }
            Kind::Logistic => {
                let [neg, pos] =
                    model.classes.clone().ok_or_else(|| ExecError::failed("classification model without classes"))?;
                let labels = t.str_column(ti);
                let unknown: Vec<&String> = labels.iter().flatten().filter(|l| **l != neg && **l != pos).collect();
                if let Some(u) = unknown.first() {
                    return Err(ExecError::failed(format!(
                        "{} evaluation rows have a `{}` value the model never saw in training (e.g. `{u}`; classes: `{neg}`, `{pos}`)",
                        unknown.len(),
                        model.target
                    )));
                }
                let y: Vec<bool> = labels.iter().map(|l| l.as_deref() == Some(pos.as_str())).collect();
                let b = metrics::binary(&y, &pred);
                json!({
                    "task": "binary_classification", "rows": t.rows(), "positive_class": pos,
                    "accuracy": num(b.accuracy), "precision": num(b.precision), "recall": num(b.recall),
                    "f1": num(b.f1), "roc_auc": num(b.roc_auc), "log_loss": num(b.log_loss),
                })
            }
        };
        if skipped > 0 {
            ctx.log(format!("skipped {skipped} rows without a `{}` value", model.target));
        }
        write_json(&ctx.output_path("metrics"), &m)?;
        ctx.set_properties("metrics", m.clone());
        let mut shown = m.clone();
        if let Some(o) = shown.as_object_mut() {
            o.remove("task");
            o.remove("positive_class");
        }
        ctx.add_summary("metrics", shown);
        Ok(())
    }
}
