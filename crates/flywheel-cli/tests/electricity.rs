//! The loop on Elec2, the concept-drift benchmark (`examples/electricity`):
//! a model trained on the first 5,000 half-hours is served while the
//! following months are replayed with their labels. Its accuracy falls
//! below the deployment's bound, the `performance` trigger starts a run
//! that learns from the served rows, the new model goes out as a canary,
//! beats production on the same traffic and is promoted; on the months
//! after, it answers better than the old model does on the same rows.

mod common;
#[path = "serve/http.rs"]
mod http;
#[path = "common/up.rs"]
mod up;

use common::*;
use serde_json::Value;
use std::io::Read;
use std::time::Duration;
use up::{Up, replay_labels};

/// The example's data, as (header, rows of text).
fn elec2() -> (String, Vec<String>) {
    let path = repo_root().join("examples/electricity/data/electricity_elec2.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_string(&mut text).unwrap();
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap();
    (header, lines.collect())
}

fn write_rows(env: &Env, name: &str, (header, rows): (&str, &[String])) {
    env.write(name, &format!("{header}\n{}\n", rows.join("\n")));
}

/// Accuracy of `model`'s predictions of `file` against its `class`.
fn accuracy(env: &Env, model: &str, file: &str, labels: &[String]) -> f64 {
    let out = format!("{}.predicted.csv", model.replace('@', "-"));
    let r = env.run(&["predict", model, file, "-o", &out]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(env.path().join(&out)).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let p = header.iter().position(|c| *c == "prediction").unwrap();
    let predicted: Vec<String> = lines.map(|l| l.split(',').nth(p).unwrap().to_string()).collect();
    assert_eq!(predicted.len(), labels.len());
    predicted.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len() as f64
}

/// The recorded windows, oldest first: (id, version, accuracy).
fn windows(env: &Env) -> Vec<(i64, i64, f64)> {
    let all = env.run(&["monitor", "status", "--limit", "1000", "--json"]).json();
    let mut out: Vec<(i64, i64, f64)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let acc = w["scores"]["metric"][1].as_f64().unwrap_or(f64::NAN);
            (w["id"].as_i64().unwrap(), w["version"].as_i64().unwrap(), acc)
        })
        .collect();
    out.reverse();
    out
}

