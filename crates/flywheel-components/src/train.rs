//! `train`: linear regression or binary logistic regression through `linfa`,
//! on numeric features (standardized) plus one-hot categoricals.

use crate::model::{FORMAT, Feature, Kind, Model};
use crate::table::{Table, is_numeric, read_table, suggest};
use flywheel_core::{ArtifactType, Component, ComponentSpec, ExecContext, ExecError, ParamSpec, ParamType, PortSpec};
use linfa::traits::Fit;
use serde_json::json;
use std::collections::HashMap;

pub struct Train;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "train",
    version: "1",
    description: "Trains a linear (regression) or logistic (binary classification) model.",
    params: &[
        ParamSpec { name: "target", ty: ParamType::String, required: true, doc: "the column to predict" },
        ParamSpec {
            name: "model",
            ty: ParamType::Enum(&["auto", "linear", "logistic"]),
            required: false,
            doc: "model family (default auto: logistic for a two-valued target, linear otherwise)",
        },
        ParamSpec {
            name: "features",
            ty: ParamType::StringList,
            required: false,
            doc: "feature columns (default: every column but the target and `drop`)",
        },
        ParamSpec { name: "drop", ty: ParamType::StringList, required: false, doc: "columns not to use as features" },
        ParamSpec {
            name: "max_categories",
            ty: ParamType::Int,
            required: false,
            doc: "one-hot encode at most this many most frequent values of a text column (default 30)",
        },
        ParamSpec {
            name: "l2",
            ty: ParamType::Float,
            required: false,
            doc: "L2 penalty of logistic regression (default 1.0)",
        },
        ParamSpec {
            name: "max_iterations",
            ty: ParamType::Int,
            required: false,
            doc: "optimizer iterations for logistic regression (default 100)",
        },
        ParamSpec {
            name: "tolerance",
            ty: ParamType::Float,
            required: false,
            doc: "logistic regression stops when the gradient of the mean loss is below this (default 1e-4, as scikit-learn)",
        },
    ],
    inputs: &[PortSpec { name: "data", ty: ArtifactType::Dataset, doc: "training data", optional: false }],
    outputs: &[PortSpec {
        name: "model",
        ty: ArtifactType::Model,
        doc: "the trained model (Flywheel JSON format)",
        optional: false,
    }],
    dynamic_ports: false,
};

fn column_of(t: &Table, name: &str, what: &str) -> Result<usize, ExecError> {
    t.column_index(name).ok_or_else(|| {
        let names = t.column_names();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        ExecError::failed(format!("{what} `{name}` is not a column of the training data{}", suggest(name, &refs)))
    })
}

/// Fits the feature encoding on training data.
fn fit_features(t: &Table, names: &[String], kind: Kind, max_categories: usize) -> Result<Vec<Feature>, ExecError> {
    let mut features = Vec::new();
    for name in names {
        let i = column_of(t, name, "feature")?;
        if is_numeric(t.schema.field(i).data_type()) {
            let v: Vec<f64> = t.f64_column(i).into_iter().flatten().collect();
            let n = v.len().max(1) as f64;
            let mean = v.iter().sum::<f64>() / n;
            let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
            let std = if var > 0.0 { var.sqrt() } else { 1.0 };
            features.push(Feature::Numeric { name: name.clone(), mean, std });
        } else {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for s in t.str_column(i).into_iter().flatten() {
                *counts.entry(s).or_default() += 1;
            }
            let mut by_freq: Vec<(String, usize)> = counts.into_iter().collect();
            by_freq.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let mut categories: Vec<String> = by_freq.into_iter().take(max_categories).map(|(c, _)| c).collect();
            if kind == Kind::Linear && !categories.is_empty() {
                // Without a penalty, a full one-hot block plus the intercept is
                // collinear: the most frequent value is the baseline.
                categories.remove(0);
            }
            features.push(Feature::Categorical { name: name.clone(), categories });
        }
    }
    Ok(features)
}

