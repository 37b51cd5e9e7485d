//! `flywheel up` through the real binary: a deployment served and
//! monitored; traffic that drifts from the training data (sent with
//! `flywheel replay`) fires the drift trigger after two windows in a row,
//! and the run it starts records why; SIGTERM stops it; started again with
//! no file named, `up` runs the deployment recorded in the home and does
//! not fire again for the windows already used.

mod common;
#[path = "serve/http.rs"]
mod http;
#[path = "common/up.rs"]
mod up;

use common::*;
use std::time::Duration;
use up::{Up, replay};

/// `x` and `city` rows: as trained on, or with `x` moved far away.
fn rows(n: usize, shifted: bool) -> String {
    let mut s = String::from("x,city,label\n");
    for i in 0..n {
        let x = ((i * 37) % 101) as f64 / 25.0 - 2.0 + if shifted { 9.0 } else { 0.0 };
        let city = if shifted { "oslo" } else { ["lyon", "oslo", "kyiv", "lima"][i % 4] };
        let label = if (x > 0.1) != (i % 11 == 0) { "yes" } else { "no" };
        s.push_str(&format!("{x:.4},{city},{label}\n"));
    }
    s
}

const DEPLOYMENT: &str = r#"
[deployment]
pipeline = "clf.toml"
[monitoring]
window = 20
[[trigger]]
on = "drift"
windows = 2
cooldown = "10m"
"#;

#[test]
fn drifting_traffic_fires_the_drift_trigger_once_and_its_run_says_why() {
    let env = Env::new();
    env.write("train.csv", &rows(200, false));
    env.write("normal.csv", &rows(40, false));
    env.write("shifted.csv", &rows(60, true));
    env.write("clf.toml", &clf_pipeline("train.csv"));
    env.write("deploy.toml", DEPLOYMENT);
    assert_eq!(env.run(&["run", "clf.toml"]).code, 0);

    let (mut up, addr) = Up::start(&env, &["deploy.toml"]);
    replay(&env, &addr, "normal.csv");
    up.wait_for("window 2 of clf@1", Duration::from_secs(20));
    replay(&env, &addr, "shifted.csv");
    let fired = up.wait_for("trigger fired (drift:", Duration::from_secs(20));
    assert!(fired.contains("drifted from the training data in windows"), "{fired}");
    up.wait_for("succeeded", Duration::from_secs(60));
    let (code, printed) = up.stop();
    assert_eq!(code, 0, "{printed:#?}");
    let windows = printed.iter().filter(|l| l.contains("window ")).count();
    assert_eq!(windows, 5, "100 rows in windows of 20: {printed:#?}");

    let runs = env.runs();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let triggered = runs.iter().find(|r| r["trigger"] != "manual").unwrap();
    assert!(triggered["trigger"].as_str().unwrap().starts_with("drift: "), "{triggered}");
    assert_eq!(triggered["status"], "succeeded");

    // Again, with the deployment recorded in the home: more drifted traffic,
    // but the windows that fired are used and the cooldown runs.
    let (mut up, addr) = Up::start(&env, &[]);
    replay(&env, &addr, "shifted.csv");
    up.wait_for("window 8 of clf@1", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(600));
    let (code, printed) = up.stop();
    assert_eq!(code, 0);
    assert!(!printed.iter().any(|l| l.contains("trigger fired")), "fired again: {printed:#?}");
    assert_eq!(env.runs().as_array().unwrap().len(), 2);
}

