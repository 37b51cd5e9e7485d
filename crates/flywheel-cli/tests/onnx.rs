//! ONNX models made elsewhere, through the real binary: `models import`,
//! batch prediction, evaluation and blessing against an imported
//! production model, a `command` step that writes ONNX, and bad files.

mod common;
use common::*;
use serde_json::Value;

fn fixture(name: &str) -> (std::path::PathBuf, Value) {
    let dir = repo_root().join("crates/flywheel-ml/tests/fixtures/onnx");
    let want = serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    (dir.join(format!("{name}.onnx")), want)
}

/// The fixture's rows as CSV (empty for missing).
fn rows_csv(want: &Value) -> String {
    let cols: Vec<&str> = want["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    let mut s = cols.join(",") + "\n";
    for r in want["rows"].as_array().unwrap() {
        let cells: Vec<String> =
            r.as_array().unwrap().iter().map(|v| v.as_f64().map(|x| format!("{x}")).unwrap_or_default()).collect();
        s += &(cells.join(",") + "\n");
    }
    s
}

fn signature(want: &Value, target: &str) -> String {
    serde_json::json!({ "inputs": want["columns"], "target": target }).to_string()
}

#[test]
fn an_imported_onnx_model_predicts_what_onnxruntime_predicts() {
    let env = Env::new();
    for (name, target) in [("hist_boosting_binary", "income"), ("mlp_multiclass", "weathersit")] {
        let (onnx, want) = fixture(name);
        env.write("sig.json", &signature(&want, target));
        env.write("rows.csv", &rows_csv(&want));
        let r = env.run(&["models", "import", name, onnx.to_str().unwrap(), "--signature", "sig.json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stderr.contains(&format!("registered {name}@1")), "{}", r.stderr);
        let r = env.run(&["predict", name, "rows.csv", "-o", "out.csv"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let out = std::fs::read_to_string(env.path().join("out.csv")).unwrap();
        let header: Vec<&str> = out.lines().next().unwrap().split(',').collect();
        let at = header.iter().position(|h| *h == "prediction").unwrap();
        let got: Vec<String> = out.lines().skip(1).map(|l| l.split(',').nth(at).unwrap().to_string()).collect();
        let expected: Vec<String> =
            want["labels"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert_eq!(got, expected, "{name}");
    }
    // Importing the same file again is the same version, not a new one.
    let (onnx, want) = fixture("hist_boosting_binary");
    env.write("sig.json", &signature(&want, "income"));
    let r = env.run(&["models", "import", "hist_boosting_binary", onnx.to_str().unwrap(), "--signature", "sig.json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("already hist_boosting_binary@1"), "{}", r.stderr);
    // Exported, it is a self-contained Flywheel model file.
    let r = env.run(&["models", "export", "mlp_multiclass", "-o", "mlp.json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = env.run(&["models", "inspect", "mlp.json", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["estimator"]["type"], "onnx");
    assert_eq!(v["classes"].as_array().unwrap().len(), 4, "{v:#}");
}

#[test]
fn a_native_candidate_is_blessed_against_an_imported_production_model() {
    let env = Env::new();
    let (onnx, want) = fixture("forest_binary");
    env.write("sig.json", &signature(&want, "income"));
    let r = env.run(&["models", "import", "adult", onnx.to_str().unwrap(), "--signature", "sig.json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.run(&["models", "alias", "adult@1", "production"]).code, 0);
    let data = repo_root().join("examples/adult-income/data/adult_census_income.csv.gz");
    env.write(
        "p.toml",
        &format!(
            "{PIPELINE_HEADER}[steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"{}\", eval_fraction = 0.2, \
             missing_values = [\"\", \"?\"] }}\n\
             [steps.train]\ncomponent = \"train\"\ninputs = {{ data = \"ingest.train\" }}\n\
             params = {{ target = \"income\", model = \"gbt\", features = {}, seed = 1 }}\n\
             [steps.evaluate]\ncomponent = \"evaluate\"\ninputs = {{ model = \"@model:adult@production\", data = \"ingest.eval\" }}\n\
             params = {{ slices = [\"sex\"] }}\n\
             [steps.bless]\ncomponent = \"bless\"\n\
             inputs = {{ model = \"train.model\", data = \"ingest.eval\", baseline = \"@model:adult@production\" }}\n\
             params = {{ thresholds = {{ roc_auc = \"gain >= -0.5\" }} }}\n",
            data.display(),
            want["columns"]
        ),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.json();
    let metrics = &step(&out, "evaluate")["summary"];
    assert!(metrics.to_string().contains("accuracy"), "{metrics:#}");
    let blessing: Value = serde_json::from_str(&std::fs::read_to_string(env.step_output(1, "bless")).unwrap()).unwrap();
    assert!(blessing["baseline_digest"].is_string(), "{blessing:#}");
    assert_eq!(blessing["skipped"].as_array().map(|s| s.len()), Some(0), "the imported model was the baseline");
    let check = blessing["checks"].as_array().unwrap().iter().find(|c| c["metric"] == "roc_auc").unwrap();
    assert!(check["baseline"].as_f64().unwrap() > 0.6, "{check:#}");
}

#[test]
fn bad_onnx_files_and_signatures_fail_with_what_to_do() {
    let env = Env::new();
    let (onnx, want) = fixture("forest_binary");
    let onnx = onnx.to_str().unwrap();
    env.write("sig.json", &signature(&want, "income"));
    env.write("model.pkl", "\u{80}\u{4}pickle");
    let r = env.run(&["models", "import", "m", "model.pkl", "--signature", "sig.json"]);
    assert_eq!(r.code, 2, "a bad model file is bad input");
    assert!(r.stderr.contains("model.pkl") && r.stderr.contains("not a usable ONNX model"), "{}", r.stderr);
    let r = env.run(&["models", "import", "m", onnx]);
    assert_eq!(r.code, 2, "a bad model file is bad input");
    assert!(r.stderr.contains("--signature"), "{}", r.stderr);
    env.write("typo.json", r#"{"inputs": ["age"], "target": "income", "tsk": "regression"}"#);
    let r = env.run(&["models", "import", "m", onnx, "--signature", "typo.json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("typo.json") && r.stderr.contains("tsk"), "{}", r.stderr);
    env.write("short.json", r#"{"inputs": ["age", "fnlwgt"], "target": "income"}"#);
    let r = env.run(&["models", "import", "m", onnx, "--signature", "short.json"]);
    assert_eq!(r.code, 2, "a bad model file is bad input");
    assert!(r.stderr.contains("takes 6 columns but the signature names 2"), "{}", r.stderr);
    let r = env.run(&["models", "import", "no/good", onnx, "--signature", "sig.json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = env.run(&["models"]);
    assert!(!r.stdout.contains(" m "), "nothing was registered: {}", r.stdout);
}

/// `examples/sklearn-onnx`: scikit-learn trains in a `command` step and
/// Flywheel evaluates, blesses and pushes its ONNX file. Needs a Python
/// with pandas, pyarrow, scikit-learn and skl2onnx, named by
/// FLYWHEEL_TEST_PYTHON (`.ci/run` makes one); required when CI is set.
#[test]
fn the_sklearn_onnx_example_runs_end_to_end() {
    let Ok(python) = std::env::var("FLYWHEEL_TEST_PYTHON") else {
        assert!(std::env::var_os("CI").is_none(), "CI must set FLYWHEEL_TEST_PYTHON");
        eprintln!("FLYWHEEL_TEST_PYTHON is not set; skipping the Python example");
        return;
    };
    let env = Env::new();
    let pipeline = repo_root().join("examples/sklearn-onnx/pipeline.toml");
    let set = format!("python={python}");
    let r = env.run(&["run", pipeline.to_str().unwrap(), "--set", &set, "--set", "trees=10", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.json();
    let summary = step(&out, "evaluate")["summary"].to_string();
    assert!(summary.contains("roc_auc"), "{summary}");
    let push = step(&out, "push")["summary"].to_string();
    assert!(push.contains("adult-sklearn@1"), "{push}");
}

#[test]
fn a_pipeline_input_may_pin_a_registered_version() {
    let env = Env::new();
    let (onnx, want) = fixture("forest_binary");
    env.write("sig.json", &signature(&want, "income"));
    let r = env.run(&["models", "import", "adult", onnx.to_str().unwrap(), "--signature", "sig.json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let data = repo_root().join("examples/adult-income/data/adult_census_income.csv.gz");
    let pipeline = |version: u32| {
        format!(
            "{PIPELINE_HEADER}[steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"{}\", eval_fraction = 0.05, \
             missing_values = [\"\", \"?\"] }}\n\
             [steps.evaluate]\ncomponent = \"evaluate\"\ninputs = {{ model = \"@model:adult@{version}\", data = \"ingest.eval\" }}\n",
            data.display()
        )
    };
    env.write("p.toml", &pipeline(1));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(step(&r.json(), "evaluate")["summary"].to_string().contains("accuracy"));
    env.write("p.toml", &pipeline(2));
    let r = env.run(&["run", "p.toml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("model `adult` has no version 2"), "{}", r.stderr);
}
