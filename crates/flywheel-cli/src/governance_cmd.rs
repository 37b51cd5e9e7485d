//! `flywheel models show|history|approve|reject|tag|describe`: a model's
//! card and history, and the decisions people record about its versions.

use crate::exit::Failure;
use crate::models_cmd::{caller, model_ref};
use flywheel_metadata::{ApprovalState, Change, HistoryEntry};
use flywheel_registry::{Home, VersionCard};
use serde_json::Value as Json;

pub fn decide(home: &Home, reference: &str, state: ApprovalState, reason: Option<&str>) -> Result<u8, Failure> {
    let r = model_ref(reference)?;
    let caller = caller();
    let (resolved, before) = home.decide(&r, state, Change { caller: &caller, reason })?;
    let why = reason.map(|t| format!(": {t}")).unwrap_or_default();
    eprintln!("{} {} (was {}){why}", resolved.label(), state.as_str(), before.as_str());
    Ok(0)
}

pub fn tag(home: &Home, reference: &str, tags: &[String], remove: &[String]) -> Result<u8, Failure> {
    if tags.is_empty() && remove.is_empty() {
        return Err(crate::fail(2, "give tags as KEY=VALUE, or keys to remove with --remove KEY"));
    }
    let r = model_ref(reference)?;
    let caller = caller();
    let now = home.tag(&r, tags, remove, Change { caller: &caller, reason: None })?;
    eprintln!("{}@{} tags: {}", now.model_name, now.version, tags_text(&now.tags));
    Ok(0)
}

pub fn describe(home: &Home, reference: &str, text: &str) -> Result<u8, Failure> {
    let r = model_ref(reference)?;
    let caller = caller();
    let resolved = home.describe(&r, text, Change { caller: &caller, reason: None })?;
    eprintln!("{} described", resolved.label());
    Ok(0)
}

pub fn show(home: &Home, name: &str, json: bool) -> Result<u8, Failure> {
    let cards = crate::runtime()?.block_on(home.model_card(name))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "model": name, "versions": cards })).unwrap_or_default()
        );
        return Ok(0);
    }
    println!("{name}: {} version(s)", cards.len());
    for c in &cards {
        print_card(c);
    }
    Ok(0)
}

fn print_card(c: &VersionCard) {
    let v = &c.version;
    let aliases = if v.aliases.is_empty() { String::new() } else { format!("  [{}]", v.aliases.join(", ")) };
    println!("\n@{}{aliases}  {}", v.version, v.created_at);
    let run = v.run_id.map_or("imported".into(), |r| format!("run {r} (`flywheel runs show {r}`)"));
    println!("  made by     {run}; lineage: `flywheel lineage {}@{}`", v.model_name, v.version);
    let algorithm = c.model.get("algorithm").or_else(|| c.model.get("estimator")).map(text).unwrap_or_default();
    println!("  model       {} of `{}`, {algorithm}", text(&c.model["task"]), text(&c.model["target"]));
    let approval = &v.approval;
    let who = approval
        .by
        .as_ref()
        .map(|b| format!(" by {b} at {}", approval.at.clone().unwrap_or_default()))
        .unwrap_or_default();
    let why = approval.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
    println!("  approval    {}{who}{why}", approval.state.as_str());
    if let Some(b) = &c.blessing {
        println!("  blessed     {}", b["blessed"]);
    }
    if let Some(m) = &c.metrics {
        println!("  metrics     {}", headline(m));
    }
    match (&c.signature, &c.unreadable) {
        (Some(s), _) => {
            let inputs: Vec<String> = s.inputs.iter().map(|i| format!("{} ({})", i.name, i.kind.as_str())).collect();
            println!("  inputs      {}", inputs.join(", "));
        }
        (None, Some(e)) => println!("  unreadable  {e}"),
        (None, None) => {}
    }
    if !v.tags.is_empty() {
        println!("  tags        {}", tags_text(&v.tags));
    }
    if let Some(d) = &v.description {
        println!("  description {d}");
    }
}