/// Waits until the windows hold all `rows` served but for each version's
/// rows short of a window (fewer than 500 each, two versions).
fn wait_windowed(env: &Env, rows: u64) {
    // Generous: a debug build on a machine busy with other work was seen
    // to need more than a minute; a passing run returns as soon as it can.
    let end = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let all = env.run(&["monitor", "status", "--limit", "1000", "--json"]).json();
        let held: u64 = all.as_array().unwrap().iter().map(|w| w["rows"].as_u64().unwrap()).sum();
        if held > rows - 2 * 500 {
            return;
        }
        assert!(std::time::Instant::now() < end, "windows hold {held} of {rows} rows after 180 s");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until the server answers only with `version` (the canary arm
/// empty): the follower swaps within its poll after an alias moves.
fn wait_answering(addr: &str, version: i64) {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let split = http::call(addr, "GET", "/v2/models/electricity/split", &[], b"").unwrap().json();
        let versions: Vec<&Value> = split["arms"].as_array().unwrap().iter().map(|a| &a["version"]).collect();
        if versions.iter().all(|v| v.is_null() || **v == version) {
            return;
        }
        assert!(std::time::Instant::now() < end, "still served: {split:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

#[test]
fn on_elec2_a_performance_trigger_retrains_and_accuracy_recovers() {
    let env = Env::new();
    let (header, rows) = elec2();
    let class = header.split(',').position(|c| c == "class").unwrap();
    write_rows(&env, "train.csv", (&header, &rows[..5000]));
    write_rows(&env, "traffic1.csv", (&header, &rows[5000..13000]));
    write_rows(&env, "traffic2.csv", (&header, &rows[13000..17000]));
    write_rows(&env, "traffic3.csv", (&header, &rows[17000..21000]));
    let example = repo_root().join("examples/electricity");
    env.write("pipeline.toml", &std::fs::read_to_string(example.join("pipeline.toml")).unwrap());
    let deployment = std::fs::read_to_string(example.join("deployment.toml")).unwrap();
    let deployment = deployment.replacen("[serving]", "params = { data = \"train.csv\" }\n\n[serving]", 1);
    env.write("deployment.toml", &deployment);
    let r = env.run(&["run", "pipeline.toml", "--set", "data=train.csv"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    let (mut up, addr) = Up::start(&env, &["deployment.toml"]);
    replay_labels(&env, &addr, "traffic1.csv", "class");
    let fired = up.wait_for("trigger fired (performance: accuracy", Duration::from_secs(60));
    up.wait_for("run 2 succeeded", Duration::from_secs(120));
    up.wait_for("electricity@2 is out as canary, with 50% of traffic", Duration::from_secs(20));
    replay_labels(&env, &addr, "traffic2.csv", "class");
    let promoted = up.wait_for("electricity@2 promoted to production", Duration::from_secs(60));
    wait_answering(&addr, 2);
    replay_labels(&env, &addr, "traffic3.csv", "class");
    // 16,000 rows in windows of 500, each version's apart.
    wait_windowed(&env, 16_000);
    let (code, printed) = up.stop();
    assert_eq!(code, 0, "{printed:#?}");

    let labels: Vec<String> = rows[17000..21000].iter().map(|l| l.split(',').nth(class).unwrap().into()).collect();
    let (old, new) = (
        accuracy(&env, "electricity@1", "traffic3.csv", &labels),
        accuracy(&env, "electricity@2", "traffic3.csv", &labels),
    );
    let w = windows(&env);
    // Every request is one row at a time of its own: windows of exactly 500
    // rows of one version each, 1–16 of the first traffic (@1 alone), then
    // both versions' during the canary (each its own windows), then @2's.
    // Each version's last rows short of a window are not one.
    assert!((30..=32).contains(&w.len()), "{w:?}");
    let of_2: Vec<f64> = w.iter().filter(|x| x.1 == 2).map(|x| x.2).collect();
    let before = mean(w[..16].iter().map(|x| x.2));
    // @2's last 7 windows: the last traffic's rows alone (4,000 of them,
    // fewer than 500 left uncut).
    let after = mean(of_2[of_2.len() - 7..].iter().copied());
    println!("Elec2, windows of 500 served rows (id: version accuracy):");
    for (id, v, acc) in &w {
        println!("  {id:>3}: @{v} {acc:.3}");
    }
    println!("{fired}\n{promoted}");
    println!("monitored accuracy: @1 alone {before:.3}; @2 after its promotion {after:.3}");
    println!("rows 17,000–21,000 predicted by both: @1 {old:.3}, @2 {new:.3}");

    assert!(w[..16].iter().all(|x| x.1 == 1), "{w:?}");
    let last_of_1 = w.iter().rposition(|x| x.1 == 1).unwrap();
    assert!((18..=24).contains(&last_of_1), "@1 has windows of its canary half, then none: {w:?}");
    assert!(w[16..=last_of_1].iter().any(|x| x.1 == 2), "the canary's windows are its own: {w:?}");
    assert!(of_2.len() >= 11, "{w:?}");
    assert!(new > old + 0.02, "the retrained model answers the later months better: {new:.3} against {old:.3}");
    // What the monitor saw @2 score on rows @1 would have scored lower on.
    assert!(after > old, "accuracy recovers: @2's windows {after:.3}, @1 on their rows {old:.3}");

    // The report draws it: the metric against its bound, per day of the
    // week too, and the run and the alias moves where they fell.
    let r = env.run(&["monitor", "report", "electricity", "--html", "report.html"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let page = std::fs::read_to_string(env.path().join("report.html")).unwrap();
    assert!(page.contains("accuracy per window, bound &gt;= 0.7"), "{page}");
    assert!(page.contains("Per slice: day") && page.contains("day=1"), "{page}");
    assert!(page.contains("performance: accuracy") && page.contains("canary promoted"), "{page}");
    // Run 2, the canary out, production moved and the canary removed (run
    // 1 and its push came before the first window).
    assert_eq!(
        page.matches("<tr><td>").count() + page.matches("<tr style").count(),
        w.len() + 4,
        "windows and markers"
    );
    let status = env.run(&["monitor", "status", "electricity"]);
    assert!(status.stdout.contains("; worst slice day="), "{}", status.stdout);

    let runs = env.runs();
    let triggered = &runs.as_array().unwrap().iter().find(|r| r["id"] == 2).unwrap()["trigger"];
    let reason = triggered.as_str().unwrap();
    assert!(reason.starts_with("performance: accuracy ") && reason.contains("is not >= 0.7 in windows"), "{reason}");
    let history = env.run(&["models", "history", "electricity"]);
    assert!(history.stdout.contains("production"), "{}", history.stdout);
    let status: Value = env.run(&["status", "--json"]).json();
    assert_eq!(status["deployments"][0]["production"], 2, "{status:#}");
    let newest = &status["deployments"][0]["newest_canary"];
    assert_eq!((newest["version"].as_i64(), newest["outcome"].as_str()), (Some(2), Some("promoted")), "{status:#}");
}
