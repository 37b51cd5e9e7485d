//! The prediction log end to end, through the real binary: a trained
//! classifier served, rows predicted through `/invocations` and
//! `/v2/.../infer`, feedback posted for them, SIGTERM (the log written out
//! at shutdown), then `flywheel logs` exports every row with its label, as
//! CSV and Parquet, in a time window, and names the logged models when
//! asked for another; `doctor` checks the segments against their index.

mod common;
#[path = "serve/http.rs"]
mod http;

use common::*;
use http::{call, post_json};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

fn csv() -> String {
    let mut s = String::from("day,x,city,label\n");
    for i in 0..200 {
        let x = ((i * 37) % 101) as f64 / 25.0 - 2.0;
        let city = ["lyon", "oslo", "kyiv", "lima"][i % 4];
        let label = if (x > 0.1) != (i % 11 == 0) { "yes" } else { "no" };
        s.push_str(&format!("{i},{x:.4},{city},{label}\n"));
    }
    s
}

const PIPELINE: &str = r#"
[pipeline]
name = "clf"
[steps.ingest]
component = "ingest"
params = { path = "d.csv", split_key = "day" }
[steps.train]
component = "train"
inputs = { data = "ingest.train" }
params = { target = "label", model = "logistic", features = ["x", "city"] }
[steps.bless]
component = "bless"
inputs = { model = "train.model", data = "ingest.eval" }
params = { thresholds = { accuracy = ">= 0.5" } }
[steps.push]
component = "push"
inputs = { model = "train.model", blessing = "bless.blessing" }
params = { model_name = "clf", alias = "production" }
"#;

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(env: &Env) -> Server {
        let mut child =
            env.cmd(&["serve", "--addr", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok);
        let addr = lines
            .filter_map(|l| l.strip_prefix("serving on http://").and_then(|r| r.split(' ').next()).map(str::to_string))
            .next()
            .expect("serve did not start");
        Server { child, addr }
    }

    fn stop(mut self) -> i32 {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn predictions_through_both_protocols_come_back_from_flywheel_logs_with_their_labels() {
    let env = Env::new();
    env.write("d.csv", &csv());
    env.write("clf.toml", PIPELINE);
    let r = env.run(&["run", "clf.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let server = Server::start(&env);
    let records = json!({ "dataframe_records": [{ "x": 1.5, "city": "oslo" }, { "x": null, "city": "lima" }] });
    let r = call(
        &server.addr,
        "POST",
        "/invocations",
        &[("Content-Type", "application/json"), ("x-request-id", "inv-1")],
        records.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!((r.status, r.header("x-request-id")), (200, Some("inv-1")), "{}", r.text());
    let infer = json!({ "id": "oip-1", "inputs": [
        { "name": "x", "shape": [3], "datatype": "FP64", "data": [-1.0, 0.5, 2.0] },
        { "name": "city", "shape": [3], "datatype": "BYTES", "data": ["kyiv", "lyon", "oslo"] },
    ]});
    let r = post_json(&server.addr, "/v2/models/clf/infer", &infer);
    assert_eq!((r.status, r.json()["id"].as_str()), (200, Some("oip-1")), "{}", r.text());
    let r = post_json(
        &server.addr,
        "/feedback",
        &json!({ "feedback": [
            { "id": "inv-1", "labels": ["yes", "no"] },
            { "id": "oip-1", "row": 2, "label": "yes" },
            { "id": "never-sent", "label": "no" },
        ]}),
    );
    assert_eq!(r.json(), json!({ "accepted": 2, "labels": 3, "unknown": ["never-sent"] }));
    assert_eq!(post_json(&server.addr, "/feedback", &json!({ "id": "never-sent", "label": "no" })).status, 404);
    assert_eq!(server.stop(), 0);

    let out = env.run(&["logs", "clf"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let fixed = ["request_id", "row", "time", "model", "version", "arm", "shadow", "latency_us", "x", "city"];
    assert_eq!(&header[..10], fixed);
    assert_eq!(&header[10..], ["prediction", "probability(no)", "probability(yes)", "label"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let got: Vec<(&str, &str, &str, &str)> = rows.iter().map(|r| (r[0], r[1], r[9], r[13])).collect();
    assert_eq!(
        got,
        [
            ("inv-1", "0", "oslo", "yes"),
            ("inv-1", "1", "lima", "no"),
            ("oip-1", "0", "kyiv", ""),
            ("oip-1", "1", "lyon", ""),
            ("oip-1", "2", "oslo", "yes"),
        ]
    );
    assert!(rows.iter().all(|r| r[3] == "clf" && r[4] == "1" && ["yes", "no"].contains(&r[10])), "{rows:?}");
    assert!(rows.iter().all(|r| r[5] == "clf@production" && r[6] == "false"), "{rows:?}");
    assert_eq!(rows[1][8], "", "a missing input is empty");

    let parquet = env.path().join("log.parquet");
    let r = env.run(&["logs", "clf", "--since", "2000-01-01", "-o", parquet.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let t = flywheel_data::table::read_table(&parquet, &Default::default()).unwrap();
    assert_eq!(t.rows(), 5);
    let label = t.str_column(t.column_index("label").unwrap());
    assert_eq!(label.iter().filter(|l| l.is_some()).count(), 3);

    let r = env.run(&["logs", "clf", "--until", "2000-01-01"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        [header.join(",")],
        "a window before the requests: the header only"
    );
    let r = env.run(&["logs", "reg"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("`reg`") && r.stderr.contains("models with logs: clf"), "{}", r.stderr);

    // doctor: healthy; then a segment gone and a stray file, both repaired.
    assert_eq!(env.run(&["doctor"]).code, 0, "{}", env.run(&["doctor"]).stdout);
    let hour_dirs: Vec<_> =
        std::fs::read_dir(env.home().join("predictions/clf")).unwrap().map(|e| e.unwrap().path()).collect();
    let segments: Vec<_> = std::fs::read_dir(&hour_dirs[0]).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(segments.len(), 1, "one flush at shutdown: one segment");
    std::fs::remove_file(&segments[0]).unwrap();
    std::fs::write(hour_dirs[0].join("v1-0-1-0.parquet"), b"half").unwrap();
    let r = env.run(&["doctor", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let kinds: Vec<String> =
        r.json()["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["missing_segment", "unindexed_segment"]);
    assert_eq!(env.run(&["doctor", "--repair"]).code, 0);
    assert_eq!(env.run(&["doctor"]).code, 0);
    let r = env.run(&["logs", "clf"]);
    assert!(r.code == 2 && r.stderr.contains("no model has logs"), "its only segment is gone: {}", r.stderr);
}
