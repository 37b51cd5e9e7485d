//! `flywheel`: a thin command-line layer over the library crates. Every
//! command and flag is in `cli.rs`; every exit code in `exit.rs`; each
//! command group in its own `*_cmd.rs`, which calls the library crates and
//! renders (`render.rs`, `progress.rs`).

mod cli;
mod doctor_cmd;
mod drift_cmd;
mod exit;
mod governance_cmd;
mod history_cmd;
mod logs_cmd;
mod models_cmd;
mod monitor_cmd;
mod pipeline_cmd;
mod progress;
mod quickstart;
mod render;
mod replay_cmd;
mod schema_cmd;
mod serve_cmd;
mod stats_cmd;
mod status_cmd;
mod up_cmd;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Command, ModelsCommand, RunsCommand};
pub(crate) use exit::{Failure, fail};
use flywheel_metadata::ApprovalState;
use flywheel_orchestrator::Home;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `command` steps run under a copy of this binary that ends their
    // process group if flywheel dies (see `command::supervise`).
    if let Some(code) = flywheel_components::command::supervise::run_if_asked() {
        return ExitCode::from(code);
    }
    flywheel_components::command::supervise::enable("/proc/self/exe".into());
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLYWHEEL_LOG")
                .unwrap_or_else(|_| "warn,flywheel_serve=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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

fn run(cli: Cli) -> std::result::Result<u8, Failure> {
    let home = cli.home.as_path();
    if matches!(
        cli.command,
        Command::Runs(_)
            | Command::Lineage { .. }
            | Command::Signals { .. }
            | Command::Models { .. }
            | Command::Components { .. }
            | Command::Monitor(cli::MonitorCommand::Status { .. })
    ) {
        quiet_on_closed_pipe();
    }
    match cli.command {
        Command::Check { pipeline, json } => pipeline_cmd::check(&pipeline, json),
        Command::Components { json } => {
            render::components(&flywheel_components::builtins(), json);
            Ok(0)
        }
        Command::Run(args) => pipeline_cmd::run(home, &args),
        Command::Resume { run, jobs, json } => pipeline_cmd::resume(home, run, jobs, json),
        Command::Quickstart(args) => pipeline_cmd::quickstart(home, &args),
        Command::Runs(RunsCommand::List { json, limit }) => history_cmd::runs_list(home, json, limit),
        Command::Runs(RunsCommand::Show { run, json }) => history_cmd::run_show(home, run, json),
        Command::Lineage { id, json } => history_cmd::lineage(home, &id, json),
        Command::Signals { json, limit } => history_cmd::signals(home, json, limit),
        Command::Doctor { repair, json } => doctor_cmd::run(home, repair, json),
        Command::Drift(args) => drift_cmd::run(&args),
        Command::Stats(args) => stats_cmd::run(&args),
        Command::Predict(args) => models_cmd::predict(home, &args),
        Command::Serve(args) => serve_cmd::run(home, &args),
        Command::Logs(args) => logs_cmd::run(home, &args),
        Command::Replay(args) => replay_cmd::run(&args),
        Command::Up(args) => up_cmd::run(home, &args),
        Command::Status { json } => status_cmd::run(home, json),
        Command::Trigger { deployment, reason, json } => up_cmd::trigger(home, &deployment, &reason, json),
        Command::Monitor(cli::MonitorCommand::Update { deployment, json }) => {
            monitor_cmd::update(home, &deployment, json)
        }
        Command::Monitor(cli::MonitorCommand::Status { model, limit, merge: None, json }) => {
            monitor_cmd::status(home, model.as_deref(), limit, json)
        }
        Command::Monitor(cli::MonitorCommand::Status { model, limit, merge: Some(n), json }) => {
            monitor_cmd::merged(home, model.as_deref().unwrap_or_default(), (n, limit), json)
        }
        Command::Monitor(cli::MonitorCommand::Report { model, html, limit }) => {
            monitor_cmd::report(home, &model, &html, limit)
        }
        Command::Schema(cli::SchemaCommand::Infer { data, output, max_categories, read }) => {
            schema_cmd::infer(&data, output.as_deref(), max_categories, &read)
        }
        Command::Validate(args) => schema_cmd::validate(&args),
        Command::Models { command: None, json } => history_cmd::models(home, json),
        Command::Models { command: Some(command), .. } => models(home, command),
    }
}

/// `flywheel runs list | head` ends quietly when `head` stops reading, as
/// other Unix tools do, instead of a panic in `println!` (Rust ignores
/// SIGPIPE by default). Only for commands that read and print: one that
/// runs pipelines or serves must not die with a reader.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal before any
    // thread is started; nothing else in the process handles SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn models(home: &Path, command: ModelsCommand) -> std::result::Result<u8, Failure> {
    match command {
        ModelsCommand::Inspect { file, json } => models_cmd::inspect(&file, json),
        ModelsCommand::Alias { model, alias, reason, expect } => {
            models_cmd::alias(&open_home(home)?, &model, &alias, expect.map(|e| e.0), reason.as_deref())
        }
        ModelsCommand::Show { name, json } => governance_cmd::show(&open_home(home)?, &name, json),
        ModelsCommand::History { name, json } => governance_cmd::history(&open_home(home)?, &name, json),
        ModelsCommand::Approve { model, reason } => {
            governance_cmd::decide(&open_home(home)?, &model, ApprovalState::Approved, reason.as_deref())
        }
        ModelsCommand::Reject { model, reason } => {
            governance_cmd::decide(&open_home(home)?, &model, ApprovalState::Rejected, reason.as_deref())
        }
        ModelsCommand::Tag { model, tags, remove } => governance_cmd::tag(&open_home(home)?, &model, &tags, &remove),
        ModelsCommand::Describe { model, text } => governance_cmd::describe(&open_home(home)?, &model, &text),
        ModelsCommand::Audit { json, limit } => governance_cmd::audit(&open_home(home)?, json, limit),
        ModelsCommand::Import { name, file, signature } => {
            models_cmd::import(&open_home(home)?, &name, &file, signature.as_deref())
        }
        ModelsCommand::Export { model, output } => models_cmd::export(&open_home(home)?, &model, &output),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

fn open_home(path: &Path) -> std::result::Result<Home, Failure> {
    Ok(Home::open(path)?)
}

/// glibc keeps freed memory at the top of each thread's heap up to a
/// threshold it raises by itself as big blocks come and go; the log's
/// writer frees megabytes a flush, so a serving process held 55 MB where
/// 20 MB were in use. A fixed 1 MiB threshold gives it back (40 MB, the
/// same requests/s: bench/README.md). `flywheel up` serves as `serve`
/// does, and so sets the same: without it, its p99 strayed from serve's.
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning value of the allocator; called
    // before the server's threads start.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
    }
}

