//! Model CD through the real binary: `flywheel serve` follows the
//! registry. Under steady load, the served version changes each time
//! `production` moves, and no request fails; a version whose stored model
//! is corrupt is never swapped in (the old one keeps answering, the refusal
//! is in the model's history); traffic is split between aliases by weight,
//! sticky by `x-flywheel-key`, and an alias that appears later (a canary)
//! starts taking its share without a restart; the shadow's answers are
//! logged beside the answers returned, never returned.

mod common;
#[path = "serve/http.rs"]
mod http;
#[path = "serve/server.rs"]
mod server;

use common::*;
use serde_json::json;
use server::Server;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn csv() -> String {
    let mut s = String::from("day,x,z,y\n");
    for i in 0..300 {
        let x = ((i * 37) % 101) as f64 / 25.0 - 2.0;
        let z = ((i * 53) % 97) as f64 / 97.0;
        let y = 3.0 * x - 2.0 * z + ((i * 7) % 11) as f64 / 10.0;
        s.push_str(&format!("{i},{x:.4},{z:.4},{y:.3}\n"));
    }
    s
}

fn pipeline(model: &str, alias: &str) -> String {
    format!(
        "[pipeline]\nname = \"reg-{model}\"\n\
         [steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"d.csv\", split_key = \"day\" }}\n\
         [steps.train]\ncomponent = \"train\"\ninputs = {{ data = \"ingest.train\" }}\n\
         params = {{ target = \"y\", model = \"{model}\", features = [\"x\", \"z\"] }}\n\
         [steps.push]\ncomponent = \"push\"\ninputs = {{ model = \"train.model\" }}\n\
         params = {{ model_name = \"reg\", alias = \"{alias}\" }}\n"
    )
}

/// `reg` version 1 (linear) at `production`, 2 (boosting) at `candidate`,
/// 3 (ridge) at `spare`.
fn three_versions() -> Env {
    let env = Env::new();
    env.write("d.csv", &csv());
    for (model, alias) in [("linear", "production"), ("gbt", "candidate"), ("ridge", "spare")] {
        let file = format!("{model}.toml");
        env.write(&file, &pipeline(model, alias));
        let r = env.run(&["run", &file]);
        assert_eq!(r.code, 0, "{file}: {}", r.stderr);
    }
    env
}

fn alias(env: &Env, reference: &str, alias: &str) {
    let r = env.run(&["models", "alias", reference, alias]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// One prediction; the version that answered (`reg@N`), or why none did.
fn predict(addr: &str, key: Option<&str>) -> Result<String, String> {
    let body = json!({ "dataframe_split": { "columns": ["x", "z"], "data": [[0.5, 0.25]] } }).to_string();
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(k) = key {
        headers.push(("x-flywheel-key", k));
    }
    let reply = http::call(addr, "POST", "/invocations", &headers, body.as_bytes()).map_err(|e| e.to_string())?;
    if reply.status != 200 {
        return Err(format!("{}: {}", reply.status, reply.text()));
    }
    Ok(reply.header("x-flywheel-model-version").unwrap_or("none").to_string())
}

/// Waits until the server answers with `version`, or fails after 15 s.
fn wait_for(addr: &str, version: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if predict(addr, None).as_deref() == Ok(version) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the server never answered with {version}");
}

/// Threads sending one-row requests until stopped: every answer's version, and every failure.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<(Vec<String>, Vec<String>)>>,
}

impl Load {
    fn start(addr: &str, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let (stop, addr) = (stop.clone(), addr.to_string());
                std::thread::spawn(move || {
                    let (mut versions, mut failures) = (Vec::new(), Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        match predict(&addr, None) {
                            Ok(v) => versions.push(v),
                            Err(e) => failures.push(e),
                        }
                    }
                    (versions, failures)
                })
            })
            .collect();
        Load { stop, threads }
    }

    fn finish(self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = (Vec::new(), Vec::new());
        for t in self.threads {
            let (v, f) = t.join().unwrap();
            all.0.extend(v);
            all.1.extend(f);
        }
        all
    }
}

