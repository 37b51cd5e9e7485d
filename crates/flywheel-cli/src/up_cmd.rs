//! `flywheel up [DEPLOYMENT...]`: deployments compiled (or those recorded
//! in the home), then `flywheel_daemon::up` until SIGTERM or Ctrl-C, its
//! events printed one line each as they happen.

use crate::Failure;
use crate::cli::UpArgs;
use flywheel_daemon::{Event, UpConfig};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub fn run(home: &Path, args: &UpArgs) -> Result<u8, Failure> {
    crate::return_freed_memory();
    let components = flywheel_components::builtins();
    let paths = match args.deployments.is_empty() {
        false => args.deployments.clone(),
        true => recorded(home)?,
    };
    let mut deployments = Vec::new();
    for p in &paths {
        deployments.push(flywheel_deploy::compile_file(p, &components)?);
    }
    let token = std::env::var("FLYWHEEL_TOKEN").ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let config = UpConfig {
        home: home.to_path_buf(),
        deployments,
        addr: args.addr.clone(),
        tick: Duration::from_millis(args.tick_ms.max(50)),
        token,
        memory_hook: Some(crate::give_back_freed_memory),
    };
    let names: Vec<String> = config.deployments.iter().map(|d| format!("{} ({})", d.name, d.model)).collect();
    crate::runtime()?.block_on(flywheel_daemon::up(
        config,
        components,
        |addr| say(&format!("up: {}; serving on http://{addr}", names.join(", "))),
        Arc::new(|e| say(&text(&e))),
        flywheel_serve::shutdown_signal(),
    ))?;
    eprintln!("stopped");
    Ok(0)
}

/// The deployment files recorded in the home by an earlier `up`.
fn recorded(home: &Path) -> Result<Vec<PathBuf>, Failure> {
    let h = flywheel_registry::Home::open(home)?;
    let found = h.metadata.deployments()?;
    if found.is_empty() {
        return Err(crate::fail(
            2,
            "no deployment named, and none recorded in the home: `flywheel up DEPLOYMENT.toml`",
        ));
    }
    Ok(found.into_iter().map(|d| PathBuf::from(d.path)).collect())
}

/// `flywheel trigger DEPLOYMENT`: a run asked for, for the deployment's
/// `on_demand` trigger to start. Refused (exit 2) for a deployment the home
/// does not know, or one that declares no `on_demand` trigger.
pub fn trigger(home: &Path, name: &str, reason: &str, json: bool) -> Result<u8, Failure> {
    let h = flywheel_registry::Home::open(home)?;
    let recorded = h.metadata.deployments()?;
    let Some(d) = recorded.iter().find(|d| d.name == name) else {
        let names: Vec<&str> = recorded.iter().map(|d| d.name.as_str()).collect();
        let known = if names.is_empty() {
            "none is recorded in the home yet: `flywheel up DEPLOYMENT.toml` records it".to_string()
        } else {
            format!("recorded: {}{}", names.join(", "), flywheel_core::did_you_mean(name, names.iter().copied()))
        };
        return Err(crate::fail(2, format!("no deployment `{name}`; {known}")));
    };
    let components = flywheel_components::builtins();
    let compiled = flywheel_deploy::compile_file(Path::new(&d.path), &components)?;
    if !compiled.triggers.iter().any(|t| matches!(t.kind, flywheel_deploy::TriggerKind::OnDemand)) {
        return Err(crate::fail(
            2,
            format!(
                "deployment `{name}` declares no `on_demand` trigger: add\n[[trigger]]\non = \"on_demand\"\nto {}",
                d.path
            ),
        ));
    }
    let by = flywheel_orchestrator::scheduler::default_user();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let id = h.metadata.request_run(name, reason, &by, i64::try_from(now.as_micros()).unwrap_or(i64::MAX))?;
    if json {
        say(&serde_json::json!({ "request": id, "deployment": name, "reason": reason }).to_string());
    } else {
        say(&format!("run of `{name}` asked for (request {id}): `flywheel up` starts it at its next tick"));
    }
    Ok(0)
}

/// One line on stdout, written (a reader that went away must not stop `up`).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub fn text(e: &Event) -> String {
    match e {
        Event::Window { deployment, text } => format!("{deployment}: {text}"),
        Event::Fired { deployment, reason } => format!("{deployment}: trigger fired ({reason}): starting a run"),
        Event::Queued { deployment, reason } => {
            format!("{deployment}: trigger fired ({reason}): queued after the run under way")
        }
        Event::Skipped { deployment, reason, because } => {
            format!("{deployment}: trigger fired ({reason}): skipped, {because}")
        }
        Event::Resumed { deployment, run_id, status } => {
            format!("{deployment}: run {run_id} was left {status} by an earlier `up`: resuming it")
        }
        Event::RunFinished { deployment, run_id, status, error } => format!(
            "{deployment}: run {run_id} {status}{}",
            error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
        ),
        Event::Problem { deployment, text } | Event::Delivery { deployment, text, .. } => {
            format!("{deployment}: {text}")
        }
    }
}
