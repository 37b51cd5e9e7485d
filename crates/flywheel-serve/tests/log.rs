//! The prediction log through real HTTP: requests predicted over both
//! protocols are logged under their ids (the caller's or one made up, sent
//! back in `x-request-id`), feedback for them is taken (one, many, a label
//! per row) and refused with the field named when it does not fit, and the
//! log read back holds every row with its label.

mod common;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, RecordBatch};
use common::{Reply, start_app};
use flywheel_metadata::MetadataStore;
use flywheel_ml::transform::{LINEAR_DEFAULTS, fit};
use flywheel_ml::{Column, Estimator, Frame, Model, Task, Text};
use flywheel_serve::log::read::{Window, read_log};
use flywheel_serve::{AppState, LogOptions, ModelTable, PredictionLog, Sampling, Served};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

fn frame(n: usize) -> Frame {
    let mut f = Frame::new();
    f.push("x", Column::Num((0..n).map(|i| i as f64 * 0.5 - 1.0).collect())).unwrap();
    f.push("c", Column::Text(Text::encode((0..n).map(|i| [Some("a"), Some("b")][i % 2])))).unwrap();
    f
}

fn model(task: Task) -> Model {
    let t = fit(&frame(20), &["x".into(), "c".into()], &BTreeMap::new(), LINEAR_DEFAULTS).unwrap();
    let w: Vec<f64> = (0..t.width()).map(|j| j as f64 * 0.7 - 0.9).collect();
    let (classes, est) = match task {
        Task::Regression => (vec![], Estimator::Linear { algorithm: "ols".into(), weights: w, intercept: 0.25 }),
        Task::Classification => {
            (vec!["no".into(), "yes".into()], Estimator::Logistic { coef: vec![w], intercept: vec![0.1] })
        }
    };
    Model::new(task, "y".into(), classes, t, est, json!({})).unwrap()
}

struct Server {
    addr: SocketAddr,
    app: Arc<AppState>,
    home: tempfile::TempDir,
    store: Arc<MetadataStore>,
}

fn start(sampling: Option<Sampling>) -> Server {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(MetadataStore::open(&home.path().join("metadata.db")).unwrap());
    let table = Arc::new(ModelTable::new([
        Served::new("clf".into(), 1, "clf@production".into(), model(Task::Classification)),
        Served::new("reg".into(), 4, "reg@production".into(), model(Task::Regression)),
    ]));
    let log = match sampling {
        Some(sampling) => {
            let options = LogOptions { sampling, ..LogOptions::default() };
            PredictionLog::start(home.path().to_path_buf(), store.clone(), options).unwrap()
        }
        None => PredictionLog::disabled(),
    };
    let app = Arc::new(AppState::new(table).with_log(log));
    Server { addr: start_app(app.clone()), app, home, store }
}

/// A JSON POST with `headers`.
fn call(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    common::call(addr, "POST", path, &all, body)
}

fn post(addr: SocketAddr, path: &str, v: &Value) -> Reply {
    call(addr, path, &[], v.to_string().as_bytes())
}

fn infer_body(id: Option<&str>, n: usize) -> Value {
    let x: Vec<f64> = (0..n).map(|i| i as f64 * 0.5 - 1.0).collect();
    let c: Vec<&str> = (0..n).map(|i| ["a", "b"][i % 2]).collect();
    let mut body = json!({ "inputs": [
        { "name": "x", "shape": [n], "datatype": "FP64", "data": x },
        { "name": "c", "shape": [n], "datatype": "BYTES", "data": c },
    ]});
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    body
}

fn records(n: usize) -> Value {
    let rows: Vec<Value> = (0..n)
        .map(|i| {
            let c = ["a", "b"][i % 2];
            json!({ "x": i as f64 * 0.5 - 1.0, "c": c })
        })
        .collect();
    json!({ "dataframe_records": rows })
}

fn read(s: &Server, model: &str) -> RecordBatch {
    let t = read_log(s.home.path(), &s.store, model, Window::default()).unwrap();
    arrow_select::concat::concat_batches(&t.schema, &t.batches).unwrap()
}

