//! Training and evaluation through the real binary on small generated data:
//! the classification path, time splits, and training errors.

mod common;
use common::*;

/// 600 rows: `x` numeric, `group` text; the label is mostly `x > 0`.
fn classification_csv() -> String {
    let mut s = String::from("day,x,group,label\n");
    let mut state: u64 = 42;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f64) / ((1u64 << 31) as f64)
    };
    for i in 0..600 {
        let x = next() * 4.0 - 2.0;
        let group = ["a", "b", "c"][i % 3];
        let noisy = next() < 0.05;
        let label = if (x > 0.0) != noisy { "yes" } else { "no" };
        s.push_str(&format!("2024-{:02}-{:02},{x:.4},{group},{label}\n", 1 + i / 60, 1 + i % 28));
    }
    s
}

fn pipeline(split: &str, train_params: &str) -> String {
    format!(
        "{PIPELINE_HEADER}[steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"d.csv\", {split} }}\n\
         [steps.train]\ncomponent = \"train\"\ninputs = {{ data = \"ingest.train\" }}\nparams = {{ {train_params} }}\n\
         [steps.evaluate]\ncomponent = \"evaluate\"\ninputs = {{ model = \"train.model\", data = \"ingest.eval\" }}\n\
         [steps.push]\ncomponent = \"push\"\ninputs = {{ model = \"train.model\" }}\nparams = {{ model_name = \"clf\" }}\n"
    )
}

#[test]
fn logistic_regression_learns_a_binary_label_and_reports_classification_metrics() {
    let env = Env::new();
    env.write("d.csv", &classification_csv());
    env.write("p.toml", &pipeline("split_key = \"day\"", "target = \"label\", drop = [\"day\"]"));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = r.json();
    assert_eq!(step(&o, "train")["summary"]["model"]["algorithm"], "logistic");
    let m = &step(&o, "evaluate")["summary"]["metrics"];
    assert!(m["accuracy"].as_f64().unwrap() > 0.85, "{m}");
    assert!(m["roc_auc"].as_f64().unwrap() > 0.9, "{m}");
    for key in ["precision", "recall", "f1", "log_loss"] {
        assert!(m[key].is_number(), "{key} in {m}");
    }
    assert_eq!(step(&o, "push")["summary"]["model_version"], "clf@1");

    // A different model (another C) is a new version; the same one is not.
    let r = env.run(&["run", "p.toml", "--json", "--no-cache"]);
    assert_eq!(step(&r.json(), "push")["summary"]["model_version"], "clf@1");
    env.write("p.toml", &pipeline("split_key = \"day\"", "target = \"label\", drop = [\"day\"], c = 0.2"));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(step(&r.json(), "push")["summary"]["model_version"], "clf@2");
}