/// The overall metrics, numbers only, in the order `evaluate` wrote them.
fn headline(m: &Json) -> String {
    let overall = m.get("overall").unwrap_or(m);
    let Some(o) = overall.as_object() else { return String::new() };
    o.iter().filter_map(|(k, v)| v.as_f64().map(|x| format!("{k} {}", round(x)))).collect::<Vec<_>>().join(", ")
}

fn round(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e12 { format!("{x}") } else { format!("{x:.4}") }
}

fn text(v: &Json) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn tags_text(tags: &std::collections::BTreeMap<String, String>) -> String {
    if tags.is_empty() {
        "(none)".into()
    } else {
        tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    }
}

pub fn history(home: &Home, name: &str, json: bool) -> Result<u8, Failure> {
    let entries = home.history(name)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries).unwrap_or_default());
        return Ok(0);
    }
    for e in &entries {
        let who = e.caller.as_ref().map(|c| format!("  ({c})")).unwrap_or_default();
        println!("{}  {}{who}", e.at, change_text(name, e));
    }
    Ok(0)
}

/// One change as a sentence: "registered bikes@2 from run 5",
/// "bikes@production: 1 → 2 (because …)".
pub fn change_text(name: &str, e: &HistoryEntry) -> String {
    let at = |v: Option<i64>| v.map_or("nothing".to_string(), |v| v.to_string());
    let version = e.version.map(|v| format!("{name}@{v}")).unwrap_or_else(|| name.to_string());
    let what = match e.action.as_str() {
        "register" => format!("registered {version}{}", e.run.map(|r| format!(" from run {r}")).unwrap_or_default()),
        "set_alias" => {
            format!("{name}@{}: {} → {}", e.alias.clone().unwrap_or_default(), at(e.from_version), at(e.version))
        }
        "remove_alias" => {
            format!("{name}@{}: {} → nothing (removed)", e.alias.clone().unwrap_or_default(), at(e.from_version))
        }
        "approve" => format!("approved {version}"),
        "reject" => format!("rejected {version}"),
        "tag" => format!("tagged {version} {}", e.detail.clone().unwrap_or_default()),
        "untag" => format!("removed tag {} from {version}", e.detail.clone().unwrap_or_default()),
        "describe" => format!("described {version}: {}", e.detail.clone().unwrap_or_default()),
        "serve_swap" => {
            format!("serving {version} for {name}@{} (was {})", e.alias.clone().unwrap_or_default(), at(e.from_version))
        }
        "serve_load_failed" => format!(
            "refused to serve {version} for {name}@{}: {}",
            e.alias.clone().unwrap_or_default(),
            e.detail.clone().unwrap_or_default()
        ),
        other => format!("{other} {version}"),
    };
    match &e.reason {
        Some(r) => format!("{what} — {r}"),
        None => what,
    }
}

/// `models audit`: the changes of every model, newest first.
pub fn audit(home: &Home, as_json: bool, limit: usize) -> Result<u8, Failure> {
    let rows = home.metadata.registry_audit(limit)?;
    if as_json {
        let rows: Vec<Json> = rows.iter().map(|(model, e)| audit_json(model, e)).collect();
        println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
        return Ok(0);
    }
    if rows.is_empty() {
        println!("no registry changes yet");
    }
    for (model, e) in &rows {
        let who = e.caller.as_ref().map(|c| format!("  ({c})")).unwrap_or_default();
        println!("{}  {}{who}", e.at, change_text(model, e));
    }
    Ok(0)
}

/// One audit row as `models audit --json` has always written it.
fn audit_json(model: &str, e: &HistoryEntry) -> Json {
    serde_json::json!({
        "model": model, "action": e.action, "alias": e.alias, "from_version": e.from_version,
        "to_version": e.version, "run": e.run, "caller": e.caller, "at": e.at,
        "reason": e.reason, "detail": e.detail,
    })
}
