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

pub fn quickstart(home_dir: &Path, jobs: Option<usize>, no_cache: bool, json: bool) -> Result<u8, Failure> {
    let home = open_home(home_dir)?;
    let pipeline_path =
        quickstart::unpack(&home.root).map_err(|e| fail(3, format!("cannot unpack the quickstart example: {e}")))?;
    let components = flywheel_components::builtins();
    let pipeline = flywheel_pipeline::compile_file(&pipeline_path, &components)?;
    if !json {
        eprintln!("quickstart: running the bike-sharing example from {}", pipeline_path.display());
    }
    let opts = RunOptions {
        jobs: jobs.unwrap_or_else(|| RunOptions::default().jobs),
        no_cache,
        trigger: "quickstart".into(),
        ..RunOptions::default()
    };
    let code = execute(home, components, json, |o, obs, cancel| {
        Box::pin(async move { o.run(&pipeline, &opts, obs, cancel).await })
    })?;
    if code == 0 && !json {
        println!(
            "\nnext: `flywheel runs list`, `flywheel runs show <RUN>`, `flywheel lineage bike-sharing@1` (home: {})",
            home_dir.display()
        );
    }
    Ok(code)
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
    render::outcome(&outcome, json);
    Ok(match outcome.status {
        RunStatus::Succeeded => 0,
        RunStatus::Refused => 4,
        RunStatus::Cancelled => 130,
        _ => 1,
    })
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
