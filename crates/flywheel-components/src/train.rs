//! `train`: fits the declared feature transform on the training data and
//! a native model on its output (`flywheel_ml`): least squares, ridge,
//! lasso, or logistic regression (binary or multinomial). The transform is
//! saved inside the model, so evaluation and serving prepare features with
//! the same code.

mod check;

use crate::ml_error;
use flywheel_core::{
    ArtifactType, ComponentSpec, ExecContext, ExecError, ParamProblem, ParamSpec, ParamType, PortSpec, TypedComponent,
};
use flywheel_data::model_file::to_frame;
use flywheel_data::table::{Table, is_numeric, read_table, suggest};
use flywheel_ml::model::Estimator;
use flywheel_ml::tree::forest;
use flywheel_ml::tree::gbt::{self, Loss};
use flywheel_ml::{Column, Model, Stop, Task, linear, optimize, transform};
use serde_json::json;
use std::collections::BTreeMap;

pub struct Train;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "train",
    version: "2",
    description: "Fits the feature transform and a model: linear, ridge or lasso regression, or logistic regression (binary or multiclass).",
    params: &[
        ParamSpec { name: "target", ty: ParamType::String, required: true, doc: "the column to predict" },
        ParamSpec {
            name: "model",
            ty: ParamType::Enum(&["auto", "linear", "ridge", "lasso", "logistic", "gbt", "tree", "forest"]),
            required: false,
            doc: "model family: linear, ridge, lasso (regression), logistic (classification), gbt (histogram gradient boosting), tree (a decision tree), forest (a random forest; multiclass one class against the rest) (default auto: logistic for a text, boolean or two-valued target, linear otherwise)",
        },
        ParamSpec {
            name: "features",
            ty: ParamType::StringList,
            required: false,
            doc: "feature columns (default: every column but the target and `drop`)",
        },
        ParamSpec { name: "drop", ty: ParamType::StringList, required: false, doc: "columns not to use as features" },
        ParamSpec {
            name: "transform",
            ty: ParamType::StringMap,
            required: false,
            doc: "per column, its preparation steps, e.g. { temp = \"impute(median) | standardize\", hr = \"onehot\" } (default: impute(mean) | standardize for numbers and onehot(top = 30) for text; for gbt, passthrough and ordinal)",
        },
        ParamSpec {
            name: "alpha",
            ty: ParamType::Float,
            required: false,
            doc: "penalty strength of ridge and lasso (default 1.0, as scikit-learn)",
        },
        ParamSpec {
            name: "c",
            ty: ParamType::Float,
            required: false,
            doc: "inverse penalty strength of logistic regression (default 1.0, as scikit-learn's C)",
        },
        ParamSpec {
            name: "class_weight",
            ty: ParamType::Enum(&["none", "balanced"]),
            required: false,
            doc: "weigh classes equally (balanced: n / (classes × class count)) or not (default none)",
        },
        ParamSpec {
            name: "max_iterations",
            ty: ParamType::Int,
            required: false,
            doc: "optimizer iterations (default 100 for logistic, 1000 for lasso)",
        },
        ParamSpec {
            name: "tolerance",
            ty: ParamType::Float,
            required: false,
            doc: "stopping tolerance (default 1e-4; for gbt 1e-7; as scikit-learn)",
        },
        ParamSpec {
            name: "learning_rate",
            ty: ParamType::Float,
            required: false,
            doc: "gbt: shrinkage of each tree (default 0.1)",
        },
        ParamSpec {
            name: "max_leaf_nodes",
            ty: ParamType::Int,
            required: false,
            doc: "gbt: leaves per tree (default 31)",
        },
        ParamSpec {
            name: "max_depth",
            ty: ParamType::Int,
            required: false,
            doc: "gbt, tree, forest: depth limit (default none)",
        },
        ParamSpec {
            name: "min_samples_leaf",
            ty: ParamType::Int,
            required: false,
            doc: "gbt, tree, forest: rows per leaf at least (default 20 for gbt, 1 for tree and forest)",
        },
        ParamSpec { name: "n_estimators", ty: ParamType::Int, required: false, doc: "forest: trees (default 100)" },
        ParamSpec {
            name: "max_features",
            ty: ParamType::Int,
            required: false,
            doc: "forest: features drawn per split (default √features for classification, all for regression)",
        },
        ParamSpec {
            name: "l2_regularization",
            ty: ParamType::Float,
            required: false,
            doc: "gbt: L2 penalty on leaf values (default 0)",
        },
        ParamSpec {
            name: "early_stopping",
            ty: ParamType::Enum(&["auto", "on", "off"]),
            required: false,
            doc: "gbt: stop when the loss on a 10% validation split stops improving (default auto: on above 10,000 rows)",
        },
        ParamSpec {
            name: "seed",
            ty: ParamType::Int,
            required: false,
            doc: "seed for the validation split and sampling (default 0): the same seed and data give the same model",
        },
        ParamSpec {
            name: "missing_target",
            ty: ParamType::Enum(&["drop", "error"]),
            required: false,
            doc: "rows without a target value: drop and count them (default), or fail",
        },
    ],
    inputs: &[
        PortSpec { name: "data", ty: ArtifactType::Dataset, doc: "training data", optional: false },
        PortSpec {
            name: "hyperparameters",
            ty: ArtifactType::Hyperparameters,
            doc: "parameters chosen by `tune` (they override the step's own)",
            optional: true,
        },
    ],
    outputs: &[PortSpec {
        name: "model",
        ty: ArtifactType::Model,
        doc: "the trained model with its transform (Flywheel model format)",
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

/// The distinct target values sorted, numerically when the target is
/// numeric (as numpy's unique). Each is parsed once: a regression target
/// has about as many distinct values as rows.
fn class_labels(distinct: &[String], numeric: bool) -> Vec<String> {
    let mut keyed: Vec<(Option<f64>, &String)> =
        distinct.iter().map(|v| (if numeric { v.parse::<f64>().ok() } else { None }, v)).collect();
    keyed.sort_by(|(x, a), (y, b)| match (x, y) {
        (Some(x), Some(y)) => x.total_cmp(y),
        _ => a.cmp(b),
    });
    keyed.into_iter().map(|(_, v)| v.clone()).collect()
}

/// A target is a number to regress on when its type is numeric and not boolean.
pub(crate) fn target_is_numeric(t: &arrow_schema::DataType) -> bool {
    is_numeric(t) && t != &arrow_schema::DataType::Boolean
}

/// The algorithm that `model` names (`auto`: logistic for text or at most
/// two values, linear otherwise) and whether it classifies, from the
/// target's distinct values and type. `train` and `tune` decide alike.
pub(crate) fn algorithm_and_task(model: &str, distinct: usize, numeric: bool) -> (&str, Task) {
    let classes = distinct <= 2 || !numeric;
    let algorithm = match model {
        "auto" if classes => "logistic",
        "auto" => "linear",
        other => other,
    };
    let task = match algorithm {
        "logistic" => Task::Classification,
        "gbt" | "tree" | "forest" if classes => Task::Classification,
        _ => Task::Regression,
    };
    (algorithm, task)
}

/// Features that cannot teach anything, for a warning.
fn constant_features(frame: &flywheel_ml::Frame) -> Vec<String> {
    frame
        .columns()
        .filter(|(_, c)| match c {
            Column::Num(v) => {
                let mut p = v.iter().filter(|x| !x.is_nan());
                let first = p.next();
                first.is_none_or(|f| p.all(|x| x == f))
            }
            Column::Text(t) => {
                let mut p = t.codes.iter().filter(|c| **c != flywheel_ml::frame::MISSING);
                let first = p.next();
                first.is_none_or(|f| p.all(|x| x == f))
            }
        })
        .map(|(n, _)| n.to_string())
        .collect()
}

/// `train`'s parameters (see [`SPEC`]). A setting whose default depends on
/// the model (`max_iterations`, `tolerance`, the tree settings) is `None`
/// until the trainer fills it in.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub target: String,
    #[serde(default = "auto")]
    pub model: String,
    pub features: Option<Vec<String>>,
    #[serde(default)]
    pub drop: Vec<String>,
    #[serde(default)]
    pub transform: BTreeMap<String, String>,
    #[serde(default = "one")]
    pub alpha: f64,
    #[serde(default = "one")]
    pub c: f64,
    #[serde(default = "no_class_weight")]
    pub class_weight: String,
    pub max_iterations: Option<i64>,
    pub tolerance: Option<f64>,
    pub learning_rate: Option<f64>,
    pub max_leaf_nodes: Option<i64>,
    pub max_depth: Option<i64>,
    pub min_samples_leaf: Option<i64>,
    pub n_estimators: Option<i64>,
    pub max_features: Option<i64>,
    pub l2_regularization: Option<f64>,
    #[serde(default = "auto")]
    pub early_stopping: String,
    #[serde(default)]
    pub seed: i64,
    pub missing_target: Option<String>,
}

fn auto() -> String {
    "auto".into()
}
fn one() -> f64 {
    1.0
}
fn no_class_weight() -> String {
    "none".into()
}

impl TypedComponent for Train {
    type Params = Params;

    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn check(&self, params: &Params) -> Vec<ParamProblem> {
        check::check(params)
    }

    fn run(&self, params: Params, ctx: &ExecContext) -> Result<(), ExecError> {
        let Some(tuned) = ctx.inputs.get("hyperparameters") else {
            return train(params, ctx);
        };
        let text = std::fs::read(&tuned.path)
            .map_err(|e| ExecError::io(format!("cannot read {}", tuned.path.display()), e))?;
        let chosen: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| ExecError::failed(format!("{}: not tuning results: {e}", tuned.path.display())))?;
        let Some(best) = chosen.get("params").and_then(|p| p.as_object()) else {
            return Err(ExecError::failed(format!("{}: no `params` in the tuning results", tuned.path.display())));
        };
        let mut params = ctx.params.clone();
        for (k, v) in best {
            params.insert(k.clone(), v.clone());
        }
        ctx.log(format!("tuned parameters: {}", serde_json::Value::Object(best.clone())));
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&ctx.log_path)
            .map_err(|e| ExecError::io(format!("cannot open the step log {}", ctx.log_path.display()), e))?;
        let inputs =
            ctx.inputs.iter().filter(|(k, _)| *k != "hyperparameters").map(|(k, v)| (k.clone(), v.clone())).collect();
        let inner = ctx.derive(params, inputs, ctx.outputs.clone(), ctx.output_dir.clone(), Box::new(log));
        let result = flywheel_core::params::parse(&SPEC, &inner.params).and_then(|p| train(p, &inner));
        ctx.absorb(&inner);
        result
    }
}

