//! `command`: runs any executable as a step.
//!
//! Inputs, outputs and run facts reach the program as environment variables
//! (`FLYWHEEL_INPUT_<NAME>`, `FLYWHEEL_OUTPUT_<NAME>`, `FLYWHEEL_OUTPUT_DIR`,
//! `FLYWHEEL_RUN_ID`, `FLYWHEEL_STEP`, plus the step's `env`); its stdout and
//! stderr go to the step's log; exit code 0 is success. The working folder
//! is the pipeline file's folder. The program runs in a process group of
//! its own, which ends with the step (see [`supervise`]).

use flywheel_core::{ComponentSpec, ExecContext, ExecError, ParamSpec, ParamType, TypedComponent};
use std::collections::BTreeMap;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

pub mod supervise;

pub struct CommandStep;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "command",
    version: "1",
    description: "Runs an executable; inputs and outputs are passed as environment variables.",
    params: &[
        ParamSpec {
            name: "run",
            ty: ParamType::StringList,
            required: true,
            doc: "the program and its arguments, e.g. [\"python3\", \"train.py\"]",
        },
        ParamSpec { name: "env", ty: ParamType::StringMap, required: false, doc: "extra environment variables" },
    ],
    inputs: &[],
    outputs: &[],
    dynamic_ports: true,
};

#[cfg(unix)]
fn killed_by(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    status.signal().map_or_else(|| "was killed by a signal".into(), |s| format!("was killed by signal {s}"))
}

#[cfg(not(unix))]
fn killed_by(_: &ExitStatus) -> String {
    "was killed by a signal".into()
}

/// `train-data` → `TRAIN_DATA`.
pub fn env_name(port: &str) -> String {
    port.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

/// `command`'s parameters (see [`SPEC`]).
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub run: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl TypedComponent for CommandStep {
    type Params = Params;

    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn run(&self, params: Params, ctx: &ExecContext) -> Result<(), ExecError> {
        let argv = &params.run;
        let Some((program, args)) = argv.split_first() else {
            return Err(ExecError::failed(
                "`run` is empty; give the program and its arguments, e.g. [\"python3\", \"train.py\"]",
            ));
        };
        let launch = prepare(ctx, &params.env, program, args)?;
        ctx.log(format!("$ {}", argv.join(" ")));
        let mut group = launch.spawn().map_err(ExecError::Failed)?;
        let status = wait(ctx, &mut group, program)?;
        group.end_leftovers();
        if status.success() {
            Ok(())
        } else {
            let how = match status.code() {
                Some(c) => format!("exited with code {c}"),
                None => killed_by(&status),
            };
            Err(ExecError::failed(format!("`{}` {how}; see the step log {}", argv.join(" "), ctx.log_path.display())))
        }
    }
}

/// The program with its folder, log and environment, not started yet.
fn prepare(
    ctx: &ExecContext,
    env: &BTreeMap<String, String>,
    program: &str,
    args: &[String],
) -> Result<supervise::Launch, ExecError> {
    let log = || {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&ctx.log_path)
            .map_err(|e| ExecError::io(format!("cannot open the step log {}", ctx.log_path.display()), e))
    };
    let mut launch = supervise::command(program, args);
    let cmd = launch.cmd();
    cmd.current_dir(&ctx.base_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log()?))
        .stderr(Stdio::from(log()?))
        .env("FLYWHEEL_RUN_ID", ctx.run_id.to_string())
        .env("FLYWHEEL_STEP", &ctx.step)
        .env("FLYWHEEL_OUTPUT_DIR", &ctx.output_dir);
    for (name, input) in &ctx.inputs {
        cmd.env(format!("FLYWHEEL_INPUT_{}", env_name(name)), &input.path);
    }
    for (name, _) in &ctx.outputs {
        cmd.env(format!("FLYWHEEL_OUTPUT_{}", env_name(name)), ctx.output_path(name));
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok(launch)
}

/// Waits for the program; on a cancel (or the step's timeout) ends its group.
fn wait(ctx: &ExecContext, group: &mut supervise::Group, program: &str) -> Result<ExitStatus, ExecError> {
    // Poll quickly at first (most steps are short), then back off.
    let mut polls = 0u32;
    loop {
        match group.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(e) => {
                group.stop();
                return Err(ExecError::io(format!("waiting for `{program}`"), e));
            }
        }
        if ctx.cancel.is_cancelled() {
            group.stop();
            ctx.log(format!("stopped `{program}` and its process group"));
            return Err(ExecError::Cancelled);
        }
        polls += 1;
        std::thread::sleep(if polls < 200 { Duration::from_micros(250) } else { Duration::from_millis(10) });
    }
}