/// The server's memory hook. A load of 1,000-row requests leaves tens of
/// MB freed but resident in the arenas of the threads that answered them
/// (glibc's trim threshold reaches only the top of the main heap), and a
/// server that goes on answering small requests holds them for good (51 MB
/// where 20 were in use, after bench/serve.py's batch loads). `malloc_trim`
/// gives those pages back. It walks every arena under its lock (1–5 ms
/// with such a heap), which requests wait for: while they come it runs
/// only when more than [`HELD_FREE_LIMIT`] is held free; once they stop,
/// always.
fn give_back_freed_memory(moment: flywheel_serve::Moment) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if moment == flywheel_serve::Moment::Quiet || held_free().is_some_and(|bytes| bytes > HELD_FREE_LIMIT) {
        // SAFETY: malloc_trim only releases free memory of the allocator's
        // own arenas; it takes their locks as malloc does.
        unsafe {
            libc::malloc_trim(0);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = moment;
}

/// Resident memory held free by the allocator above which a busy server
/// trims: the size of what a 1,000-row load leaves, well above the churn
/// of one-row requests.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HELD_FREE_LIMIT: u64 = 16 << 20;

/// The process's resident anonymous memory less what malloc has handed
/// out: what the allocator holds free (and thread stacks, a few MB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn held_free() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut pages = statm.split_whitespace().skip(1).map(|v| v.parse::<u64>().ok());
    let (resident, file) = (pages.next()??, pages.next()??);
    // SAFETY: sysconf reads a constant; mallinfo2 reads the arenas' counts
    // under their locks, as malloc does.
    let (page, info) = unsafe { (libc::sysconf(libc::_SC_PAGESIZE), libc::mallinfo2()) };
    let in_use = (info.uordblks + info.hblkhd) as u64;
    Some((resident.saturating_sub(file) * u64::try_from(page).ok()?).saturating_sub(in_use))
}
