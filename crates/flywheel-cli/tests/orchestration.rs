//! The orchestrator through the real binary: parallelism, failure
//! propagation, retries, timeouts, caching by content, cancellation, SIGKILL
//! and resume. Steps are `command` steps running `sh`.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn sh_step(name: &str, script: &str, extra: &str) -> String {
    format!(
        "[steps.{name}]\ncomponent = \"command\"\nparams = {{ run = [\"sh\", \"-c\", '''{script}'''] }}\noutputs = [\"out\"]\n{extra}\n"
    )
}

#[test]
fn a_failed_step_fails_its_dependents_while_independent_branches_finish() {
    let env = Env::new();
    let p = format!(
        "{PIPELINE_HEADER}{}{}{}",
        sh_step("bad", "echo broken >&2; exit 3", ""),
        sh_step("after_bad", "echo x > $FLYWHEEL_OUTPUT_OUT", "inputs = { x = \"bad.out\" }"),
        sh_step("good", "echo fine > $FLYWHEEL_OUTPUT_OUT", ""),
    );
    env.write("p.toml", &p);
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let o = r.json();
    assert_eq!(o["status"], "failed");
    assert_eq!(step(&o, "bad")["status"], "failed");
    assert!(step(&o, "bad")["error"].as_str().unwrap().contains("exited with code 3"));
    assert_eq!(step(&o, "after_bad")["status"], "skipped");
    assert_eq!(step(&o, "good")["status"], "succeeded");
    // The step's stderr went to its log.
    let show = env.run(&["runs", "show", &o["run_id"].to_string(), "--json"]).json();
    let bad = show["executions"].as_array().unwrap().iter().find(|e| e["step"] == "bad").unwrap();
    let log = std::fs::read_to_string(bad["log_path"].as_str().unwrap()).unwrap();
    assert!(log.contains("broken"), "{log}");
    assert!(bad["outputs"].as_array().unwrap().is_empty());
}

#[test]
fn independent_steps_run_in_parallel_up_to_jobs() {
    // Each step records when it started and ended; with --jobs 2 the two
    // intervals overlap, with --jobs 1 they do not.
    let env = Env::new();
    let script = "date +%s%N > $FLYWHEEL_OUTPUT_OUT; sleep 0.4; date +%s%N >> $FLYWHEEL_OUTPUT_OUT";
    let p =
        format!("{PIPELINE_HEADER}{}{}", sh_step("a", script, "cache = false"), sh_step("b", script, "cache = false"));
    env.write("p.toml", &p);
    let intervals = |jobs: &str| {
        let r = env.run(&["run", "p.toml", "--json", "--jobs", jobs]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let o = r.json();
        let show = env.run(&["runs", "show", &o["run_id"].to_string(), "--json"]).json();
        let mut spans: Vec<(u128, u128)> = show["executions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let uri =
                    e["outputs"][0]["artifact"]["uri"].as_str().unwrap().trim_start_matches("file://").to_string();
                let text = std::fs::read_to_string(uri).unwrap();
                let v: Vec<u128> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
                (v[0], v[1])
            })
            .collect();
        spans.sort();
        spans
    };
    let par = intervals("2");
    assert!(par[1].0 < par[0].1, "with --jobs 2 the steps should overlap: {par:?}");
    let seq = intervals("1");
    assert!(seq[1].0 >= seq[0].1, "with --jobs 1 the steps must not overlap: {seq:?}");
}

#[test]
fn retries_back_off_and_then_succeed() {
    let env = Env::new();
    // Fails on the first two attempts, succeeds on the third.
    let script = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ] || exit 1; echo ok > $FLYWHEEL_OUTPUT_OUT";
    env.write(
        "p.toml",
        &format!("{PIPELINE_HEADER}{}", sh_step("flaky", script, "retries = 3\nretry_backoff = \"10ms\"")),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = step(&r.json(), "flaky").clone();
    assert_eq!(s["status"], "succeeded");
    assert_eq!(s["attempts"], 3);

    // Without enough retries the step fails after retries + 1 attempts.
    std::fs::remove_file(env.path().join("count")).unwrap();
    env.write(
        "q.toml",
        &format!(
            "{PIPELINE_HEADER}{}",
            sh_step("flaky", script, "retries = 1\nretry_backoff = \"10ms\"\ncache = false")
        ),
    );
    let r = env.run(&["run", "q.toml", "--json"]);
    assert_eq!(r.code, 1);
    assert_eq!(step(&r.json(), "flaky")["attempts"], 2);
}