/// A run asked for by hand: `flywheel trigger` and `POST
/// /v2/deployments/NAME/trigger` (behind the token) each start one, with
/// the reason given; a deployment that is not recorded, or declares no
/// `on_demand` trigger, is refused.
#[test]
fn on_demand_runs_are_asked_for_from_the_cli_and_over_http() {
    let env = Env::new();
    env.write("train.csv", &rows(200, false));
    env.write("clf.toml", &clf_pipeline("train.csv"));
    env.write("deploy.toml", "[deployment]\npipeline = \"clf.toml\"\n[[trigger]]\non = \"on_demand\"\n");
    env.write("plain.toml", "[deployment]\nname = \"plain\"\npipeline = \"clf.toml\"\n");
    assert_eq!(env.run(&["run", "clf.toml"]).code, 0);
    let r = env.run(&["trigger", "clf"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no deployment `clf`; none is recorded in the home yet"), "{}", r.stderr);

    let (mut up, addr) = Up::start_with(&env, &["deploy.toml"], Some("s3cret"));
    // One `up` per home: a second would fire the same triggers.
    let second = env.run(&["up", "deploy.toml", "--addr", "127.0.0.1:0"]);
    assert_eq!(second.code, 3, "{}", second.stderr);
    let pid = up.child.id();
    assert!(
        second.stderr.contains(&format!("another `flywheel up` (pid {pid}, serving http://{addr}")),
        "{}",
        second.stderr
    );
    // Nor does `monitor update` record windows beside it.
    let beside = env.run(&["monitor", "update", "deploy.toml"]);
    assert_eq!(beside.code, 3, "{}", beside.stderr);
    assert!(beside.stderr.contains(&format!("`flywheel up` (pid {pid}) monitors this home")), "{}", beside.stderr);
    let r = env.run(&["trigger", "clf", "--reason", "new labels are in"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("asked for (request 1)"), "{}", r.stdout);
    let fired = up.wait_for("trigger fired (on_demand:", Duration::from_secs(20));
    assert!(fired.contains("on_demand: new labels are in, asked by"), "{fired}");
    up.wait_for("run 2 succeeded", Duration::from_secs(60));

    let path = "/v2/deployments/clf/trigger";
    let body = br#"{"reason": "from the scheduler of another team"}"#;
    let refused = http::call(&addr, "POST", path, &[], body).unwrap();
    assert_eq!(refused.status, 401, "{}", refused.text());
    let auth = [("Authorization", "Bearer s3cret")];
    let unknown = http::call(&addr, "POST", "/v2/deployments/clg/trigger", &auth, body).unwrap();
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert!(unknown.text().contains("did you mean `clf`?"), "{}", unknown.text());
    let bad = http::call(&addr, "POST", path, &auth, br#"{"reason": 7}"#).unwrap();
    assert_eq!(bad.status, 400, "{}", bad.text());
    let ok = http::call(&addr, "POST", path, &auth, body).unwrap();
    assert_eq!(ok.status, 202, "{}", ok.text());
    assert_eq!(ok.json()["request"], 2);
    up.wait_for("on_demand: from the scheduler of another team, asked by http", Duration::from_secs(20));
    up.wait_for("run 3 succeeded", Duration::from_secs(60));
    let st = env.run(&["status", "--json"]).json();
    assert_eq!(st["up"][0]["addr"], format!("http://{addr}"), "{st:#}");
    assert_eq!(st["deployments"][0]["newest_run"]["id"], 3, "{st:#}");
    let (code, printed) = up.stop();
    let st = env.run(&["status", "--json"]).json();
    assert_eq!(st["up"].as_array().unwrap().len(), 0, "a stopped `up` is not listed: {st:#}");
    assert_eq!(code, 0, "{printed:#?}");
    let triggers: Vec<String> =
        env.runs().as_array().unwrap().iter().map(|r| r["trigger"].as_str().unwrap().to_string()).collect();
    assert!(triggers[0].starts_with("on_demand: from the scheduler"), "{triggers:?}");

    // Recorded, but with no `on_demand` trigger: refused with what to add.
    let (up, _) = Up::start(&env, &["plain.toml"]);
    let r = env.run(&["trigger", "plain"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("declares no `on_demand` trigger"), "{}", r.stderr);
    let _ = up.stop();
}

/// A canary that the server cannot load (its stored model was damaged)
/// is rolled back once its grace is up; production is untouched and the
/// registry's history says why.
#[test]
fn a_canary_that_cannot_be_served_is_rolled_back_and_production_is_untouched() {
    let env = Env::new();
    env.write("train.csv", &rows(200, false));
    env.write("later.csv", &rows(150, false));
    env.write("clf.toml", &clf_pipeline("train.csv"));
    let staged = clf_pipeline("later.csv").replace(r#"alias = "production""#, r#"alias = "staging""#);
    env.write("staged.toml", &staged);
    env.write("deploy.toml", "[deployment]\npipeline = \"clf.toml\"\n");
    assert_eq!(env.run(&["run", "clf.toml"]).code, 0);
    assert_eq!(env.run(&["run", "staged.toml"]).code, 0);
    // Version 2's stored model is damaged, then it is sent out as canary.
    let shown = env.run(&["models", "show", "clf", "--json"]).json();
    let v2 = shown["versions"].as_array().unwrap().iter().find(|v| v["version"] == 2).unwrap().clone();
    let digest = v2["model_digest"].as_str().or(v2["digest"].as_str()).unwrap_or_else(|| panic!("{v2:#}")).to_string();
    let blob = env.home().join("artifacts/blobs").join(&digest[..2]).join(&digest);
    std::fs::write(&blob, b"not the model any more").unwrap();
    let (mut up, _) = Up::start(&env, &["deploy.toml"]);
    let r = env.run(&["models", "alias", "clf@2", "canary", "--reason", "try it"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rolled = up.wait_for("rolled back, production untouched", Duration::from_secs(40));
    assert!(rolled.contains("clf@2 rolled back") && rolled.contains("was not loaded or warmed"), "{rolled}");
    let (code, printed) = up.stop();
    assert_eq!(code, 0, "{printed:#?}");
    let h = env.run(&["models", "history", "clf"]);
    assert!(h.stdout.contains("clf@canary: 2 → nothing (removed) — canary rolled back"), "{}", h.stdout);
    assert!(h.stdout.contains("clf@production: nothing → 1"), "{}", h.stdout);
    assert!(!h.stdout.contains("clf@production: 1 →"), "{}", h.stdout);
}

/// `up` killed (SIGKILL) during a triggered run: the next `up` finds the
/// run interrupted and finishes it (`resume`: what succeeded is kept), and
/// the request that started it does not start another; a request queued
/// behind that run is kept in the home and starts its own run, once.
#[test]
fn a_triggered_run_killed_with_up_is_resumed_by_the_next_up_and_nothing_fires_twice() {
    let env = Env::new();
    env.write("train.csv", &rows(200, false));
    let slow = clf_pipeline("train.csv").replace(
        "[steps.train]",
        "[steps.wait]\ncomponent = \"command\"\ncache = false\nparams = { run = [\"sleep\", \"3\"] }\n\n[steps.train]",
    );
    env.write("clf.toml", &slow);
    // No traffic reaches the canaries: each is rolled back after 2 s.
    env.write(
        "deploy.toml",
        "[deployment]\npipeline = \"clf.toml\"\n[[trigger]]\non = \"on_demand\"\n[delivery]\nmax_hold = \"2s\"\n",
    );
    assert_eq!(env.run(&["run", "clf.toml"]).code, 0);
    let (mut up, _) = Up::start(&env, &["deploy.toml"]);
    assert_eq!(env.run(&["trigger", "clf", "--reason", "retrain now"]).code, 0);
    up.wait_for("trigger fired (on_demand: retrain now", Duration::from_secs(20));
    assert_eq!(env.run(&["trigger", "clf", "--reason", "and the labels of today"]).code, 0);
    up.wait_for("queued after the run under way", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    up.child.kill().unwrap();
    let _ = up.child.wait();
    let runs = env.runs();
    // Any process that opens the home marks a run of a dead process so.
    assert_eq!(runs[0]["status"], "interrupted", "killed mid-run: {runs:#}");

    let (mut up, _) = Up::start(&env, &[]);
    let resumed = up.wait_for("resuming it", Duration::from_secs(20));
    assert!(resumed.contains("run 2 was left interrupted by an earlier `up`"), "{resumed}");
    up.wait_for("run 2 succeeded", Duration::from_secs(60));
    // Its canary rolled back (no traffic), the queued request starts run 3.
    let queued = up.wait_for("trigger fired (on_demand: and the labels of today", Duration::from_secs(30));
    assert!(!queued.contains("retrain now"), "{queued}");
    up.wait_for("run 3 succeeded", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(600));
    let (code, printed) = up.stop();
    assert_eq!(code, 0, "{printed:#?}");
    let fired: Vec<&String> = printed.iter().filter(|l| l.contains("trigger fired")).collect();
    assert_eq!(fired.len(), 1, "only the queued request fires, once: {printed:#?}");
    let runs = env.runs();
    assert_eq!(runs.as_array().unwrap().len(), 3, "{runs:#}");
    assert_eq!((runs[0]["status"].as_str(), runs[1]["status"].as_str()), (Some("succeeded"), Some("succeeded")));
    assert!(runs[0]["trigger"].as_str().unwrap().starts_with("on_demand: and the labels of today"), "{runs:#}");
    assert!(runs[1]["trigger"].as_str().unwrap().starts_with("on_demand: retrain now"), "{runs:#}");

    // Started again: nothing is left queued.
    let (up, _) = Up::start(&env, &[]);
    std::thread::sleep(Duration::from_millis(2500));
    let (code, printed) = up.stop();
    assert_eq!(code, 0, "{printed:#?}");
    assert!(!printed.iter().any(|l| l.contains("trigger fired")), "fired again: {printed:#?}");
    assert_eq!(env.runs().as_array().unwrap().len(), 3);
}

/// A folder `incoming` holding a first span of `first` rows, and a
/// pipeline whose runs train on every span while a `fresh` step reads the
/// new span alone (its `new_data` parameter).
fn watching(first: usize) -> Env {
    let env = Env::new();
    std::fs::create_dir(env.path().join("incoming")).unwrap();
    env.write("incoming/2011.csv", &rows(first, false));
    let fresh = "[parameters]\nnew_data = \"incoming\"\n[steps.fresh]\ncomponent = \"ingest\"\nparams = { path = \"${new_data}\" }\n[steps.ingest]";
    env.write("clf.toml", &clf_pipeline("incoming").replace("[steps.ingest]", fresh));
    env
}

/// A `new_data` trigger watching a folder of spans: a file fires a run
/// once complete (not while it is still being written), the run reads
/// every span; the folder gone is told, and back, its files do not fire
/// again; a new file fires again.
#[test]
fn new_files_in_a_watched_folder_start_runs_once_each_when_complete() {
    let env = watching(200);
    let deploy = "[deployment]\npipeline = \"clf.toml\"\n[[trigger]]\non = \"new_data\"\npath = \"incoming\"\nsettle = \"1s\"\ncooldown = \"1s\"\n[delivery]\ncanary = 50\nhold = 5\n";
    env.write("deploy.toml", deploy);
    env.write("traffic.csv", &rows(80, false));
    assert_eq!(env.run(&["run", "clf.toml"]).code, 0);
    let (mut up, addr) = Up::start(&env, &["deploy.toml"]);
    std::thread::sleep(Duration::from_millis(1500));
    // Half a file, then the rest: taken only once complete and settled.
    let more = rows(60, false);
    let (head, tail) = more.split_at(more.len() / 2);
    env.write("incoming/2012-01.csv", head);
    std::thread::sleep(Duration::from_millis(600));
    env.write("incoming/2012-01.csv", &format!("{head}{tail}"));
    let fired = up.wait_for("trigger fired (new_data:", Duration::from_secs(20));
    assert!(fired.contains("new_data: 1 new file(s): 2012-01.csv"), "{fired}");
    up.wait_for("run 2 succeeded", Duration::from_secs(60));
    let ingest = env.execution(2, "ingest");
    assert_eq!(ingest["summary"]["spans"], serde_json::json!(["2011.csv", "2012-01.csv"]), "{ingest:#}");
    assert_eq!(
        ingest["summary"]["rows"]["train"].as_u64().unwrap() + ingest["summary"]["rows"]["eval"].as_u64().unwrap(),
        260
    );
    let fresh = env.execution(2, "fresh");
    let read = |e: &serde_json::Value| {
        e["summary"]["rows"]["train"].as_u64().unwrap() + e["summary"]["rows"]["eval"].as_u64().unwrap()
    };
    assert_eq!(read(&fresh), 60, "the new file alone: {fresh:#}");

    // Its model goes out as a canary; traffic decides it.
    up.wait_for("clf@2 is out as canary", Duration::from_secs(10));
    replay(&env, &addr, "traffic.csv");
    let verdict = up.wait_for("clf@2 ", Duration::from_secs(20));
    let verdict =
        if verdict.contains("out as canary") { up.wait_for("production", Duration::from_secs(20)) } else { verdict };
    assert!(verdict.contains("promoted") || verdict.contains("rolled back"), "{verdict}");
    std::fs::rename(env.path().join("incoming"), env.path().join("away")).unwrap();
    up.wait_for("`new_data` watches", Duration::from_secs(10));
    std::fs::rename(env.path().join("away"), env.path().join("incoming")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // Two files at once (moved in whole): one run, the two its new span.
    env.write("2012-02.csv", &rows(40, true));
    env.write("2012-03.csv", &rows(30, true));
    for f in ["2012-02.csv", "2012-03.csv"] {
        std::fs::rename(env.path().join(f), env.path().join("incoming").join(f)).unwrap();
    }
    let again = up.wait_for("new_data: 2 new file(s): 2012-02.csv, 2012-03.csv", Duration::from_secs(20));
    assert!(!again.contains("2012-01"), "{again}");
    up.wait_for("run 3 succeeded", Duration::from_secs(60));
    let fresh = env.execution(3, "fresh");
    assert_eq!(fresh["summary"]["spans"], serde_json::json!(["2012-02.csv", "2012-03.csv"]), "{fresh:#}");
    assert_eq!(read(&fresh), 70);
    assert_eq!(env.execution(3, "ingest")["summary"]["spans"].as_array().unwrap().len(), 4);
    let (code, printed) = up.stop();
    assert_eq!(code, 0, "{printed:#?}");
    assert_eq!(printed.iter().filter(|l| l.contains("trigger fired")).count(), 2, "{printed:#?}");
    assert_eq!(env.runs().as_array().unwrap().len(), 3);
}

/// With `when_busy = "skip"`, a file that arrives while a run is under way
/// is not skipped for good: it waits, untaken, and is the next run's new
/// span (skipping it would leave it in no run's `new_data`).
#[test]
fn a_file_arriving_during_a_run_is_the_next_runs_new_span_when_busy_skips() {
    // Enough rows that a run lasts past the next file's settling.
    let env = watching(100_000);
    let deploy = "[deployment]\npipeline = \"clf.toml\"\n[[trigger]]\non = \"new_data\"\npath = \"incoming\"\nsettle = \"100ms\"\ncooldown = \"0s\"\nwhen_busy = \"skip\"\n[delivery]\nhold = \"1s\"\nmax_hold = \"2s\"\n";
    env.write("deploy.toml", deploy);
    assert_eq!(env.run(&["run", "clf.toml"]).code, 0);
    let (mut up, _) = Up::start(&env, &["deploy.toml"]);
    std::thread::sleep(Duration::from_millis(600));
    let arrive = |name: &str, n: usize| {
        env.write(name, &rows(n, false));
        std::fs::rename(env.path().join(name), env.path().join("incoming").join(name)).unwrap();
    };
    arrive("2012-01.csv", 60);
    up.wait_for("new_data: 1 new file(s): 2012-01.csv", Duration::from_secs(20));
    // While run 2 trains (and then while its canary is judged).
    arrive("2012-02.csv", 40);
    up.wait_for("run 2 succeeded", Duration::from_secs(60));
    up.wait_for("new_data: 1 new file(s): 2012-02.csv", Duration::from_secs(30));
    up.wait_for("run 3 succeeded", Duration::from_secs(60));
    // One new file is read as itself: its rows alone.
    let read = |run| {
        let e = env.execution(run, "fresh");
        e["summary"]["rows"]["train"].as_u64().unwrap() + e["summary"]["rows"]["eval"].as_u64().unwrap()
    };
    assert_eq!((read(2), read(3)), (60, 40));
    let (code, printed) = up.stop();
    assert_eq!(code, 0, "{printed:#?}");
    assert_eq!(printed.iter().filter(|l| l.contains("trigger fired")).count(), 2, "{printed:#?}");
}

/// On a home with no model yet, `up` runs the pipeline first and serves
/// what it published; a first run that publishes nothing stops `up` (exit
/// 1), naming the run, with nothing served.
#[test]
fn up_on_a_new_home_runs_the_pipeline_first() {
    let env = Env::new();
    env.write("clf.toml", &clf_pipeline("train.csv"));
    env.write("deploy.toml", "[deployment]\npipeline = \"clf.toml\"\n");
    let failed = env.run(&["up", "deploy.toml", "--addr", "127.0.0.1:0"]);
    assert_eq!(failed.code, 1, "{}{}", failed.stdout, failed.stderr);
    assert!(
        failed.stdout.contains("trigger fired (first run: `clf` has no production version yet)"),
        "{}",
        failed.stdout
    );
    assert!(
        failed.stderr.contains("the first run of `clf` (run 1) failed and put no version of `clf` in production"),
        "{}",
        failed.stderr
    );

    env.write("train.csv", &rows(200, false));
    let (mut up, addr) = Up::start(&env, &["deploy.toml"]);
    up.wait_for("run 2 succeeded", Duration::from_secs(5));
    let ready = http::call(&addr, "GET", "/v2/models/clf/ready", &[], b"").unwrap();
    assert_eq!(ready.status, 200, "{}", ready.text());
    let runs = env.runs();
    assert_eq!(runs[0]["trigger"], "first run: `clf` has no production version yet", "{runs:#}");
    assert_eq!(up.stop().0, 0);
}
