//! `evaluate`: metrics of a model on the evaluation data, overall and per
//! declared slice (`slices.rs`).

use crate::ml_error;
use flywheel_core::slice::SliceSpec;
use flywheel_core::{
    ArtifactType, ComponentSpec, ExecContext, ExecError, ParamProblem, ParamSpec, ParamType, PortSpec, TypedComponent,
};
use flywheel_data::model_file::{load, to_frame};
use flywheel_data::slices::{group, keys as slice_keys};
use flywheel_data::table::{Table, read_table, write_json};
use flywheel_ml::metrics;
use flywheel_ml::{Matrix, Model};
use flywheel_ml::{Prediction, Task};
use serde_json::{Value as Json, json};
use std::path::Path;

pub struct Evaluate;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "evaluate",
    version: "3",
    description: "Evaluates a model overall and per slice: RMSE, MAE, MAPE, R² (regression); accuracy, precision, recall, F1, ROC AUC, PR AUC, log loss, Brier score, confusion matrix, calibration (classification).",
    params: &[ParamSpec {
        name: "slices",
        ty: ParamType::StringList,
        required: false,
        doc: "slices to evaluate separately: a column (\"sex\": each value), numeric bins (\"age:25,45,65\"), or a cross of two (\"sex*race\")",
    }],
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

/// Every number `evaluate` reports, by task: what `bless` rules and
/// `tune`'s `metric` may name.
pub const METRICS: &[&str] = &[
    "rmse",
    "mae",
    "mape",
    "r2",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "rows",
];

/// A metric name no task reports, as a problem at the key `path`.
pub fn check_metric(path: &[&str], metric: &str) -> Option<ParamProblem> {
    (!METRICS.contains(&metric)).then(|| {
        ParamProblem::key(path, format!("`{metric}` is not a metric `evaluate` reports")).help(format!(
            "{}metrics: {}",
            hint(metric, METRICS),
            METRICS.join(", ")
        ))
    })
}

/// "did you mean `x`? " or nothing.
fn hint(word: &str, candidates: &[&str]) -> String {
    flywheel_core::closest(word, candidates.iter().copied())
        .map(|c| format!("did you mean `{c}`? "))
        .unwrap_or_default()
}

/// `evaluate`'s parameters (see [`SPEC`]).
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default)]
    pub slices: Vec<String>,
}

/// Each slice of the list `key`, read by [`SliceSpec::parse`] as the run reads it.
pub fn check_slices(list: &[String], key: &str) -> Vec<ParamProblem> {
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let e = SliceSpec::parse(s).err()?;
            Some(ParamProblem::value(&[key, &i.to_string()], e.to_string()))
        })
        .collect()
}

