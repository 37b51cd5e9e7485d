//! Processes end when they should, through the real binary: a `command`
//! step's whole process group ends on its timeout, on SIGTERM to flywheel
//! and when flywheel is killed outright; SIGTERM stops a long native
//! `train` promptly and the run is recorded `cancelled`.
//!
//! Each test's `sleep` has its own duration, which marks its processes in
//! /proc so that tests running side by side do not see each other's.

mod common;
use common::*;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Pids of live processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} did not happen within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// A step whose shell waits on a child `sleep SECONDS`: killing the shell
/// alone would leave the `sleep` running.
fn sleeping_pipeline(env: &Env, seconds: &str, extra: &str) {
    env.write(
        "p.toml",
        &format!(
            "{PIPELINE_HEADER}[steps.nap]\ncomponent = \"command\"\n\
             params = {{ run = [\"sh\", \"-c\", \"sleep {seconds}; echo woke > $FLYWHEEL_OUTPUT_OUT\"] }}\n\
             outputs = [\"out\"]\n{extra}\n"
        ),
    );
}

fn start(env: &Env, args: &[&str]) -> Child {
    env.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start flywheel")
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as i32, signal) };
}

#[test]
fn a_timed_out_command_step_leaves_no_process_of_its_group() {
    let env = Env::new();
    let marker = "sleep 7.31";
    sleeping_pipeline(&env, "7.31", "timeout = \"1s\"");
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(step(&r.json(), "nap")["error"].as_str().unwrap().contains("timed out"), "{}", r.stdout);
    wait_for("the end of the step's `sleep`", Duration::from_secs(2), || processes_with(marker).is_empty());
}

#[test]
fn sigterm_to_flywheel_during_a_command_step_ends_its_group() {
    let env = Env::new();
    let marker = "sleep 7.32";
    sleeping_pipeline(&env, "7.32", "");
    let child = start(&env, &["run", "p.toml", "--json"]);
    wait_for("the step's `sleep`", Duration::from_secs(20), || !processes_with(marker).is_empty());
    signal(&child, libc::SIGTERM);
    let out: Ran = child.wait_with_output().unwrap().into();
    assert_eq!(out.code, 130, "{}", out.stderr);
    assert_eq!(step(&out.json(), "nap")["status"], "cancelled");
    wait_for("the end of the step's `sleep`", Duration::from_secs(2), || processes_with(marker).is_empty());
}

#[test]
fn sigkill_of_flywheel_ends_the_command_steps_group() {
    let env = Env::new();
    let marker = "sleep 7.33";
    sleeping_pipeline(&env, "7.33", "");
    let mut child = start(&env, &["run", "p.toml"]);
    wait_for("the step's `sleep`", Duration::from_secs(20), || !processes_with(marker).is_empty());
    child.kill().unwrap(); // SIGKILL: flywheel cannot clean up itself
    child.wait().unwrap();
    wait_for("the end of the step's `sleep`", Duration::from_secs(3), || processes_with(marker).is_empty());
    assert_eq!(env.runs()[0]["status"], "interrupted");
}

#[test]
fn what_a_command_step_leaves_running_in_the_background_ends_with_it() {
    let env = Env::new();
    let marker = "sleep 7.34";
    env.write(
        "p.toml",
        &format!(
            "{PIPELINE_HEADER}[steps.fork]\ncomponent = \"command\"\n\
             params = {{ run = [\"sh\", \"-c\", \"sleep 7.34 & echo done > $FLYWHEEL_OUTPUT_OUT\"] }}\n\
             outputs = [\"out\"]\n"
        ),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    wait_for("the end of the background `sleep`", Duration::from_secs(2), || processes_with(marker).is_empty());
}

#[test]
fn a_program_that_cannot_start_is_named_with_the_reason() {
    let env = Env::new();
    env.write(
        "p.toml",
        &format!("{PIPELINE_HEADER}[steps.x]\ncomponent = \"command\"\nparams = {{ run = [\"./no-such-program\"] }}\n"),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = step(&r.json(), "x")["error"].as_str().unwrap().to_string();
    assert!(e.contains("cannot start `./no-such-program`") && e.contains("No such file"), "{e}");
}

/// 4,000 rows of three numeric features and a numeric target.
fn regression_csv() -> String {
    let mut s = String::from("a,b,c,y\n");
    let mut state: u64 = 5;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f64) / ((1u64 << 31) as f64)
    };
    for _ in 0..4000 {
        let (a, b, c) = (next(), next(), next());
        s.push_str(&format!("{a:.5},{b:.5},{c:.5},{:.5}\n", a * b + (6.0 * c).sin() + next()));
    }
    s
}

#[test]
fn sigterm_during_a_long_train_exits_130_promptly_and_records_the_run_cancelled() {
    let env = Env::new();
    env.write("d.csv", &regression_csv());
    // A million boosting iterations: far longer than the test.
    env.write(
        "p.toml",
        &format!(
            "{PIPELINE_HEADER}[steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"d.csv\" }}\n\
             [steps.train]\ncomponent = \"train\"\ninputs = {{ data = \"ingest.train\" }}\n\
             params = {{ target = \"y\", model = \"gbt\", max_iterations = 1000000, early_stopping = \"off\" }}\n"
        ),
    );
    let child = start(&env, &["run", "p.toml", "--json"]);
    let log = env.home().join("logs/run-1/train.log");
    wait_for("training to start", Duration::from_secs(60), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("training gbt"))
    });
    // Well inside the boosting loop.
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    signal(&child, libc::SIGTERM);
    let out: Ran = child.wait_with_output().unwrap().into();
    let took = sent.elapsed();
    assert_eq!(out.code, 130, "{}", out.stderr);
    assert!(took < Duration::from_secs(2), "flywheel took {took:?} to exit after SIGTERM");
    let o = out.json();
    assert_eq!(o["status"], "cancelled");
    assert_eq!(step(&o, "train")["status"], "cancelled");
    assert_eq!(env.runs()[0]["status"], "cancelled");
}
