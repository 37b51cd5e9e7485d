//! `flywheel`: a thin command-line layer over the library crates.
//!
//! Exit codes: 0 success; 1 a run or check found a problem (failed step,
//! failed validation); 2 bad input (usage, invalid pipeline, unknown run or
//! artifact); 3 the home folder or a store cannot be used; 4 the run ended
//! but publishing was refused (not blessed, or the alias moved); 130 cancelled.

mod cli;
mod doctor_cmd;
mod drift_cmd;
mod models_cmd;
mod progress;
mod quickstart;
mod render;
mod schema_cmd;
mod stats_cmd;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Command, RunsCommand};
use flywheel_core::CancelToken;
use flywheel_metadata::RunStatus;
use flywheel_orchestrator::{Home, Observer, Orchestrator, OrchestratorError, RunOptions};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// An error with the exit code it maps to.
pub(crate) struct Failure {
    code: u8,
    message: String,
    /// The message already says where and that it is an error (pipeline diagnostics).
    located: bool,
}

pub(crate) fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure { code, message: message.into(), located: false }
}

impl Failure {
    fn from_pipeline(e: &flywheel_pipeline::PipelineError) -> Self {
        let located = matches!(e, flywheel_pipeline::PipelineError::Invalid(_));
        Failure { code: 2, message: e.to_string(), located }
    }
}

impl From<OrchestratorError> for Failure {
    fn from(e: OrchestratorError) -> Self {
        use OrchestratorError as E;
        let code = match &e {
            E::Pipeline(p) => return Failure::from_pipeline(p),
            E::NotResumable { .. } => 2,
            E::Metadata(m) => metadata_code(m),
            E::Registry(r) => registry_code(r),
            E::Artifacts(_) | E::Io(_) => 3,
        };
        fail(code, e.to_string())
    }
}

fn metadata_code(e: &flywheel_metadata::MetadataError) -> u8 {
    use flywheel_metadata::MetadataError as E;
    match e {
        E::NoRun(_) | E::NoArtifact(_) | E::NoModelVersion(_) => 2,
        E::Open { .. }
        | E::Lost { .. }
        | E::NotSqlite { .. }
        | E::Damaged { .. }
        | E::TooNew { .. }
        | E::Sql(_)
        | E::Json(_) => 3,
    }
}

fn registry_code(e: &flywheel_registry::RegistryError) -> u8 {
    use flywheel_registry::RegistryError as E;
    match e {
        E::Metadata(m) => metadata_code(m),
        E::Reference(_) | E::NoAlias { .. } | E::Read { .. } | E::BadModel(_) => 2,
        E::Artifacts(_) | E::Home { .. } | E::Stored { .. } | E::Write { .. } | E::Io(_) => 3,
    }
}

impl From<flywheel_registry::RegistryError> for Failure {
    fn from(e: flywheel_registry::RegistryError) -> Self {
        fail(registry_code(&e), e.to_string())
    }
}

impl From<flywheel_metadata::MetadataError> for Failure {
    fn from(e: flywheel_metadata::MetadataError) -> Self {
        OrchestratorError::from(e).into()
    }
}