fn strings(b: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let c = b.column_by_name(column).unwrap().as_string::<i32>();
    (0..c.len()).map(|i| (!c.is_null(i)).then(|| c.value(i).to_string())).collect()
}

#[test]
fn predictions_of_both_protocols_are_logged_with_their_ids_and_joined_with_feedback() {
    let s = start(Some(Sampling::default()));
    let r = post(s.addr, "/v2/models/clf/infer", &infer_body(Some("req-1"), 3));
    assert_eq!((r.status, r.json()["id"].as_str(), r.header("x-request-id")), (200, Some("req-1"), Some("req-1")));
    let r = call(s.addr, "/invocations?model=reg", &[("x-request-id", "mine-1")], records(2).to_string().as_bytes());
    assert_eq!((r.status, r.header("x-request-id")), (200, Some("mine-1")));
    let made: Vec<String> = (0..2)
        .map(|_| post(s.addr, "/invocations?model=reg", &records(1)).header("x-request-id").unwrap().to_string())
        .collect();
    assert!(!made[0].is_empty() && made[0] != made[1], "{made:?}");

    // Taken before the segments are written: queued requests are known.
    let r = post(s.addr, "/feedback", &json!({ "id": "req-1", "row": 2, "label": "yes" }));
    assert_eq!((r.status, r.json()["accepted"].as_i64()), (200, Some(1)), "{}", String::from_utf8_lossy(&r.body));
    let r = post(s.addr, "/feedback", &json!({ "id": "mine-1", "labels": [1.5, 2] }));
    assert_eq!((r.status, r.json()["labels"].as_i64()), (200, Some(2)));
    let r = post(
        s.addr,
        "/feedback",
        &json!({ "feedback": [{ "id": "req-1", "label": "no" }, { "id": "ghost", "label": "no" }, { "id": made[1], "label": 7 }] }),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({ "accepted": 2, "labels": 2, "unknown": ["ghost"] }));

    s.app.log.close();
    let clf = read(&s, "clf");
    assert_eq!(strings(&clf, "request_id"), vec![Some("req-1".to_string()); 3]);
    assert_eq!(strings(&clf, "label"), [Some("no".into()), None, Some("yes".into())]);
    assert_eq!(strings(&clf, "model"), vec![Some("clf".to_string()); 3]);
    let reg = read(&s, "reg");
    assert_eq!(reg.num_rows(), 4);
    let label = reg.column_by_name("label").unwrap().as_primitive::<Float64Type>();
    let labels: Vec<Option<f64>> = label.iter().collect();
    assert_eq!(labels, [Some(1.5), Some(2.0), None, Some(7.0)]);
    assert_eq!(s.app.log.dropped(), 0);
}

#[test]
fn feedback_finds_requests_with_made_ids_once_their_segments_are_indexed() {
    let s = start(Some(Sampling::default()));
    // Two models in turn: each segment's block holds every other id.
    let mut made = Vec::new();
    for i in 0..40 {
        let (path, body) = if i % 2 == 0 {
            ("/invocations?model=reg", records(1 + i % 3))
        } else {
            ("/v2/models/clf/infer", infer_body(None, 2))
        };
        let r = post(s.addr, path, &body);
        assert_eq!(r.status, 200);
        made.push(r.header("x-request-id").unwrap().to_string());
    }
    s.app.log.flush();
    let found = s.app.log.lookup(&made[4]).unwrap().unwrap();
    assert_eq!((found.model_name.as_str(), found.rows), ("reg", 1 + 4 % 3));
    assert_eq!(s.app.log.lookup(&made[7]).unwrap().unwrap().model_name, "clf");
    let unknown = format!("{}{:012x}", &made[0][..24], 1u64 << 40);
    assert_eq!(s.app.log.lookup(&unknown).unwrap(), None);
    let labels: Vec<Value> = (0..3).map(|i| json!({ "id": made[2 * i], "row": 0, "label": i as f64 })).collect();
    let r = post(s.addr, "/feedback", &json!({ "feedback": labels }));
    assert_eq!(r.json(), json!({ "accepted": 3, "labels": 3, "unknown": [] }), "{}", String::from_utf8_lossy(&r.body));
    s.app.log.close();
    let reg = read(&s, "reg");
    let label = reg.column_by_name("label").unwrap().as_primitive::<Float64Type>();
    let ids = strings(&reg, "request_id");
    let labelled: Vec<(String, f64)> =
        (0..reg.num_rows()).filter(|&i| label.is_valid(i)).map(|i| (ids[i].clone().unwrap(), label.value(i))).collect();
    assert_eq!(labelled, [(made[0].clone(), 0.0), (made[2].clone(), 1.0), (made[4].clone(), 2.0)]);
}