fn num(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// Overall metrics merged into `head`, then one entry per slice value.
/// A warning per metric that has no value on `scope` (ROC AUC on rows of
/// one class, MAPE with a zero target, …): hidden nulls read as "fine".
fn undefined_metrics(metrics: &Json, scope: &str, warnings: &mut Vec<Json>) {
    let Some(m) = metrics.as_object() else { return };
    let undefined: Vec<&str> = m.iter().filter(|(_, v)| v.is_null()).map(|(k, _)| k.as_str()).collect();
    if !undefined.is_empty() {
        warnings.push(json!(format!(
            "{} undefined on {scope} ({} rows): too few rows, a single class, or a zero target",
            undefined.join(", "),
            m.get("rows").and_then(Json::as_u64).unwrap_or(0)
        )));
    }
}

fn report(
    mut head: Json,
    scorer: &dyn Fn(&[usize]) -> Json,
    all: &[usize],
    specs: &[SliceSpec],
    keys: &[Vec<String>],
) -> Json {
    let mut warnings = Vec::new();
    let overall = scorer(all);
    undefined_metrics(&overall, "the whole evaluation set", &mut warnings);
    if let (Some(o), Json::Object(overall)) = (head.as_object_mut(), overall) {
        o.extend(overall);
    }
    let mut slices = Vec::new();
    for (spec, keys) in specs.iter().zip(keys) {
        let groups = group(keys);
        if groups.len() < 2 {
            warnings.push(json!(format!(
                "slice \"{}\" has a single value in the evaluation data ({}): it is the whole dataset",
                spec.text,
                groups.keys().next().copied().unwrap_or("")
            )));
        }
        for (name, rows) in groups {
            let m = scorer(&rows);
            undefined_metrics(&m, &format!("slice {name} of \"{}\"", spec.text), &mut warnings);
            slices.push(json!({ "spec": spec.text, "slice": name, "metrics": m }));
        }
    }
    if let Some(o) = head.as_object_mut() {
        o.insert("slices".into(), Json::Array(slices));
        o.insert("warnings".into(), Json::Array(warnings));
    }
    head
}

/// Metrics of `model` on the data file at `data`, overall and per slice;
/// also used by `bless` to score the candidate and the baseline alike.
pub fn evaluate_model(model: &Model, data: &Path, slices: &[String]) -> Result<(Json, usize), ExecError> {
    let (t, ti, skipped) = labelled_rows(data, &model.target)?;
    let inputs: Vec<String> = model.signature.inputs.iter().map(|i| i.name.clone()).collect();
    check_inputs(&t, &inputs)?;
    let frame = to_frame(&t, &inputs)?;
    let pred = model.predict_parallel(&frame, flywheel_ml::par::cores()).map_err(ml_error)?;
    // Slices are checked before any metric is computed.
    let specs: Vec<SliceSpec> =
        slices.iter().map(|s| SliceSpec::parse(s)).collect::<Result<_, _>>().map_err(ExecError::failed)?;
    let keys: Vec<Vec<String>> = specs.iter().map(|s| slice_keys(s, &t)).collect::<Result<_, _>>()?;

    let all: Vec<usize> = (0..t.rows()).collect();
    let emit = |head: Json, scorer: &dyn Fn(&[usize]) -> Json| report(head, scorer, &all, &specs, &keys);
    let m = match (model.task, &pred) {
        (Task::Regression, Prediction::Values(pred)) => {
            let y: Vec<f64> = t.f64_values(ti);
            let scorer = move |rows: &[usize]| {
                let ys: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
                let ps: Vec<f64> = rows.iter().map(|&i| pred[i]).collect();
                let r = metrics::regression(&ys, &ps);
                json!({ "rows": rows.len(), "rmse": num(r.rmse), "mae": num(r.mae), "mape": num(r.mape), "r2": num(r.r2) })
            };
            emit(json!({ "task": "regression" }), &scorer)
        }
        (Task::Classification, Prediction::Classes { probabilities, labels }) => {
            let y = class_indices(model, &t.str_column(ti))?;
            let classes = &model.classes;
            if classes.len() == 2 {
                let head = json!({ "task": "binary_classification", "positive_class": classes[1] });
                emit(head, &binary_scorer(&y, probabilities))
            } else {
                let head = json!({ "task": "multiclass_classification", "classes": classes });
                emit(head, &multiclass_scorer(&y, labels, probabilities, classes.len()))
            }
        }
        _ => return Err(ExecError::failed("the model's predictions do not match its task")),
    };
    Ok((m, skipped))
}

/// The table at `data` without the rows that lack a target value, the
/// target's column index, and how many rows were left out.
fn labelled_rows(data: &Path, target: &str) -> Result<(Table, usize, usize), ExecError> {
    let t = read_table(data, &Default::default())?;
    let ti = t
        .column_index(target)
        .ok_or_else(|| ExecError::failed(format!("the evaluation data has no target column `{target}`")))?;
    let keep: Vec<bool> = t.str_column(ti).iter().map(Option::is_some).collect();
    let skipped = keep.iter().filter(|k| !**k).count();
    let t = if skipped > 0 { t.filter(&keep).map_err(|e| ExecError::failed(e.to_string()))? } else { t };
    if t.rows() == 0 {
        return Err(ExecError::failed(format!("no evaluation row has a `{target}` value")));
    }
    Ok((t, ti, skipped))
}

/// Every column the model reads must be in the evaluation data.
fn check_inputs(t: &Table, inputs: &[String]) -> Result<(), ExecError> {
    for name in inputs {
        if t.column_index(name).is_none() {
            let names = t.column_names();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            return Err(ExecError::failed(format!(
                "the model needs column `{name}`, which the evaluation data does not have{}",
                flywheel_data::table::suggest(name, &refs)
            )));
        }
    }
    Ok(())
}

/// Each row's true class as an index into the model's classes; a class
/// the model never saw fails.
fn class_indices(model: &Model, truth: &[Option<String>]) -> Result<Vec<usize>, ExecError> {
    let classes = &model.classes;
    let index: std::collections::HashMap<&str, usize> =
        classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let unknown: Vec<&String> = truth.iter().flatten().filter(|l| !index.contains_key(l.as_str())).collect();
    if let Some(u) = unknown.first() {
        return Err(ExecError::failed(format!(
            "{} evaluation rows have a `{}` value the model never saw in training (e.g. `{u}`; classes: {})",
            unknown.len(),
            model.target,
            classes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(truth.iter().flatten().map(|l| index[l.as_str()]).collect())
}

/// Binary metrics of a set of rows; class 1 is the positive class.
fn binary_scorer<'a>(y: &'a [usize], probabilities: &'a Matrix) -> impl Fn(&[usize]) -> Json + 'a {
    let p1 = probabilities.column(1);
    move |rows: &[usize]| {
        let yb: Vec<bool> = rows.iter().map(|&i| y[i] == 1).collect();
        let ps: Vec<f64> = rows.iter().map(|&i| p1[i]).collect();
        let b = metrics::binary(&yb, &ps);
        json!({
            "rows": rows.len(), "accuracy": num(b.accuracy), "precision": num(b.precision),
            "recall": num(b.recall), "f1": num(b.f1), "roc_auc": num(b.roc_auc), "pr_auc": num(b.pr_auc),
            "log_loss": num(b.log_loss), "brier": num(b.brier), "confusion_matrix": b.confusion,
            "calibration": b.calibration,
        })
    }
}

/// Multiclass metrics of a set of rows over `k` classes.
fn multiclass_scorer<'a>(
    y: &'a [usize],
    labels: &'a [usize],
    probabilities: &'a Matrix,
    k: usize,
) -> impl Fn(&[usize]) -> Json + 'a {
    move |rows: &[usize]| {
        let ys: Vec<usize> = rows.iter().map(|&i| y[i]).collect();
        let ls: Vec<usize> = rows.iter().map(|&i| labels[i]).collect();
        let ps: Vec<f64> = rows.iter().flat_map(|&i| probabilities.row(i).iter().copied()).collect();
        let mc = metrics::multiclass(&ys, &ls, &ps, k);
        json!({
            "rows": rows.len(), "accuracy": num(mc.accuracy), "precision_macro": num(mc.precision_macro),
            "recall_macro": num(mc.recall_macro), "f1_macro": num(mc.f1_macro),
            "log_loss": num(mc.log_loss), "confusion_matrix": mc.confusion,
        })
    }
}

impl TypedComponent for Evaluate {
    type Params = Params;

    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn check(&self, params: &Params) -> Vec<ParamProblem> {
        check_slices(&params.slices, "slices")
    }

    fn run(&self, params: Params, ctx: &ExecContext) -> Result<(), ExecError> {
        let model = load(&ctx.input("model")?.path)?;
        let (mut m, skipped) = evaluate_model(&model, &ctx.input("data")?.path, &params.slices)?;
        if let Some(o) = m.as_object_mut() {
            o.insert("target".into(), json!(model.target));
        }
        if skipped > 0 {
            let w = format!("skipped {skipped} evaluation rows without a `{}` value", model.target);
            if let Some(ws) = m["warnings"].as_array_mut() {
                ws.push(json!(w));
            }
        }
        for w in m["warnings"].as_array().cloned().unwrap_or_default() {
            ctx.log(format!("warning: {}", w.as_str().unwrap_or_default()));
        }
        write_json(&ctx.output_path("metrics"), &m)?;
        ctx.set_properties("metrics", m.clone());
        // The summary shows the headline numbers; the artifact has everything.
        let mut shown = m.clone();
        if let Some(o) = shown.as_object_mut() {
            for k in ["task", "positive_class", "classes", "target", "confusion_matrix", "calibration"] {
                o.remove(k);
            }
            if let Some(w) = o.remove("warnings").filter(|w| w.as_array().is_some_and(|a| !a.is_empty())) {
                ctx.add_summary("warnings", w);
            }
            if let Some(sl) = o.remove("slices") {
                o.insert("slices".into(), json!(sl.as_array().map_or(0, Vec::len)));
            }
        }
        ctx.add_summary("metrics", shown);
        Ok(())
    }
}
