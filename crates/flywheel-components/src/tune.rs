//! `tune`: grid or random search over declared ranges of `train`'s
//! parameters, scored by K-fold cross-validation on the training data
//! (stratified for classifiers; forward-chaining folds in time order when a
//! time column is declared). Every trial runs the real `train` and the same
//! evaluation code as `evaluate`, and is recorded as a child execution with
//! its parameters and scores. The best parameters are the output, and feed
//! `train` through its `hyperparameters` input.

mod check;

use crate::evaluate::evaluate_model;
use flywheel_core::{
    ArtifactType, ChildRecord, ComponentSpec, ExecContext, ExecError, InputArtifact, ParamProblem, ParamSpec,
    ParamType, PortSpec, TypedComponent,
};
use flywheel_data::table::{Table, read_table, write_json, write_parquet};
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

pub struct Tune;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "tune",
    version: "1",
    description: "Searches train's parameters by K-fold cross-validation; every trial is recorded.",
    params: &[
        ParamSpec { name: "target", ty: ParamType::String, required: true, doc: "the column to predict" },
        ParamSpec { name: "model", ty: ParamType::String, required: false, doc: "as in `train`" },
        ParamSpec {
            name: "space",
            ty: ParamType::StringMap,
            required: true,
            doc: "train parameter → values \"0.05, 0.1, 0.2\" or range \"lo..hi\" (\"log\", \"n=5\" for grid points)",
        },
        ParamSpec {
            name: "fixed",
            ty: ParamType::StringMap,
            required: false,
            doc: "other train parameters, the same in every trial",
        },
        ParamSpec { name: "features", ty: ParamType::StringList, required: false, doc: "as in `train`" },
        ParamSpec { name: "drop", ty: ParamType::StringList, required: false, doc: "as in `train`" },
        ParamSpec { name: "transform", ty: ParamType::StringMap, required: false, doc: "as in `train`" },
        ParamSpec {
            name: "search",
            ty: ParamType::Enum(&["grid", "random"]),
            required: false,
            doc: "every combination (default), or `trials` random draws",
        },
        ParamSpec { name: "trials", ty: ParamType::Int, required: false, doc: "random search: draws (default 20)" },
        ParamSpec { name: "folds", ty: ParamType::Int, required: false, doc: "cross-validation folds (default 5)" },
        ParamSpec {
            name: "metric",
            ty: ParamType::String,
            required: false,
            doc: "what to maximize or minimize (default accuracy or r2)",
        },
        ParamSpec {
            name: "time_column",
            ty: ParamType::String,
            required: false,
            doc: "forward-chaining folds in this column's order (train on the past, score the next period)",
        },
        ParamSpec { name: "seed", ty: ParamType::Int, required: false, doc: "fold shuffling and random draws" },
        ParamSpec { name: "threads", ty: ParamType::Int, required: false, doc: "trials at once (default: cores)" },
    ],
    inputs: &[PortSpec { name: "data", ty: ArtifactType::Dataset, doc: "training data", optional: false }],
    outputs: &[PortSpec {
        name: "best",
        ty: ArtifactType::Hyperparameters,
        doc: "the best parameters and every trial's scores",
        optional: false,
    }],
    dynamic_ports: false,
};

/// Metrics where lower is better.
const LOWER_IS_BETTER: &[&str] = &["rmse", "mae", "mape", "log_loss", "brier"];

/// One searched parameter.
#[derive(Debug, Clone, PartialEq)]
enum Dimension {
    Values(Vec<Json>),
    Range { lo: f64, hi: f64, log: bool, int: bool, points: usize },
}

fn number(s: &str) -> Json {
    if let Ok(i) = s.parse::<i64>() {
        json!(i)
    } else if let Ok(f) = s.parse::<f64>() {
        json!(f)
    } else {
        json!(s)
    }
}

