//! The server in-process on a free port, called over real HTTP: both
//! protocols answer what `Model::predict` answers for the same rows (bit
//! for bit), and every kind of bad input gets a 4xx JSON error naming
//! what is wrong.

mod common;

use common::{Reply, call, start_app};
use flywheel_ml::transform::{LINEAR_DEFAULTS, fit};
use flywheel_ml::{Column, Estimator, Frame, Model, Prediction, Task, Text};
use flywheel_serve::{AppState, Limits, Metrics, ModelTable, Served};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

/// Rows of `x` (a number, missing every 7th) and `c` (text: a, b, c).
fn frame(n: usize) -> Frame {
    let mut f = Frame::new();
    let x: Vec<f64> = (0..n).map(|i| if i % 7 == 3 { f64::NAN } else { (i as f64 * 0.37).sin() * 3.0 }).collect();
    f.push("x", Column::Num(x)).unwrap();
    let c: Vec<Option<&str>> = (0..n).map(|i| [Some("a"), Some("b"), Some("c")][i % 3]).collect();
    f.push("c", Column::Text(Text::encode(c))).unwrap();
    f
}

fn model(task: Task) -> Model {
    let f = frame(60);
    let t = fit(&f, &["x".into(), "c".into()], &BTreeMap::new(), LINEAR_DEFAULTS).unwrap();
    let w: Vec<f64> = (0..t.width()).map(|j| j as f64 * 0.7 - 0.9).collect();
    let (classes, est) = match task {
        Task::Regression => (vec![], Estimator::Linear { algorithm: "ols".into(), weights: w, intercept: 0.25 }),
        Task::Classification => {
            (vec!["no".into(), "yes".into()], Estimator::Logistic { coef: vec![w], intercept: vec![0.1] })
        }
    };
    Model::new(task, "y".into(), classes, t, est, json!({})).unwrap()
}

fn start(models: Vec<Served>) -> SocketAddr {
    start_app(Arc::new(AppState::new(Arc::new(ModelTable::new(models)))))
}

fn both() -> SocketAddr {
    start(vec![
        Served::new("reg".into(), 3, "reg@production".into(), model(Task::Regression)),
        Served::new("clf".into(), 1, "clf@production".into(), model(Task::Classification)),
    ])
}

fn post_json(addr: SocketAddr, path: &str, v: &Value) -> Reply {
    call(addr, "POST", path, &[("Content-Type", "application/json")], v.to_string().as_bytes())
}

/// The rows of `frame(n)` as JSON values, `null` for missing.
fn rows(n: usize) -> Vec<(Value, Value)> {
    let f = frame(n);
    let (Some(Column::Num(x)), Some(Column::Text(c))) = (f.column("x"), f.column("c")) else { panic!() };
    (0..n).map(|i| (if x[i].is_nan() { Value::Null } else { json!(x[i]) }, json!(c.get(i)))).collect()
}

fn bits(v: &[Value]) -> Vec<u64> {
    v.iter().map(|x| x.as_f64().unwrap().to_bits()).collect()
}

#[test]
fn every_mlflow_format_answers_what_the_model_predicts_bit_for_bit() {
    let addr = both();
    let n = 40;
    let Prediction::Values(want) = model(Task::Regression).predict(&frame(n)).unwrap() else { panic!() };
    let want: Vec<u64> = want.iter().map(|v| v.to_bits()).collect();
    let r = rows(n);
    let split = json!({ "dataframe_split": { "columns": ["x", "c"], "data": r.iter().map(|(x, c)| json!([x, c])).collect::<Vec<_>>() } });
    let records: Vec<Value> = r.iter().map(|(x, c)| json!({ "x": x, "c": c })).collect();
    let columns = json!({ "x": r.iter().map(|p| p.0.clone()).collect::<Vec<_>>(), "c": r.iter().map(|p| p.1.clone()).collect::<Vec<_>>() });
    for body in [
        split,
        json!({ "dataframe_records": records }),
        json!({ "instances": records }),
        json!({ "inputs": columns }),
        json!({ "inputs": records, "params": {} }),
    ] {
        let reply = post_json(addr, "/invocations?model=reg", &body);
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.header("x-flywheel-model-version"), Some("reg@3"));
        assert_eq!(bits(reply.json()["predictions"].as_array().unwrap()), want, "{body}");
    }
    let mut csv = String::from("c,x\n");
    for (x, c) in &r {
        csv.push_str(&format!("{},{}\n", c.as_str().unwrap(), x.as_f64().map(|v| v.to_string()).unwrap_or_default()));
    }
    let reply = call(
        addr,
        "POST",
        "/invocations",
        &[("Content-Type", "text/csv"), ("x-flywheel-model", "reg")],
        csv.as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(bits(reply.json()["predictions"].as_array().unwrap()), want);
}

