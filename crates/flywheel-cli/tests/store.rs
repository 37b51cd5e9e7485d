//! The store heals or says why: blobs checked against their digests, a lost
//! metadata database refused, stale executions and leftovers of dead
//! processes cleaned up at open, and `flywheel doctor [--repair]`.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn sh_step(name: &str, script: &str, extra: &str) -> String {
    format!(
        "[steps.{name}]\ncomponent = \"command\"\nparams = {{ run = [\"sh\", \"-c\", '''{script}'''] }}\noutputs = [\"out\"]\n{extra}\n"
    )
}

/// `make` writes 2000 lines; `count` counts them once `input.txt` exists.
fn producer_consumer(env: &Env) {
    let p = format!(
        "{PIPELINE_HEADER}{}{}",
        sh_step("make", "seq 1 2000 > $FLYWHEEL_OUTPUT_OUT", ""),
        sh_step(
            "count",
            "cat input.txt > /dev/null && wc -l < $FLYWHEEL_INPUT_X | tr -d ' ' > $FLYWHEEL_OUTPUT_OUT",
            "inputs = { x = \"make.out\" }"
        ),
    );
    env.write("p.toml", &p);
}

fn seq_text(n: usize) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

fn sql(env: &Env, statement: &str) {
    let conn = rusqlite::Connection::open(env.home().join("metadata.db")).unwrap();
    conn.execute_batch(statement).unwrap();
}

fn kinds(report: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> =
        report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap().to_string()).collect();
    k.sort();
    k
}

/// A succeeded two-step run; returns the blob of `make`'s output.
fn succeeded_run(env: &Env) -> PathBuf {
    producer_consumer(env);
    env.write("input.txt", "ready");
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    env.step_output(r.json()["run_id"].as_i64().unwrap(), "make")
}

