//! The commands that compile and run pipelines: `check`, `run`, `resume`
//! and `quickstart`, with the progress display and Ctrl-C / SIGTERM
//! wired to the run's cancellation.

use crate::cli::RunArgs;
use crate::exit::{Failure, fail};
use crate::{open_home, progress, quickstart, render, runtime};
use flywheel_core::CancelToken;
use flywheel_metadata::RunStatus;
use flywheel_orchestrator::{Home, Observer, Orchestrator, RunOptions};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

/// `flywheel check FILE`: a pipeline file, or a deployment file (which
/// names its pipeline; both are checked).
pub fn check(pipeline: &Path, json: bool) -> Result<u8, Failure> {
    let components = flywheel_components::builtins();
    if std::fs::read_to_string(pipeline).is_ok_and(|s| flywheel_deploy::is_deployment(&s)) {
        return check_deployment(pipeline, &components, json);
    }
    match flywheel_pipeline::compile_file(pipeline, &components) {
        Ok(p) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&render::pipeline_json(&p)).unwrap_or_default());
            } else {
                println!(
                    "{}: pipeline `{}` is valid: {} steps, {} parameters",
                    pipeline.display(),
                    p.name,
                    p.steps.len(),
                    p.parameters.len()
                );
            }
            Ok(0)
        }
        Err(flywheel_pipeline::PipelineError::Invalid(d)) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "valid": false, "errors": d.to_json() }))
                    .unwrap_or_default()
            );
            Ok(2)
        }
        Err(e) => Err(e.into()),
    }
}

