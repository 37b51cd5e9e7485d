//! `flywheel serve` end to end, through the real binary: models trained by
//! pipelines (a classifier and a regressor) and an imported ONNX model are
//! served; every row of the eval split posted through `/invocations` and
//! `/v2/.../infer` (JSON and binary) gets the very bits `flywheel predict`
//! computes for the same file; NVIDIA's tritonclient talks to it; SIGTERM
//! stops it cleanly.

mod common;
#[path = "serve/http.rs"]
mod http;
#[path = "serve/server.rs"]
mod server;

use common::*;
use http::{get, post_json};
use serde_json::{Value, json};
use server::Server;
use std::path::{Path, PathBuf};

/// 400 rows: `x` (missing on every 13th row), `z`, `city` (text), a
/// class `label` and a number `y`.
fn csv() -> String {
    let mut s = String::from("day,x,z,city,label,y\n");
    for i in 0..400 {
        let x = ((i * 37) % 101) as f64 / 25.0 - 2.0;
        let z = ((i * 53) % 97) as f64 / 97.0;
        let city = ["lyon", "oslo", "kyiv", "lima"][i % 4];
        let label = if (x + z > 0.3) != (i % 17 == 0) { "yes" } else { "no" };
        let y = 3.0 * x - 2.0 * z + if city == "oslo" { 1.5 } else { 0.0 } + ((i * 7) % 11) as f64 / 10.0;
        let x = if i % 13 == 5 { String::new() } else { format!("{x:.4}") };
        s.push_str(&format!("{i},{x},{z:.4},{city},{label},{y:.3}\n"));
    }
    s
}