#[test]
fn a_truncated_blob_is_named_by_doctor_and_rewritten_by_its_producers_next_run_or_resume() {
    let env = Env::new();
    producer_consumer(&env);
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "count fails until input.txt exists: {}", r.stderr);
    let run = r.json()["run_id"].as_i64().unwrap();
    let blob = env.step_output(run, "make");
    let digest = blob.file_name().unwrap().to_string_lossy().into_owned();
    truncate(&blob, 100);

    // Resuming does not keep `make`'s output, whose blob no longer matches
    // its digest: `make` runs again, rewrites it, and `count` reads it whole.
    env.write("input.txt", "ready");
    let r = env.run(&["resume", &run.to_string(), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = r.json();
    assert_eq!(step(&o, "make")["resumed"], false, "{o:#}");
    assert_eq!(std::fs::read_to_string(&blob).unwrap(), seq_text(2000));
    truncate(&blob, 100);
    let r = env.run(&["doctor", "--json"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains(&digest), "doctor names the blob: {}", r.stdout);

    // A new run: the cached output of `make` does not count, so it runs
    // again and its output replaces the truncated blob.
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = r.json();
    assert_eq!(step(&o, "make")["cache_hit"], false);
    assert_eq!(step(&o, "count")["status"], "succeeded");
    assert_eq!(std::fs::read_to_string(&blob).unwrap(), seq_text(2000));
    let run2 = o["run_id"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(env.step_output(run2, "count")).unwrap().trim(), "2000");
}

#[test]
fn an_empty_or_missing_metadata_db_beside_artifacts_and_logs_is_refused_with_exit_3() {
    let env = Env::new();
    succeeded_run(&env);
    let db = env.home().join("metadata.db");
    let log = env.home().join("logs/run-1/make.log");
    let log_before = std::fs::read_to_string(&log).unwrap();
    truncate(&db, 0);

    for args in [&["runs", "list"][..], &["run", "p.toml"], &["doctor"]] {
        let r = env.run(args);
        assert_eq!(r.code, 3, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(&db.display().to_string()), "{}", r.stderr);
        assert!(r.stderr.contains("empty (0 bytes)") && r.stderr.contains("backup"), "{}", r.stderr);
    }
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "the empty database was not restarted");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), log_before, "the old log was not appended to");

    std::fs::remove_file(&db).unwrap();
    let r = env.run(&["runs", "list"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("is missing"), "{}", r.stderr);
    assert!(!db.exists());

    std::fs::write(&db, "id,name\n1,not a database\n").unwrap();
    let r = env.run(&["runs", "list"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("is not a SQLite database"), "{}", r.stderr);
}

#[test]
fn a_new_home_still_starts_with_an_empty_database() {
    let env = Env::new();
    let r = env.run(&["runs", "list", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(env.home().join("metadata.db").exists());
}

#[test]
fn executions_left_running_under_an_ended_run_are_closed_at_open() {
    let env = Env::new();
    succeeded_run(&env);
    // As a process that gave up on a step without recording its end leaves it.
    sql(
        &env,
        "UPDATE executions SET status = 'running', ended_at = NULL WHERE step = 'count'; UPDATE runs SET status = 'failed'",
    );
    let e = env.execution(1, "count");
    assert_eq!(e["status"], "interrupted", "{e:#}");
    assert!(e["error"].as_str().unwrap().contains("left running"), "{e:#}");
    assert_eq!(env.execution(1, "make")["status"], "succeeded");
}

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn work_folders_and_staging_files_of_a_killed_process_are_removed_at_open() {
    let env = Env::new();
    let p = format!(
        "{PIPELINE_HEADER}{}{}",
        sh_step("first", "echo 1 > $FLYWHEEL_OUTPUT_OUT", ""),
        sh_step(
            "second",
            "touch second.started; i=0; while [ ! -f release ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; cat $FLYWHEEL_INPUT_X > $FLYWHEEL_OUTPUT_OUT",
            "inputs = { x = \"first.out\" }"
        ),
    );
    env.write("p.toml", &p);
    let mut child = env
        .cmd(&["run", "p.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| env.path().join("second.started").exists(), "the second step to start");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let work = env.home().join("work");
    assert_eq!(entries(&work).len(), 1, "the killed step's work folder: {:?}", entries(&work));
    // A blob write that never reached its rename.
    let staging = env.home().join("artifacts/blobs/ab").join(format!("{}#1", "ab".repeat(32)));
    std::fs::create_dir_all(staging.parent().unwrap()).unwrap();
    std::fs::write(&staging, "half a blob").unwrap();

    let runs = env.runs();
    env.write("release", "");
    assert_eq!(runs[0]["status"], "interrupted");
    assert!(entries(&work).is_empty(), "{:?}", entries(&work));
    assert!(!staging.exists());
    let r = env.run(&["doctor", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn run_log_folders_are_never_reused() {
    let env = Env::new();
    succeeded_run(&env);
    let old_log = env.home().join("logs/run-1/make.log");
    let before = std::fs::read_to_string(&old_log).unwrap();
    // The home gets a database without runs beside the old logs (one
    // copied from a fresh home): its next run is numbered 1 again.
    let fresh = Env::new();
    assert_eq!(fresh.run(&["runs", "list"]).code, 0);
    std::fs::copy(fresh.home().join("metadata.db"), env.home().join("metadata.db")).unwrap();
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["run_id"], 1);
    let log = PathBuf::from(env.execution(1, "make")["log_path"].as_str().unwrap());
    assert!(!log.starts_with(env.home().join("logs/run-1")), "{}", log.display());
    assert!(log.exists());
    assert_eq!(std::fs::read_to_string(&old_log).unwrap(), before);
}

#[test]
fn doctor_on_a_healthy_home_exits_0() {
    let env = Env::new();
    succeeded_run(&env);
    let r = env.run(&["doctor"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("healthy"), "{}", r.stdout);
    let r = env.run(&["doctor", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = r.json();
    assert_eq!(report["healthy"], true);
    assert_eq!(report["findings"].as_array().unwrap().len(), 0, "{report:#}");
    assert_eq!(report["checked"]["artifacts"], 2);
    assert_eq!(report["checked"]["runs"], 1);

    // A home that does not exist is not created by doctor.
    let r = env.cmd(&["doctor"]).env("FLYWHEEL_HOME", env.path().join("nowhere")).output().unwrap();
    assert_eq!(r.status.code(), Some(3));
    assert!(!env.path().join("nowhere").exists());
}

#[test]
fn doctor_reports_a_corrupt_blob_an_orphan_and_a_stale_execution_and_repair_fixes_them() {
    let env = Env::new();
    let blob = succeeded_run(&env);
    let digest = blob.file_name().unwrap().to_string_lossy().into_owned();
    truncate(&blob, 10);
    sql(
        &env,
        "UPDATE executions SET status = 'running', ended_at = NULL WHERE step = 'count'; UPDATE runs SET status = 'failed'",
    );
    let orphan = env.home().join("artifacts/blobs/cd").join("cd".repeat(32));
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, "stored, never recorded").unwrap();
    let staging = blob.with_file_name(format!("{digest}#3"));
    std::fs::write(&staging, "half").unwrap();
    std::fs::create_dir_all(env.home().join("work/exec-77-1")).unwrap();

    let r = env.run(&["doctor", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = r.json();
    assert_eq!(kinds(&report), ["corrupt_blob", "orphan_blob", "stale_execution", "temp_file", "work_folder"]);
    let corrupt = report["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "corrupt_blob").unwrap();
    assert_eq!(corrupt["subject"], digest.as_str());
    assert!(corrupt["problem"].as_str().unwrap().contains(&blob.display().to_string()), "{corrupt:#}");
    assert!(report["findings"].as_array().unwrap().iter().all(|f| f["repaired"] == false));
    // Without --repair nothing changes.
    assert!(blob.exists() && orphan.exists() && staging.exists());
    let human = env.run(&["doctor"]);
    assert_eq!(human.code, 1);
    assert!(human.stdout.contains(&digest) && human.stdout.contains("flywheel doctor --repair"), "{}", human.stdout);

    let r = env.run(&["doctor", "--repair", "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report = r.json();
    assert_eq!(kinds(&report).len(), 5);
    assert!(report["findings"].as_array().unwrap().iter().all(|f| f["repaired"] == true), "{report:#}");
    assert!(!blob.exists() && !orphan.exists() && !staging.exists());
    assert!(entries(&env.home().join("work")).is_empty());
    assert_eq!(env.execution(1, "count")["status"], "interrupted");
    // What is left heals by itself: the blob's producer runs again.
    let r = env.run(&["doctor", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(kinds(&r.json()), ["missing_blob"]);
    assert_eq!(r.json()["findings"][0]["severity"], "warning");

    // The producer runs again and the store is whole.
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(step(&r.json(), "make")["cache_hit"], false);
    assert_eq!(std::fs::read_to_string(&blob).unwrap(), seq_text(2000));
    let r = env.run(&["doctor", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(kinds(&r.json()).len(), 0, "{}", r.stdout);
}

#[test]
fn a_listing_piped_into_a_reader_that_stops_early_ends_without_a_panic() {
    let env = Env::new();
    env.write(
        "p.toml",
        "[pipeline]\nname = \"p\"\n[steps.a]\ncomponent = \"command\"\nparams = { run = [\"true\"] }\n",
    );
    for _ in 0..3 {
        assert_eq!(env.run(&["run", "p.toml"]).code, 0);
    }
    let mut child = std::process::Command::new(bin())
        .args(["--home", env.home().to_str().unwrap(), "runs", "list", "--limit", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before anything is written
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}