/// The training table with rows that have a target, and what the target holds.
struct Labeled {
    t: Table,
    ti: usize,
    target_numeric: bool,
    labels: flywheel_ml::Text,
    dropped: usize,
    classes: Vec<String>,
}

/// Reads the training data and leaves out rows without a target (they
/// cannot teach anything), or refuses them when asked to.
fn read_labeled(p: &Params, ctx: &ExecContext) -> Result<Labeled, ExecError> {
    let target = &p.target;
    let t = read_table(&ctx.input("data")?.path, &Default::default())?;
    let ti = column_of(&t, target, "target")?;
    let target_numeric = target_is_numeric(t.schema.field(ti).data_type());
    let text_of = |t: &Table| t.text(ti).map_err(|e| ExecError::failed(format!("target `{target}`: {e}")));
    let labels = text_of(&t)?;
    let keep: Vec<bool> = labels.codes.iter().map(|&c| c != flywheel_ml::frame::MISSING).collect();
    let dropped = keep.iter().filter(|k| !**k).count();
    if dropped > 0 && p.missing_target.as_deref() == Some("error") {
        return Err(ExecError::failed(format!(
            "{dropped} training rows have no `{target}` value (missing_target = \"error\"); fill them or set missing_target = \"drop\""
        )));
    }
    let (t, labels) = if dropped > 0 {
        let t = t.filter(&keep).map_err(|e| ExecError::failed(e.to_string()))?;
        let labels = text_of(&t)?;
        (t, labels)
    } else {
        (t, labels)
    };
    if t.rows() < 2 {
        return Err(ExecError::failed(format!("only {} training rows have a `{target}` value", t.rows())));
    }
    let classes = class_labels(&labels.values, target_numeric);
    Ok(Labeled { t, ti, target_numeric, labels, dropped, classes })
}