fn parse_dimension(name: &str, spec: &str) -> Result<Dimension, String> {
    let bad = |why: &str| Err(format!("`space.{name}` = \"{spec}\" {why}"));
    let mut words = spec.split_whitespace();
    let head = words.next().unwrap_or("");
    if let Some((lo, hi)) = head.split_once("..") {
        let (Ok(l), Ok(h)) = (lo.trim().parse::<f64>(), hi.trim().parse::<f64>()) else {
            return bad("is not a range of numbers; write \"0.01..0.3\" or a list \"0.01, 0.1\"");
        };
        let mut log = false;
        let mut points = 5;
        for w in words {
            match w.split_once('=') {
                None if w == "log" => log = true,
                Some(("n", k)) => match k.parse::<usize>() {
                    Ok(k) if k >= 1 => points = k,
                    _ => return bad("has `n=` that is not a positive whole number"),
                },
                _ => return bad(&format!("has `{w}`; a range takes \"log\" and \"n=K\"")),
            }
        }
        if l > h || !l.is_finite() || !h.is_finite() {
            return bad("is empty (its low end is above its high end)");
        }
        if log && l <= 0.0 {
            return bad("is a log range that does not start above 0");
        }
        let int = lo.trim().parse::<i64>().is_ok() && hi.trim().parse::<i64>().is_ok();
        return Ok(Dimension::Range { lo: l, hi: h, log, int, points });
    }
    let values: Vec<Json> = spec.split(',').map(str::trim).filter(|v| !v.is_empty()).map(number).collect();
    if values.is_empty() {
        return bad("is empty; give values \"a, b, c\" or a range \"lo..hi\"");
    }
    Ok(Dimension::Values(values))
}

impl Dimension {
    fn value_at(&self, u: f64) -> Json {
        match self {
            Dimension::Values(v) => v[((u * v.len() as f64) as usize).min(v.len() - 1)].clone(),
            Dimension::Range { lo, hi, log, int, .. } => {
                let x = if *log { (lo.ln() + u * (hi.ln() - lo.ln())).exp() } else { lo + u * (hi - lo) };
                if *int { json!((x.round() as i64).clamp(*lo as i64, *hi as i64)) } else { json!(x) }
            }
        }
    }

    fn grid(&self) -> Vec<Json> {
        match self {
            Dimension::Values(v) => v.clone(),
            Dimension::Range { points, int, .. } => {
                let mut out: Vec<Json> = (0..*points)
                    .map(|i| self.value_at(if *points == 1 { 0.0 } else { i as f64 / (*points - 1) as f64 }))
                    .collect();
                if *int {
                    out.dedup();
                }
                out
            }
        }
    }
}

/// SplitMix64: small, seedable, good enough to shuffle folds and draw trials.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// (train mask, validation mask) per fold.
pub fn folds(
    rows: usize,
    k: usize,
    classes: Option<&[String]>,
    order: Option<&[usize]>,
    seed: u64,
) -> Vec<(Vec<bool>, Vec<bool>)> {
    let mut fold_of = vec![0usize; rows];
    if let Some(order) = order {
        // Forward chaining: k + 1 periods in time order; fold i trains on
        // periods 0..=i and is scored on period i + 1.
        for (rank, &row) in order.iter().enumerate() {
            fold_of[row] = rank * (k + 1) / rows.max(1);
        }
        return (0..k)
            .map(|i| {
                let train = fold_of.iter().map(|&p| p <= i).collect();
                let valid = fold_of.iter().map(|&p| p == i + 1).collect();
                (train, valid)
            })
            .collect();
    }
    let mut rng = Rng(seed);
    match classes {
        Some(labels) => {
            // Stratified: each class's rows dealt round-robin after a shuffle.
            let mut by_class: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (i, l) in labels.iter().enumerate() {
                by_class.entry(l.as_str()).or_default().push(i);
            }
            let mut next = 0;
            for rows in by_class.values_mut() {
                rng.shuffle(rows);
                for &r in rows.iter() {
                    fold_of[r] = next % k;
                    next += 1;
                }
            }
        }
        None => {
            let mut idx: Vec<usize> = (0..rows).collect();
            rng.shuffle(&mut idx);
            for (rank, r) in idx.into_iter().enumerate() {
                fold_of[r] = rank % k;
            }
        }
    }
    (0..k).map(|i| (fold_of.iter().map(|&f| f != i).collect(), fold_of.iter().map(|&f| f == i).collect())).collect()
}

fn train_param_names() -> Vec<&'static str> {
    crate::train::SPEC.params.iter().map(|p| p.name).collect()
}

