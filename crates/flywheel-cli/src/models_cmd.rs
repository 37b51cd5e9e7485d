//! `flywheel models inspect FILE`, `models export NAME[@V] -o FILE`,
//! `models import NAME FILE.onnx`, `models alias`, `models audit`.

use crate::{Failure, fail};
use flywheel_core::ModelRef;
use flywheel_metadata::Change;
use flywheel_ml::model::Estimator;
use flywheel_ml::transform::Encoder;
use flywheel_ml::{Model, Task};
use flywheel_registry::Home;
use serde_json::{Value as Json, json};
use std::path::Path;

fn read_model(path: &Path) -> Result<Model, Failure> {
    if !path.exists() {
        return Err(fail(2, format!("cannot read {}: no such file", path.display())));
    }
    flywheel_data::model_file::load(path).map_err(|e| fail(2, e.to_string()))
}

fn estimator_summary(e: &Estimator) -> Json {
    match e {
        Estimator::Linear { algorithm, weights, .. } => {
            json!({ "type": "linear", "algorithm": algorithm, "weights": weights.len() })
        }
        Estimator::Logistic { coef, .. } => json!({ "type": "logistic", "coefficient_rows": coef.len() }),
        Estimator::Forest { algorithm, forest } => json!({
            "type": algorithm,
            "trees": forest.trees.len(),
            "leaves": forest.trees.iter().map(|t| t.leaves()).sum::<usize>(),
        }),
        Estimator::Onnx(o) => json!({
            "type": "onnx",
            "inputs": o.feeds.iter().map(|f| json!({ "input": f.input, "columns": f.columns.len() })).collect::<Vec<_>>(),
            "bytes": o.onnx.len(),
            "digest": o.digest,
        }),
        Estimator::Gbt(g) => json!({
            "type": "gbt",
            "loss": g.loss,
            "iterations": g.trees.len(),
            "trees": g.trees.iter().map(Vec::len).sum::<usize>(),
            "leaves": g.trees.iter().flatten().map(|t| t.leaves()).sum::<usize>(),
        }),
    }
}

fn encoder_summary(e: &Encoder) -> String {
    match e {
        Encoder::Value => "value".into(),
        Encoder::Bucketize { edges } => format!("{} buckets", edges.len() + 1),
        Encoder::Onehot { categories } => format!("one-hot, {} values + other", categories.len()),
        Encoder::Hash { buckets } => format!("{buckets} hash buckets"),
        Encoder::Ordinal { categories } => format!("ordinal over {} values", categories.len()),
        Encoder::Datetime { parts } => format!("date parts: {}", parts.join(", ")),
    }
}

