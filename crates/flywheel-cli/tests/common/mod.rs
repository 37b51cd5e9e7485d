//! Helpers for tests that run the real `flywheel` binary.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Env {
    pub dir: tempfile::TempDir,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_flywheel")
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

impl Env {
    pub fn new() -> Self {
        Env { dir: tempfile::tempdir().expect("tempdir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    /// A command for the real binary, run in the temp folder with its own home.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).current_dir(self.dir.path()).env("FLYWHEEL_HOME", self.home()).env_remove("FLYWHEEL_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        self.cmd(args).output().expect("run flywheel").into()
    }

    pub fn runs(&self) -> Value {
        let r = self.run(&["runs", "list", "--json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.json()
    }
}

impl Env {
    /// The execution of `step` in run `run`, as `runs show --json` lists it.
    pub fn execution(&self, run: i64, step: &str) -> Value {
        let show = self.run(&["runs", "show", &run.to_string(), "--json"]).json();
        show["executions"].as_array().unwrap().iter().find(|e| e["step"] == step).cloned().unwrap()
    }

    /// What `step` logged in run `run`.
    pub fn step_log(&self, run: i64, step: &str) -> String {
        std::fs::read_to_string(self.execution(run, step)["log_path"].as_str().unwrap()).unwrap()
    }

    /// The file behind the first output of `step` in run `run`.
    pub fn step_output(&self, run: i64, step: &str) -> PathBuf {
        let e = self.execution(run, step);
        PathBuf::from(e["outputs"][0]["artifact"]["uri"].as_str().unwrap().trim_start_matches("file://"))
    }
}

/// The outcome of one step in `run --json` output.
pub fn step<'a>(outcome: &'a Value, name: &str) -> &'a Value {
    outcome["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["step"] == name))
        .unwrap_or_else(|| panic!("no step {name} in {outcome:#}"))
}

pub const PIPELINE_HEADER: &str = "[pipeline]\nname = \"t\"\n";

/// A pipeline training logistic regression `clf` on `x` and `city` of
/// `data` (a `label` column) and pushing it to `production`: what the
/// serving, replay and `up` tests serve.
pub fn clf_pipeline(data: &str) -> String {
    format!(
        r#"
[pipeline]
name = "clf"
[steps.ingest]
component = "ingest"
params = {{ path = "{data}" }}
[steps.train]
component = "train"
inputs = {{ data = "ingest.train" }}
params = {{ target = "label", model = "logistic", features = ["x", "city"] }}
[steps.push]
component = "push"
inputs = {{ model = "train.model" }}
params = {{ model_name = "clf", alias = "production" }}
"#
    )
}
