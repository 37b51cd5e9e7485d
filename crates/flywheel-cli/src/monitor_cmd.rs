//! `flywheel monitor update DEPLOYMENT`, `flywheel monitor status` and
//! `flywheel monitor report`: windows of the prediction log scored
//! (`flywheel_monitor`), shown, and drawn over time.

use crate::Failure;
use flywheel_metadata::MonitorWindow;
use serde_json::{Value, json};
use std::path::Path;

pub fn update(home: &Path, deployment: &Path, json: bool) -> Result<u8, Failure> {
    let d = flywheel_deploy::compile_file(deployment, &flywheel_components::builtins())?;
    let home = flywheel_registry::Home::open(home)?;
    // `up` records the windows of the models it serves: two writers would
    // both cut the windows after the last one, and count them twice.
    let host = flywheel_metadata::hostname();
    let live = home.metadata.ups()?.into_iter().find(|u| u.host == host && flywheel_metadata::pid_alive(u.pid));
    if let Some(u) = live {
        return Err(crate::fail(
            3,
            format!(
                "`flywheel up` (pid {}) monitors this home and records its windows itself; see them with `flywheel monitor status {}`",
                u.pid, d.model
            ),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::fail(3, format!("cannot start the runtime: {e}")))?;
    let now = now_us();
    let recorded = runtime.block_on(flywheel_monitor::windows::update(&home, &d.model, &d.monitoring, now))?;
    let after = now - flywheel_monitor::windows::LATE_HORIZON_US;
    let relabeled = flywheel_monitor::windows::relabel(&home, &d.model, &d.monitoring, (after, now))?;
    if !json {
        for r in &relabeled {
            let metric = r.performance.metric.as_ref().map_or("no metric yet".into(), |(m, v)| format!("{m} {v:.4}"));
            println!(
                "window {} of {}@{}: scored again with late labels ({} labeled): {metric}",
                r.id, d.model, r.window.version, r.performance.labeled
            );
        }
    }
    let shown: Vec<MonitorWindow> =
        recorded.into_iter().map(|r| MonitorWindow { id: r.id, window: r.window }).rev().collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&windows_json(&shown)).unwrap_or_default());
    } else if shown.is_empty() {
        println!("`{}`: no new complete window", d.model);
    } else {
        print_windows(&shown);
    }
    Ok(0)
}

pub fn status(home: &Path, model: Option<&str>, limit: i64, json: bool) -> Result<u8, Failure> {
    let home = flywheel_registry::Home::open(home)?;
    let windows = home.metadata.windows(model, limit.max(1))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&windows_json(&windows)).unwrap_or_default());
    } else if windows.is_empty() {
        println!("no monitored windows{}", model.map(|m| format!(" of `{m}`")).unwrap_or_default());
    } else {
        print_windows(&windows);
    }
    Ok(0)
}