#[test]
fn a_classifier_answers_labels_in_mlflow_and_labels_with_probabilities_in_oip() {
    let addr = both();
    let n = 12;
    let Prediction::Classes { probabilities, labels } = model(Task::Classification).predict(&frame(n)).unwrap() else {
        panic!()
    };
    let names: Vec<&str> = labels.iter().map(|&l| ["no", "yes"][l]).collect();
    let records: Vec<Value> = rows(n).iter().map(|(x, c)| json!({ "x": x, "c": c })).collect();
    let reply = post_json(addr, "/invocations?model=clf", &json!({ "dataframe_records": records }));
    assert_eq!(reply.json()["predictions"], json!(names));
    let r = rows(n);
    let body = json!({
        "id": "req-7",
        "inputs": [
            { "name": "x", "datatype": "FP64", "shape": [n], "data": r.iter().map(|p| p.0.clone()).collect::<Vec<_>>() },
            { "name": "c", "datatype": "BYTES", "shape": [n, 1], "data": r.iter().map(|p| p.1.clone()).collect::<Vec<_>>() },
        ]
    });
    let reply = post_json(addr, "/v2/models/clf/versions/1/infer", &body);
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let v = reply.json();
    assert_eq!(
        (v["model_name"].as_str(), v["model_version"].as_str(), v["id"].as_str()),
        (Some("clf"), Some("1"), Some("req-7"))
    );
    let out = v["outputs"].as_array().unwrap();
    assert_eq!(out[0]["name"], "prediction");
    assert_eq!(out[0]["datatype"], "BYTES");
    assert_eq!(out[0]["data"], json!(names));
    assert_eq!(out[1]["name"], "probabilities");
    assert_eq!(out[1]["shape"], json!([n, 2]));
    assert_eq!(out[1]["parameters"]["classes"], json!(["no", "yes"]));
    assert_eq!(
        bits(out[1]["data"].as_array().unwrap()),
        probabilities.data.iter().map(|p| p.to_bits()).collect::<Vec<_>>()
    );
    // No id given: one is made up, and differs per request.
    let a = post_json(addr, "/v2/models/clf/infer", &json!({ "inputs": body["inputs"] })).json();
    let b = post_json(addr, "/v2/models/clf/infer", &json!({ "inputs": body["inputs"] })).json();
    assert!(a["id"].as_str().is_some_and(|s| !s.is_empty()) && a["id"] != b["id"], "{a} {b}");
}

fn tensor_bytes(items: &[Option<&str>]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in items {
        let s = s.unwrap_or("");
        out.extend((s.len() as u32).to_le_bytes());
        out.extend(s.as_bytes());
    }
    out
}