pub fn inspect(path: &Path, as_json: bool) -> Result<u8, Failure> {
    let m = read_model(path)?;
    let columns: Vec<Json> = m
        .transform
        .columns
        .iter()
        .map(|c| {
            json!({
                "column": c.column, "kind": c.kind, "declared": c.declared,
                "features": c.width(), "encoding": encoder_summary(&c.encoder),
            })
        })
        .collect();
    let summary = json!({
        "format": m.format,
        "task": m.task,
        "target": m.target,
        "classes": m.classes,
        "signature": m.signature,
        "transform": columns,
        "features": m.transform.width(),
        "estimator": estimator_summary(&m.estimator),
        "metadata": m.metadata,
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
        return Ok(0);
    }
    println!("{}  ({})", path.display(), m.format);
    match m.task {
        Task::Regression => println!("task       regression of `{}`", m.target),
        Task::Classification => println!("task       classification of `{}` into {}", m.target, m.classes.join(", ")),
    }
    println!("estimator  {}", summary["estimator"]);
    if let Estimator::Onnx(o) = &m.estimator {
        println!("inputs     {} columns, read by the ONNX graph", m.signature.inputs.len());
        for f in &o.feeds {
            println!("  {:<24} ← {}", f.input, f.columns.join(", "));
        }
    } else {
        println!("inputs     {} columns → {} features", m.signature.inputs.len(), m.transform.width());
    }
    for c in &m.transform.columns {
        println!("  {:<24} {:<6}  {:<40} {}", c.column, c.kind.as_str(), c.declared, encoder_summary(&c.encoder));
    }
    let outputs: Vec<String> =
        m.signature.outputs.iter().map(|o| format!("{} ({})", o.name, o.kind.as_str())).collect();
    println!("outputs    {}", outputs.join(", "));
    if !m.metadata.is_null() {
        println!("metadata   {}", m.metadata);
    }
    Ok(0)
}

/// A model reference as the user wrote it: `name`, `name@3`, `name@production`.
pub(crate) fn model_ref(reference: &str) -> Result<ModelRef, Failure> {
    ModelRef::parse(reference).map_err(|e| fail(2, format!("`{reference}`: {e}")))
}

pub fn export(home: &Home, reference: &str, output: &Path) -> Result<u8, Failure> {
    let r = model_ref(reference)?;
    let mv = crate::runtime()?.block_on(home.export_model(&r, output))?;
    eprintln!("wrote {}@{} to {}", mv.model_name, mv.version, output.display());
    Ok(0)
}

pub fn import(home: &Home, name: &str, file: &Path, signature: Option<&Path>) -> Result<u8, Failure> {
    let caller = caller();
    let imported = crate::runtime()?.block_on(home.import_onnx(name, file, signature, &caller))?;
    let (version, what) = (imported.version.version, flywheel_registry::describe_task(&imported.model));
    if imported.created {
        eprintln!("registered {name}@{version} from {} ({what})", file.display());
    } else {
        eprintln!("{} is already {name}@{version}", file.display());
    }
    Ok(0)
}

/// Who is at the keyboard, for the audit log.
pub(crate) fn caller() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}

pub fn alias(
    home: &Home,
    reference: &str,
    alias: &str,
    expect: Option<Option<i64>>,
    reason: Option<&str>,
) -> Result<u8, Failure> {
    let r = model_ref(reference)?;
    let caller = caller();
    let before = home.move_alias(&r, alias, expect, Change { caller: &caller, reason })?;
    let (name, version) = (&r.name, r.version().unwrap_or_default());
    match before {
        Some(b) if b != version => eprintln!("{name}@{alias}: {b} → {version}"),
        Some(_) => eprintln!("{name}@{alias} already points at {version}"),
        None => eprintln!("{name}@{alias} → {version}"),
    }
    Ok(0)
}

pub fn predict(home_dir: &Path, args: &crate::cli::PredictArgs) -> Result<u8, Failure> {
    let model = if Path::new(&args.model).is_file() {
        read_model(Path::new(&args.model))?
    } else {
        let r = ModelRef::parse(&args.model).map_err(|e| {
            fail(
                2,
                format!("`{}` is neither a model file nor a registered model (NAME[@VERSION|@ALIAS]): {e}", args.model),
            )
        })?;
        let home = crate::open_home(home_dir)?;
        crate::runtime()?.block_on(home.load_model(&r))?.1
    };
    let mut opts = args.read.options()?;
    opts.hints = flywheel_data::model_file::signature_types(&model);
    let t = flywheel_data::table::read_table(&args.data, &opts).map_err(|e| fail(2, e.to_string()))?;
    let frame = flywheel_data::model_file::model_frame(&model, &t)
        .map_err(|e| fail(2, format!("{}: {e}", args.data.display())))?;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let started = std::time::Instant::now();
    let pred = model.predict_parallel(&frame, threads).map_err(|e| fail(2, format!("{}: {e}", args.data.display())))?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(out) = &args.output {
        flywheel_data::model_file::write_predictions(&t, &model, &pred, out).map_err(|e| fail(3, e.to_string()))?;
    }
    let rows = frame.rows();
    let summary = json!({
        "rows": rows,
        "seconds": seconds,
        "rows_per_second": rows as f64 / seconds.max(1e-9),
        "threads": threads,
        "output": args.output.as_ref().map(|p| p.display().to_string()),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    } else {
        println!(
            "predicted {rows} rows in {:.3} s ({:.0} rows/s, transform and model, {threads} threads){}",
            seconds,
            rows as f64 / seconds.max(1e-9),
            args.output.as_ref().map(|p| format!("; wrote {}", p.display())).unwrap_or_default()
        );
    }
    Ok(0)
}