#[test]
fn a_text_target_with_three_classes_trains_a_multinomial_model() {
    let env = Env::new();
    env.write("d.csv", &classification_csv());
    env.write(
        "p.toml",
        &pipeline(
            "split_key = \"day\"",
            "target = \"group\", drop = [\"day\"], transform = { x = \"indicator | standardize\" }",
        ),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = r.json();
    let m = &step(&o, "evaluate")["summary"]["metrics"];
    // `group` is independent of the features: about a third right.
    for key in ["accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss"] {
        assert!(m[key].is_number(), "{key} in {m}");
    }
    assert!((m["log_loss"].as_f64().unwrap() - 3f64.ln()).abs() < 0.1, "{m}");
    // A forest takes a multiclass target too (one class against the rest).
    env.write(
        "p.toml",
        &pipeline("split_key = \"day\"", "target = \"group\", drop = [\"day\"], model = \"forest\", n_estimators = 10"),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(step(&r.json(), "evaluate")["summary"]["metrics"]["f1_macro"].is_number());
}

#[test]
fn a_time_split_puts_rows_at_or_after_the_cutoff_in_eval() {
    let env = Env::new();
    env.write("d.csv", &classification_csv());
    env.write(
        "p.toml",
        &pipeline(
            "split = \"time\", time_column = \"day\", cutoff = \"2024-09-01\"",
            "target = \"label\", drop = [\"day\"]",
        ),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Months 1–8 train (480 rows), 9–10 eval (120 rows).
    let rows = step(&r.json(), "ingest")["summary"]["rows"].clone();
    assert_eq!(rows["train"], 480);
    assert_eq!(rows["eval"], 120);

    env.write(
        "p.toml",
        &pipeline("split = \"time\", time_column = \"dya\", cutoff = \"2024-09-01\"", "target = \"label\""),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1);
    let e = step(&r.json(), "ingest")["error"].as_str().unwrap().to_string();
    assert!(e.contains("`time_column` = \"dya\" is not a column of the data; did you mean `day`?"), "{e}");
}

#[test]
fn training_errors_name_the_column_and_what_to_do() {
    let env = Env::new();
    env.write("d.csv", &classification_csv());
    let cases = [
        ("target = \"lable\"", "target `lable` is not a column of the training data; did you mean `label`?"),
        ("target = \"label\", model = \"linear\"", "linear regression needs a numeric target"),
        (
            "target = \"label\", transform = { x = \"standardise\" }",
            "transform of `x` (\"standardise\"): unknown step `standardise`; did you mean `standardize`?",
        ),
        (
            "target = \"label\", transform = { group = \"impute(mean)\" }",
            "`impute` applies to numbers, and `group` holds text",
        ),
        (
            "target = \"label\", features = [\"x\", \"grop\"]",
            "feature `grop` is not a column of the training data; did you mean `group`?",
        ),
        ("target = \"label\", features = [\"x\", \"label\"]", "the target `label` cannot also be a feature"),
    ];
    // What needs no data is caught before anything runs (exit 2), in the same words.
    let before_run = ["standardise", "features = [\"x\", \"label\"]"];
    for (params, expected) in cases {
        env.write("p.toml", &pipeline("split_key = \"day\"", params));
        let r = env.run(&["run", "p.toml", "--json"]);
        if before_run.iter().any(|b| params.contains(b)) {
            assert_eq!(r.code, 2, "{params}: {}", r.stderr);
            assert!(r.stderr.contains(expected), "{params}: {}", r.stderr);
            continue;
        }
        assert_eq!(r.code, 1, "{params}: {}", r.stderr);
        let o = r.json();
        let e = step(&o, "train")["error"].as_str().unwrap().to_string();
        assert!(e.contains(expected), "{params}: {e}");
        assert_eq!(step(&o, "evaluate")["status"], "skipped");
    }
}

#[test]
fn a_registered_model_exports_and_inspects_with_its_signature_and_lineage() {
    let env = Env::new();
    env.write("d.csv", &classification_csv());
    env.write(
        "p.toml",
        &pipeline(
            "split_key = \"day\"",
            "target = \"label\", drop = [\"day\"], transform = { x = \"clip(-1, 1) | minmax\" }",
        ),
    );
    assert_eq!(env.run(&["run", "p.toml"]).code, 0);
    let r = env.run(&["models", "export", "clf@1", "-o", "clf.json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = env.run(&["models", "inspect", "clf.json", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.json();
    assert_eq!(m["format"], "flywheel.model/2");
    assert_eq!(m["classes"], serde_json::json!(["no", "yes"]));
    let inputs: Vec<(String, String)> = m["signature"]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap().to_string(), i["kind"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(inputs, [("x".to_string(), "number".to_string()), ("group".to_string(), "text".to_string())]);
    assert_eq!(m["transform"][0]["declared"], "clip(-1, 1) | minmax");
    assert_eq!(m["metadata"]["registry"]["model"], "clf");
    assert_eq!(m["metadata"]["registry"]["run"], 1);

    // Not a model, and an unknown version: bad input, exit 2.
    env.write("bad.json", "{\"weights\": [1, 2]}");
    let r = env.run(&["models", "inspect", "bad.json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.json: not a Flywheel model"), "{}", r.stderr);
    assert_eq!(env.run(&["models", "export", "clf@7", "-o", "x.json"]).code, 2);
    assert!(!env.dir.path().join("x.json").exists());
}

#[test]
fn gradient_boosting_learns_an_interaction_a_linear_model_cannot() {
    // label = (x > 0) xor (group == "a"): no linear boundary in x and group.
    let mut csv = String::from("day,x,group,label\n");
    let mut state: u64 = 9;
    for i in 0..1500 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let x = ((state >> 33) as f64) / ((1u64 << 31) as f64) * 4.0 - 2.0;
        let group = ["a", "b"][i % 2];
        let label = if (x > 0.0) != (group == "a") { "yes" } else { "no" };
        csv.push_str(&format!("2024-{:02}-{:02},{x:.4},{group},{label}\n", 1 + i / 150, 1 + i % 28));
    }
    let env = Env::new();
    env.write("d.csv", &csv);
    let accuracy = |params: &str| {
        env.write("p.toml", &pipeline("split_key = \"day\"", params));
        let r = env.run(&["run", "p.toml", "--json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        step(&r.json(), "evaluate")["summary"]["metrics"]["accuracy"].as_f64().unwrap()
    };
    let linear = accuracy("target = \"label\", drop = [\"day\"], model = \"logistic\"");
    let boosted = accuracy("target = \"label\", drop = [\"day\"], model = \"gbt\", seed = 3");
    let tree = accuracy("target = \"label\", drop = [\"day\"], model = \"tree\", min_samples_leaf = 5");
    let forest = accuracy("target = \"label\", drop = [\"day\"], model = \"forest\", n_estimators = 30, seed = 2");
    assert!(linear < 0.7, "logistic {linear}");
    assert!(boosted > 0.95, "gbt {boosted}");
    assert!(tree > 0.95, "tree {tree}");
    assert!(forest > 0.95, "forest {forest}");
    let r = env.run(&["models", "export", "clf@2", "-o", "gbt.json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = env.run(&["models", "inspect", "gbt.json", "--json"]).json();
    assert_eq!(m["estimator"]["type"], "gbt");
    assert_eq!(m["transform"][1]["declared"], "ordinal");
}

#[test]
fn evaluation_reports_every_slice_and_warns_about_a_single_valued_one() {
    let env = Env::new();
    env.write("d.csv", &classification_csv());
    let base =
        "[steps.evaluate]\ncomponent = \"evaluate\"\ninputs = { model = \"train.model\", data = \"ingest.eval\" }\n";
    let sliced =
        format!("{base}params = {{ slices = [\"group\", \"x:-1,0,1\", \"group*x:0\", \"day:2024-01-01\"] }}\n");
    let p = pipeline("split_key = \"day\"", "target = \"label\", drop = [\"day\"]").replace(base, &sliced);
    env.write("p.toml", &p);
    let r = env.run(&["run", "p.toml", "--json"]);
    // A bin edge that is not a number is caught before anything runs.
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("slice \"day:2024-01-01\": bin edge `2024-01-01` is not a number"), "{}", r.stderr);

    let sliced =
        format!("{base}params = {{ slices = [\"group\", \"x:-1,0,1\", \"group*x:0\", \"label\", \"x:100\"] }}\n");
    env.write(
        "p.toml",
        &pipeline("split_key = \"day\"", "target = \"label\", drop = [\"day\"]").replace(base, &sliced),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = r.json();
    assert_eq!(step(&o, "evaluate")["summary"]["metrics"]["slices"], 3 + 4 + 6 + 2 + 1);
    // The artifact holds every slice's metrics; they add up to the whole.
    let path = env.step_output(1, "evaluate"); // the refused file above recorded no run
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let slices = m["slices"].as_array().unwrap();
    let rows_of = |spec: &str| -> u64 {
        slices.iter().filter(|s| s["spec"] == spec).map(|s| s["metrics"]["rows"].as_u64().unwrap()).sum()
    };
    for spec in ["group", "x:-1,0,1", "group*x:0", "label"] {
        assert_eq!(rows_of(spec), m["rows"].as_u64().unwrap(), "{spec}");
    }
    let names: Vec<&str> =
        slices.iter().filter(|s| s["spec"] == "x:-1,0,1").map(|s| s["slice"].as_str().unwrap()).collect();
    assert_eq!(names, ["-1≤x<0", "0≤x<1", "x<-1", "x≥1"]);
    assert!(slices.iter().any(|s| s["slice"] == "group=a, x≥0"));
    // Within a slice of one label, accuracy is still defined, ROC AUC is not.
    let yes = slices.iter().find(|s| s["slice"] == "label=yes").unwrap();
    assert!(yes["metrics"]["accuracy"].is_number() && yes["metrics"]["roc_auc"].is_null(), "{yes}");
    assert_eq!(m["confusion_matrix"].as_array().unwrap().len(), 2);
    // One warning for the single-valued slice, and one per slice where a
    // metric is undefined (each `label` slice holds one class).
    let warnings: Vec<&str> = m["warnings"].as_array().unwrap().iter().filter_map(|w| w.as_str()).collect();
    assert!(
        warnings.iter().any(|w| w.contains("slice \"x:100\" has a single value in the evaluation data (x<100)")),
        "{warnings:?}"
    );
    assert!(warnings.iter().any(|w| w.starts_with("roc_auc undefined on slice label=yes")), "{warnings:?}");
    assert!(m["calibration"].as_array().unwrap().len() >= 2);
}

#[test]
fn batch_prediction_writes_the_input_with_predictions_from_a_file_or_the_registry() {
    let env = Env::new();
    env.write("d.csv", &classification_csv());
    env.write("p.toml", &pipeline("split_key = \"day\"", "target = \"label\", drop = [\"day\"]"));
    assert_eq!(env.run(&["run", "p.toml"]).code, 0);
    let r = env.run(&["predict", "clf", "d.csv", "-o", "out.csv", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["rows"], 600);
    let out = std::fs::read_to_string(env.dir.path().join("out.csv")).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap(), "day,x,group,label,prediction,probability(no),probability(yes)");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 600);
    let agree = rows.iter().filter(|r| r[3] == r[4]).count();
    assert!(agree > 510, "{agree} of 600 predictions match the label");
    for r in &rows {
        let (p0, p1): (f64, f64) = (r[5].parse().unwrap(), r[6].parse().unwrap());
        assert!((p0 + p1 - 1.0).abs() < 1e-9);
        assert_eq!(r[4], if p1 > p0 { "yes" } else { "no" });
    }
    // The same from an exported file, to Parquet; then data without a feature.
    assert_eq!(env.run(&["models", "export", "clf", "-o", "m.json"]).code, 0);
    let r = env.run(&["predict", "m.json", "d.csv", "-o", "out.parquet"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("predicted 600 rows"), "{}", r.stdout);
    env.write("bad.csv", "day,xx,group\n2024-01-01,1.0,a\n");
    let r = env.run(&["predict", "m.json", "bad.csv", "-o", "never.csv"]);
    assert_eq!(r.code, 2, "data without the model's columns is bad input");
    assert!(
        r.stderr.contains("the model needs columns the data does not have: `x` (did you mean `xx`?)"),
        "{}",
        r.stderr
    );
    assert!(!env.dir.path().join("never.csv").exists());
}

#[test]
fn bad_training_data_gets_a_clear_error_or_a_recorded_warning() {
    let env = Env::new();
    // Days 1–19 train, 20–28 evaluate (a time split). Two rows lack a
    // label, `flat` is constant, and `maybe` only occurs in evaluation.
    let mut csv = String::from("day,x,flat,label\n");
    for i in 0..280 {
        let day = 1 + i % 28;
        let x = (i % 50) as f64 / 10.0 - 2.5;
        let label = match (i, day) {
            (7, _) | (250, _) => "",
            (_, 25) if i % 3 == 0 => "maybe",
            _ if x > 0.0 => "yes",
            _ => "no",
        };
        csv.push_str(&format!("2024-01-{day:02},{x},1,{label}\n"));
    }
    env.write("d.csv", &csv);
    let split = "split = \"time\", time_column = \"day\", cutoff = \"2024-01-20\"";

    env.write("p.toml", &pipeline(split, "target = \"label\", drop = [\"day\"], missing_target = \"error\""));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1);
    let e = step(&r.json(), "train")["error"].as_str().unwrap().to_string();
    assert!(e.contains("1 training rows have no `label` value (missing_target = \"error\")"), "{e}");

    env.write("p.toml", &pipeline(split, "target = \"label\", drop = [\"day\"], model = \"logistic\""));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1);
    let o = r.json();
    assert_eq!(step(&o, "train")["status"], "succeeded");
    let e = step(&o, "evaluate")["error"].as_str().unwrap().to_string();
    assert!(
        e.contains(
            "evaluation rows have a `label` value the model never saw in training (e.g. `maybe`; classes: `no`, `yes`)"
        ),
        "{e}"
    );
    // Training dropped the row without a label and warned about `flat`.
    let log = env.step_log(2, "train");
    assert!(log.contains("warning: dropped 1 training rows with a missing `label`"), "{log}");
    assert!(log.contains("warning: feature `flat` has a single value in the training data"), "{log}");
}

/// The digest of the model run `run`'s `train` step made.
fn model_digest(env: &Env, run: i64) -> String {
    let e = env.execution(run, "train");
    e["outputs"][0]["artifact"]["digest"].as_str().unwrap().to_string()
}

/// The same data and seed give the same model on one core as on all of
/// them, to the byte: sums spread over threads are cut into shares that do
/// not depend on the cores (a retrain elsewhere must not look like a new
/// model). Large enough for the parallel paths: histograms of 30,000 rows
/// × 6 columns, logistic passes over 180,000 values.
#[test]
fn a_model_is_the_same_on_one_core_as_on_all() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let taskset = std::process::Command::new("taskset").arg("--version").output().is_ok_and(|o| o.status.success());
    if cores < 2 || !taskset {
        eprintln!("skipped: needs 2 cores and taskset (found {cores} core(s), taskset: {taskset})");
        return;
    }
    let env = Env::new();
    let mut s = String::from("a,b,c,d,e,f,y,label\n");
    for i in 0..30_000u64 {
        let v: Vec<f64> = (0..6).map(|k| ((i * (7919 + k * 104_729)) % 1000) as f64 / 100.0).collect();
        let y = v[0] * 2.0 - v[1] + (v[2] * v[3]).sqrt();
        s.push_str(&format!(
            "{},{},{},{},{},{},{y:.4},{}\n",
            v[0],
            v[1],
            v[2],
            v[3],
            v[4],
            v[5],
            if y > 10.0 { "hi" } else { "lo" }
        ));
    }
    env.write("d.csv", &s);
    for (name, params) in [
        ("gbt", "target = \"y\", model = \"gbt\", seed = 3, drop = [\"label\"]"),
        ("logistic", "target = \"label\", model = \"logistic\", drop = [\"y\"]"),
    ] {
        env.write(
            &format!("{name}.toml"),
            &pipeline("eval_fraction = 0.2", params).replace("name = \"t\"", &format!("name = \"{name}\"")),
        );
    }
    let mut run = 0;
    for name in ["gbt", "logistic"] {
        let file = format!("{name}.toml");
        let all = env.run(&["run", &file, "--no-cache"]);
        assert_eq!(all.code, 0, "{}", all.stderr);
        let mut one = std::process::Command::new("taskset");
        one.args(["-c", "0", bin(), "--home"])
            .arg(env.home())
            .args(["run", &file, "--no-cache"])
            .current_dir(env.path());
        let out = one.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        run += 2;
        assert_eq!(model_digest(&env, run - 1), model_digest(&env, run), "{name}: one core gave another model");
    }
}