/// The algorithm and task, refused when the target cannot support them.
fn algorithm_for<'a>(p: &'a Params, data: &Labeled) -> Result<(&'a str, Task), ExecError> {
    let (target, classes) = (&p.target, &data.classes);
    let (algorithm, task) = algorithm_and_task(&p.model, classes.len(), data.target_numeric);
    if task == Task::Regression && !data.target_numeric {
        return Err(ExecError::failed(format!(
            "{algorithm} regression needs a numeric target; `{target}` is text (use model = \"logistic\")"
        )));
    }
    if task == Task::Classification && classes.len() < 2 {
        return Err(ExecError::failed(format!(
            "every training row has the same `{target}` ({}); a classifier needs at least two classes",
            classes.first().map(String::as_str).unwrap_or("")
        )));
    }
    Ok((algorithm, task))
}

/// The feature columns: `features`, or every column but the target and `drop`.
fn feature_columns(p: &Params, t: &Table) -> Result<Vec<String>, ExecError> {
    let target = &p.target;
    for d in &p.drop {
        column_of(t, d, "`drop` column")?;
    }
    let names: Vec<String> = match &p.features {
        Some(f) => f.clone(),
        None => t.column_names().into_iter().filter(|c| c != target && !p.drop.contains(c)).collect(),
    };
    if names.is_empty() {
        return Err(ExecError::failed("no feature columns left to train on"));
    }
    if names.contains(target) {
        return Err(ExecError::failed(format!("the target `{target}` cannot also be a feature")));
    }
    for n in &names {
        column_of(t, n, "feature")?;
    }
    Ok(names)
}

