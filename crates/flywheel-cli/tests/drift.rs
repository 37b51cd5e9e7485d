//! `flywheel drift` against scipy reference values
//! (`fixtures/drift/make_reference.py`), and its handling of bad input.

mod common;
use common::*;
use serde_json::Value;
use std::path::PathBuf;

const CASES: [&str; 4] = ["bike_years", "bike_small", "synthetic_large", "synthetic_small"];
const METHODS: [&str; 7] = ["wasserstein", "jensenshannon", "psi", "ks", "chisquare", "z", "linf"];

fn case_dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drift").join(case)
}

fn expected(case: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(case_dir(case).join("expected.json")).unwrap()).unwrap()
}

fn drift(env: &Env, case: &str, extra: &[&str]) -> Value {
    let d = case_dir(case);
    let (r, c) = (d.join("reference.csv.gz"), d.join("current.csv.gz"));
    let mut args = vec!["drift", r.to_str().unwrap(), c.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    assert_eq!(out.code, 0, "{case} {extra:?}: {}", out.stderr);
    out.json()
}

fn close(ours: f64, theirs: f64, rel: f64, what: &str) {
    let tol = rel * theirs.abs().max(1e-300);
    assert!((ours - theirs).abs() <= tol, "{what}: flywheel {ours:e} vs scipy {theirs:e}");
}

#[test]
fn every_method_matches_scipy_on_every_case() {
    let env = Env::new();
    for case in CASES {
        let want = expected(case);
        let large = want["reference_rows"].as_u64().unwrap().max(want["current_rows"].as_u64().unwrap()) > 10_000;
        for method in METHODS {
            let columns: Vec<&str> = want["columns"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, c)| c["scores"].get(method).is_some())
                .map(|(name, _)| name.as_str())
                .collect();
            if columns.is_empty() {
                continue;
            }
            let got = drift(&env, case, &["--stattest", method, "--columns", &columns.join(",")]);
            for col in columns {
                let w = &want["columns"][col];
                let g = &got["columns"][col];
                let what = format!("{case}.{col}.{method}");
                assert_eq!(g["kind"], w["kind"], "{what}");
                assert_eq!(g["method"], method, "{what}");
                let (ours, theirs) = (g["score"].as_f64().unwrap(), w["scores"][method]["score"].as_f64().unwrap());
                if method == "ks" && large {
                    // Asymptotic p-value: within 2% of scipy's (and absolute 1e-4 near 0).
                    assert!(
                        (ours - theirs).abs() <= 0.02 * theirs + 1e-4,
                        "{what}: flywheel {ours:e} vs scipy {theirs:e}"
                    );
                } else {
                    close(ours, theirs, 1e-6, &what);
                }
                if let Some(stat) = w["scores"][method]["statistic"].as_f64() {
                    close(g["statistic"].as_f64().unwrap(), stat, 1e-9, &format!("{what} statistic"));
                }
            }
        }
    }
}

#[test]
fn defaults_follow_evidentlys_rules() {
    let env = Env::new();
    for case in CASES {
        let want = expected(case);
        let got = drift(&env, case, &[]);
        for (col, w) in want["columns"].as_object().unwrap() {
            assert_eq!(got["columns"][col]["method"], w["default"], "{case}.{col}");
            let threshold = if ["ks", "chisquare", "z"].contains(&w["default"].as_str().unwrap()) { 0.05 } else { 0.1 };
            assert_eq!(got["columns"][col]["threshold"], threshold, "{case}.{col}");
        }
        let drifted = got["columns"].as_object().unwrap().values().filter(|c| c["drift"] == true).count();
        assert_eq!(got["drifted_columns"], drifted);
        assert_eq!(got["dataset_drift"], got["drift_share"].as_f64().unwrap() >= 0.5);
    }
    // The bike rentals grew from 2011 to 2012: `cnt` drifts.
    assert_eq!(drift(&env, "bike_years", &[])["columns"]["cnt"]["drift"], true);
}

