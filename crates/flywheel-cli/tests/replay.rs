//! `flywheel replay` through the real binary, against a real `flywheel
//! serve`: a dataset written out of time order is sent in time order, its
//! labels become feedback that `flywheel logs` returns beside each row;
//! what cannot be replayed (a column the model reads missing from the data,
//! a model the server does not serve, no server) is refused, named; and
//! the replayed traffic is monitored in windows (`flywheel monitor`).

mod common;
#[path = "serve/http.rs"]
mod http;
#[path = "serve/server.rs"]
mod server;

use common::*;
use server::Server;

const ROWS: usize = 120;

/// Rows written newest first, with a column the model does not read.
fn csv() -> String {
    let mut s = String::from("t,x,city,note,label\n");
    for i in (0..ROWS).rev() {
        let x = ((i * 37) % 101) as f64 / 25.0 - 2.0;
        let city = ["lyon", "oslo", "kyiv", "lima"][i % 4];
        let label = if (x > 0.1) != (i % 11 == 0) { "yes" } else { "no" };
        let t = format!("2012-{:02}-{:02} {:02}:00:00", 1 + i / 28 % 12, 1 + i % 28, i % 24);
        s.push_str(&format!("{t},{x:.4},{city},n{i},{label}\n"));
    }
    s
}

