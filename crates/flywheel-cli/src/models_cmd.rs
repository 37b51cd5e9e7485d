//! `flywheel models inspect FILE`, `models export NAME[@V] -o FILE`,
//! `models import NAME FILE.onnx`, `models alias`, `models audit`.

use crate::{Failure, fail, parse_model_ref};
use flywheel_ml::model::Estimator;
use flywheel_ml::model::onnx_estimator::OnnxSignature;
use flywheel_ml::transform::Encoder;
use flywheel_ml::{Model, Task};
use flywheel_orchestrator::Home;
use serde_json::{Value as Json, json};
use std::path::Path;

fn read_model(path: &Path) -> Result<Model, Failure> {
    if !path.exists() {
        return Err(fail(2, format!("cannot read {}: no such file", path.display())));
    }
    flywheel_components::model::load(path).map_err(|e| fail(2, e.to_string()))
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

/// A registered model's file: `name@3`, `name` (latest) or `name@production` (an alias).
fn registered(
    home: &Home,
    reference: &str,
) -> Result<(flywheel_metadata::ModelVersion, String, std::path::PathBuf), Failure> {
    let mv = match reference.split_once('@') {
        Some((name, alias)) if alias.parse::<i64>().is_err() => home
            .metadata
            .aliased_version(name, alias)?
            .ok_or_else(|| fail(2, format!("model `{name}` has no alias `{alias}` (`flywheel models` lists them)")))?,
        _ => {
            let (name, version) = parse_model_ref(reference)?;
            home.metadata.model_version(name, version)?
        }
    };
    let artifact = home.metadata.artifact(mv.artifact_id)?;
    let rt = crate::runtime()?;
    let path = rt
        .block_on(home.artifacts.local_path(&artifact.digest))
        .map_err(|e| fail(3, format!("model {}@{}: {e}", mv.model_name, mv.version)))?;
    Ok((mv, artifact.digest, path))
}

pub fn export(home: &Home, reference: &str, output: &Path) -> Result<u8, Failure> {
    let (mv, digest, path) = registered(home, reference)?;
    let mut model = read_model(&path)?;
    if let Some(meta) = model.metadata.as_object_mut() {
        meta.insert(
            "registry".into(),
            json!({ "model": mv.model_name, "version": mv.version, "run": mv.run_id, "digest": digest }),
        );
    }
    let text = String::from_utf8(model.to_json()).map_err(|e| fail(3, e.to_string()))?;
    flywheel_components::html::write_atomic(output, &text)
        .map_err(|e| fail(3, format!("cannot write {}: {e}", output.display())))?;
    eprintln!("wrote {}@{} to {}", mv.model_name, mv.version, output.display());
    Ok(0)
}

pub fn import(home: &Home, name: &str, file: &Path, signature: Option<&Path>) -> Result<u8, Failure> {
    flywheel_core::check_name("model name", name).map_err(|e| fail(2, e))?;
    let bytes = std::fs::read(file).map_err(|e| fail(2, format!("cannot read {}: {e}", file.display())))?;
    let signature = signature
        .map(|p| {
            let text = std::fs::read(p).map_err(|e| fail(2, format!("cannot read {}: {e}", p.display())))?;
            OnnxSignature::from_json(&text, &p.display().to_string()).map_err(|e| fail(2, e.to_string()))
        })
        .transpose()?;
    let mut model = flywheel_ml::model::onnx_estimator::import(bytes, signature, &file.display().to_string())
        .map_err(|e| fail(2, e.to_string()))?;
    let caller = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    model.metadata = json!({ "imported_from": file.display().to_string(), "imported_by": caller });
    let rt = crate::runtime()?;
    let stored = rt.block_on(home.artifacts.put_bytes(model.to_json())).map_err(|e| fail(3, e.to_string()))?;
    let id = home.metadata.record_artifact(&flywheel_metadata::NewArtifact {
        ty: flywheel_core::ArtifactType::Model.as_str().into(),
        uri: stored.uri,
        digest: stored.digest,
        size: stored.size,
        properties: json!({ "task": model.task, "target": model.target, "estimator": "onnx" }),
    })?;
    let (mv, created) = home.metadata.register_model_version(name, id, None)?;
    let what = match model.task {
        Task::Regression => format!("regression of `{}`", model.target),
        Task::Classification => format!("classification of `{}` into {}", model.target, model.classes.join(", ")),
    };
    if created {
        eprintln!("registered {name}@{} from {} ({what})", mv.version, file.display());
    } else {
        eprintln!("{} is already {name}@{}", file.display(), mv.version);
    }
    Ok(0)
}

pub fn alias(home: &Home, reference: &str, alias: &str) -> Result<u8, Failure> {
    let (name, version) = parse_model_ref(reference)?;
    let Some(version) = version else {
        return Err(fail(2, format!("`{reference}`: name the version to point `{alias}` at, as NAME@VERSION")));
    };
    flywheel_components::push::check_alias(alias).map_err(|e| fail(2, e))?;
    let caller = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let before = home.metadata.set_alias(name, alias, version, None, &caller)?;
    match before {
        Some(b) if b != version => eprintln!("{name}@{alias}: {b} → {version}"),
        Some(_) => eprintln!("{name}@{alias} already points at {version}"),
        None => eprintln!("{name}@{alias} → {version}"),
    }
    Ok(0)
}

pub fn audit(home: &Home, as_json: bool, limit: usize) -> Result<u8, Failure> {
    let rows = home.metadata.registry_audit(limit)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
        return Ok(0);
    }
    if rows.is_empty() {
        println!("no registry changes yet");
    }
    for r in rows {
        println!(
            "{}  {}@{}: {} → {}  ({})",
            r["at"].as_str().unwrap_or_default(),
            r["model"].as_str().unwrap_or_default(),
            r["alias"].as_str().unwrap_or_default(),
            r["from_version"],
            r["to_version"],
            r["caller"].as_str().unwrap_or_default()
        );
    }
    Ok(0)
}

pub fn predict(home_dir: &Path, args: &crate::cli::PredictArgs) -> Result<u8, Failure> {
    let model = if Path::new(&args.model).is_file() {
        read_model(Path::new(&args.model))?
    } else {
        let home = crate::open_home(home_dir)?;
        let (_, _, path) = registered(&home, &args.model)?;
        read_model(&path)?
    };
    let mut opts = args.read.options()?;
    opts.hints = flywheel_components::model::signature_types(&model);
    let t = flywheel_components::table::read_table(&args.data, &opts).map_err(|e| fail(2, e.to_string()))?;
    let names = t.column_names();
    let inputs: Vec<String> = model.signature.inputs.iter().map(|i| i.name.clone()).collect();
    let missing: Vec<String> = inputs
        .iter()
        .filter(|i| !names.contains(i))
        .map(|i| {
            let hint = flywheel_core::closest(i, names.iter().map(String::as_str))
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            format!("`{i}`{hint}")
        })
        .collect();
    if !missing.is_empty() {
        return Err(fail(
            2,
            format!("{}: the model needs columns the data does not have: {}", args.data.display(), missing.join(", ")),
        ));
    }
    let frame = flywheel_components::model::to_frame(&t, &inputs).map_err(|e| fail(2, e.to_string()))?;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let started = std::time::Instant::now();
    let pred = model.predict_parallel(&frame, threads).map_err(|e| fail(2, format!("{}: {e}", args.data.display())))?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(out) = &args.output {
        flywheel_components::model::write_predictions(&t, &model, &pred, out).map_err(|e| fail(3, e.to_string()))?;
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