/// Each row's class id and each class's weight (1, or `balanced`:
/// n / (classes × class count)); empty for a regression.
fn class_ids_and_weights(p: &Params, data: &Labeled, task: Task) -> (Vec<usize>, Vec<f64>) {
    let (classes, labels) = (&data.classes, &data.labels);
    let y_class: Vec<usize> = if task == Task::Classification {
        let index: std::collections::HashMap<&str, usize> =
            classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
        // Each distinct label's class, then each row's through its code.
        let class_of: Vec<usize> = labels.values.iter().map(|v| index[v.as_str()]).collect();
        labels.codes.iter().map(|&c| class_of[c as usize]).collect()
    } else {
        Vec::new()
    };
    let mut counts = vec![0usize; classes.len()];
    y_class.iter().for_each(|&c| counts[c] += 1);
    let balanced = p.class_weight == "balanced";
    let class_w: Vec<f64> = counts
        .iter()
        .map(|&n| if balanced { y_class.len() as f64 / (classes.len() as f64 * n as f64) } else { 1.0 })
        .collect();
    (y_class, class_w)
}

/// A count parameter: its default when not given, refused below 1.
fn positive(name: &str, value: Option<i64>, default: usize) -> Result<usize, ExecError> {
    match value {
        None => Ok(default),
        Some(v) if v >= 1 => Ok(v as usize),
        Some(v) => Err(ExecError::failed(format!("`{name}` must be at least 1, not {v}"))),
    }
}

/// What every trainer is fitted on.
struct FitInput<'a> {
    p: &'a Params,
    data: &'a Labeled,
    algorithm: &'a str,
    task: Task,
    x: &'a flywheel_ml::Matrix,
    feature_names: &'a [String],
    y_class: &'a [usize],
    class_w: &'a [f64],
    stop: Stop<'a>,
}

