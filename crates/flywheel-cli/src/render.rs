//! What commands print: tables for people, JSON for machines.

use flywheel_core::ComponentRegistry;
use flywheel_metadata::{ExecutionRecord, Lineage, ModelVersion, RunRecord, Signal};
use flywheel_orchestrator::RunOutcome;
use flywheel_orchestrator::humanize;
use serde_json::{Value as Json, json};
use std::time::Duration;

fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot encode JSON: {e}"),
    }
}

fn ms(v: Option<i64>) -> String {
    v.map_or_else(|| "-".into(), |m| humanize(Duration::from_millis(m.max(0) as u64)))
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

fn scalar(v: &Json) -> String {
    match v {
        Json::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.4}"),
            _ => n.to_string(),
        },
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What a step warned of (dropped rows, undefined metrics, …).
fn warnings(summary: &Json) -> Vec<&str> {
    summary["warnings"].as_array().map(|a| a.iter().filter_map(Json::as_str).collect()).unwrap_or_default()
}

fn summary_line(summary: &Json) -> String {
    let Some(o) = summary.as_object() else { return String::new() };
    o.iter()
        .filter(|(k, _)| *k != "warnings")
        .map(|(k, v)| match v {
            Json::Object(m) => {
                format!("{k}: {}", m.iter().map(|(a, b)| format!("{a}={}", scalar(b))).collect::<Vec<_>>().join(" "))
            }
            other => format!("{k}: {}", scalar(other)),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn outcome(o: &RunOutcome, json: bool) {
    if json {
        print_json(o);
        return;
    }
    println!("\nrun {} of `{}`: {} in {}", o.run_id, o.pipeline, o.status, ms(Some(o.duration_ms)));
    let width = o.steps.iter().map(|s| s.step.len()).max().unwrap_or(4).max(4);
    println!("  {:<width$}  {:<11}  {:<5}  {:>9}", "STEP", "STATUS", "CACHE", "DURATION");
    for s in &o.steps {
        let cache = if s.resumed {
            "kept"
        } else if s.cache_hit {
            "hit"
        } else {
            "miss"
        };
        let cache = if s.status == flywheel_metadata::ExecStatus::Skipped { "-" } else { cache };
        println!("  {:<width$}  {:<11}  {:<5}  {:>9}", s.step, s.status.as_str(), cache, ms(Some(s.duration_ms)));
    }
    for s in &o.steps {
        let line = summary_line(&s.summary);
        if !line.is_empty() {
            println!("  {}: {line}", s.step);
        }
        for w in warnings(&s.summary) {
            println!("  {}: warning: {w}", s.step);
        }
    }
    if let Some(e) = &o.error {
        println!("\n{e}");
    }
}

pub fn runs_list(runs: &[RunRecord], json: bool) {
    if json {
        print_json(&runs);
        return;
    }
    if runs.is_empty() {
        println!("no runs yet; start one with `flywheel run PIPELINE` or `flywheel quickstart`");
        return;
    }
    // The trigger last: a triggered run's reason is a sentence.
    println!("{:>5}  {:<20}  {:<11}  {:<24}  {:>9}  TRIGGER", "RUN", "PIPELINE", "STATUS", "STARTED", "DURATION");
    for r in runs {
        println!(
            "{:>5}  {:<20}  {:<11}  {:<24}  {:>9}  {}",
            r.id,
            r.pipeline,
            r.status.as_str(),
            r.started_at,
            ms(r.duration_ms),
            r.trigger
        );
    }
}

pub fn run_show(r: &RunRecord, execs: &[ExecutionRecord], signals: &[Signal], json: bool) {
    if json {
        print_json(&json!({ "run": r, "executions": execs, "signals": signals }));
        return;
    }
    println!("run {} of `{}` ({}, version {})", r.id, r.pipeline, r.pipeline_path, short(&r.pipeline_digest));
    println!("  status:     {}", r.status);
    println!("  trigger:    {} by {} on {} (pid {})", r.trigger, r.started_by, r.host, r.pid);
    println!("  started:    {}", r.started_at);
    println!("  ended:      {}", r.ended_at.as_deref().unwrap_or("-"));
    println!("  duration:   {}", ms(r.duration_ms));
    println!("  parameters: {}", r.parameters);
    if let Some(e) = &r.error {
        println!("  error:      {e}");
    }
    for s in signals {
        println!("  signal:     {}: {}", s.kind, s.message);
    }
    println!("\nexecutions:");
    for e in execs {
        execution(e);
    }
}

/// One execution of `runs show`: status, artifacts in and out, error, warnings, log.
fn execution(e: &ExecutionRecord) {
    let cache = if e.cache_hit { ", cache hit" } else { "" };
    println!(
        "  #{} {} ({} v{}): {}{cache}, {}, attempts {}",
        e.id,
        e.step,
        e.component,
        e.component_version,
        e.status,
        ms(e.duration_ms),
        e.attempts
    );
    for i in &e.inputs {
        println!(
            "      in  {:<12} artifact {} ({}, {})",
            i.name,
            i.artifact.id,
            i.artifact.ty,
            short(&i.artifact.digest)
        );
    }
    for o in &e.outputs {
        println!(
            "      out {:<12} artifact {} ({}, {}, {} bytes)",
            o.name,
            o.artifact.id,
            o.artifact.ty,
            short(&o.artifact.digest),
            o.artifact.size
        );
    }
    if let Some(err) = &e.error {
        let label = if e.status == flywheel_metadata::ExecStatus::Refused { "refused:" } else { "error:" };
        for (k, line) in err.lines().enumerate() {
            println!("      {} {line}", if k == 0 { label } else { "      " });
        }
    }
    for w in warnings(&e.summary) {
        println!("      warning: {w}");
    }
    if let Some(log) = &e.log_path {
        println!("      log {log}");
    }
}

pub fn signals(signals: &[Signal], json: bool) {
    if json {
        print_json(&signals);
        return;
    }
    if signals.is_empty() {
        println!("no signals yet; a `validate` step with a `baseline` records drift");
        return;
    }
    for s in signals {
        println!("{}  run {}  {}: {}", s.created_at, s.run_id, s.kind, s.message);
    }
}

pub fn lineage(l: &Lineage, json: bool) {
    if json {
        print_json(l);
        return;
    }
    let a = &l.artifact;
    println!("artifact {} ({}, {}, {} bytes)", a.id, a.ty, short(&a.digest), a.size);
    for mv in &l.model_versions {
        println!(
            "  registered as {}@{} (run {})",
            mv.model_name,
            mv.version,
            mv.run_id.map_or("-".into(), |r| r.to_string())
        );
    }
    for (title, edges) in [("upstream (what it came from)", &l.upstream), ("downstream (what used it)", &l.downstream)]
    {
        println!("\n{title}:");
        if edges.is_empty() {
            println!("  nothing");
        }
        for e in edges {
            let x = &e.execution;
            let hit = if x.cache_hit { ", cache hit" } else { "" };
            println!("  execution #{} {} ({}) in run {}: {}{hit}", x.id, x.step, x.component, x.run_id, x.status);
            for i in &x.inputs {
                println!("      in  {:<12} artifact {} ({})", i.name, i.artifact.id, i.artifact.ty);
            }
            for o in &x.outputs {
                println!("      out {:<12} artifact {} ({})", o.name, o.artifact.id, o.artifact.ty);
            }
        }
    }
}

pub fn models(versions: &[ModelVersion], json: bool) {
    if json {
        print_json(&versions);
        return;
    }
    if versions.is_empty() {
        println!("no model versions yet; a pipeline's `push` step registers them");
        return;
    }
    println!("{:<24}  {:>7}  {:>8}  {:>5}  {:<24}  ALIASES", "MODEL", "VERSION", "ARTIFACT", "RUN", "CREATED");
    for v in versions {
        println!(
            "{:<24}  {:>7}  {:>8}  {:>5}  {:<24}  {}",
            v.model_name,
            v.version,
            v.artifact_id,
            v.run_id.map_or("-".into(), |r| r.to_string()),
            v.created_at,
            v.aliases.join(", ")
        );
    }
}

pub fn components(reg: &ComponentRegistry, json: bool) {
    let list: Vec<Json> = reg
        .iter()
        .map(|c| {
            let s = c.spec();
            json!({
                "name": s.name,
                "version": s.version,
                "description": s.description,
                "params": s.params.iter().map(|p| json!({ "name": p.name, "type": p.ty.describe(), "required": p.required, "doc": p.doc })).collect::<Vec<_>>(),
                "inputs": s.inputs.iter().map(|p| json!({ "name": p.name, "type": p.ty.as_str(), "doc": p.doc })).collect::<Vec<_>>(),
                "outputs": s.outputs.iter().map(|p| json!({ "name": p.name, "type": p.ty.as_str(), "doc": p.doc })).collect::<Vec<_>>(),
                "dynamic_ports": s.dynamic_ports,
            })
        })
        .collect();
    if json {
        print_json(&list);
        return;
    }
    for c in reg.iter() {
        let s = c.spec();
        println!("{} (v{}): {}", s.name, s.version, s.description);
        for i in s.inputs {
            println!("  input  {:<22} {:<18} {}", i.name, i.ty.as_str(), i.doc);
        }
        for o in s.outputs {
            println!("  output {:<22} {:<18} {}", o.name, o.ty.as_str(), o.doc);
        }
        for p in s.params {
            let req = if p.required { " (required)" } else { "" };
            println!("  param  {:<22} {}{req}: {}", p.name, p.ty.describe(), p.doc);
        }
        println!();
    }
}

pub fn pipeline_json(p: &flywheel_pipeline::Pipeline) -> Json {
    json!({
        "valid": true,
        "name": p.name,
        "digest": p.digest,
        "parameters": p.parameters.iter().map(|(k, v)| (k.clone(), v.default.clone())).collect::<serde_json::Map<_, _>>(),
        "steps": p.steps.iter().map(|s| json!({
            "name": s.name,
            "component": s.component,
            "inputs": s.inputs.iter().map(|(k, r)| (k.clone(), json!(format!("{}.{}", r.step, r.output)))).collect::<serde_json::Map<_, _>>(),
            "outputs": s.outputs.iter().map(|(n, t)| json!({ "name": n, "type": t.as_str() })).collect::<Vec<_>>(),
            "retries": s.retries,
            "timeout_ms": s.timeout.map(|t| t.as_millis() as u64),
        })).collect::<Vec<_>>(),
    })
}

/// A valid deployment, for `flywheel check --json`.
pub fn deployment_json(d: &flywheel_deploy::Deployment) -> Json {
    use flywheel_deploy::{Span, TriggerKind};
    let span = |s: &Span| match s {
        Span::Requests(n) => json!({ "requests": n }),
        Span::Time(t) => json!({ "seconds": t.as_secs_f64() }),
    };
    let triggers: Vec<Json> = d
        .triggers
        .iter()
        .map(|t| {
            let mut v = json!({
                "on": t.kind.name(),
                "cooldown_seconds": t.cooldown.as_secs_f64(),
                "when_busy": format!("{:?}", t.when_busy).to_lowercase(),
            });
            match &t.kind {
                TriggerKind::Schedule(s) => v["cron"] = json!(s.text),
                TriggerKind::NewData { path, settle } => {
                    v["path"] = json!(path.display().to_string());
                    v["settle_seconds"] = json!(settle.as_secs_f64());
                }
                TriggerKind::Drift { windows } | TriggerKind::Performance { windows } => v["windows"] = json!(windows),
                TriggerKind::OnDemand => {}
            }
            v
        })
        .collect();
    let m = &d.monitoring;
    json!({
        "valid": true,
        "name": d.name,
        "digest": d.digest,
        "pipeline": { "name": d.pipeline.name, "path": d.pipeline.path.display().to_string() },
        "model": d.model,
        "serving": {
            "addr": d.serving.addr.map(|a| a.to_string()),
            "split": d.serving.split.iter().map(|(a, w)| (a.clone(), json!(w))).collect::<serde_json::Map<_, _>>(),
            "shadow": d.serving.shadow,
            "log_sample": d.serving.log_sample,
        },
        "monitoring": {
            "window": span(&m.window),
            "drift_share": m.drift_share,
            "columns": m.columns,
            "performance": m.performance.as_ref().map(|b| json!({ "metric": b.metric, "op": format!("{:?}", b.op).to_lowercase(), "value": b.value })),
        },
        "triggers": triggers,
        "delivery": {
            "approval": format!("{:?}", d.delivery.approval).to_lowercase(),
            "canary_percent": d.delivery.canary,
            "hold": span(&d.delivery.hold),
            "max_error_rate": d.delivery.max_error_rate,
            "tolerance": d.delivery.tolerance,
        },
    })
}