fn pipeline(name: &str, target: &str, model: &str, thresholds: &str) -> String {
    pipeline_of(name, target, model, thresholds, r#""x", "z", "city""#)
}

fn pipeline_of(name: &str, target: &str, model: &str, thresholds: &str, features: &str) -> String {
    format!(
        "[pipeline]\nname = \"{name}\"\n\
         [steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"d.csv\", split_key = \"day\" }}\n\
         [steps.train]\ncomponent = \"train\"\ninputs = {{ data = \"ingest.train\" }}\n\
         params = {{ target = \"{target}\", model = \"{model}\", features = [{features}] }}\n\
         [steps.bless]\ncomponent = \"bless\"\ninputs = {{ model = \"train.model\", data = \"ingest.eval\" }}\n\
         params = {{ thresholds = {{ {thresholds} }} }}\n\
         [steps.push]\ncomponent = \"push\"\ninputs = {{ model = \"train.model\", blessing = \"bless.blessing\" }}\n\
         params = {{ model_name = \"{name}\", alias = \"production\" }}\n"
    )
}

/// A home with `clf` (logistic), `reg` (gradient boosting), `num` (logistic
/// on the numbers alone, whose one-row requests are read as rows) and
/// `onnx` (an imported scikit-learn linear regression), each at `production`.
fn registered() -> Env {
    let env = Env::new();
    env.write("d.csv", &csv());
    env.write("clf.toml", &pipeline("clf", "label", "logistic", "accuracy = \">= 0.5\""));
    env.write("reg.toml", &pipeline("reg", "y", "gbt", "r2 = \">= 0.5\""));
    env.write("num.toml", &pipeline_of("num", "label", "logistic", "accuracy = \">= 0.5\"", r#""x", "z""#));
    for p in ["clf.toml", "reg.toml", "num.toml"] {
        let r = env.run(&["run", p]);
        assert_eq!(r.code, 0, "{p}: {}", r.stderr);
    }
    let (onnx, fixture) = onnx_fixture();
    env.write("sig.json", &json!({ "inputs": fixture["columns"], "target": "cnt" }).to_string());
    for args in [
        vec!["models", "import", "onnx", onnx.to_str().unwrap(), "--signature", "sig.json"],
        vec!["models", "alias", "onnx@1", "production"],
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
    env
}

fn onnx_fixture() -> (PathBuf, Value) {
    let dir = repo_root().join("crates/flywheel-ml/tests/fixtures/onnx");
    let rows = serde_json::from_slice(&std::fs::read(dir.join("linear_regression.json")).unwrap()).unwrap();
    (dir.join("linear_regression.onnx"), rows)
}

/// The eval split of run `run`, copied to a Parquet file of the test.
fn eval_split(env: &Env, run: i64) -> PathBuf {
    let show = env.run(&["runs", "show", &run.to_string(), "--json"]).json();
    let ingest = show["executions"].as_array().unwrap().iter().find(|e| e["step"] == "ingest").unwrap();
    let out = ingest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "eval")
        .unwrap_or_else(|| panic!("{ingest:#}"));
    let uri = out["artifact"]["uri"].as_str().unwrap().trim_start_matches("file://");
    let path = env.path().join("eval.parquet");
    std::fs::copy(uri, &path).unwrap();
    path
}

/// What `flywheel predict MODEL FILE` writes, read back.
fn predicted(env: &Env, model: &str, data: &Path) -> flywheel_data::table::Table {
    let out = env.path().join(format!("{model}-predicted.parquet"));
    let r = env.run(&["predict", model, data.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    flywheel_data::table::read_table(&out, &Default::default()).unwrap()
}

fn column(t: &flywheel_data::table::Table, name: &str) -> usize {
    t.column_index(name).unwrap_or_else(|| panic!("no column {name}"))
}

/// The model's inputs, each as `(name, datatype, values)` from `t`.
fn inputs(addr: &str, model: &str, t: &flywheel_data::table::Table) -> Vec<(String, String, Vec<Value>)> {
    let meta = get(addr, &format!("/v2/models/{model}")).json();
    meta["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let (name, dt) = (i["name"].as_str().unwrap(), i["datatype"].as_str().unwrap());
            let at = column(t, name);
            let values: Vec<Value> = if dt == "BYTES" {
                t.str_column(at).into_iter().map(|s| json!(s)).collect()
            } else {
                t.f64_values(at).into_iter().map(|x| if x.is_nan() { Value::Null } else { json!(x) }).collect()
            };
            (name.to_string(), dt.to_string(), values)
        })
        .collect()
}

fn bits(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap().to_bits()).collect()
}

/// What `predict` wrote: `prediction` as bits or labels, and the
/// probabilities (row-major) for a classifier.
fn expected(t: &flywheel_data::table::Table, classes: &[&str]) -> (Value, Vec<u64>) {
    let at = column(t, "prediction");
    let prediction = if classes.is_empty() { json!(t.f64_values(at)) } else { json!(t.str_column(at)) };
    let probs: Vec<Vec<f64>> = classes.iter().map(|c| t.f64_values(column(t, &format!("probability({c})")))).collect();
    let rows = t.rows();
    let flat = (0..rows).flat_map(|r| probs.iter().map(move |p| p[r].to_bits())).collect();
    (prediction, flat)
}

fn same_prediction(got: &Value, want: &Value) {
    if want[0].is_string() {
        assert_eq!(got, want);
    } else {
        assert_eq!(bits(got), bits(want));
    }
}

/// Every eval row through `/invocations` (split and records), OIP JSON and
/// OIP binary: the answers are `predict`'s, bit for bit.
fn check_model(server: &Server, env: &Env, model: &str, version: &str, data: &Path, classes: &[&str]) -> Value {
    let addr = server.addr.as_str();
    let t = flywheel_data::table::read_table(data, &Default::default()).unwrap();
    let (want, want_probs) = expected(&predicted(env, model, data), classes);
    let cols = inputs(addr, model, &t);
    let rows: Vec<Value> = (0..t.rows()).map(|r| Value::Array(cols.iter().map(|c| c.2[r].clone()).collect())).collect();
    let names: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
    let split = json!({ "dataframe_split": { "columns": names, "data": rows } });
    let reply = post_json(addr, &format!("/invocations?model={model}"), &split);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-flywheel-model-version"), Some(format!("{model}@{version}").as_str()));
    same_prediction(&reply.json()["predictions"], &want);
    let tensors: Vec<Value> =
        cols.iter().map(|(n, dt, v)| json!({ "name": n, "datatype": dt, "shape": [v.len()], "data": v })).collect();
    let reply = post_json(
        addr,
        &format!("/v2/models/{model}/versions/{version}/infer"),
        &json!({ "id": "e2e", "inputs": tensors }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = reply.json();
    assert_eq!((answer["model_version"].as_str(), answer["id"].as_str()), (Some(version), Some("e2e")));
    same_prediction(&answer["outputs"][0]["data"], &want);
    if !classes.is_empty() {
        assert_eq!(bits(&answer["outputs"][1]["data"]), want_probs);
    }
    check_binary(addr, model, &cols, &want);
    write_case(env, model, version, &cols, &want, &want_probs, classes.len())
}

/// Every eval row in a request of its own, through `/invocations` and OIP
/// JSON, as a client sends them one by one (the row read straight, without
/// a column per input, for a model of numbers alone): `predict`'s bits.
fn check_rows_alone(server: &Server, env: &Env, model: &str, data: &Path) {
    let t = flywheel_data::table::read_table(data, &Default::default()).unwrap();
    let predicted = predicted(env, model, data);
    let (want, want_probs) = expected(&predicted, &["no", "yes"]);
    let cols = inputs(&server.addr, model, &t);
    let names: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
    for r in 0..t.rows() {
        let row: Vec<&Value> = cols.iter().map(|c| &c.2[r]).collect();
        let split = json!({ "dataframe_split": { "columns": names, "data": [row] } });
        let reply = post_json(&server.addr, &format!("/invocations?model={model}"), &split);
        assert_eq!(reply.status, 200, "row {r}: {}", reply.text());
        assert_eq!(reply.json()["predictions"][0], want[r], "row {r}");
        let tensors: Vec<Value> =
            cols.iter().map(|(n, dt, v)| json!({ "name": n, "datatype": dt, "shape": [1], "data": [v[r]] })).collect();
        let reply = post_json(&server.addr, &format!("/v2/models/{model}/infer"), &json!({ "inputs": tensors }));
        assert_eq!(reply.status, 200, "row {r}: {}", reply.text());
        let answer = reply.json();
        assert_eq!(answer["outputs"][0]["data"][0], want[r], "row {r}");
        assert_eq!(bits(&answer["outputs"][1]["data"]), want_probs[2 * r..2 * r + 2], "row {r}");
    }
}

/// The same rows as binary tensors, the prediction asked for in binary.
fn check_binary(addr: &str, model: &str, cols: &[(String, String, Vec<Value>)], want: &Value) {
    let mut data = Vec::new();
    let mut tensors = Vec::new();
    for (name, dt, values) in cols {
        let raw: Vec<u8> = if dt == "BYTES" {
            values
                .iter()
                .flat_map(|v| {
                    let s = v.as_str().unwrap_or("");
                    [(s.len() as u32).to_le_bytes().to_vec(), s.as_bytes().to_vec()].concat()
                })
                .collect()
        } else {
            values.iter().flat_map(|v| v.as_f64().unwrap_or(f64::NAN).to_le_bytes()).collect()
        };
        tensors.push(json!({ "name": name, "datatype": dt, "shape": [values.len()], "parameters": { "binary_data_size": raw.len() } }));
        data.extend(raw);
    }
    let head =
        json!({ "inputs": tensors, "outputs": [{ "name": "prediction", "parameters": { "binary_data": true } }] })
            .to_string();
    let len = head.len().to_string();
    let body = [head.as_bytes(), &data].concat();
    let reply = http::call(
        addr,
        "POST",
        &format!("/v2/models/{model}/infer"),
        &[("Inference-Header-Content-Length", &len)],
        &body,
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let n: usize = reply.header("Inference-Header-Content-Length").unwrap().parse().unwrap();
    let raw = &reply.body[n..];
    if want[0].is_string() {
        let mut labels = Vec::new();
        let mut rest = raw;
        while !rest.is_empty() {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            labels.push(json!(String::from_utf8(rest[4..4 + len].to_vec()).unwrap()));
            rest = &rest[4 + len..];
        }
        assert_eq!(&Value::Array(labels), want);
    } else {
        let got: Vec<u64> = raw.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(got, bits(want));
    }
}

/// The case `serve/triton_check.py` reads.
fn write_case(
    env: &Env,
    model: &str,
    version: &str,
    cols: &[(String, String, Vec<Value>)],
    want: &Value,
    probs: &[u64],
    classes: usize,
) -> Value {
    let inputs: Vec<Value> = cols.iter().map(|(n, dt, v)| json!({ "name": n, "datatype": dt, "data": v })).collect();
    let mut expected = json!({ "prediction": want });
    if classes > 0 {
        let rows: Vec<Vec<f64>> =
            probs.chunks(classes).map(|r| r.iter().map(|b| f64::from_bits(*b)).collect()).collect();
        expected["probabilities"] = json!(rows);
    }
    let case = json!({ "model": model, "version": version, "inputs": inputs, "expected": expected });
    env.write(&format!("{model}-case.json"), &case.to_string());
    case
}

/// The Python with tritonclient, or `None` to skip (never under CI).
fn test_python() -> Option<String> {
    match std::env::var("FLYWHEEL_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if std::env::var_os("CI").is_some() => panic!("CI is set but FLYWHEEL_TEST_PYTHON is not: .ci/run sets it"),
        _ => {
            eprintln!("skipping the tritonclient check: set FLYWHEEL_TEST_PYTHON to a Python with tritonclient[http]");
            None
        }
    }
}

#[test]
fn served_predictions_are_predicts_bit_for_bit_and_tritonclient_agrees() {
    let env = registered();
    let server = Server::start(&env, &[]);
    let printed = server.printed.join("\n");
    for want in ["clf@1", "reg@1", "onnx@1", "(clf@production)"] {
        assert!(printed.contains(want), "{want} not in {printed}");
    }
    let eval = eval_split(&env, 1);
    check_model(&server, &env, "clf", "1", &eval, &["no", "yes"]);
    check_model(&server, &env, "reg", "1", &eval, &[]);
    check_model(&server, &env, "num", "1", &eval, &["no", "yes"]);
    check_rows_alone(&server, &env, "num", &eval);
    // The imported ONNX model, on the fixture's rows.
    let (_, fixture) = onnx_fixture();
    let names: Vec<&str> = fixture["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    let mut text = names.join(",") + "\n";
    for r in fixture["rows"].as_array().unwrap() {
        let cells: Vec<String> = r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap().to_string()).collect();
        text += &(cells.join(",") + "\n");
    }
    let csv = env.write("onnx-rows.csv", &text);
    let rows = env.path().join("onnx-rows.parquet");
    let t = flywheel_data::table::read_table(&csv, &Default::default()).unwrap();
    flywheel_data::table::write_parquet(&rows, &t).unwrap();
    check_model(&server, &env, "onnx", "1", &rows, &[]);
    // The same CSV text posted as text/csv.
    let reply =
        http::call(&server.addr, "POST", "/invocations?model=onnx", &[("Content-Type", "text/csv")], text.as_bytes())
            .unwrap();
    let (want, _) = expected(&predicted(&env, "onnx", &rows), &[]);
    same_prediction(&reply.json()["predictions"], &want);
    if let Some(python) = test_python() {
        let script = repo_root().join("crates/flywheel-cli/tests/serve/triton_check.py");
        for model in ["clf", "reg", "onnx"] {
            let case = env.path().join(format!("{model}-case.json"));
            let out = std::process::Command::new(&python).arg(&script).arg(&server.addr).arg(&case).output().unwrap();
            let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "tritonclient on {model}:\n{so}\n{se}");
            assert!(so.contains(&format!("tritonclient ok: {model}@1")), "{so}");
        }
    }
    let (code, err) = server.stop();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stopped"), "{err}");
}

#[test]
fn named_models_are_served_at_their_alias_or_version_and_bad_ones_stop_the_start() {
    let env = registered();
    let r = env.run(&["models", "alias", "reg@1", "canary"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let server = Server::start(&env, &["reg@canary", "clf@1"]);
    assert!(server.printed.iter().any(|l| l.contains("reg@1") && l.contains("reg@canary")), "{:?}", server.printed);
    let names: Vec<Value> =
        ["clf", "reg"].iter().map(|m| get(&server.addr, &format!("/v2/models/{m}")).json()["name"].clone()).collect();
    assert_eq!(names, [json!("clf"), json!("reg")]);
    let reply = get(&server.addr, "/v2/models/onnx");
    assert_eq!(reply.status, 404, "not named, not served");
    assert!(reply.json()["error"].as_str().unwrap().contains("clf@1, reg@1"), "{}", reply.text());
    drop(server);
    for (models, code, words) in [
        (vec!["nope"], 2, vec!["cannot serve `nope@production`", "registered: clf, num, onnx, reg"]),
        (vec!["reg@staging"], 2, vec!["cannot serve `reg@staging`", "no alias `staging`"]),
        (vec!["reg@7"], 2, vec!["cannot serve `reg@7`"]),
        (vec!["reg", "reg@1"], 2, vec!["named 2 times", "give each of its references a weight"]),
        (vec!["reg@production:0"], 2, vec!["weight above 0"]),
    ] {
        let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
        args.extend(&models);
        let r = env.run(&args);
        assert_eq!(r.code, code, "{models:?}: {}", r.stderr);
        for w in words {
            assert!(r.stderr.contains(w), "{models:?}: {w:?} not in {}", r.stderr);
        }
    }
}