impl FitInput<'_> {
    fn classes(&self) -> usize {
        self.data.classes.len()
    }

    fn regression_target(&self) -> Vec<f64> {
        self.data.t.f64_values(self.data.ti)
    }

    fn tolerance(&self) -> f64 {
        self.p.tolerance.unwrap_or(1e-4)
    }

    /// The estimator and the settings it was fitted with.
    fn fit(&self, ctx: &ExecContext, warnings: &mut Vec<String>) -> Result<(Estimator, serde_json::Value), ExecError> {
        match self.algorithm {
            "tree" | "forest" => self.forest(ctx),
            "gbt" => self.gbt(ctx),
            "logistic" => self.logistic(warnings),
            "lasso" => self.lasso(),
            _ => self.least_squares(),
        }
    }

    fn forest(&self, ctx: &ExecContext) -> Result<(Estimator, serde_json::Value), ExecError> {
        let (p, algorithm, task, x) = (self.p, self.algorithm, self.task, self.x);
        let tree = algorithm == "tree";
        let d = if tree { forest::Params::tree() } else { forest::Params::forest() };
        let params = forest::Params {
            trees: if tree { 1 } else { positive("n_estimators", p.n_estimators, d.trees)? },
            max_depth: p.max_depth.map(|v| positive("max_depth", Some(v), 1)).transpose()?,
            min_samples_leaf: positive("min_samples_leaf", p.min_samples_leaf, d.min_samples_leaf)?,
            max_features: if tree {
                d.max_features
            } else {
                p.max_features.map(|v| positive("max_features", Some(v), 1)).transpose()?
            },
            seed: p.seed as u64,
            ..d
        };
        let (y, sw): (Vec<f64>, Vec<f64>) = match task {
            Task::Regression => (self.regression_target(), vec![1.0; x.rows]),
            Task::Classification => (
                self.y_class.iter().map(|&c| c as f64).collect(),
                self.y_class.iter().map(|&c| self.class_w[c]).collect(),
            ),
        };
        let f = if task == Task::Classification && self.classes() > 2 {
            forest::fit_multiclass(x, self.y_class, self.classes(), &sw, &params, self.stop).map_err(ml_error)?
        } else {
            forest::fit(x, &y, task == Task::Classification, &sw, &params, self.stop).map_err(ml_error)?
        };
        ctx.log(format!("{} trees, {} leaves", f.trees.len(), f.trees.iter().map(|t| t.leaves()).sum::<usize>()));
        Ok((Estimator::Forest { algorithm: algorithm.into(), forest: f }, json!({ "params": params })))
    }

    fn gbt(&self, ctx: &ExecContext) -> Result<(Estimator, serde_json::Value), ExecError> {
        let (p, x, classes) = (self.p, self.x, self.classes());
        let (y, loss, sw): (Vec<f64>, Loss, Vec<f64>) = match self.task {
            Task::Regression => (self.regression_target(), Loss::SquaredError, vec![1.0; x.rows]),
            Task::Classification => (
                self.y_class.iter().map(|&c| c as f64).collect(),
                if classes == 2 { Loss::Binary } else { Loss::Multinomial(classes) },
                self.y_class.iter().map(|&c| self.class_w[c]).collect(),
            ),
        };
        let d = gbt::Params::default();
        let params = gbt::Params {
            learning_rate: p.learning_rate.unwrap_or(d.learning_rate),
            max_iterations: positive("max_iterations", p.max_iterations, d.max_iterations)?,
            max_leaf_nodes: positive("max_leaf_nodes", p.max_leaf_nodes, d.max_leaf_nodes)?,
            max_depth: p.max_depth.map(|v| positive("max_depth", Some(v), 1)).transpose()?,
            min_samples_leaf: positive("min_samples_leaf", p.min_samples_leaf, d.min_samples_leaf)?,
            l2: p.l2_regularization.unwrap_or(d.l2),
            early_stopping: match p.early_stopping.as_str() {
                "on" => gbt::EarlyStopping::On,
                "off" => gbt::EarlyStopping::Off,
                _ => gbt::EarlyStopping::Auto,
            },
            seed: p.seed as u64,
            tol: p.tolerance.unwrap_or(d.tol),
            ..d
        };
        let (model, report) = gbt::fit(x, &y, loss, &sw, &params, self.stop).map_err(ml_error)?;
        ctx.log(format!(
            "{} boosting iterations{}",
            report.iterations,
            if report.early_stopped { " (stopped early: validation loss no longer improving)" } else { "" }
        ));
        Ok((Estimator::Gbt(model), json!({ "params": params, "report": report })))
    }

    fn logistic(&self, warnings: &mut Vec<String>) -> Result<(Estimator, serde_json::Value), ExecError> {
        let (p, tol) = (self.p, self.tolerance());
        let sw: Vec<f64> = self.y_class.iter().map(|&c| self.class_w[c]).collect();
        let iters = p.max_iterations.unwrap_or(100).max(1) as usize;
        let s = optimize::Settings { max_iterations: iters, gtol: tol, ..Default::default() };
        let fit = linear::logistic(self.x, self.y_class, self.classes(), p.c, &sw, s, self.feature_names, self.stop)
            .map_err(ml_error)?;
        if !fit.converged {
            warnings.push(format!(
                "logistic regression stopped after {iters} iterations before converging; raise max_iterations"
            ));
        }
        let balanced = p.class_weight == "balanced";
        Ok((
            Estimator::Logistic { coef: fit.coef, intercept: fit.intercept },
            json!({ "c": p.c, "class_weight": if balanced { "balanced" } else { "none" }, "class_weights": self.class_w, "max_iterations": iters, "tolerance": tol, "iterations": fit.iterations }),
        ))
    }

    fn lasso(&self) -> Result<(Estimator, serde_json::Value), ExecError> {
        let (alpha, tol) = (self.p.alpha, self.tolerance());
        let iters = self.p.max_iterations.unwrap_or(1000).max(1) as usize;
        let y = self.regression_target();
        let (w, b, n) =
            linear::lasso(self.x, &y, alpha, iters, tol, self.feature_names, self.stop).map_err(ml_error)?;
        Ok((
            Estimator::Linear { algorithm: "lasso".into(), weights: w, intercept: b },
            json!({ "alpha": alpha, "max_iterations": iters, "tolerance": tol, "iterations": n }),
        ))
    }

    fn least_squares(&self) -> Result<(Estimator, serde_json::Value), ExecError> {
        let algorithm = self.algorithm;
        let alpha = if algorithm == "ridge" { self.p.alpha } else { 0.0 };
        let y = self.regression_target();
        let (w, b) = linear::least_squares(self.x, &y, alpha, None, self.feature_names, self.stop).map_err(ml_error)?;
        Ok((Estimator::Linear { algorithm: algorithm.into(), weights: w, intercept: b }, json!({ "alpha": alpha })))
    }
}