/// `monitor status MODEL --merge N`: the newest `limit` merged windows,
/// newest first.
pub fn merged(home: &Path, model: &str, (every, limit): (u32, i64), json: bool) -> Result<u8, Failure> {
    let home = flywheel_registry::Home::open(home)?;
    let mut windows = home.metadata.windows(Some(model), limit.max(1).saturating_mul(i64::from(every)))?;
    windows.reverse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::fail(3, format!("cannot start the runtime: {e}")))?;
    let mut merged = runtime.block_on(flywheel_monitor::merge::merged(&home, model, &windows, every as usize))?;
    merged.reverse();
    merged.truncate(usize::try_from(limit.max(1)).unwrap_or(usize::MAX));
    let time = |us: i64| flywheel_stats::time::format_micros(us, false);
    if json {
        let shown: Vec<Value> = merged
            .iter()
            .map(|m| {
                let mut v = serde_json::to_value(m).unwrap_or_default();
                v["first"] = time(m.first_us).into();
                v["last"] = time(m.last_us).into();
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
    } else if merged.is_empty() {
        println!("no monitored windows of `{model}`");
    }
    for m in merged.iter().filter(|_| !json) {
        let drift = |d: &Option<flywheel_monitor::DriftSummary>| {
            d.as_ref().map_or("–".to_string(), |d| format!("{}/{}", d.drifted, d.compared))
        };
        let metric = match (&m.metric, &m.bound) {
            (Some((name, v)), Some(b)) => {
                format!("{name} {v:.4} ({b}){}", if m.out_of_bound { ", OUT OF BOUND" } else { "" })
            }
            _ => "no metric".to_string(),
        };
        let (first, last) = (m.windows.first().copied().unwrap_or(0), m.windows.last().copied().unwrap_or(0));
        let missing =
            if m.unsketched > 0 { format!(" ({} of them kept no sketch)", m.unsketched) } else { String::new() };
        println!(
            "windows {first}–{last} of {model}@{} ({} to {}, {} rows, {} labeled){missing}: drifted from training {}, from the windows before {}; {metric}",
            m.version,
            time(m.first_us),
            time(m.last_us),
            m.rows,
            m.labeled,
            drift(&m.from_training),
            drift(&m.from_previous),
        );
    }
    Ok(0)
}

/// `monitor report MODEL --html FILE`: the page, written whole or not at all.
pub fn report(home: &Path, model: &str, html: &Path, limit: i64) -> Result<u8, Failure> {
    let home = flywheel_registry::Home::open(home)?;
    let mut windows = home.metadata.windows(Some(model), limit.max(1))?;
    if windows.is_empty() {
        let mut known: Vec<String> =
            home.metadata.windows(None, 10_000)?.into_iter().map(|w| w.window.model_name).collect();
        known.sort();
        known.dedup();
        let hint = flywheel_pipeline::diagnostic::did_you_mean(model, known.iter().map(String::as_str))
            .map_or_else(String::new, |h| format!(" ({h})"));
        return Err(crate::fail(
            2,
            format!(
                "no monitored window of `{model}`{hint}: serve it with `flywheel up`, or score its log with `flywheel monitor update`"
            ),
        ));
    }
    windows.reverse();
    let page = flywheel_monitor::report::html(model, &windows, &markers(&home, model)?);
    flywheel_data::atomic::write_atomic(html, &page)
        .map_err(|e| crate::fail(3, format!("{}: cannot write: {e}", html.display())))?;
    println!("wrote {} ({} windows of `{model}`)", html.display(), windows.len());
    Ok(0)
}

/// What happened to `model` between windows: its production and canary
/// moves, and the runs its deployments' triggers started.
fn markers(home: &flywheel_registry::Home, model: &str) -> Result<Vec<flywheel_monitor::report::Marker>, Failure> {
    let at = |s: &str| flywheel_stats::time::parse(s).map(|p| p.micros);
    let mut out = Vec::new();
    for e in home.metadata.model_history(model)? {
        let moved = matches!(e.action.as_str(), "set_alias" | "remove_alias");
        if moved && let Some(at_us) = at(&e.at) {
            out.push(flywheel_monitor::report::Marker { at_us, text: crate::governance_cmd::change_text(model, &e) });
        }
    }
    let deployments: Vec<String> =
        home.metadata.deployments()?.into_iter().filter(|d| d.model_name == model).map(|d| d.name).collect();
    for r in home.metadata.list_runs(1000)? {
        let mine = r.options["deployment"].as_str().is_some_and(|d| deployments.iter().any(|x| x == d));
        if mine
            && !r.trigger.is_empty()
            && let Some(at_us) = at(&r.started_at)
        {
            out.push(flywheel_monitor::report::Marker {
                at_us,
                text: format!("run {} ({}): {}", r.id, r.status, r.trigger),
            });
        }
    }
    out.sort_by_key(|m| m.at_us);
    Ok(out)
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

fn windows_json(windows: &[MonitorWindow]) -> Value {
    Value::Array(
        windows
            .iter()
            .map(|w| {
                let x = &w.window;
                json!({
                    "id": w.id, "model": x.model_name, "version": x.version,
                    "first": flywheel_stats::time::format_micros(x.first_us, false),
                    "last": flywheel_stats::time::format_micros(x.last_us, false),
                    "rows": x.rows, "labeled": x.labeled, "scores": x.scores,
                })
            })
            .collect(),
    )
}

/// One line per window, newest first: drift from training and from the
/// window before, the metric, the alerts.
fn print_windows(windows: &[MonitorWindow]) {
    for w in windows {
        let x = &w.window;
        let s = &x.scores;
        let drift = |k: &str| match &s[k] {
            Value::Null => "–".to_string(),
            d => format!("{}/{}", d["drifted"], d["compared"]),
        };
        let metric = match s["metric"].as_array().map(Vec::as_slice) {
            Some([name, value]) => format!("{} {:.4}", name.as_str().unwrap_or(""), value.as_f64().unwrap_or(f64::NAN)),
            _ => "no labels".to_string(),
        };
        let alerts: Vec<String> = s["alerts"].as_array().into_iter().flatten().map(alert_text).collect();
        println!(
            "window {} of {}@{} ({} to {}, {} rows, {} labeled): drifted from training {}, from the window before {}; {}{}{}",
            w.id,
            x.model_name,
            x.version,
            flywheel_stats::time::format_micros(x.first_us, false),
            flywheel_stats::time::format_micros(x.last_us, false),
            x.rows,
            x.labeled,
            drift("from_training"),
            drift("from_previous"),
            metric,
            worst_slice(s),
            if alerts.is_empty() { String::new() } else { format!("; ALERT: {}", alerts.join("; ")) }
        );
    }
}

/// The slice the metric is worst on, by the bound's direction (`>=`: the
/// lowest), among every declared spec's.
fn worst_slice(s: &Value) -> String {
    let higher_is_better = s["bound"].as_str().is_some_and(|b| b.starts_with('>'));
    let all =
        s["slices"].as_array().into_iter().flatten().flat_map(|spec| spec["slices"].as_array().into_iter().flatten());
    let key = |x: &&Value| {
        let v = x["value"].as_f64().unwrap_or(f64::NAN);
        if higher_is_better { -v } else { v }
    };
    match all.max_by(|a, b| key(a).total_cmp(&key(b))) {
        Some(w) => format!(
            "; worst slice {} {:.4} ({} labeled)",
            w["slice"].as_str().unwrap_or(""),
            w["value"].as_f64().unwrap_or(f64::NAN),
            w["labeled"]
        ),
        None => String::new(),
    }
}

fn alert_text(a: &Value) -> String {
    match a["alert"].as_str() {
        Some("drift") => format!(
            "drift: {} of {} columns ({})",
            a["drifted"],
            a["compared"],
            a["columns"].as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
        ),
        Some("performance") => {
            format!(
                "{} {:.4} is not {}",
                a["metric"].as_str().unwrap_or(""),
                a["value"].as_f64().unwrap_or(f64::NAN),
                a["bound"].as_str().unwrap_or("")
            )
        }
        _ => a.to_string(),
    }
}