/// `tune`'s parameters (see [`SPEC`]). `model`, `features`, `drop` and
/// `transform` are handed to every trial's `train` as written.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub target: String,
    pub model: Option<String>,
    pub space: BTreeMap<String, String>,
    #[serde(default)]
    pub fixed: BTreeMap<String, String>,
    pub features: Option<Vec<String>>,
    pub drop: Option<Vec<String>>,
    pub transform: Option<BTreeMap<String, String>>,
    pub search: Option<String>,
    #[serde(default = "default_trials")]
    pub trials: i64,
    #[serde(default = "default_folds")]
    pub folds: i64,
    pub metric: Option<String>,
    pub time_column: Option<String>,
    pub seed: Option<i64>,
    pub threads: Option<i64>,
}

fn default_trials() -> i64 {
    20
}
fn default_folds() -> i64 {
    5
}

impl Params {
    /// `train`'s parameters every trial shares: tune's own that `train`
    /// takes, then `fixed` (numbers read as numbers).
    fn base(&self) -> Map<String, Json> {
        let mut base = Map::new();
        base.insert("target".into(), json!(self.target));
        let passed = [
            ("model", self.model.as_ref().map(|v| json!(v))),
            ("features", self.features.as_ref().map(|v| json!(v))),
            ("drop", self.drop.as_ref().map(|v| json!(v))),
            ("transform", self.transform.as_ref().map(|v| json!(v))),
        ];
        for (name, value) in passed {
            if let Some(v) = value {
                base.insert(name.into(), v);
            }
        }
        for (name, v) in &self.fixed {
            base.insert(name.clone(), number(v));
        }
        base
    }
}

impl TypedComponent for Tune {
    type Params = Params;

    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn check(&self, params: &Params) -> Vec<ParamProblem> {
        check::check(params)
    }

    fn run(&self, p: Params, ctx: &ExecContext) -> Result<(), ExecError> {
        let space = parse_space(&p)?;
        let seed = p.seed.unwrap_or(0) as u64;
        let k = match p.folds {
            k if (2..=50).contains(&k) => k as usize,
            k => return Err(ExecError::failed(format!("`folds` must be between 2 and 50, not {k}"))),
        };
        let trials = trials_of(&p, &space, seed)?;
        let folds = write_folds(ctx, &p, k, seed)?;
        let classification = folds.classification;
        let metric = p.metric.clone().unwrap_or_else(|| if classification { "accuracy".into() } else { "r2".into() });
        let lower = LOWER_IS_BETTER.contains(&metric.as_str());
        let base = p.base();
        ctx.log(format!(
            "{} trials × {k} folds{}, scored by {metric} ({} is better)",
            trials.len(),
            if folds.in_time_order {
                " in time order"
            } else if classification {
                ", stratified"
            } else {
                ""
            },
            if lower { "lower" } else { "higher" }
        ));
        let search = Search { ctx, base: &base, trials: &trials, folds: &folds.files, metric: &metric };
        let results = search.run(p.threads);
        if ctx.cancel.is_cancelled() {
            let _ = std::fs::remove_dir_all(&folds.dir);
            return Err(ExecError::Cancelled);
        }
        let (table, best) = record_trials(ctx, &trials, &results, &metric, lower);
        let _ = std::fs::remove_dir_all(&folds.dir);
        let Some((bi, score)) = best else {
            let first = results.iter().find_map(|(_, r, _)| r.as_ref().err().cloned()).unwrap_or_default();
            return Err(ExecError::failed(format!("every trial failed; the first: {first}")));
        };
        let record = json!({
            "params": trials[bi],
            "metric": metric,
            "direction": if lower { "minimize" } else { "maximize" },
            "score": score,
            "folds": k,
            "split": if folds.in_time_order { "time" } else if classification { "stratified" } else { "shuffled" },
            "trials": table,
        });
        write_json(&ctx.output_path("best"), &record)?;
        ctx.set_properties(
            "best",
            json!({ "metric": metric, "score": score, "params": trials[bi], "trials": trials.len() }),
        );
        ctx.add_summary("best", json!({ metric.clone(): score, "params": trials[bi], "trials": trials.len() }));
        Ok(())
    }
}

