//! `evaluate`: metrics of a model on the evaluation data.

use crate::metrics;
use crate::model::{load, ml_error, to_frame};
use crate::table::{read_table, write_json};
use flywheel_core::{ArtifactType, Component, ComponentSpec, ExecContext, ExecError, PortSpec};
use flywheel_ml::{Prediction, Task};
use serde_json::json;

pub struct Evaluate;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "evaluate",
    version: "2",
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
        let model = load(&ctx.input("model")?.path)?;
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
        let inputs: Vec<String> = model.signature.inputs.iter().map(|i| i.name.clone()).collect();
        for name in &inputs {
            if t.column_index(name).is_none() {
                let names = t.column_names();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                return Err(ExecError::failed(format!(
                    "the model needs column `{name}`, which the evaluation data does not have{}",
                    crate::table::suggest(name, &refs)
                )));
            }
        }
        let frame = to_frame(&t, &inputs)?;
        let pred = model.predict(&frame).map_err(ml_error)?;
        let m = match (model.task, pred) {
            (Task::Regression, Prediction::Values(pred)) => {
                let y: Vec<f64> = t.f64_column(ti).into_iter().map(|v| v.unwrap_or(f64::NAN)).collect();
                let (rmse, mae, r2) = metrics::regression(&y, &pred);
                json!({ "task": "regression", "rows": t.rows(), "rmse": num(rmse), "mae": num(mae), "r2": num(r2) })
            }
            (Task::Classification, Prediction::Classes { probabilities, labels }) => {
                let classes = &model.classes;
                let index: std::collections::HashMap<&str, usize> =
                    classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
                let truth = t.str_column(ti);
                let unknown: Vec<&String> =
                    truth.iter().flatten().filter(|l| !index.contains_key(l.as_str())).collect();
                if let Some(u) = unknown.first() {
                    return Err(ExecError::failed(format!(
                        "{} evaluation rows have a `{}` value the model never saw in training (e.g. `{u}`; classes: {})",
                        unknown.len(),
                        model.target,
                        classes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
                    )));
                }
                let y: Vec<usize> = truth.iter().flatten().map(|l| index[l.as_str()]).collect();
                if classes.len() == 2 {
                    let yb: Vec<bool> = y.iter().map(|&c| c == 1).collect();
                    let p1 = probabilities.column(1);
                    let b = metrics::binary(&yb, &p1);
                    json!({
                        "task": "binary_classification", "rows": t.rows(), "positive_class": classes[1],
                        "accuracy": num(b.accuracy), "precision": num(b.precision), "recall": num(b.recall),
                        "f1": num(b.f1), "roc_auc": num(b.roc_auc), "log_loss": num(b.log_loss),
                    })
                } else {
                    let mc = metrics::multiclass(&y, &labels, &probabilities.data, classes.len());
                    json!({
                        "task": "multiclass_classification", "rows": t.rows(), "classes": classes,
                        "accuracy": num(mc.accuracy), "precision_macro": num(mc.precision_macro),
                        "recall_macro": num(mc.recall_macro), "f1_macro": num(mc.f1_macro), "log_loss": num(mc.log_loss),
                    })
                }
            }
            _ => return Err(ExecError::failed("the model's predictions do not match its task")),
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
            o.remove("classes");
        }
        ctx.add_summary("metrics", shown);
        Ok(())
    }
}