/// Warnings about the data before fitting: dropped rows, features with one value.
fn data_warnings(p: &Params, data: &Labeled, frame: &flywheel_ml::Frame) -> Vec<String> {
    let mut warnings = Vec::new();
    if data.dropped > 0 {
        warnings.push(format!("dropped {} training rows with a missing `{}`", data.dropped, p.target));
    }
    for c in constant_features(frame) {
        warnings.push(format!("feature `{c}` has a single value in the training data; it cannot help the model"));
    }
    warnings
}

/// Trains from the context's `data` with `p` (also what each `tune` trial
/// runs): read, choose the algorithm, fit the transform, fit, save.
pub fn train(p: Params, ctx: &ExecContext) -> Result<(), ExecError> {
    let data = read_labeled(&p, ctx)?;
    let (algorithm, task) = algorithm_for(&p, &data)?;
    let names = feature_columns(&p, &data.t)?;
    let frame = to_frame(&data.t, &names)?;
    frame.check_finite().map_err(ml_error)?;
    let mut warnings = data_warnings(&p, &data, &frame);
    let defaults = if matches!(algorithm, "gbt" | "tree" | "forest") {
        transform::TREE_DEFAULTS
    } else {
        transform::LINEAR_DEFAULTS
    };
    let fitted = transform::fit(&frame, &names, &p.transform, defaults).map_err(ml_error)?;
    let x = fitted.apply(&frame).map_err(ml_error)?;
    let feature_names = fitted.feature_names();
    ctx.cancel.check()?;
    let cancelled = || ctx.cancel.is_cancelled();
    ctx.log(format!("training {algorithm} on {} rows × {} features", x.rows, x.cols));
    let (y_class, class_w) = class_ids_and_weights(&p, &data, task);
    let input = FitInput {
        p: &p,
        data: &data,
        algorithm,
        task,
        x: &x,
        feature_names: &feature_names,
        y_class: &y_class,
        class_w: &class_w,
        stop: Stop::when(&cancelled),
    };
    let (estimator, settings) = input.fit(ctx, &mut warnings)?;
    // No run id here: the same data and settings give the same bytes (so
    // `push` keeps one version); lineage links the model to its run, and
    // `flywheel models export` stamps it into an exported copy.
    let metadata = json!({
        "algorithm": algorithm,
        "training": {
            "data_digest": ctx.input("data")?.digest,
            "rows": data.t.rows(),
            "dropped_missing_target": data.dropped,
            "features": feature_names.len(),
            "settings": settings,
            "warnings": warnings,
        }
    });
    let classes = if task == Task::Classification { data.classes.clone() } else { Vec::new() };
    let model = Model::new(task, p.target.clone(), classes, fitted, estimator, metadata).map_err(ml_error)?;
    save_verified(&ctx.output_path("model"), &model, &frame)?;
    report(ctx, &p.target, algorithm, task, names.len(), data.t.rows(), &warnings);
    Ok(())
}