#[test]
fn feedback_that_does_not_fit_is_refused_naming_the_field() {
    let s = start(Some(Sampling::default()));
    assert_eq!(post(s.addr, "/v2/models/clf/infer", &infer_body(Some("c-1"), 2)).status, 200);
    let r = call(s.addr, "/invocations?model=reg", &[("x-request-id", "r-1")], records(2).to_string().as_bytes());
    assert_eq!(r.status, 200);
    for (body, status, words) in [
        (json!({ "id": "ghost", "label": "no" }), 404, vec!["ghost"]),
        (json!({ "id": "r-1", "label": "high" }), 400, vec!["`label`", "reg", "number"]),
        (json!({ "id": "c-1", "label": ["no"] }), 400, vec!["`label`", "class"]),
        (json!({ "id": "c-1", "row": 2, "label": "no" }), 400, vec!["`row`", "2 row(s)"]),
        (json!({ "id": "c-1", "row": -1, "label": "no" }), 400, vec!["`row`"]),
        (json!({ "id": "c-1", "labels": ["no"] }), 400, vec!["`labels`", "1 label(s)"]),
        (json!({ "id": 3, "label": "no" }), 400, vec!["`id`"]),
        (json!({ "label": "no" }), 400, vec!["`id` is missing"]),
        (json!({ "id": "c-1" }), 400, vec!["`label` is missing"]),
        (json!({ "id": "c-1", "label": "no", "note": 1 }), 400, vec!["`note`"]),
        (json!({ "feedback": [{ "id": "c-1", "label": "no" }, { "label": "no" }] }), 400, vec!["`feedback[1].id`"]),
        (json!({ "feedback": [{ "id": "r-1", "labels": [1, "x"] }] }), 400, vec!["`feedback[0].labels[1]`"]),
        (json!({ "feedback": "c-1" }), 400, vec!["`feedback`"]),
        (json!(["c-1"]), 400, vec!["JSON object"]),
    ] {
        let r = post(s.addr, "/feedback", &body);
        let e = r.error();
        assert_eq!(r.status, status, "{body}: {e}");
        assert!(words.iter().all(|w| e.contains(w)), "{body}: {e}");
    }
    let r = call(s.addr, "/feedback", &[], b"{\"id\": ");
    assert!(r.status == 400 && r.error().contains("not JSON"), "{}", r.error());
    s.app.log.close();
    let clf = read(&s, "clf");
    assert_eq!(strings(&clf, "label"), [None, None], "a refused batch records nothing");
}

#[test]
fn an_unsampled_request_is_not_logged_and_a_server_without_a_log_takes_no_feedback() {
    let s = start(Some(Sampling::parse(&["clf=0".into()]).unwrap()));
    assert_eq!(post(s.addr, "/v2/models/clf/infer", &infer_body(Some("c-1"), 2)).status, 200);
    assert_eq!(post(s.addr, "/v2/models/reg/infer", &infer_body(Some("r-1"), 2)).status, 200);
    assert_eq!(post(s.addr, "/feedback", &json!({ "id": "c-1", "label": "no" })).status, 404);
    assert_eq!(post(s.addr, "/feedback", &json!({ "id": "r-1", "label": 1 })).status, 200);
    s.app.log.close();
    assert_eq!(s.store.logged_models().unwrap(), ["reg"]);

    let off = start(None);
    assert_eq!(post(off.addr, "/v2/models/clf/infer", &infer_body(Some("c-1"), 2)).status, 200);
    let r = post(off.addr, "/feedback", &json!({ "id": "c-1", "label": "no" }));
    assert!(r.status == 404 && r.error().contains("--no-log"), "{}", r.error());
    assert!(off.store.logged_models().unwrap().is_empty());
}