#[test]
fn per_column_methods_and_thresholds() {
    let env = Env::new();
    let got = drift(&env, "bike_years", &["--method", "cnt=psi", "--threshold", "cnt=5", "--threshold", "temp=0.01"]);
    assert_eq!(got["columns"]["cnt"]["method"], "psi");
    assert_eq!(got["columns"]["cnt"]["threshold"], 5.0);
    assert_eq!(got["columns"]["cnt"]["drift"], false);
    assert_eq!(got["columns"]["temp"]["method"], "wasserstein");
    assert_eq!(got["columns"]["temp"]["drift"], true);
}

#[test]
fn bad_input_is_a_clear_error() {
    let env = Env::new();
    let d = case_dir("bike_small");
    let (r, c) = (d.join("reference.csv.gz"), d.join("current.csv.gz"));
    let (r, c) = (r.to_str().unwrap(), c.to_str().unwrap());
    let cases: &[(&[&str], &str)] = &[
        (&["--stattest", "kss"], "unknown drift method `kss`"),
        (&["--method", "season=ks"], "column `season`: method `ks` does not apply to categorical columns"),
        (&["--method", "cnt"], "--method cnt: write it as COLUMN=VALUE"),
        (
            &["--columns", "cnnt"],
            "`--columns` names column `cnnt`, which the two datasets do not share; did you mean `cnt`?",
        ),
        (&["--threshold", "cnt=high"], "`high` is not a number"),
        (&["--drift-share", "2"], "must be between 0 and 1"),
    ];
    for (extra, message) in cases {
        let mut args = vec!["drift", r, c];
        args.extend_from_slice(extra);
        let out = env.run(&args);
        assert_eq!(out.code, 2, "{extra:?}");
        assert!(out.stderr.contains(message), "{extra:?}: {}", out.stderr);
    }
    let out = env.run(&["drift", "missing.csv", c]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("missing.csv: cannot open"), "{}", out.stderr);

    // Different columns are reported, not a crash; no shared column is an error.
    env.write("a.csv", "x,only_a\n1,2\n3,4\n");
    env.write("b.csv", "x,only_b\n1,2\n5,6\n");
    let out = env.run(&["drift", "a.csv", "b.csv", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["only_in_reference"], serde_json::json!(["only_a"]));
    assert_eq!(v["only_in_current"], serde_json::json!(["only_b"]));
    env.write("c.csv", "z\n1\n");
    let out = env.run(&["drift", "a.csv", "c.csv"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("share no columns"), "{}", out.stderr);

    // A column missing entirely on one side drifts (its presence changed).
    env.write("d.csv", "x,y\n1,\n2,\n3,\n");
    env.write("e.csv", "x,y\n1,a\n2,b\n3,c\n");
    let v = env.run(&["drift", "e.csv", "d.csv", "--json"]).json();
    assert_eq!(v["columns"]["y"]["drift"], true);
    assert_eq!(v["columns"]["y"]["current_missing"], 3);
    assert_eq!(v["columns"]["y"]["score"], Value::Null);
}

#[test]
fn fail_on_drift_sets_the_exit_code() {
    let env = Env::new();
    let d = case_dir("bike_years");
    let (r, c) = (d.join("reference.csv.gz"), d.join("current.csv.gz"));
    let out = env.run(&["drift", r.to_str().unwrap(), c.to_str().unwrap(), "--fail-on-drift", "--drift-share", "0.1"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("dataset drift: yes"), "{}", out.stdout);
}

#[test]
fn html_reports_are_self_contained_files() {
    let env = Env::new();
    let d = case_dir("bike_years");
    let (r, c) = (d.join("reference.csv.gz"), d.join("current.csv.gz"));
    let out = env.run(&["drift", r.to_str().unwrap(), c.to_str().unwrap(), "--html", "report.html"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let html = std::fs::read_to_string(env.path().join("report.html")).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    // One chart per column, drifted columns first, and nothing fetched from the network.
    assert_eq!(html.matches("<svg").count(), 9);
    assert!(html.find("cnt — drift").unwrap() < html.find("temp — no drift").unwrap());
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));

    let out = env.run(&["stats", r.to_str().unwrap(), "--html", "stats.html"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let html = std::fs::read_to_string(env.path().join("stats.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 9);

    // A report that cannot be written is an error, and leaves nothing behind.
    let out = env.run(&["drift", r.to_str().unwrap(), c.to_str().unwrap(), "--html", "no/such/dir/report.html"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("cannot write the report no/such/dir/report.html"), "{}", out.stderr);
}

/// Level-1 continuous training: a run on new data validates it against the
/// data the registered model was trained on, and records a drift signal.
#[test]
fn a_pipeline_records_drift_from_the_production_models_training_data() {
    let env = Env::new();
    let d = case_dir("bike_years");
    let (y2011, y2012) = (d.join("reference.csv.gz"), d.join("current.csv.gz"));
    env.write(
        "p.toml",
        "[pipeline]\nname = \"bikes\"\n[parameters]\ndata = \"x.csv\"\n\
         [steps.ingest]\ncomponent = \"ingest\"\nparams = { path = \"${data}\" }\n\
         [steps.stats]\ncomponent = \"statistics\"\ninputs = { data = \"ingest.train\" }\n\
         [steps.schema]\ncomponent = \"schema\"\ninputs = { statistics = \"stats.statistics\" }\n\
         [steps.validate]\ncomponent = \"validate\"\ninputs = { data = \"ingest.train\", schema = \"schema.schema\", baseline = \"@model:bikes/data\" }\nparams = { drift_share = 0.2 }\n\
         [steps.train]\ncomponent = \"train\"\ninputs = { data = \"ingest.train\" }\nparams = { target = \"cnt\", model = \"linear\" }\n\
         [steps.push]\ncomponent = \"push\"\ninputs = { model = \"train.model\" }\nparams = { model_name = \"bikes\" }\n",
    );
    let first = env.run(&["run", "p.toml", "--json", "--set", &format!("data={}", y2011.display())]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    // Nothing registered yet: no baseline, no drift measured.
    assert!(step(&first.json(), "validate")["summary"].get("drift").is_none());
    assert_eq!(env.run(&["signals", "--json"]).json(), serde_json::json!([]));

    let second = env.run(&["run", "p.toml", "--json", "--set", &format!("data={}", y2012.display())]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let message = step(&second.json(), "validate")["summary"]["drift"].as_str().unwrap().to_string();
    assert!(message.starts_with("retraining recommended: "), "{message}");

    let signals = env.run(&["signals", "--json"]).json();
    assert_eq!(signals.as_array().unwrap().len(), 1);
    let s = &signals[0];
    assert_eq!(s["kind"], "drift");
    assert_eq!(s["message"], message.as_str());
    assert_eq!(s["run_id"], second.json()["run_id"]);
    let drifted = s["details"]["drifted_columns"].as_array().unwrap();
    assert!(drifted.contains(&serde_json::json!("cnt")), "{s:#}");

    // Lineage: the baseline the validate step read is run 1's training data.
    let show = env.run(&["runs", "show", &second.json()["run_id"].to_string(), "--json"]).json();
    let validate = show["executions"].as_array().unwrap().iter().find(|e| e["step"] == "validate").unwrap();
    let baseline = validate["inputs"].as_array().unwrap().iter().find(|i| i["name"] == "baseline").unwrap();
    let first_show = env.run(&["runs", "show", &first.json()["run_id"].to_string(), "--json"]).json();
    let train_data = &first_show["executions"][0]["outputs"][0]["artifact"]["id"];
    assert_eq!(&baseline["artifact"]["id"], train_data);
    assert_eq!(show["signals"][0]["kind"], "drift");
}

#[test]
fn a_required_input_that_resolves_to_nothing_fails_clearly() {
    let env = Env::new();
    env.write(
        "p.toml",
        "[pipeline]\nname = \"t\"\n[steps.eval]\ncomponent = \"evaluate\"\ninputs = { model = \"@model:ghost/model\", data = \"@model:ghost/data\" }\n",
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = step(&r.json(), "eval")["error"].as_str().unwrap().to_string();
    assert!(e.contains("no version of model `ghost` was registered before this run"), "{e}");
    env.write("q.toml", "[pipeline]\nname = \"t\"\n[steps.eval]\ncomponent = \"evaluate\"\ninputs = { model = \"@modle:ghost\", data = \"x.y\" }\n");
    let r = env.run(&["check", "q.toml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is not a resolvable reference"), "{}", r.stderr);
}