/// The searched dimensions, every problem with `space` and `fixed` at once.
fn parse_space(p: &Params) -> Result<Vec<(String, Dimension)>, ExecError> {
    let known = train_param_names();
    if p.space.is_empty() {
        return Err(ExecError::failed("`space` is empty; name at least one train parameter to search"));
    }
    let mut space: Vec<(String, Dimension)> = Vec::new();
    let mut errors = Vec::new();
    for (name, spec) in &p.space {
        if !known.contains(&name.as_str()) || matches!(name.as_str(), "target" | "features" | "drop") {
            errors.push(format!(
                "`space.{name}` is not a parameter `train` can search{}",
                flywheel_core::did_you_mean(name, known.iter().copied())
            ));
            continue;
        }
        match parse_dimension(name, spec) {
            Ok(d) => space.push((name.clone(), d)),
            Err(e) => errors.push(e),
        }
    }
    for name in p.fixed.keys() {
        if !known.contains(&name.as_str()) {
            errors.push(format!(
                "`fixed.{name}` is not a `train` parameter{}",
                flywheel_core::did_you_mean(name, known.iter().copied())
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ExecError::failed(errors.join("; ")));
    }
    Ok(space)
}

/// Each trial's searched values: the grid, or `trials` random draws.
fn trials_of(p: &Params, space: &[(String, Dimension)], seed: u64) -> Result<Vec<Map<String, Json>>, ExecError> {
    if p.search.as_deref() == Some("random") {
        let n = p.trials;
        if !(1..=10_000).contains(&n) {
            return Err(ExecError::failed(format!("`trials` must be between 1 and 10000, not {n}")));
        }
        let mut rng = Rng(seed ^ 0x7475_6e65);
        return Ok((0..n)
            .map(|_| space.iter().map(|(name, d)| (name.clone(), d.value_at(rng.unit()))).collect())
            .collect());
    }
    let mut grid: Vec<Map<String, Json>> = vec![Map::new()];
    for (name, d) in space {
        let values = d.grid();
        grid = grid
            .into_iter()
            .flat_map(|t| {
                values.iter().map(move |v| {
                    let mut t = t.clone();
                    t.insert(name.clone(), v.clone());
                    t
                })
            })
            .collect();
        if grid.len() > 10_000 {
            return Err(ExecError::failed(
                "the grid has more than 10000 combinations; narrow `space` or use search = \"random\"",
            ));
        }
    }
    Ok(grid)
}

/// The folds, written once under the output folder and shared by every trial.
struct Folds {
    dir: std::path::PathBuf,
    /// (training rows, held-out rows) per fold.
    files: Vec<(std::path::PathBuf, std::path::PathBuf)>,
    classification: bool,
    in_time_order: bool,
}

/// Reads the data, decides the task as `train` will, and writes the folds:
/// stratified for classifiers, forward-chaining with a time column.
fn write_folds(ctx: &ExecContext, p: &Params, k: usize, seed: u64) -> Result<Folds, ExecError> {
    let input = ctx.input("data")?;
    let t: Table = read_table(&input.path, &Default::default())?;
    let target = &p.target;
    let ti = t.column_index(target).ok_or_else(|| {
        ExecError::failed(format!(
            "the data has no target column `{target}`{}",
            flywheel_core::did_you_mean(target, t.column_names().iter().map(String::as_str))
        ))
    })?;
    let text = t.text(ti).map_err(|e| ExecError::failed(format!("target `{target}`: {e}")))?;
    let labels: Vec<String> = text
        .codes
        .iter()
        .map(|&c| if c == flywheel_ml::frame::MISSING { String::new() } else { text.values[c as usize].clone() })
        .collect();
    let numeric_target = crate::train::target_is_numeric(t.schema.field(ti).data_type());
    let model_name = p.model.as_deref().unwrap_or("auto");
    let (_, task) = crate::train::algorithm_and_task(model_name, text.values.len(), numeric_target);
    let classification = task == flywheel_ml::Task::Classification;
    let order = p.time_column.as_deref().map(|c| time_order(&t, c)).transpose()?;
    if t.rows() < 2 * k {
        return Err(ExecError::failed(format!("{} rows cannot make {k} folds", t.rows())));
    }
    let masks = folds(t.rows(), k, classification.then_some(labels.as_slice()), order.as_deref(), seed);
    let dir = ctx.output_dir.join(".folds");
    std::fs::create_dir_all(&dir).map_err(|e| ExecError::io("cannot create the fold folder", e))?;
    let mut files = Vec::with_capacity(k);
    for (i, (train_mask, valid_mask)) in masks.iter().enumerate() {
        ctx.cancel.check()?;
        let mut paths = Vec::new();
        for (what, mask) in [("train", train_mask), ("valid", valid_mask)] {
            let part = t.filter(mask).map_err(|e| ExecError::failed(e.to_string()))?;
            let path = dir.join(format!("{what}-{i}.parquet"));
            write_parquet(&path, &part)?;
            paths.push(path);
        }
        files.push((paths[0].clone(), paths[1].clone()));
    }
    Ok(Folds { dir, files, classification, in_time_order: order.is_some() })
}

/// Row indices in the order of `time_column` `c`.
fn time_order(t: &Table, c: &str) -> Result<Vec<usize>, ExecError> {
    let i = t.column_index(c).ok_or_else(|| {
        ExecError::failed(format!(
            "`time_column` `{c}` is not in the data{}",
            flywheel_core::did_you_mean(c, t.column_names().iter().map(String::as_str))
        ))
    })?;
    let mut idx: Vec<usize> = (0..t.rows()).collect();
    if flywheel_data::table::is_numeric(t.schema.field(i).data_type()) {
        let v = t.f64_column(i);
        idx.sort_by(|&a, &b| v[a].unwrap_or(f64::NAN).total_cmp(&v[b].unwrap_or(f64::NAN)));
    } else {
        let v = t.str_column(i);
        idx.sort_by(|&a, &b| v[a].cmp(&v[b]));
    }
    Ok(idx)
}

/// What every trial shares.
struct Search<'a> {
    ctx: &'a ExecContext,
    base: &'a Map<String, Json>,
    trials: &'a [Map<String, Json>],
    folds: &'a [(std::path::PathBuf, std::path::PathBuf)],
    metric: &'a str,
}

/// A trial's index, its scores or why it failed, and how long it took (ms).
type TrialResult = (usize, Result<Json, String>, i64);

impl Search<'_> {
    /// Trials in parallel (`threads`, default: the cores); each trial's
    /// folds run in turn.
    fn run(&self, threads: Option<i64>) -> Vec<TrialResult> {
        let threads = threads
            .map(|t| t.max(1) as usize)
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
            .min(self.trials.len());
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| self.worker(&next))).collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
        })
    }

    fn worker(&self, next: &AtomicUsize) -> Vec<TrialResult> {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= self.trials.len() || self.ctx.cancel.is_cancelled() {
                break;
            }
            let started = Instant::now();
            let r = run_trial(self.ctx, i, self.base, &self.trials[i], self.folds, self.metric);
            out.push((i, r, started.elapsed().as_millis() as i64));
        }
        out
    }
}