#[test]
fn a_step_over_its_timeout_is_stopped_and_fails() {
    let env = Env::new();
    env.write("p.toml", &format!("{PIPELINE_HEADER}{}", sh_step("slow", "sleep 20", "timeout = \"300ms\"")));
    let started = Instant::now();
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1);
    assert!(started.elapsed() < Duration::from_secs(15), "the timeout did not stop the step");
    let s = step(&r.json(), "slow").clone();
    assert_eq!(s["status"], "failed");
    assert!(s["error"].as_str().unwrap().contains("timed out after 300 ms"), "{s}");
}

#[test]
fn cache_keys_follow_content_not_names() {
    let env = Env::new();
    env.write("a.csv", "x,y\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14\n15,16\n17,18\n19,20\n");
    std::fs::copy(env.path().join("a.csv"), env.path().join("b.csv")).unwrap();
    let pipeline = |data: &str| {
        format!(
            "{PIPELINE_HEADER}[parameters]\ndata = \"{data}\"\n[steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"${{data}}\", eval_fraction = 0.5 }}\n\
             [steps.stats]\ncomponent = \"statistics\"\ninputs = {{ data = \"ingest.train\" }}\n"
        )
    };
    env.write("p.toml", &pipeline("a.csv"));
    let first = env.run(&["run", "p.toml", "--json"]).json();
    assert_eq!(step(&first, "ingest")["cache_hit"], false);

    // Same file, same parameters: everything is a hit.
    let again = env.run(&["run", "p.toml", "--json"]).json();
    assert_eq!(step(&again, "ingest")["cache_hit"], true);
    assert_eq!(step(&again, "stats")["cache_hit"], true);

    // Another file name with identical content: ingest runs (its parameters
    // differ) but writes the same dataset, so statistics is a hit.
    let other = env.run(&["run", "p.toml", "--json", "--set", "data=b.csv"]).json();
    assert_eq!(step(&other, "ingest")["cache_hit"], false);
    assert_eq!(step(&other, "stats")["cache_hit"], true);

    // Changed content under the same name: a miss all the way down.
    env.write("a.csv", "x,y\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14\n15,16\n17,18\n19,21\n");
    let changed = env.run(&["run", "p.toml", "--json"]).json();
    assert_eq!(step(&changed, "ingest")["cache_hit"], false);
    assert_eq!(step(&changed, "stats")["cache_hit"], false);

    // --no-cache runs everything.
    let fresh = env.run(&["run", "p.toml", "--json", "--no-cache"]).json();
    assert_eq!(step(&fresh, "ingest")["cache_hit"], false);
}

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pipeline whose second step blocks until a file appears, so the test
/// can kill or cancel the run while it is inside that step.
fn blocking_pipeline(env: &Env) {
    let p = format!(
        "{PIPELINE_HEADER}{}{}",
        sh_step("first", "echo 1 > $FLYWHEEL_OUTPUT_OUT", ""),
        sh_step(
            "second",
            // Gives up after 30 s so that nothing outlives the test.
            "touch second.started; i=0; while [ ! -f release ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; cat $FLYWHEEL_INPUT_X > $FLYWHEEL_OUTPUT_OUT",
            "inputs = { x = \"first.out\" }"
        ),
    );
    env.write("p.toml", &p);
}