fn trained() -> Env {
    let env = Env::new();
    env.write("d.csv", &csv());
    env.write("clf.toml", &clf_pipeline("d.csv"));
    let r = env.run(&["run", "clf.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    env
}

/// `d.csv` replayed to a server that is then stopped (its log flushed),
/// and waited for until its rows are settled: windows are cut from rows
/// older than 5 s.
fn replay_settled(env: &Env, extra: &[&str]) {
    let server = Server::start(env, &[]);
    let url = format!("http://{}", server.addr);
    let r = env.run(&[&["replay", "d.csv", "--to", &url][..], extra].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(server.stop().0, 0);
    std::thread::sleep(std::time::Duration::from_millis(5_200));
}

/// A logged time as text that sorts as the time does: the export writes
/// `…:39.594Z` for `…:39.594000Z`, so the fraction is padded to 6 digits.
fn sortable(time: &str) -> String {
    let t = time.trim_end_matches('Z');
    match t.split_once('.') {
        Some((whole, fraction)) => format!("{whole}.{fraction:0<6}"),
        None => format!("{t}.000000"),
    }
}

/// The data's rows in time order: (x, label).
fn in_time_order() -> Vec<(f64, String)> {
    let text = csv();
    let mut rows: Vec<(String, f64, String)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[1].parse().unwrap(), f[4].to_string())
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.into_iter().map(|(_, x, label)| (x, label)).collect()
}

#[test]
fn rows_go_out_in_time_order_and_their_labels_come_back_from_flywheel_logs() {
    let env = trained();
    let server = Server::start(&env, &[]);
    let url = format!("http://{}", server.addr);
    let args = ["replay", "d.csv", "--to", &url, "--labels", "label", "--time-column", "t", "--json"];
    let r = env.run(&args);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let summary = r.json();
    assert_eq!((summary["model"].as_str(), summary["rows"].as_u64()), (Some("clf"), Some(ROWS as u64)), "{summary}");
    assert_eq!((summary["requests"].as_u64(), summary["failed"].as_u64()), (Some(ROWS as u64), Some(0)));
    assert_eq!(summary["feedback"]["labels"].as_u64(), Some(ROWS as u64), "{summary}");
    let (code, _) = server.stop();
    assert_eq!(code, 0);

    let out = env.run(&["logs", "clf"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (id, x, label, time) = (col("request_id"), col("x"), col("label"), col("time"));
    let want = in_time_order();
    let mut seen = 0;
    let mut arrived: Vec<(usize, String)> = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        // Request n of a replay (`replay-<start>-<n>`) is row n in time order.
        let n: usize = f[id].rsplit('-').next().unwrap().parse().unwrap();
        let (wx, wlabel) = &want[n];
        assert!((f[x].parse::<f64>().unwrap() - wx).abs() < 1e-9, "request {n}: x {} for {wx}", f[x]);
        assert_eq!(f[label], wlabel, "request {n}");
        arrived.push((n, sortable(f[time])));
        seen += 1;
    }
    assert_eq!(seen, ROWS, "every row is logged once");
    // One connection by default: the server got them in that order too.
    arrived.sort();
    assert!(arrived.windows(2).all(|p| p[0].1 <= p[1].1), "logged out of order: {arrived:?}");
}

#[test]
fn data_that_cannot_be_replayed_is_refused_before_a_request_is_sent() {
    let env = trained();
    env.write("short.csv", "t,x,town,label\n2012-01-01,0.5,oslo,yes\n");
    let server = Server::start(&env, &[]);
    let url = format!("http://{}", server.addr);
    let cases: [(&[&str], i32, &[&str]); 4] = [
        (
            &["replay", "short.csv", "--to", &url, "--labels", "labell"],
            2,
            &[
                "short.csv",
                "model `clf` reads `city` which the data does not have",
                "--labels",
                "did you mean `label`?",
            ],
        ),
        (&["replay", "d.csv", "--to", &url, "--model", "nope"], 2, &["model `nope` is not served; served: clf@1"]),
        (&["replay", "d.csv", "--to", &url, "--time-column", "note"], 2, &["`n119` is not a date or time"]),
        (&["replay", "d.csv", "--to", &url, "--rate=-3", "--batch", "0"], 2, &["--batch must be 1", "--rate must be"]),
    ];
    for (args, code, says) in cases {
        let r = env.run(args);
        let all = format!("{}{}", r.stdout, r.stderr);
        assert_eq!(r.code, code, "{args:?}: {all}");
        for s in says {
            assert!(all.contains(s), "{args:?} should say {s:?}: {all}");
        }
    }
    let (code, _) = server.stop();
    assert_eq!(code, 0);
}

#[test]
fn replayed_traffic_is_monitored_in_windows_with_its_metric_and_alerts() {
    let env = trained();
    env.write(
        "deploy.toml",
        "[deployment]\npipeline = \"clf.toml\"\n[monitoring]\nwindow = 40\nperformance = { accuracy = \">= 0.99\" }\n",
    );
    replay_settled(&env, &["--labels", "label", "--time-column", "t"]);

    let r = env.run(&["monitor", "update", "deploy.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let windows = r.json().as_array().unwrap().clone();
    assert_eq!(windows.len(), ROWS / 40, "{windows:#?}");
    for w in &windows {
        assert_eq!((w["model"].as_str(), w["rows"].as_u64(), w["labeled"].as_u64()), (Some("clf"), Some(40), Some(40)));
        let s = &w["scores"];
        assert_eq!(s["from_training"]["compared"].as_u64(), Some(2), "x and city: {s}");
        let accuracy = s["metric"][1].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "{s}");
        let alerted = s["alerts"].as_array().unwrap().iter().any(|a| a["alert"] == "performance");
        assert_eq!(alerted, accuracy < 0.99, "{s}");
    }
    assert!(windows.last().unwrap()["scores"]["from_previous"].is_null(), "the first window has none before it");
    assert!(windows[0]["scores"]["from_previous"]["compared"].as_u64() == Some(2));

    let again = env.run(&["monitor", "update", "deploy.toml"]);
    assert!(again.stdout.contains("no new complete window"), "{}", again.stdout);
    let status = env.run(&["monitor", "status", "clf", "--json"]);
    let ids: Vec<u64> = status.json().as_array().unwrap().iter().map(|w| w["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [3, 2, 1], "newest first");
    let text = env.run(&["monitor", "status"]);
    assert!(text.stdout.contains("window 3 of clf@1") && text.stdout.contains("accuracy"), "{}", text.stdout);

    // The three windows merged from their sketches: the accuracy of all 120
    // labeled rows, as the exported log gives it.
    let merged = env.run(&["monitor", "status", "clf", "--merge", "3", "--json"]).json();
    let m = &merged[0];
    assert_eq!(merged.as_array().unwrap().len(), 1, "{merged:#}");
    assert_eq!(
        (m["windows"].clone(), m["rows"].as_u64(), m["labeled"].as_u64()),
        (serde_json::json!([1, 2, 3]), Some(120), Some(120))
    );
    assert_eq!(m["from_training"]["compared"], 2, "{m:#}");
    assert!(m["from_previous"].is_null(), "{m:#}");
    let (right, labeled) = exported_accuracy(&env);
    assert_eq!(labeled, 120);
    assert!((m["metric"][1].as_f64().unwrap() - right).abs() < 1e-12, "{m:#} vs {right}");
    assert_eq!(m["out_of_bound"], right < 0.99);
    let pairs = env.run(&["monitor", "status", "clf", "--merge", "2", "--json"]).json();
    let ids: Vec<serde_json::Value> = pairs.as_array().unwrap().iter().map(|m| m["windows"].clone()).collect();
    assert_eq!(ids, [serde_json::json!([3]), serde_json::json!([1, 2])], "newest first");
    assert_eq!(pairs[0]["from_previous"]["compared"], 2, "{pairs:#}");
    let text = env.run(&["monitor", "status", "clf", "--merge", "3"]);
    assert!(text.stdout.starts_with("windows 1–3 of clf@1 ("), "{}", text.stdout);
    let refused = env.run(&["monitor", "status", "--merge", "3"]);
    assert_eq!(refused.code, 2, "--merge needs a model: {}", refused.stderr);
}

/// `up`'s pacer may say "rest" right after a part of the log is read: the
/// part still gives a window, so that a busy machine's monitor cuts one
/// window a read instead of reading the same part for ever.
#[test]
fn a_monitor_told_to_stop_after_each_read_still_cuts_a_window_each_time() {
    let env = trained();
    env.write("deploy.toml", "[deployment]\npipeline = \"clf.toml\"\n[monitoring]\nwindow = 40\n");
    replay_settled(&env, &["--labels", "label", "--time-column", "t"]);

    let d = flywheel_deploy::compile_file(&env.path().join("deploy.toml"), &flywheel_components::builtins()).unwrap();
    let home = flywheel_registry::Home::open(&env.home()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    // Yes before the read, no after it: as a pacer that owes a rest.
    let paced = || {
        let asked = std::cell::Cell::new(0);
        move || {
            asked.set(asked.get() + 1);
            asked.get() == 1
        }
    };
    // As `up` does: what one update read and did not use, the next goes on from.
    let carry = &mut flywheel_monitor::windows::Carry::default();
    let mut cut = Vec::new();
    for _ in 0..ROWS / 40 + 1 {
        let at = (&d.model[..], &d.monitoring);
        let recorded = rt.block_on(flywheel_monitor::windows::update_while(&home, at, (now, 0), paced(), carry));
        cut.push(recorded.unwrap());
    }
    assert_eq!(cut.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1, 0], "one window a call, then none left");
    let windows: Vec<_> = cut.iter().flatten().collect();
    for pair in windows.windows(2) {
        assert!(pair[1].window.first_us > pair[0].window.last_us, "in order, none twice");
        assert!(pair[1].scores.from_previous.is_some(), "compared with the window before");
    }
    assert!(windows.iter().all(|w| w.window.rows == 40));
    let status = env.run(&["monitor", "status", "clf", "--json"]).json();
    assert_eq!(status.as_array().unwrap().len(), ROWS / 40);
}

/// The accuracy of the labeled rows of `flywheel logs clf`, and how many.
fn exported_accuracy(env: &Env) -> (f64, usize) {
    assert_eq!(env.run(&["logs", "clf", "-o", "accuracy.csv"]).code, 0);
    let text = std::fs::read_to_string(env.path().join("accuracy.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
    let (p, l) = (col("prediction"), col("label"));
    let (mut right, mut labeled) = (0, 0);
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        if !f[l].is_empty() {
            labeled += 1;
            right += usize::from(f[p] == f[l]);
        }
    }
    (right as f64 / labeled.max(1) as f64, labeled)
}

/// With a `statistics` step on the training data, a window is compared with
/// the reference it kept (the data's distribution without its rows): the
/// training rows themselves are not read, so their blob may be gone, and
/// the figures are those the rows give (`flywheel drift`, the rows against
/// the window's).
#[test]
fn a_window_is_compared_with_the_kept_statistics_not_the_training_rows() {
    let env = Env::new();
    env.write("d.csv", &csv());
    let pipeline = clf_pipeline("d.csv").replace(
        "[steps.train]",
        "[steps.statistics]\ncomponent = \"statistics\"\ninputs = { data = \"ingest.train\" }\n[steps.train]",
    );
    env.write("clf.toml", &pipeline);
    assert_eq!(env.run(&["run", "clf.toml"]).code, 0);
    let train = env.execution(1, "ingest")["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "train")
        .unwrap()["artifact"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = env.home().join("artifacts/blobs").join(&train[..2]).join(&train);
    let rows = env.path().join("train.parquet");
    std::fs::rename(&blob, &rows).unwrap();
    env.write("deploy.toml", "[deployment]\npipeline = \"clf.toml\"\n[monitoring]\nwindow = 120\n");

    replay_settled(&env, &[]);
    let r = env.run(&["monitor", "update", "deploy.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let window = r.json()[0].clone();
    assert_eq!(window["scores"]["from_training"]["compared"], 2, "{window:#}");

    // The same comparison from the rows: `flywheel drift` of the training
    // rows against the window's inputs.
    assert_eq!(env.run(&["logs", "clf", "-o", "served.csv"]).code, 0);
    let drift = env.run(&["drift", "train.parquet", "served.csv", "--columns", "x,city", "--json"]).json();
    let from_rows = (drift["drifted_columns"].as_u64(), drift["compared_columns"].as_u64());
    let kept = &window["scores"]["from_training"];
    assert_eq!(from_rows, (kept["drifted"].as_u64(), kept["compared"].as_u64()), "{drift:#}");
    assert_eq!(drift["drift_share"].as_f64(), kept["share"].as_f64());
}

/// Labels that arrive after their window was scored: the next update scores
/// the window's metric again (its drift unchanged), and says so.
#[test]
fn labels_that_arrive_late_score_their_window_again() {
    let env = trained();
    env.write(
        "deploy.toml",
        "[deployment]\npipeline = \"clf.toml\"\n[monitoring]\nwindow = 60\nperformance = { accuracy = \">= 0.99\" }\n",
    );
    let server = Server::start(&env, &[]);
    let url = format!("http://{}", server.addr);
    let r = env.run(&["replay", "d.csv", "--to", &url, "--time-column", "t"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::thread::sleep(std::time::Duration::from_millis(5_200));
    let first = env.run(&["monitor", "update", "deploy.toml", "--json"]).json();
    let first = first.as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|w| w["labeled"] == 0 && w["scores"]["metric"].is_null()), "{first:#?}");

    // The labels come in now, for every logged request: by its (x, city).
    let truth: std::collections::HashMap<(String, String), String> = csv()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            ((f[1].to_string(), f[2].to_string()), f[4].to_string())
        })
        .collect();
    assert_eq!(env.run(&["logs", "clf", "-o", "served.csv"]).code, 0);
    let served = std::fs::read_to_string(env.path().join("served.csv")).unwrap();
    let mut lines = served.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
    let items: Vec<String> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let x = format!("{:.4}", f[col("x")].parse::<f64>().unwrap());
            let label = &truth[&(x, f[col("city")].to_string())];
            format!(r#"{{"id": "{}", "label": "{label}"}}"#, f[col("request_id")])
        })
        .collect();
    let body = format!(r#"{{"feedback": [{}]}}"#, items.join(","));
    let reply = http::call(&server.addr, "POST", "/feedback", &[("Content-Type", "application/json")], body.as_bytes())
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(server.stop().0, 0);

    let again = env.run(&["monitor", "update", "deploy.toml"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("window 1 of clf@1: scored again with late labels (60 labeled): accuracy"),
        "{}",
        again.stdout
    );
    let status = env.run(&["monitor", "status", "clf", "--json"]).json();
    for w in status.as_array().unwrap() {
        let s = &w["scores"];
        assert_eq!(w["labeled"].as_u64(), Some(60), "{w:#}");
        assert!(s["rescored_us"].as_i64().is_some(), "{s}");
        let accuracy = s["metric"][1].as_f64().unwrap();
        let alerted = s["alerts"].as_array().unwrap().iter().any(|a| a["alert"] == "performance");
        assert_eq!(alerted, accuracy < 0.99, "{s}");
        assert_eq!(s["from_training"]["compared"], 2, "drift kept: {s}");
    }
    // The windows' sketches took the late labels too.
    let merged = env.run(&["monitor", "status", "clf", "--merge", "2", "--json"]).json();
    let (right, labeled) = exported_accuracy(&env);
    assert_eq!((merged[0]["labeled"].as_u64(), labeled), (Some(120), 120), "{merged:#}");
    assert!((merged[0]["metric"][1].as_f64().unwrap() - right).abs() < 1e-12, "{merged:#} vs {right}");
    // Nothing new: not scored a third time.
    let third = env.run(&["monitor", "update", "deploy.toml"]);
    assert!(!third.stdout.contains("scored again"), "{}", third.stdout);
}