/// Records each trial (a child execution and a log line) in trial order;
/// returns the table of trials and the best trial with its score.
fn record_trials(
    ctx: &ExecContext,
    trials: &[Map<String, Json>],
    results: &[TrialResult],
    metric: &str,
    lower: bool,
) -> (Vec<Json>, Option<(usize, f64)>) {
    let mut results: Vec<&TrialResult> = results.iter().collect();
    results.sort_by_key(|(i, _, _)| *i);
    let mut table = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    for (i, r, ms) in results {
        let (summary, error) = match r {
            Ok(s) => (s.clone(), None),
            Err(e) => (Json::Null, Some(e.clone())),
        };
        if let Some(score) = summary.get("mean").and_then(Json::as_f64)
            && best.is_none_or(|(_, b)| if lower { score < b } else { score > b })
        {
            best = Some((*i, score));
        }
        let tried = Json::Object(trials[*i].clone());
        ctx.record_child(ChildRecord {
            name: format!("trial {}", i + 1),
            parameters: tried.clone(),
            succeeded: error.is_none(),
            duration_ms: *ms,
            summary: summary.clone(),
            error: error.clone(),
        });
        ctx.log(match &error {
            None => format!("trial {}: {tried} → {metric} {:.5}", i + 1, summary["mean"].as_f64().unwrap_or(f64::NAN)),
            Some(e) => format!("trial {} failed: {tried} → {e}", i + 1),
        });
        table.push(json!({ "trial": i + 1, "params": trials[*i], "scores": summary, "error": error }));
    }
    (table, best)
}