impl Component for Train {
    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn execute(&self, ctx: &ExecContext) -> Result<(), ExecError> {
        let t = read_table(&ctx.input("data")?.path, &Default::default())?;
        let target = ctx.required_str("target")?.to_string();
        let ti = column_of(&t, &target, "target")?;
        let target_numeric = is_numeric(t.schema.field(ti).data_type())
            && t.schema.field(ti).data_type() != &arrow_schema::DataType::Boolean;

        // Rows without a target cannot teach anything: drop and count them.
        let target_text = t.str_column(ti);
        let keep: Vec<bool> = target_text.iter().map(Option::is_some).collect();
        let dropped = keep.iter().filter(|k| !**k).count();
        let t = if dropped > 0 { t.filter(&keep).map_err(|e| ExecError::failed(e.to_string()))? } else { t };
        if dropped > 0 {
            ctx.log(format!("dropped {dropped} rows with a missing `{target}`"));
        }
        if t.rows() < 2 {
            return Err(ExecError::failed(format!("only {} training rows have a `{target}` value", t.rows())));
        }
        let target_text: Vec<String> = t.str_column(ti).into_iter().flatten().collect();
        let mut classes: Vec<String> = target_text.clone();
        classes.sort();
        classes.dedup();

        let kind = match ctx.str_param("model").unwrap_or("auto") {
            "linear" => Kind::Linear,
            "logistic" => Kind::Logistic,
            _ if classes.len() <= 2 || !target_numeric => Kind::Logistic,
            _ => Kind::Linear,
        };
        if kind == Kind::Linear && !target_numeric {
            return Err(ExecError::failed(format!(
                "linear regression needs a numeric target; `{target}` is text (use model = \"logistic\")"
            )));
        }
        if kind == Kind::Logistic && classes.len() != 2 {
            return Err(ExecError::failed(format!(
                "logistic regression here is binary, but `{target}` has {} distinct values{}; pick a two-valued target or model = \"linear\"",
                classes.len(),
                if classes.len() <= 5 { format!(" ({})", classes.join(", ")) } else { String::new() }
            )));
        }

        let drop = ctx.list_param("drop");
        for d in &drop {
            column_of(&t, d, "`drop` column")?;
        }
        let names: Vec<String> = match ctx.param("features") {
            Some(_) => ctx.list_param("features"),
            None => t.column_names().into_iter().filter(|c| *c != target && !drop.contains(c)).collect(),
        };
        if names.is_empty() {
            return Err(ExecError::failed("no feature columns left to train on"));
        }
        if names.contains(&target) {
            return Err(ExecError::failed(format!("the target `{target}` cannot also be a feature")));
        }
        let max_categories = ctx.i64_param("max_categories").unwrap_or(30).max(1) as usize;
        let features = fit_features(&t, &names, kind, max_categories)?;
        let x = crate::model::encode(&features, &t)?;
        ctx.cancel.check()?;
        ctx.log(format!("training {kind:?} on {} rows × {} encoded features", x.nrows(), x.ncols()));

        let (weights, intercept, class_pair, extra) = match kind {
            Kind::Linear => {
                let y = ndarray::Array1::from(
                    t.f64_column(ti).into_iter().map(|v| v.unwrap_or(f64::NAN)).collect::<Vec<_>>(),
                );
                let ds = linfa::Dataset::new(x, y);
                let fitted = linfa_linear::LinearRegression::new().fit(&ds).map_err(|e| {
                    ExecError::failed(format!(
                        "linear regression failed: {e}; constant or duplicated feature columns are a common cause"
                    ))
                })?;
                (fitted.params().to_vec(), fitted.intercept(), None, json!({}))
            }
            Kind::Logistic => {
                let positive = classes[1].clone();
                let y = ndarray::Array1::from(target_text.iter().map(|c| *c == positive).collect::<Vec<bool>>());
                let ds = linfa::Dataset::new(x, y);
                let l2 = ctx.f64_param("l2").unwrap_or(1.0);
                let iters = ctx.i64_param("max_iterations").unwrap_or(100).max(1) as u64;
                let tol = ctx.f64_param("tolerance").unwrap_or(1e-4);
                // linfa minimizes the summed loss; scikit-learn's tolerance
                // applies to the mean loss, so scale it by the row count.
                let fitted = linfa_logistic::LogisticRegression::default()
                    .alpha(l2)
                    .max_iterations(iters)
                    .gradient_tolerance(tol * t.rows() as f64)
                    .fit(&ds)
                    .map_err(|e| ExecError::failed(format!("logistic regression failed: {e}")))?;
                let mut w = fitted.params().to_vec();
                let mut b = fitted.intercept();
                // Store the weights so that sigmoid(w·x + b) = P(positive).
                if !fitted.labels().pos.class {
                    w.iter_mut().for_each(|v| *v = -*v);
                    b = -b;
                }
                (
                    w,
                    b,
                    Some([classes[0].clone(), positive]),
                    json!({ "l2": l2, "max_iterations": iters, "tolerance": tol }),
                )
            }
        };
        if weights.iter().any(|w| !w.is_finite()) || !intercept.is_finite() {
            return Err(ExecError::failed(
                "training diverged (non-finite weights); check for extreme values or constant columns",
            ));
        }
        let model = Model {
            format: FORMAT.into(),
            kind,
            target: target.clone(),
            features,
            weights,
            intercept,
            classes: class_pair,
            training: json!({ "rows": t.rows(), "dropped_missing_target": dropped, "settings": extra }),
        };
        let text = serde_json::to_vec_pretty(&model).map_err(|e| ExecError::failed(e.to_string()))?;
        std::fs::write(ctx.output_path("model"), text).map_err(|e| ExecError::io("cannot write the model", e))?;
        ctx.set_properties(
            "model",
            json!({ "kind": kind, "target": target, "features": names.len(), "rows": t.rows() }),
        );
        ctx.add_summary("model", json!({ "kind": kind, "rows": t.rows(), "features": names.len() }));
        Ok(())
    }
}