#[test]
fn sigkill_leaves_the_store_consistent_and_resume_finishes_the_run() {
    let env = Env::new();
    blocking_pipeline(&env);
    let mut child = env
        .cmd(&["run", "p.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| env.path().join("second.started").exists(), "the second step to start");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let runs = env.runs();
    assert_eq!(runs[0]["status"], "interrupted", "{runs:#}");
    let run_id = runs[0]["id"].to_string();
    let show = env.run(&["runs", "show", &run_id, "--json"]).json();
    let statuses: Vec<(&str, &str)> = show["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["step"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, [("first", "succeeded"), ("second", "interrupted")]);

    env.write("release", "");
    let r = env.run(&["resume", &run_id, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = r.json();
    assert_eq!(o["status"], "succeeded");
    assert_eq!(step(&o, "first")["resumed"], true);
    assert_eq!(step(&o, "second")["status"], "succeeded");
    assert_eq!(env.runs()[0]["status"], "succeeded");

    // A finished run has nothing to resume.
    let again = env.run(&["resume", &run_id]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already succeeded"), "{}", again.stderr);
}

#[test]
fn ctrl_c_cancels_cleanly_and_records_the_run_as_cancelled() {
    let env = Env::new();
    blocking_pipeline(&env);
    let child = env
        .cmd(&["run", "p.toml", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(|| env.path().join("second.started").exists(), "the second step to start");
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out: Ran = child.wait_with_output().unwrap().into();
    assert_eq!(out.code, 130, "{}", out.stderr);
    let o = out.json();
    assert_eq!(o["status"], "cancelled");
    assert_eq!(step(&o, "second")["status"], "cancelled");
    assert_eq!(env.runs()[0]["status"], "cancelled");
}

#[test]
fn an_unwritable_home_is_reported_before_anything_runs() {
    let env = Env::new();
    env.write("p.toml", &format!("{PIPELINE_HEADER}{}", sh_step("a", "true", "")));
    env.write("not-a-dir", "a file");
    let r = env.cmd(&["run", "p.toml"]).env("FLYWHEEL_HOME", env.path().join("not-a-dir/home")).output().unwrap();
    let r: Ran = r.into();
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("cannot use home folder"), "{}", r.stderr);
    assert!(r.stderr.contains("--home or FLYWHEEL_HOME"), "{}", r.stderr);
}

#[test]
fn a_missing_output_fails_the_step_and_records_nothing_half_written() {
    let env = Env::new();
    env.write("p.toml", &format!("{PIPELINE_HEADER}{}", sh_step("lazy", "true", "")));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1);
    let s = step(&r.json(), "lazy").clone();
    assert!(s["error"].as_str().unwrap().contains("did not write its output `out`"), "{s}");
}

#[test]
fn sigkill_at_any_point_leaves_a_consistent_store_that_resume_finishes() {
    let mut chain = String::from(PIPELINE_HEADER);
    for i in 0..8 {
        let input = if i > 0 { format!("inputs = {{ prev = \"s{}.out\" }}", i - 1) } else { String::new() };
        chain.push_str(&sh_step(&format!("s{i}"), &format!("sleep 0.03; echo {i} > $FLYWHEEL_OUTPUT_OUT"), &input));
    }
    for delay_ms in [0u64, 10, 30, 60, 120, 200, 350] {
        let env = Env::new();
        env.write("p.toml", &chain);
        let mut child = env
            .cmd(&["run", "p.toml"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();

        // The store opens and lists runs whatever the moment of the kill.
        let runs = env.runs();
        let Some(run) = runs.as_array().and_then(|r| r.first()) else { continue };
        let status = run["status"].as_str().unwrap();
        assert!(["interrupted", "succeeded"].contains(&status), "after {delay_ms} ms: {run:#}");
        let id = run["id"].to_string();
        let show = env.run(&["runs", "show", &id, "--json"]);
        assert_eq!(show.code, 0, "{}", show.stderr);
        if status == "interrupted" {
            let r = env.run(&["resume", &id, "--json"]);
            assert_eq!(r.code, 0, "after {delay_ms} ms: {}", r.stderr);
            let o = r.json();
            assert_eq!(o["status"], "succeeded");
            assert_eq!(o["steps"].as_array().unwrap().len(), 8);
        }
        // Every step's latest execution in the run succeeded, with an output.
        let show = env.run(&["runs", "show", &id, "--json"]).json();
        for i in 0..8 {
            let last =
                show["executions"].as_array().unwrap().iter().rev().find(|e| e["step"] == format!("s{i}")).unwrap();
            assert_eq!(last["status"], "succeeded", "after {delay_ms} ms: s{i}");
            assert_eq!(last["outputs"].as_array().unwrap().len(), 1);
        }
    }
}

#[test]
fn resume_reruns_only_what_failed() {
    let env = Env::new();
    let p = format!(
        "{PIPELINE_HEADER}{}{}",
        sh_step("first", "date +%s%N > $FLYWHEEL_OUTPUT_OUT", "cache = false"),
        sh_step("second", "cat input.txt > $FLYWHEEL_OUTPUT_OUT", "inputs = { x = \"first.out\" }"),
    );
    env.write("p.toml", &p);
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1);
    let failed = r.json();
    let id = failed["run_id"].to_string();
    let first_exec = step(&failed, "first")["execution_id"].clone();

    env.write("input.txt", "now it exists");
    let r = env.run(&["resume", &id, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = r.json();
    assert_eq!(o["run_id"].to_string(), id);
    assert_eq!(step(&o, "first")["resumed"], true);
    assert_eq!(step(&o, "second")["status"], "succeeded");
    // `first` ran once in this run: its execution was kept, not repeated.
    let show = env.run(&["runs", "show", &id, "--json"]).json();
    let firsts: Vec<_> = show["executions"].as_array().unwrap().iter().filter(|e| e["step"] == "first").collect();
    assert_eq!(firsts.len(), 1);
    assert_eq!(firsts[0]["id"], first_exec);
}