#[test]
fn binary_tensors_go_in_and_come_out_as_tritonclient_sends_and_reads_them() {
    let addr = both();
    let n = 9;
    let f = frame(n);
    let (Some(Column::Num(x)), Some(Column::Text(c))) = (f.column("x"), f.column("c")) else { panic!() };
    let xb: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let cb = tensor_bytes(&(0..n).map(|i| c.get(i)).collect::<Vec<_>>());
    let header = json!({
        "inputs": [
            { "name": "x", "datatype": "FP64", "shape": [n], "parameters": { "binary_data_size": xb.len() } },
            { "name": "c", "datatype": "BYTES", "shape": [n], "parameters": { "binary_data_size": cb.len() } },
        ],
        "parameters": { "binary_data_output": true },
    })
    .to_string();
    let body = [header.as_bytes(), &xb, &cb].concat();
    let len = header.len().to_string();
    let reply = call(addr, "POST", "/v2/models/reg/infer", &[("Inference-Header-Content-Length", &len)], &body);
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let hlen: usize = reply.header("inference-header-content-length").unwrap().parse().unwrap();
    let head: Value = serde_json::from_slice(&reply.body[..hlen]).unwrap();
    let out = &head["outputs"][0];
    assert_eq!(out["parameters"]["binary_data_size"], json!(n * 8));
    assert!(out.get("data").is_none(), "{head}");
    let got: Vec<u64> =
        reply.body[hlen..].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()).to_bits()).collect();
    let Prediction::Values(want) = model(Task::Regression).predict(&f).unwrap() else { panic!() };
    assert_eq!(got, want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    // Binary in, JSON out when the output asks for it.
    let header = json!({
        "inputs": [
            { "name": "x", "datatype": "FP64", "shape": [n], "parameters": { "binary_data_size": xb.len() } },
            { "name": "c", "datatype": "BYTES", "shape": [n], "parameters": { "binary_data_size": cb.len() } },
        ],
        "outputs": [{ "name": "prediction", "parameters": { "binary_data": false } }],
    })
    .to_string();
    let len = header.len().to_string();
    let reply = call(
        addr,
        "POST",
        "/v2/models/reg/infer",
        &[("Inference-Header-Content-Length", &len)],
        &[header.as_bytes(), &xb, &cb].concat(),
    );
    assert!(reply.header("inference-header-content-length").is_none());
    assert_eq!(
        bits(reply.json()["outputs"][0]["data"].as_array().unwrap()),
        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn metadata_health_and_readiness_follow_the_protocol() {
    let addr = both();
    assert_eq!(call(addr, "GET", "/v2/health/live", &[], b"").status, 200);
    assert_eq!(call(addr, "GET", "/v2/health/ready", &[], b"").status, 200);
    assert_eq!(call(addr, "GET", "/ping", &[], b"").status, 200);
    assert_eq!(call(addr, "GET", "/health", &[], b"").status, 200);
    assert_eq!(call(addr, "GET", "/v2", &[], b"").json()["name"], "flywheel");
    assert_eq!(call(addr, "GET", "/v2/models/clf/ready", &[], b"").status, 200);
    assert_eq!(call(addr, "GET", "/v2/models/clf/versions/1/ready", &[], b"").status, 200);
    assert_eq!(call(addr, "GET", "/v2/models/clf/versions/2/ready", &[], b"").status, 404);
    let m = call(addr, "GET", "/v2/models/clf", &[], b"").json();
    assert_eq!(m["versions"], json!(["1"]));
    assert_eq!(
        m["inputs"],
        json!([{ "name": "x", "datatype": "FP64", "shape": [-1] }, { "name": "c", "datatype": "BYTES", "shape": [-1] }])
    );
    assert_eq!(m["outputs"][0], json!({ "name": "prediction", "datatype": "BYTES", "shape": [-1] }));
    assert_eq!(m["outputs"][1], json!({ "name": "probabilities", "datatype": "FP64", "shape": [-1, 2] }));
    let m = call(addr, "GET", "/v2/models/reg/versions/3", &[], b"");
    assert_eq!(m.header("x-flywheel-model-version"), Some("reg@3"));
    assert_eq!(m.json()["outputs"], json!([{ "name": "prediction", "datatype": "FP64", "shape": [-1] }]));
}

/// Each bad request: its status, and words its error must contain.
#[test]
fn bad_input_gets_a_4xx_json_error_naming_what_is_wrong() {
    let addr = both();
    let infer = |inputs: Value| json!({ "inputs": inputs });
    let x = |dt: &str, shape: Value, data: Value| json!({ "name": "x", "datatype": dt, "shape": shape, "data": data });
    let c = json!({ "name": "c", "datatype": "BYTES", "shape": [1], "data": ["a"] });
    let cases: Vec<(&str, Value, u16, Vec<&str>)> = vec![
        ("/v2/models/nope/infer", infer(json!([c])), 404, vec!["`nope`", "clf@1", "reg@3"]),
        ("/v2/models/reg/versions/9/infer", infer(json!([c])), 404, vec!["version `9`", "serves version 3"]),
        ("/v2/models/reg/infer", infer(json!([c])), 400, vec!["missing input `x`"]),
        (
            "/v2/models/reg/infer",
            infer(
                json!([x("FP64", json!([1]), json!([1.0])), c, { "name": "z", "datatype": "FP64", "shape": [1], "data": [1] }]),
            ),
            400,
            vec!["unexpected input `z`"],
        ),
        (
            "/v2/models/reg/infer",
            infer(
                json!([x("FP64", json!([1]), json!([1.0])), { "name": "x", "datatype": "FP64", "shape": [1], "data": [1] }]),
            ),
            400,
            vec!["`x` is given twice"],
        ),
        (
            "/v2/models/reg/infer",
            infer(json!([x("BYTES", json!([1]), json!(["1"])), c])),
            400,
            vec!["input `x`", "BYTES", "number column"],
        ),
        (
            "/v2/models/reg/infer",
            infer(json!([x("FP64", json!([1]), json!(["one"])), c])),
            400,
            vec!["input `x`", "data[0]", "\"one\""],
        ),
        (
            "/v2/models/reg/infer",
            infer(json!([x("INT64", json!([1]), json!([1.5])), c])),
            400,
            vec!["input `x`", "INT64", "1.5"],
        ),
        (
            "/v2/models/reg/infer",
            infer(json!([x("FP64", json!([2, 3]), json!([1, 2, 3, 4, 5, 6])), c])),
            400,
            vec!["input `x`", "shape [2,3]"],
        ),
        (
            "/v2/models/reg/infer",
            infer(json!([x("FP64", json!([2]), json!([1.0])), c])),
            400,
            vec!["input `x`", "1 values", "shape says 2"],
        ),
        (
            "/v2/models/reg/infer",
            infer(json!([x("FP64", json!([2]), json!([1.0, 2.0])), c])),
            400,
            vec!["input `c`", "1 rows", "have 2"],
        ),
        (
            "/v2/models/reg/infer",
            infer(
                json!([x("FP64", json!([1]), json!([1.0])), { "name": "c", "datatype": "FP64", "shape": [1], "data": [1] }]),
            ),
            400,
            vec!["input `c`", "text column"],
        ),
        (
            "/v2/models/reg/infer",
            json!({ "inputs": [x("FP64", json!([1]), json!([1.0])), c], "outputs": [{ "name": "probabilities" }] }),
            400,
            vec!["output `probabilities`", "prediction"],
        ),
        ("/v2/models/reg/infer", json!({ "inputs": [], "extra": 1 }), 400, vec!["unknown field `extra`"]),
        (
            "/invocations",
            json!({ "dataframe_records": [{ "x": 1, "c": "a" }] }),
            400,
            vec!["several models", "?model="],
        ),
        (
            "/invocations?model=nope",
            json!({ "dataframe_records": [{ "x": 1, "c": "a" }] }),
            404,
            vec!["`nope`", "served"],
        ),
        (
            "/invocations?model=reg",
            json!({ "dataframe_records": [{ "x": "high", "c": "a" }] }),
            400,
            vec!["input `x`", "dataframe_records[0]", "\"high\""],
        ),
        ("/invocations?model=reg", json!({ "dataframe_records": [{ "x": 1 }] }), 400, vec!["missing input `c`"]),
        (
            "/invocations?model=reg",
            json!({ "dataframe_records": [{ "x": 1, "c": "a", "cc": 2 }] }),
            400,
            vec!["unexpected input `cc`"],
        ),
        (
            "/invocations?model=reg",
            json!({ "dataframe_split": { "columns": ["x", "c"], "data": [[1]] } }),
            400,
            vec!["dataframe_split.data[0]", "1 values for 2 columns"],
        ),
        (
            "/invocations?model=reg",
            json!({ "inputs": { "x": [1, 2], "c": ["a"] } }),
            400,
            vec!["inputs.x", "2 values", "have 1"],
        ),
        (
            "/invocations?model=reg",
            json!({ "instances": [{ "x": 1, "c": 5 }] }),
            400,
            vec!["input `c`", "expected text"],
        ),
        ("/invocations?model=reg", json!({ "dataframe_split": {}, "inputs": {} }), 400, vec!["exactly one of"]),
        ("/invocations?model=reg", json!({ "records": [] }), 400, vec!["unknown field `records`"]),
        (
            "/invocations?model=reg",
            json!({ "dataframe_split": { "columns": ["x", "c"], "data": [] } }),
            400,
            vec!["no rows"],
        ),
    ];
    for (path, body, status, words) in cases {
        let reply = post_json(addr, path, &body);
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        assert_eq!(reply.status, status, "{path} {body}: {text}");
        let e = reply.json()["error"].as_str().unwrap_or_else(|| panic!("no error in {text}")).to_string();
        for w in words {
            assert!(e.contains(w), "{path} {body}: {w:?} not in {e:?}");
        }
    }
}

/// Path, headers, body, status, words the error must contain.
type RawCase = (&'static str, Vec<(&'static str, &'static str)>, Vec<u8>, u16, Vec<&'static str>);

#[test]
fn malformed_bodies_csv_rows_binary_data_and_size_are_refused_with_where() {
    let addr = both();
    let cases: Vec<RawCase> = vec![
        (
            "/invocations?model=reg",
            vec![("Content-Type", "application/json")],
            b"{\"inputs\": {\n  \"x\": [1,,]}}".to_vec(),
            400,
            vec!["malformed JSON", "line 2 column"],
        ),
        ("/v2/models/reg/infer", vec![], b"{\"inputs\": [".to_vec(), 400, vec!["malformed JSON", "line 1"]),
        (
            "/invocations?model=reg",
            vec![("Content-Type", "application/json")],
            b"{\"inputs\": {\"x\": [Infinity], \"c\": [\"a\"]}}".to_vec(),
            400,
            vec!["line 1 column 19", "Infinity"],
        ),
        (
            "/invocations?model=reg",
            vec![("Content-Type", "text/csv")],
            b"x,c\n1,a\n2\n".to_vec(),
            400,
            vec!["line 3", "1 fields", "header has 2"],
        ),
        (
            "/invocations?model=reg",
            vec![("Content-Type", "text/csv")],
            b"x,c\n1,a\nlots,b\n".to_vec(),
            400,
            vec!["line 3", "`x`", "`lots`"],
        ),
        (
            "/invocations?model=reg",
            vec![("Content-Type", "text/csv")],
            b"x,c\ninf,a\n".to_vec(),
            400,
            vec!["column `x`", "inf"],
        ),
        (
            "/invocations?model=reg",
            vec![("Content-Type", "text/csv")],
            b"x,cc\n1,a\n".to_vec(),
            400,
            vec!["missing input `c`"],
        ),
        (
            "/invocations?model=reg",
            vec![("Content-Type", "application/xml")],
            b"<a/>".to_vec(),
            415,
            vec!["application/xml", "text/csv"],
        ),
        (
            "/v2/models/reg/infer",
            vec![("Inference-Header-Content-Length", "999")],
            b"{}".to_vec(),
            400,
            vec!["Inference-Header-Content-Length", "999"],
        ),
        (
            "/v2/models/reg/infer",
            vec![("Inference-Header-Content-Length", "2")],
            b"{}xyz".to_vec(),
            400,
            vec!["inputs"],
        ),
    ];
    for (path, headers, body, status, words) in cases {
        let reply = call(addr, "POST", path, &headers, &body);
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        assert_eq!(reply.status, status, "{path} {}: {text}", String::from_utf8_lossy(&body));
        let e = reply.json()["error"].as_str().unwrap().to_string();
        for w in words {
            assert!(e.contains(w), "{path}: {w:?} not in {e:?}");
        }
    }
    // Binary data shorter than declared, and longer.
    let header = json!({ "inputs": [
        { "name": "x", "datatype": "FP64", "shape": [2], "parameters": { "binary_data_size": 16 } },
        { "name": "c", "datatype": "BYTES", "shape": [2], "data": ["a", "b"] } ] })
    .to_string();
    let len = header.len().to_string();
    for (extra, want) in [(8usize, "binary_data_size 16, 8 bytes"), (24, "8 bytes of binary data after")] {
        let body = [header.as_bytes(), &vec![0u8; extra]].concat();
        let reply = call(addr, "POST", "/v2/models/reg/infer", &[("Inference-Header-Content-Length", &len)], &body);
        assert_eq!(reply.status, 400);
        assert!(reply.json()["error"].as_str().unwrap().contains(want), "{}", reply.json());
    }
    // Infinity in binary FP64: the model refuses it, as a 400.
    let inf: Vec<u8> = [f64::INFINITY, 1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let reply = call(
        addr,
        "POST",
        "/v2/models/reg/infer",
        &[("Inference-Header-Content-Length", &len)],
        &[header.as_bytes(), &inf].concat(),
    );
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("column `x` holds inf"), "{}", reply.json());
    // Over the limit: 413, without reading it all.
    let big = (flywheel_serve::BODY_LIMIT + 1).to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "POST /invocations?model=reg HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {big}\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 413") && raw.contains("larger than"), "{raw}");
    // Unknown endpoint and wrong method: JSON too.
    assert_eq!(call(addr, "GET", "/v1/models", &[], b"").status, 404);
    let r = call(addr, "GET", "/invocations", &[], b"");
    assert_eq!(r.status, 405);
    assert!(r.json()["error"].is_string());
}