impl From<flywheel_pipeline::PipelineError> for Failure {
    fn from(e: flywheel_pipeline::PipelineError) -> Self {
        Failure::from_pipeline(&e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        fail(3, format!("{e:#}"))
    }
}

fn main() -> ExitCode {
    // `command` steps run under a copy of this binary that ends their
    // process group if flywheel dies (see `command::supervise`).
    if let Some(code) = flywheel_components::command::supervise::run_if_asked() {
        return ExitCode::from(code);
    }
    flywheel_components::command::supervise::enable("/proc/self/exe".into());
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FLYWHEEL_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            if f.located {
                eprintln!("{}", f.message);
            } else {
                eprintln!("error: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

fn open_home(path: &Path) -> std::result::Result<Home, Failure> {
    Ok(Home::open(path)?)
}

fn run(cli: Cli) -> std::result::Result<u8, Failure> {
    let home_dir = cli.home.clone();
    match cli.command {
        Command::Check { pipeline, json } => {
            let components = flywheel_components::builtins();
            match flywheel_pipeline::compile_file(&pipeline, &components) {
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
        Command::Components { json } => {
            render::components(&flywheel_components::builtins(), json);
            Ok(0)
        }
        Command::Run(args) => {
            let components = flywheel_components::builtins();
            let overrides = args.overrides()?;
            let pipeline = flywheel_pipeline::compile_file_with(&args.pipeline, &components, &overrides)?;
            // Reject bad --set values before anything is recorded.
            pipeline.resolve_parameters(&overrides)?;
            let home = open_home(&home_dir)?;
            let opts = RunOptions { jobs: args.jobs(), no_cache: args.no_cache, overrides, ..RunOptions::default() };
            execute(home, components, args.json, |o, obs, cancel| {
                Box::pin(async move { o.run(&pipeline, &opts, obs, cancel).await })
            })
        }
        Command::Resume { run, jobs, json } => {
            let home = open_home(&home_dir)?;
            let opts = RunOptions {
                jobs: jobs.unwrap_or_else(|| RunOptions::default().jobs),
                trigger: "resume".into(),
                ..RunOptions::default()
            };
            execute(home, flywheel_components::builtins(), json, move |o, obs, cancel| {
                Box::pin(async move { o.resume(run, &opts, obs, cancel).await })
            })
        }
        Command::Quickstart { jobs, no_cache, json } => {
            let home = open_home(&home_dir)?;
            let pipeline_path = quickstart::unpack(&home.root)
                .map_err(|e| fail(3, format!("cannot unpack the quickstart example: {e}")))?;
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
        Command::Runs(RunsCommand::List { json, limit }) => {
            let home = open_home(&home_dir)?;
            let runs = home.metadata.list_runs(limit)?;
            render::runs_list(&runs, json);
            Ok(0)
        }
        Command::Runs(RunsCommand::Show { run, json }) => {
            let home = open_home(&home_dir)?;
            let record = home.metadata.run(run)?;
            let executions = home.metadata.executions(run)?;
            let signals = home.metadata.signals(Some(run), 100)?;
            render::run_show(&record, &executions, &signals, json);
            Ok(0)
        }
        Command::Lineage { id, json } => {
            let home = open_home(&home_dir)?;
            let artifact_id = resolve_lineage_target(&home, &id)?;
            let lineage = home.metadata.lineage(artifact_id)?;
            render::lineage(&lineage, json);
            Ok(0)
        }
        Command::Doctor { repair, json } => doctor_cmd::run(&home_dir, repair, json),
        Command::Drift(args) => drift_cmd::run(&args),
        Command::Stats(args) => stats_cmd::run(&args),
        Command::Predict(args) => models_cmd::predict(&home_dir, &args),
        Command::Schema(cli::SchemaCommand::Infer { data, output, max_categories, read }) => {
            schema_cmd::infer(&data, output.as_deref(), max_categories, &read)
        }
        Command::Validate(args) => schema_cmd::validate(&args),
        Command::Signals { json, limit } => {
            let home = open_home(&home_dir)?;
            render::signals(&home.metadata.signals(None, limit)?, json);
            Ok(0)
        }
        Command::Models { command: None, json } => {
            let home = open_home(&home_dir)?;
            let versions = home.metadata.model_versions()?;
            render::models(&versions, json);
            Ok(0)
        }
        Command::Models { command: Some(cli::ModelsCommand::Inspect { file, json }), .. } => {
            models_cmd::inspect(&file, json)
        }
        Command::Models { command: Some(cli::ModelsCommand::Alias { model, alias }), .. } => {
            let home = open_home(&home_dir)?;
            models_cmd::alias(&home, &model, &alias)
        }
        Command::Models { command: Some(cli::ModelsCommand::Audit { json, limit }), .. } => {
            let home = open_home(&home_dir)?;
            models_cmd::audit(&home, json, limit)
        }
        Command::Models { command: Some(cli::ModelsCommand::Import { name, file, signature }), .. } => {
            let home = open_home(&home_dir)?;
            models_cmd::import(&home, &name, &file, signature.as_deref())
        }
        Command::Models { command: Some(cli::ModelsCommand::Export { model, output }), .. } => {
            let home = open_home(&home_dir)?;
            models_cmd::export(&home, &model, &output)
        }
    }
}

/// `12` is an artifact id; `name@3` a model version; `name` its latest version.
fn resolve_lineage_target(home: &Home, id: &str) -> std::result::Result<i64, Failure> {
    if let Ok(n) = id.parse::<i64>() {
        return Ok(n);
    }
    Ok(home.resolve(&models_cmd::model_ref(id)?)?.version.artifact_id)
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