/// The step's log lines, summary and model properties.
fn report(
    ctx: &ExecContext,
    target: &str,
    algorithm: &str,
    task: Task,
    features: usize,
    rows: usize,
    warnings: &[String],
) {
    for w in warnings {
        ctx.log(format!("warning: {w}"));
    }
    if !warnings.is_empty() {
        ctx.add_summary("warnings", json!(warnings));
    }
    ctx.set_properties(
        "model",
        json!({ "algorithm": algorithm, "task": task, "target": target, "features": features, "rows": rows }),
    );
    ctx.add_summary("model", json!({ "algorithm": algorithm, "rows": rows, "features": features }));
}

/// Rows of the training frame a saved model must predict exactly as the
/// model in memory did.
const ROUND_TRIP_ROWS: usize = 256;

/// Writes the model only after loading its bytes back and checking that the
/// loaded model predicts a sample of training rows exactly as the fitted one:
/// what is stored as an artifact is what will be served.
fn save_verified(path: &std::path::Path, model: &Model, frame: &flywheel_ml::Frame) -> Result<(), ExecError> {
    let bytes = model.to_json();
    let loaded = Model::from_json(&bytes)
        .map_err(|e| ExecError::failed(format!("the trained model does not load back from its own file: {e}")))?;
    let sample = frame.slice(0, frame.rows().min(ROUND_TRIP_ROWS));
    let before = model.predict(&sample).map_err(ml_error)?;
    let after = loaded.predict(&sample).map_err(ml_error)?;
    if !same_bits(&before, &after) {
        return Err(ExecError::failed(
            "the trained model, written and loaded back, predicts differently from the model in memory; nothing was stored (please report this)",
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| ExecError::failed(e.to_string()))?;
    flywheel_data::write_atomic(path, &text)
        .map_err(|e| ExecError::io(format!("cannot write model {}", path.display()), e))
}

fn same_bits(a: &flywheel_ml::Prediction, b: &flywheel_ml::Prediction) -> bool {
    use flywheel_ml::Prediction as P;
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    match (a, b) {
        (P::Values(x), P::Values(y)) => bits(x) == bits(y),
        (P::Classes { probabilities: p, labels: l }, P::Classes { probabilities: q, labels: m }) => {
            l == m && bits(&p.data) == bits(&q.data)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_and_target_decide_the_task() {
        let cases = [
            // (model, distinct values, numeric) → (algorithm, classifies)
            ("auto", 2, true, "logistic", true),
            ("auto", 5, true, "linear", false),
            ("auto", 5, false, "logistic", true),
            ("gbt", 2, true, "gbt", true),
            ("gbt", 50, true, "gbt", false),
            ("forest", 50, false, "forest", true),
            ("ridge", 2, true, "ridge", false),
            ("logistic", 50, true, "logistic", true),
        ];
        for (model, distinct, numeric, algorithm, classifies) in cases {
            let (a, task) = algorithm_and_task(model, distinct, numeric);
            assert_eq!((a, task == Task::Classification), (algorithm, classifies), "{model}, {distinct}, {numeric}");
        }
    }
}