/// Trains on each fold's training rows and scores its held-out rows.
fn run_trial(
    ctx: &ExecContext,
    i: usize,
    base: &Map<String, Json>,
    trial: &Map<String, Json>,
    folds: &[(std::path::PathBuf, std::path::PathBuf)],
    metric: &str,
) -> Result<Json, String> {
    let mut params = base.clone();
    params.extend(trial.clone());
    let mut scores = Vec::with_capacity(folds.len());
    for (f, (train_path, valid_path)) in folds.iter().enumerate() {
        // Each fold's training also stops on its own; this skips the folds left.
        if ctx.cancel.is_cancelled() {
            return Err("cancelled".into());
        }
        let dir = ctx.output_dir.join(format!(".trial-{i}-{f}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let inputs = BTreeMap::from([(
            "data".to_string(),
            InputArtifact {
                path: train_path.clone(),
                digest: format!("fold-{f}"),
                ty: ArtifactType::Dataset,
                properties: json!({}),
            },
        )]);
        let child = ctx.derive(
            params.clone(),
            inputs,
            vec![("model".into(), ArtifactType::Model)],
            dir.clone(),
            Box::new(std::io::sink()),
        );
        let trained = flywheel_core::params::parse(&crate::train::SPEC, &child.params)
            .and_then(|p| crate::train::train(p, &child))
            .map_err(|e| e.to_string());
        let result = trained.and_then(|_| {
            let model = flywheel_data::model_file::load(&child.output_path("model")).map_err(|e| e.to_string())?;
            let (m, _) = evaluate_model(&model, valid_path, &[]).map_err(|e| e.to_string())?;
            m[metric].as_f64().ok_or_else(|| {
                let names: Vec<String> = m
                    .as_object()
                    .map(|o| o.iter().filter(|(_, v)| v.is_f64()).map(|(k, _)| k.clone()).collect())
                    .unwrap_or_default();
                format!(
                    "no metric `{metric}` for this model{}",
                    flywheel_core::did_you_mean(metric, names.iter().map(String::as_str))
                )
            })
        });
        let _ = std::fs::remove_dir_all(&dir);
        scores.push(result?);
    }
    let n = scores.len() as f64;
    let mean = scores.iter().sum::<f64>() / n;
    let std = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n).sqrt();
    Ok(json!({ "mean": mean, "std": std, "folds": scores }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_lists_parse_and_empty_ones_are_refused() {
        assert_eq!(parse_dimension("a", "0.1, 0.2").unwrap(), Dimension::Values(vec![json!(0.1), json!(0.2)]));
        let d = parse_dimension("a", "0.01..1 log n=3").unwrap();
        let g: Vec<f64> = d.grid().iter().map(|v| v.as_f64().unwrap()).collect();
        assert!((g[0] - 0.01).abs() < 1e-12 && (g[1] - 0.1).abs() < 1e-9 && (g[2] - 1.0).abs() < 1e-12, "{g:?}");
        assert_eq!(parse_dimension("n", "2..4 n=5").unwrap().grid(), [json!(2), json!(3), json!(4)]);
        for bad in ["0.3..0.1", " , ", "0..1 log", "1..x", "1..2 n=0", "1..2 cubic"] {
            let e = parse_dimension("a", bad).unwrap_err();
            assert!(e.contains("`space.a`"), "{bad}: {e}");
        }
        assert!(parse_dimension("a", "0.3..0.1").unwrap_err().contains("empty"));
    }

    #[test]
    fn folds_cover_every_row_once_stratified_and_in_time_order() {
        let labels: Vec<String> = (0..100).map(|i| if i % 10 == 0 { "rare".into() } else { "common".into() }).collect();
        let f = folds(100, 5, Some(&labels), None, 7);
        let mut seen = vec![0; 100];
        for (train, valid) in &f {
            let rare = (0..100).filter(|&i| valid[i] && labels[i] == "rare").count();
            assert_eq!(rare, 2, "each fold holds its share of the rare class");
            for i in 0..100 {
                assert_ne!(train[i], valid[i]);
                seen[i] += valid[i] as usize;
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
        // Time order: rows given newest first; training always precedes validation.
        let order: Vec<usize> = (0..60).rev().collect();
        for (train, valid) in folds(60, 3, None, Some(&order), 0) {
            let newest_train = (0..60).filter(|&i| train[i]).min().unwrap();
            let oldest_valid = (0..60).filter(|&i| valid[i]).max().unwrap();
            assert!(oldest_valid < newest_train, "validation rows are later than every training row");
        }
    }
}