#[test]
fn under_load_the_server_follows_production_without_a_failed_request_and_refuses_a_corrupt_version() {
    let env = three_versions();
    let server = Server::start(&env, &["reg", "--poll-ms", "50"]);
    wait_for(&server.addr, "reg@1");
    let load = Load::start(&server.addr, 4);
    for version in [2, 1, 3, 2] {
        alias(&env, &format!("reg@{version}"), "production");
        wait_for(&server.addr, &format!("reg@{version}"));
    }
    // Version 1's stored model is corrupted: moving production there is refused.
    let card = env.run(&["models", "show", "reg", "--json"]).json();
    let v1 = card["versions"].as_array().unwrap().iter().find(|v| v["version"] == 1).unwrap();
    let digest = v1["digest"].as_str().unwrap();
    let blob = env.home().join("artifacts/blobs").join(&digest[..2]).join(digest);
    std::fs::write(&blob, b"{ not a model").unwrap();
    alias(&env, "reg@1", "production");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(predict(&server.addr, None).as_deref(), Ok("reg@2"), "the version that failed is not swapped in");
    alias(&env, "reg@3", "production");
    wait_for(&server.addr, "reg@3");
    let (versions, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        versions.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(versions.len() > 100, "only {} requests", versions.len());
    let history = env.run(&["models", "history", "reg", "--json"]).json();
    let actions: Vec<(String, i64)> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("serve_")))
        .map(|e| (e["action"].as_str().unwrap().to_string(), e["version"].as_i64().unwrap()))
        .collect();
    let want: Vec<(String, i64)> = [
        ("serve_swap", 2),
        ("serve_swap", 1),
        ("serve_swap", 3),
        ("serve_swap", 2),
        ("serve_load_failed", 1),
        ("serve_swap", 3),
    ]
    .iter()
    .map(|(a, v)| (a.to_string(), *v))
    .collect();
    assert_eq!(actions, want, "{history:#}");
    let failed = history.as_array().unwrap().iter().find(|e| e["action"] == "serve_load_failed").unwrap();
    assert!(failed["detail"].as_str().unwrap().contains("is corrupted"), "{failed:#}");
    let told = env.run(&["models", "history", "reg"]).stdout;
    for line in
        ["serving reg@2 for reg@production (was 1)", "refused to serve reg@1 for reg@production: model reg@1: artifact"]
    {
        assert!(told.contains(line), "{line:?} not in {told}");
    }
    let (code, err) = server.stop();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn traffic_is_split_by_weight_sticky_by_key_and_a_canary_takes_its_share_once_it_exists() {
    let env = three_versions();
    let server = Server::start(&env, &["reg@production:70", "reg@canary:30", "reg@spare:shadow", "--poll-ms", "50"]);
    assert!(
        server.printed.iter().any(|l| l == "split: reg@production:70 reg@canary:30 reg@spare:shadow"),
        "{:?}",
        server.printed
    );
    let only: Vec<String> = (0..40).map(|_| predict(&server.addr, None).unwrap()).collect();
    assert!(only.iter().all(|v| v == "reg@1"), "no canary yet, all to production: {only:?}");
    alias(&env, "reg@2", "canary");
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < Duration::from_secs(15) && !seen.contains(&"reg@2".to_string()) {
        seen.push(predict(&server.addr, None).unwrap());
    }
    let shares: Vec<String> = (0..400).map(|_| predict(&server.addr, None).unwrap()).collect();
    let canary = shares.iter().filter(|v| *v == "reg@2").count();
    assert!((70..=170).contains(&canary), "about 30% of 400 to the canary: {canary}");
    assert!(!shares.iter().any(|v| v == "reg@3"), "the shadow never answers");
    for key in ["ana", "bo", "cy", "dee"] {
        let first = predict(&server.addr, Some(key)).unwrap();
        assert!((0..20).all(|_| predict(&server.addr, Some(key)).unwrap() == first), "{key} stays on {first}");
    }
    let v3 = http::call(&server.addr, "GET", "/v2/models/reg/versions/3/ready", &[], b"").unwrap();
    assert_eq!(v3.status, 200, "the shadow's version is loaded and can be asked for by number");
    let metadata = http::get(&server.addr, "/v2/models/reg").json();
    assert_eq!(metadata["versions"], json!(["1", "2", "3"]), "every version loaded, in the split's order");
    let infer = http::post_json(
        &server.addr,
        "/v2/models/reg/versions/2/infer",
        &json!({ "inputs": [
        { "name": "x", "shape": [1], "datatype": "FP64", "data": [0.5] },
        { "name": "z", "shape": [1], "datatype": "FP64", "data": [0.25] } ] }),
    );
    assert_eq!((infer.status, infer.json()["model_version"].clone()), (200, json!("2")), "{}", infer.text());
    assert_eq!(infer.header("x-flywheel-arm"), Some("reg@2"));
    // Changed while running: all traffic to `candidate` (loaded now, by the follower), no shadow.
    let put = |body: serde_json::Value, path: &str| {
        http::call(&server.addr, "PUT", path, &[("Content-Type", "application/json")], body.to_string().as_bytes())
            .unwrap()
    };
    let changed = put(json!({ "split": { "candidate": 1 } }), "/v2/models/reg/split");
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(
        changed.json()["arms"][0],
        json!({ "reference": "reg@candidate", "weight": 1, "version": 2 }),
        "loaded before it answers"
    );
    assert_eq!(predict(&server.addr, None).as_deref(), Ok("reg@2"));
    let now = http::get(&server.addr, "/v2/models/reg/split").json();
    assert_eq!(
        now,
        json!({ "model": "reg", "arms": [{ "reference": "reg@candidate", "weight": 1, "version": 2 }], "shadow": null })
    );
    assert!((0..50).all(|_| predict(&server.addr, Some("ana")).unwrap() == "reg@2"));
    let refused = put(json!({ "split": { "candidate": "all" } }), "/v2/models/reg/split");
    assert_eq!(refused.status, 400);
    assert!(refused.json()["error"].as_str().unwrap().contains("`split.candidate`"), "{}", refused.text());
    assert_eq!(put(json!({ "split": { "production": 1 } }), "/v2/models/nope/split").status, 404);
    let typo = put(json!({ "split": { "prodution": 1 } }), "/v2/models/reg/split");
    assert_eq!(typo.status, 400, "a split that would answer nothing is refused");
    assert!(typo.json()["error"].as_str().unwrap().contains("nothing would answer"), "{}", typo.text());
    let missing = put(json!({ "split": { "candidate": 1, "7": 1 } }), "/v2/models/reg/split");
    assert_eq!(missing.status, 400);
    assert!(missing.json()["error"].as_str().unwrap().starts_with("`split.7`"), "{}", missing.text());
    env.write("narrow.toml", &pipeline("linear", "narrow").replace(r#"["x", "z"]"#, r#"["x"]"#));
    assert_eq!(env.run(&["run", "narrow.toml"]).code, 0);
    let mixed = put(json!({ "split": { "candidate": 1, "narrow": 1 } }), "/v2/models/reg/split");
    assert_eq!(mixed.status, 400, "versions reading other inputs in one split: {}", mixed.text());
    let why = mixed.json()["error"].as_str().unwrap().to_string();
    assert!(why.contains("reads x (number), z (number)") && why.contains("the same inputs"), "{why}");
    assert_eq!(http::get(&server.addr, "/v2/models/reg/split").json(), now, "a refused change changes nothing");
    let metrics = http::get(&server.addr, "/metrics").text();
    let answered = metrics.lines().find_map(|l| l.strip_prefix("flywheel_shadow_answered_total "));
    assert!(answered.and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 0), "{metrics}");
    let (code, err) = server.stop();
    assert_eq!(code, 0, "{err}");
    // The shadow's answers were logged under the caller's request ids, beside the answers returned.
    let logs = env.run(&["logs", "reg"]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    let rows: Vec<Vec<&str>> = logs.stdout.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let ids = |version: &str| -> std::collections::BTreeSet<&str> {
        rows.iter().filter(|r| r[4] == version).map(|r| r[0]).collect()
    };
    let (answered, shadowed) = (ids("1"), ids("3"));
    assert!(!shadowed.is_empty(), "{}", logs.stdout);
    let v3: Vec<&Vec<&str>> = rows.iter().filter(|r| r[4] == "3").collect();
    assert!(v3.iter().all(|r| r[5] == "reg@spare" && r[6] == "true"), "marked as the shadow's: {v3:?}");
    assert!(rows.iter().filter(|r| r[4] != "3").all(|r| r[6] == "false"));
    assert!(shadowed.is_subset(&ids("1").union(&ids("2")).copied().collect()), "every shadow row shadows a request");
    assert!(!answered.is_empty());
}
