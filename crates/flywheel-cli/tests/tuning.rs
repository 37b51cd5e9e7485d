//! `tune` through the real binary: trials recorded as child executions,
//! the best parameters feeding `train`, and bad search spaces.

mod common;
use common::*;

/// 400 rows over 400 days: `y` depends on `x` with a kink, so deeper trees
/// score better than stumps.
fn data_csv() -> String {
    let mut s = String::from("day,x,z,y,label\n");
    let mut state: u64 = 7;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f64) / ((1u64 << 31) as f64)
    };
    for i in 0..400 {
        let x = next() * 4.0 - 2.0;
        let z = next();
        let y = if x > 0.5 { 3.0 * x } else { -x } + z * 0.1;
        let label = if x * x + z > 1.5 { "yes" } else { "no" };
        s.push_str(&format!("2024-{:02}-{:02},{x:.4},{z:.4},{y:.4},{label}\n", 1 + i / 31 % 12, 1 + i % 28));
    }
    s
}

fn pipeline(tune_params: &str) -> String {
    format!(
        "{PIPELINE_HEADER}[steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"d.csv\", eval_fraction = 0.2 }}\n\
         [steps.tune]\ncomponent = \"tune\"\ninputs = {{ data = \"ingest.train\" }}\nparams = {{ {tune_params} }}\n\
         [steps.train]\ncomponent = \"train\"\ninputs = {{ data = \"ingest.train\", hyperparameters = \"tune.best\" }}\n\
         params = {{ target = \"y\", model = \"gbt\", features = [\"x\", \"z\"] }}\n"
    )
}

#[test]
fn every_trial_is_a_child_execution_and_the_best_parameters_train_the_model() {
    let env = Env::new();
    env.write("d.csv", &data_csv());
    env.write(
        "p.toml",
        &pipeline(
            "target = \"y\", model = \"gbt\", features = [\"x\", \"z\"], folds = 3, metric = \"rmse\", \
             space = { max_depth = \"1, 3\", learning_rate = \"0.05..0.3 n=2\" }, fixed = { max_iterations = \"30\" }",
        ),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tune = env.execution(1, "tune");
    let children = tune["children"].as_array().expect("trials are recorded as children");
    assert_eq!(children.len(), 4, "2 × 2 grid: {tune:#}");
    for c in children {
        assert_eq!(c["status"], "succeeded");
        assert!(c["step"].as_str().unwrap().starts_with("tune: trial "), "{c:#}");
        assert!(c["parameters"]["max_depth"].is_i64() && c["parameters"]["learning_rate"].is_f64(), "{c:#}");
        assert_eq!(c["summary"]["folds"].as_array().unwrap().len(), 3);
    }
    // rmse: lower is better; the chosen trial has the lowest mean.
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.step_output(1, "tune")).unwrap()).unwrap();
    let lowest = children.iter().map(|c| c["summary"]["mean"].as_f64().unwrap()).fold(f64::INFINITY, f64::min);
    assert_eq!(best["score"].as_f64().unwrap(), lowest);
    assert_eq!(best["direction"], "minimize");
    assert_eq!(best["params"]["max_depth"], 3, "depth 3 fits the kink better: {best:#}");
    // The trials are not steps of their own.
    let steps: Vec<String> = env.run(&["runs", "show", "1", "--json"]).json()["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(steps.len(), 3, "{steps:?}");
    // `train` used them.
    let log = env.step_log(1, "train");
    assert!(log.contains("tuned parameters") && log.contains("\"max_depth\":3"), "{log}");
    let model = std::fs::read_to_string(env.step_output(1, "train")).unwrap();
    assert!(model.contains("\"max_depth\": 3"), "the model's settings record the tuned depth");
}

#[test]
fn stratified_random_search_and_time_ordered_folds_run() {
    let env = Env::new();
    env.write("d.csv", &data_csv());
    env.write(
        "p.toml",
        &format!(
            "{PIPELINE_HEADER}[steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"d.csv\", eval_fraction = 0.2 }}\n\
             [steps.random]\ncomponent = \"tune\"\ninputs = {{ data = \"ingest.train\" }}\n\
             params = {{ target = \"label\", model = \"logistic\", drop = [\"day\", \"y\"], search = \"random\", trials = 3, \
             folds = 4, seed = 5, space = {{ c = \"0.01..10 log\" }}, metric = \"roc_auc\" }}\n\
             [steps.time]\ncomponent = \"tune\"\ninputs = {{ data = \"ingest.train\" }}\n\
             params = {{ target = \"y\", model = \"ridge\", features = [\"x\", \"z\"], time_column = \"day\", folds = 3, \
             space = {{ alpha = \"0.1, 10\" }} }}\n"
        ),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let random: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.step_output(1, "random")).unwrap()).unwrap();
    assert_eq!(random["split"], "stratified");
    assert_eq!(random["trials"].as_array().unwrap().len(), 3);
    let c = random["params"]["c"].as_f64().unwrap();
    assert!((0.01..=10.0).contains(&c), "{c}");
    let time: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.step_output(1, "time")).unwrap()).unwrap();
    assert_eq!(time["split"], "time");
    assert_eq!(time["metric"], "r2");
}

#[test]
fn an_empty_range_or_unknown_parameter_is_a_clear_error() {
    let env = Env::new();
    env.write("d.csv", &data_csv());
    env.write(
        "p.toml",
        &pipeline("target = \"y\", model = \"gbt\", space = { learning_rate = \"0.3..0.1\", max_dept = \"2, 3\" }"),
    );
    let r = env.run(&["run", "p.toml"]);
    // Caught before anything runs, each at its place.
    assert_eq!(r.code, 2, "{}", r.stderr);
    let log = r.stderr;
    assert!(log.contains("`space.learning_rate` = \"0.3..0.1\" is empty"), "{log}");
    assert!(log.contains("`space.max_dept`") && log.contains("did you mean `max_depth`"), "{log}");
}