#[test]
fn one_model_served_needs_no_name_on_invocations() {
    let addr = start(vec![Served::new("reg".into(), 2, "reg@2".into(), model(Task::Regression))]);
    let reply = post_json(addr, "/invocations", &json!({ "instances": [{ "x": 0.5, "c": "b" }] }));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-flywheel-model-version"), Some("reg@2"));
    assert_eq!(reply.json()["predictions"].as_array().unwrap().len(), 1);
}

#[test]
fn a_request_in_flight_when_shutdown_starts_is_answered_before_the_server_stops() {
    let table = Arc::new(ModelTable::new([Served::new("reg".into(), 1, "reg@1".into(), model(Task::Regression))]));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(l.local_addr().unwrap()).unwrap();
            flywheel_serve::serve_on(l, Arc::new(AppState::new(table)), async {
                let _ = stop_rx.await;
            })
            .await
        })
    });
    let addr = addr_rx.recv().unwrap();
    let body = json!({ "instances": [{ "x": 0.5, "c": "b" }] }).to_string();
    let (first, rest) = body.as_bytes().split_at(10);
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(first).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop_tx.send(()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!server.is_finished(), "the server waits for the request it is reading");
    s.write_all(rest).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains("\"predictions\""), "{raw}");
    server.join().unwrap().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "stopped listening");
}