fn check_deployment(path: &Path, components: &flywheel_core::ComponentRegistry, json: bool) -> Result<u8, Failure> {
    match flywheel_deploy::compile_file(path, components) {
        Ok(d) if json => {
            println!("{}", serde_json::to_string_pretty(&render::deployment_json(&d)).unwrap_or_default());
            Ok(0)
        }
        Ok(d) => {
            let triggers: Vec<&str> = d.triggers.iter().map(|t| t.kind.name()).collect();
            println!(
                "{}: deployment `{}` is valid: pipeline `{}` ({} steps), model `{}`, {} trigger(s){}",
                path.display(),
                d.name,
                d.pipeline.name,
                d.pipeline.steps.len(),
                d.model,
                triggers.len(),
                if triggers.is_empty() { String::new() } else { format!(": {}", triggers.join(", ")) }
            );
            Ok(0)
        }
        Err(flywheel_deploy::DeployError::Invalid(all)) if json => {
            let errors: Vec<serde_json::Value> =
                all.iter().flat_map(|d| d.to_json().as_array().cloned().unwrap_or_default()).collect();
            let out = serde_json::json!({ "valid": false, "errors": errors });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(2)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn run(home_dir: &Path, args: &RunArgs) -> Result<u8, Failure> {
    let components = flywheel_components::builtins();
    let overrides = args.overrides()?;
    let pipeline = flywheel_pipeline::compile_file_with(&args.pipeline, &components, &overrides)?;
    // Reject bad --set values before anything is recorded.
    pipeline.resolve_parameters(&overrides)?;
    let home = open_home(home_dir)?;
    let opts = RunOptions { jobs: args.jobs(), no_cache: args.no_cache, overrides, ..RunOptions::default() };
    execute(home, components, args.json, |o, obs, cancel| {
        Box::pin(async move { o.run(&pipeline, &opts, obs, cancel).await })
    })
}

pub fn resume(home_dir: &Path, run: i64, jobs: Option<usize>, json: bool) -> Result<u8, Failure> {
    let home = open_home(home_dir)?;
    let opts = RunOptions {
        jobs: jobs.unwrap_or_else(|| RunOptions::default().jobs),
        trigger: "resume".into(),
        ..RunOptions::default()
    };
    execute(home, flywheel_components::builtins(), json, move |o, obs, cancel| {
        Box::pin(async move { o.resume(run, &opts, obs, cancel).await })
    })
}

/// `flywheel quickstart`: the bike-sharing example's first run, then (unless
/// `--no-loop`) the loop closing on it (`quickstart::closing`).
pub fn quickstart(home_dir: &Path, args: &crate::cli::QuickstartArgs) -> Result<u8, Failure> {
    let home = open_home(home_dir)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    // To the microsecond: rows an earlier quickstart served in this very
    // second are not learned from.
    let started = flywheel_stats::time::format_micros(i64::try_from(now.as_micros()).unwrap_or(i64::MAX), false);
    let unpacked = quickstart::unpack(&home.root, &started)
        .map_err(|e| fail(3, format!("cannot unpack the quickstart example: {e}")))?;
    let components = flywheel_components::builtins();
    let pipeline = flywheel_pipeline::compile_file(&unpacked.pipeline, &components)?;
    let narrate = !args.json;
    if narrate {
        let act = if args.no_loop { "" } else { "act 1 of 4: " };
        eprintln!("quickstart: {act}train the bike-sharing model on 2011 and push it to production");
        eprintln!("  pipeline: {}", unpacked.pipeline.display());
    }
    let opts = RunOptions {
        jobs: args.jobs.unwrap_or_else(|| RunOptions::default().jobs),
        no_cache: args.no_cache,
        trigger: "quickstart".into(),
        overrides: if args.no_loop { Vec::new() } else { unpacked.first_run.clone() },
        ..RunOptions::default()
    };
    // With the loop and --json, the run is part of the story's document.
    let shown = !args.json || args.no_loop;
    let (code, outcome) = execute_outcome(home.clone(), components.clone(), args.json, shown, |o, obs, cancel| {
        Box::pin(async move { o.run(&pipeline, &opts, obs, cancel).await })
    })?;
    if args.no_loop {
        if code == 0 && narrate {
            println!(
                "\nnext: `flywheel runs list`, `flywheel runs show <RUN>`, `flywheel lineage bike-sharing@1` (home: {})",
                home_dir.display()
            );
        }
        return Ok(code);
    }
    let Some(outcome) = outcome.filter(|_| matches!(code, 0 | 4)) else { return Ok(code) };
    quickstart::closing(&home, home_dir, &unpacked, &outcome, components, args)
}

type RunFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = flywheel_orchestrator::Result<flywheel_orchestrator::RunOutcome>> + 'a>,
>;

fn execute<F>(
    home: Home,
    components: flywheel_core::ComponentRegistry,
    json: bool,
    start: F,
) -> std::result::Result<u8, Failure>
where
    F: for<'a> FnOnce(&'a Orchestrator, Arc<dyn Observer>, CancelToken) -> RunFuture<'a>,
{
    execute_outcome(home, components, json, true, start).map(|(code, _)| code)
}

/// [`execute`], with the run's outcome.
fn execute_outcome<F>(
    home: Home,
    components: flywheel_core::ComponentRegistry,
    json: bool,
    shown: bool,
    start: F,
) -> std::result::Result<(u8, Option<flywheel_orchestrator::RunOutcome>), Failure>
where
    F: for<'a> FnOnce(&'a Orchestrator, Arc<dyn Observer>, CancelToken) -> RunFuture<'a>,
{
    let rt = runtime()?;
    let orchestrator = Orchestrator::new(home, components);
    let cancel = CancelToken::new();
    let observer: Arc<dyn Observer> = if json {
        Arc::new(flywheel_orchestrator::Silent)
    } else if std::io::stderr().is_terminal() {
        Arc::new(progress::Bars::new())
    } else {
        Arc::new(progress::Lines::new())
    };
    let outcome = rt.block_on(async {
        let c = cancel.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            c.cancel();
        });
        start(&orchestrator, observer.clone(), cancel.clone()).await
    });
    // A step that ignored a cancel was abandoned by the launcher: exit
    // without waiting for its thread.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    let outcome = outcome?;
    drop(observer);
    if shown {
        render::outcome(&outcome, json);
    }
    let code = match outcome.status {
        RunStatus::Succeeded => 0,
        RunStatus::Refused => 4,
        RunStatus::Cancelled => 130,
        _ => 1,
    };
    Ok((code, Some(outcome)))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
