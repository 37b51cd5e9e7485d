//! `flywheel status [--json]`: what the home deploys, serves, monitors and
//! runs — the `up` processes serving it, and for each recorded deployment
//! its model's aliases, the newest canary, the newest monitored window,
//! runs asked for and not yet started, and its newest run.

use crate::Failure;
use flywheel_metadata::{DeploymentRecord, MetadataStore, RunRecord, RunStatus};
use serde_json::{Value, json};
use std::path::Path;

pub fn run(home: &Path, json: bool) -> Result<u8, Failure> {
    let home = flywheel_registry::Home::open(home)?;
    let m = &home.metadata;
    let ups: Vec<Value> = m
        .ups()?
        .into_iter()
        .filter(|u| u.host != flywheel_metadata::hostname() || flywheel_metadata::pid_alive(u.pid))
        .map(|u| json!({ "pid": u.pid, "host": u.host, "addr": u.addr, "deployments": u.deployments, "since": time(u.started_us) }))
        .collect();
    let runs = m.list_runs(500)?;
    let deployments: Vec<Value> =
        m.deployments()?.iter().map(|d| deployment(m, d, &runs)).collect::<Result<_, Failure>>()?;
    let running: Vec<Value> =
        runs.iter().filter(|r| r.status == RunStatus::Running).map(|r| run_json(Some(r))).collect();
    let doc = json!({ "up": ups, "deployments": deployments, "running": running });
    if json {
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print(&doc);
    }
    Ok(0)
}

fn deployment(m: &MetadataStore, d: &DeploymentRecord, runs: &[RunRecord]) -> Result<Value, Failure> {
    let model = &d.model_name;
    let alias = |a: &str| -> Result<Option<i64>, Failure> { Ok(m.aliased_version(model, a)?.map(|v| v.version)) };
    let canary = m.canaries(&d.name, 1)?.into_iter().next().map(
        |c| json!({ "version": c.version, "since": time(c.started_us), "outcome": c.outcome, "reason": c.reason }),
    );
    let window = m.windows(Some(model), 1)?.into_iter().next().map(|w| {
        let s = &w.window.scores;
        json!({ "id": w.id, "version": w.window.version, "last": time(w.window.last_us), "rows": w.window.rows,
                "labeled": w.window.labeled, "from_training": s["from_training"], "metric": s["metric"],
                "alerts": s["alerts"].as_array().map_or(0, Vec::len) })
    });
    // The deployment's pipeline, by the runs `up` started from its file's folder.
    let pipeline = flywheel_deploy::compile_file(Path::new(&d.path), &flywheel_components::builtins())
        .map(|c| c.pipeline.name)
        .map_err(|e| e.to_string());
    let newest = pipeline.as_ref().ok().and_then(|p| runs.iter().find(|r| &r.pipeline == p));
    Ok(json!({
        "name": d.name, "file": d.path, "model": model,
        "production": alias("production")?, "canary": alias("canary")?,
        "newest_canary": canary, "newest_window": window,
        "runs_asked_for": m.pending_run_requests(&d.name)?.len(),
        "newest_run": run_json(newest),
        "problem": pipeline.err(),
    }))
}

fn run_json(r: Option<&RunRecord>) -> Value {
    r.map_or(Value::Null, |r| {
        json!({ "id": r.id, "pipeline": r.pipeline, "status": r.status.to_string(), "trigger": r.trigger,
                "started": r.started_at })
    })
}

fn time(us: i64) -> String {
    flywheel_stats::time::format_micros(us, false)
}

fn print(doc: &Value) {
    let ups = doc["up"].as_array().map(Vec::as_slice).unwrap_or_default();
    if ups.is_empty() {
        println!("up: not running (`flywheel up` serves the deployments below)");
    }
    for u in ups {
        println!(
            "up: pid {} on {}, serving on {} since {} ({})",
            u["pid"],
            s(&u["host"]),
            s(&u["addr"]),
            s(&u["since"]),
            s(&u["deployments"])
        );
    }
    let deployments = doc["deployments"].as_array().map(Vec::as_slice).unwrap_or_default();
    if deployments.is_empty() {
        println!("no deployment recorded: `flywheel up DEPLOYMENT.toml` records one");
    }
    for d in deployments {
        println!("\ndeployment {} ({})", s(&d["name"]), s(&d["file"]));
        let version = |v: &Value| v.as_i64().map_or("none".to_string(), |v| format!("@{v}"));
        println!(
            "  model {}: production {}, canary {}",
            s(&d["model"]),
            version(&d["production"]),
            version(&d["canary"])
        );
        if let Some(c) = d["newest_canary"].as_object() {
            let outcome =
                c["outcome"].as_str().map_or("being held".to_string(), |o| format!("{o}: {}", s(&c["reason"])));
            println!("  newest canary: @{} since {}, {outcome}", c["version"], s(&c["since"]));
        }
        match d["newest_window"].as_object() {
            Some(w) => println!("  {}", window_line(w)),
            None => println!("  monitoring: no window yet"),
        }
        if d["runs_asked_for"].as_u64().is_some_and(|n| n > 0) {
            println!("  runs asked for, waiting: {}", d["runs_asked_for"]);
        }
        if let Some(r) = d["newest_run"].as_object() {
            println!(
                "  newest run: {} {} ({}), started {}",
                r["id"],
                s(&r["status"]),
                s(&r["trigger"]),
                s(&r["started"])
            );
        }
        if let Some(p) = d["problem"].as_str() {
            println!("  problem: {p}");
        }
    }
    for r in doc["running"].as_array().map(Vec::as_slice).unwrap_or_default() {
        println!("\nrunning: run {} of `{}` ({})", r["id"], s(&r["pipeline"]), s(&r["trigger"]));
    }
}

fn window_line(w: &serde_json::Map<String, Value>) -> String {
    let t = &w["from_training"];
    let drift = t["drifted"].as_u64().map_or("–".to_string(), |d| format!("{d}/{}", t["compared"]));
    let metric = match w["metric"].as_array().map(Vec::as_slice) {
        Some([name, value]) => format!(", {} {:.4}", s(name), value.as_f64().unwrap_or(f64::NAN)),
        _ => String::new(),
    };
    format!(
        "monitoring: window {} of @{} ended {}: {} rows, {} labeled, drifted from training {drift}{metric}, {} alert(s)",
        w["id"],
        w["version"],
        s(&w["last"]),
        w["rows"],
        w["labeled"],
        w["alerts"]
    )
}

fn s(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}