#[test]
fn a_big_batch_predicts_off_the_request_thread_and_still_bit_for_bit() {
    let addr = both();
    let n = 3000;
    let r = rows(n);
    let columns = json!({ "x": r.iter().map(|p| p.0.clone()).collect::<Vec<_>>(), "c": r.iter().map(|p| p.1.clone()).collect::<Vec<_>>() });
    let reply = post_json(addr, "/invocations?model=clf", &json!({ "inputs": columns }));
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let Prediction::Classes { labels, .. } = model(Task::Classification).predict(&frame(n)).unwrap() else { panic!() };
    let want: Vec<&str> = labels.iter().map(|&l| ["no", "yes"][l]).collect();
    assert_eq!(reply.json()["predictions"], json!(want));
}

fn limited(limits: Limits, token: Option<&str>) -> SocketAddr {
    let table =
        Arc::new(ModelTable::new([Served::new("reg".into(), 4, "reg@production".into(), model(Task::Regression))]));
    start_app(Arc::new(AppState::with(table, Arc::new(Metrics::default()), limits, token.map(str::to_string))))
}

/// A request whose body is still on its way: it holds its slot until dropped.
fn half_sent(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    s
}

#[test]
fn a_request_beyond_the_in_flight_limit_is_refused_with_retry_after_not_queued() {
    let addr = limited(Limits { max_in_flight: 1, ..Limits::default() }, None);
    let held = half_sent(addr);
    let body = json!({ "instances": [{ "x": 0.5, "c": "b" }] });
    let refused = post_json(addr, "/invocations", &body);
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        refused.json()["error"].as_str().unwrap().contains("try again"),
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(call(addr, "GET", "/v2/health/ready", &[], b"").status, 200, "health is not limited");
    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(post_json(addr, "/invocations", &body).status, 200, "the slot is free again");
    let metrics = String::from_utf8(call(addr, "GET", "/metrics", &[], b"").body).unwrap();
    for line in [
        "flywheel_overloaded_total 1",
        r#"flywheel_requests_total{model="",version="",code="503"} 1"#,
        r#"flywheel_requests_total{model="reg",version="4",code="200"} 1"#,
        "flywheel_requests_in_flight 0",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

#[test]
fn a_body_that_does_not_arrive_within_the_timeout_is_cut_off_with_408() {
    let addr = limited(Limits { timeout: std::time::Duration::from_millis(300), ..Limits::default() }, None);
    let mut slow = half_sent(addr);
    let mut raw = String::new();
    slow.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 408"), "{raw}");
    assert!(raw.contains("did not arrive within 300ms"), "{raw}");
    let metrics = String::from_utf8(call(addr, "GET", "/metrics", &[], b"").body).unwrap();
    assert!(metrics.contains("flywheel_timed_out_total 1"), "{metrics}");
}

#[test]
fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    let addr = limited(Limits { header_timeout: std::time::Duration::from_millis(200), ..Limits::default() }, None);
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "POST /invocations HTTP/1.1\r\nHost: t\r\n").unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let started = std::time::Instant::now();
    let mut raw = Vec::new();
    // Closed (an end of stream, or a reset): not the read timeout running out.
    let ended = s.read_to_end(&mut raw).map_err(|e| e.kind());
    let held = matches!(ended, Err(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    assert!(!held && started.elapsed() < std::time::Duration::from_secs(3), "held open: {ended:?}");
    assert_eq!(call(addr, "GET", "/v2/health/ready", &[], b"").status, 200, "others are still served");
}

#[test]
fn a_kept_alive_connection_that_goes_quiet_is_closed_and_a_busy_one_is_not() {
    let limit = std::time::Duration::from_millis(300);
    let addr = limited(Limits { header_timeout: limit, ..Limits::default() }, None);
    let ask = |s: &mut TcpStream| {
        write!(s, "GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        // The answer has no body: its head is all there is to read.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    };
    let mut busy = TcpStream::connect(addr).unwrap();
    for _ in 0..8 {
        ask(&mut busy);
        std::thread::sleep(limit / 2);
    }
    ask(&mut busy);
    busy.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let ended = busy.read_to_end(&mut rest).map_err(|e| e.kind());
    let held = matches!(ended, Err(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    assert!(!held && started.elapsed() < limit * 4, "quiet for {:?}, held open: {ended:?}", started.elapsed());
}

#[test]
fn changing_a_split_needs_the_token_when_one_is_configured_and_reading_it_does_not() {
    let addr = limited(Limits::default(), Some("s3cret"));
    let body = json!({ "split": { "production": 1 } }).to_string();
    let put = |auth: Option<&str>| {
        let mut h = vec![("Content-Type", "application/json")];
        if let Some(a) = auth {
            h.push(("Authorization", a));
        }
        call(addr, "PUT", "/v2/models/reg/split", &h, body.as_bytes())
    };
    let none = put(None);
    assert_eq!((none.status, none.header("www-authenticate")), (401, Some("Bearer")));
    assert!(none.json()["error"].as_str().unwrap().contains("FLYWHEEL_TOKEN"));
    assert_eq!(put(Some("Bearer wrong")).status, 401);
    assert_eq!(put(Some("s3cret")).status, 401, "the scheme is needed");
    let ok = put(Some("Bearer s3cret"));
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(call(addr, "GET", "/v2/models/reg/split", &[], b"").status, 200);
    let infer = post_json(addr, "/invocations", &json!({ "instances": [{ "x": 0.5, "c": "b" }] }));
    assert_eq!(infer.status, 200, "predictions need no token");
}

#[test]
fn a_shape_claiming_more_rows_than_a_body_holds_is_refused_without_reserving_them() {
    let addr = both();
    for (shape, words) in [
        (json!([1_099_511_627_776u64]), "claims more rows than a request body"),
        (json!([4_611_686_018_427_387_904u64]), "claims more rows than a request body"),
        (json!([50_000_000]), "1 values in `data`, the shape says 50000000"),
    ] {
        let body = json!({ "inputs": [
            { "name": "x", "shape": shape, "datatype": "FP64", "data": [0.5] },
            { "name": "c", "shape": [1], "datatype": "BYTES", "data": ["a"] } ] });
        let reply = post_json(addr, "/v2/models/reg/infer", &body);
        assert_eq!(reply.status, 400, "{shape}");
        assert!(reply.json()["error"].as_str().unwrap().contains(words), "{}", String::from_utf8_lossy(&reply.body));
    }
    assert_eq!(call(addr, "GET", "/v2/health/live", &[], b"").status, 200, "still up");
}

#[test]
fn a_model_name_nobody_serves_is_not_a_metrics_label() {
    let addr = both();
    for i in 0..5 {
        let reply = post_json(addr, &format!("/v2/models/made-up-{i}/infer"), &json!({ "inputs": [] }));
        assert_eq!(reply.status, 404);
    }
    let metrics = String::from_utf8(call(addr, "GET", "/metrics", &[], b"").body).unwrap();
    assert!(!metrics.contains("made-up"), "{metrics}");
    assert!(metrics.contains(r#"flywheel_requests_total{model="",version="",code="404"} 5"#), "{metrics}");
}

static QUIET_SPELLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static BUSY_SECONDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_moment(moment: flywheel_serve::Moment) {
    let counter = match moment {
        flywheel_serve::Moment::Quiet => &QUIET_SPELLS,
        flywheel_serve::Moment::Busy => &BUSY_SECONDS,
    };
    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// The hook `flywheel serve` gives freed memory back with runs as quiet
/// once each time requests stop for a second: not before any came, not
/// during them, not again while the server stays quiet; and as busy while
/// they come.
#[test]
fn the_memory_hook_runs_busy_during_requests_and_quiet_once_after_each_spell() {
    let table =
        Arc::new(ModelTable::new([Served::new("reg".into(), 4, "reg@production".into(), model(Task::Regression))]));
    let serve = flywheel_serve::Serve {
        memory_hook: Some(count_moment),
        ..flywheel_serve::Serve::from_table("127.0.0.1:0", table)
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let _ = rt.block_on(flywheel_serve::run_until(serve, move |a| tx.send(a).unwrap(), std::future::pending()));
    });
    let addr = rx.recv().unwrap();
    let spells = || QUIET_SPELLS.load(std::sync::atomic::Ordering::SeqCst);
    let wait = |ms| std::thread::sleep(std::time::Duration::from_millis(ms));
    let body = json!({ "instances": [{ "x": 0.5, "c": "b" }] });
    wait(2_200);
    assert_eq!(spells(), 0, "no request yet: nothing to give back");
    // Requests every 200 ms for 2.4 s: never a quiet second.
    for _ in 0..12 {
        assert_eq!(post_json(addr, "/invocations", &body).status, 200);
        wait(200);
    }
    assert_eq!(spells(), 0, "not while requests come");
    let busy = BUSY_SECONDS.load(std::sync::atomic::Ordering::SeqCst);
    assert!(busy >= 1, "busy while requests come: {busy}");
    wait(2_500);
    assert_eq!(spells(), 1, "once the requests stopped");
    wait(2_200);
    assert_eq!(spells(), 1, "once per quiet spell");
    assert_eq!(post_json(addr, "/invocations", &body).status, 200);
    wait(2_500);
    assert_eq!(spells(), 2);
}
