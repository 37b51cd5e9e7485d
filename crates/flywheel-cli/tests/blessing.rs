//! Model validation through the real binary: the first model is blessed
//! on absolute bounds alone (checks against a baseline are skipped and
//! say so), `push` moves `production` to it; a worse model is refused and
//! `production` stays; a slice that regresses blocks a model.

mod common;
use common::*;

/// 800 rows; `label` depends on `x`, more strongly in group `b`.
fn csv() -> String {
    let mut s = String::from("day,x,z,group,label\n");
    let mut state: u64 = 5;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f64) / ((1u64 << 31) as f64)
    };
    for i in 0..800 {
        let x = next() * 4.0 - 2.0;
        let z = next();
        let group = ["a", "b"][i % 2];
        let noise = if group == "a" { 0.25 } else { 0.05 };
        let label = if (x > 0.0) != (next() < noise) { "yes" } else { "no" };
        s.push_str(&format!("2024-{:02}-{:02},{x:.4},{z:.4},{group},{label}\n", 1 + i / 80, 1 + i % 28));
    }
    s
}

fn pipeline(train: &str, bless: &str) -> String {
    format!(
        "[pipeline]\nname = \"blessing\"\n\
         [steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"d.csv\", split_key = \"day\" }}\n\
         [steps.train]\ncomponent = \"train\"\ninputs = {{ data = \"ingest.train\" }}\nparams = {{ target = \"label\", drop = [\"day\"], {train} }}\n\
         [steps.bless]\ncomponent = \"bless\"\ninputs = {{ model = \"train.model\", data = \"ingest.eval\", baseline = \"@model:clf@production\" }}\nparams = {{ {bless} }}\n\
         [steps.push]\ncomponent = \"push\"\ninputs = {{ model = \"train.model\", blessing = \"bless.blessing\" }}\nparams = {{ model_name = \"clf\", alias = \"production\" }}\n"
    )
}

fn production(env: &Env) -> Vec<(i64, Vec<String>)> {
    env.run(&["models", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let aliases = v["aliases"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
            (v["version"].as_i64().unwrap(), aliases)
        })
        .collect()
}

#[test]
fn the_first_model_is_blessed_a_worse_one_is_refused_and_production_stays() {
    let env = Env::new();
    env.write("d.csv", &csv());
    let rules = "thresholds = { accuracy = \">= 0.6, gain >= 0\", log_loss = \"gain >= -0.01\" }";
    env.write("p.toml", &pipeline("features = [\"x\", \"group\"]", rules));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = r.json();
    let b = &step(&o, "bless")["summary"]["blessing"];
    assert_eq!(b["blessed"], true, "{b}");
    assert_eq!(b["baseline"], false);
    assert_eq!(b["skipped"], 2, "gain checks are skipped without a baseline: {b}");
    assert_eq!(step(&o, "push")["summary"]["model_version"], "clf@1");
    assert_eq!(production(&env), [(1, vec!["production".to_string()])]);

    // A model on a useless feature: accuracy below the baseline's.
    env.write("p.toml", &pipeline("features = [\"z\"]", rules));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 4, "a refused push is exit 4: {}", r.stderr);
    let o = r.json();
    let b = &step(&o, "bless")["summary"]["blessing"];
    assert_eq!(b["blessed"], false, "{b}");
    assert_eq!(b["baseline"], true);
    let refused = step(&o, "push")["summary"]["refused"].as_str().unwrap().to_string();
    assert!(refused.contains("not blessed"), "{refused}");
    assert_eq!(production(&env), [(1, vec!["production".to_string()])], "nothing registered, alias unmoved");
    // The step log says which check failed and by how much.
    let log = env.step_log(2, "bless");
    assert!(log.contains("failed overall: accuracy gain >= 0 (value"), "{log}");
    assert!(log.contains("margin -"), "{log}");

    // The audit log has the one alias move, by run 1.
    let audit = env.run(&["models", "audit", "--json"]).json();
    assert_eq!(audit.as_array().unwrap().len(), 1);
    assert_eq!(audit[0]["to_version"], 1);
    assert_eq!(audit[0]["caller"], "run 1");
    let r = env.run(&["models", "export", "clf@production", "-o", "prod.json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.run(&["models", "inspect", "prod.json", "--json"]).json()["metadata"]["registry"]["version"], 1);
    assert_eq!(env.run(&["models", "export", "clf@staging", "-o", "x.json"]).code, 2);
}

#[test]
fn a_slice_that_gets_worse_blocks_the_model_and_unknown_metrics_are_errors() {
    let env = Env::new();
    env.write("d.csv", &csv());
    env.write("p.toml", &pipeline("features = [\"x\", \"group\"]", "thresholds = { accuracy = \">= 0.5\" }"));
    assert_eq!(env.run(&["run", "p.toml"]).code, 0);
    // Same overall rule, but no slice of `group` may lose more than 0.01
    // accuracy; a model without `x` loses far more in every slice.
    env.write(
        "p.toml",
        &pipeline(
            "features = [\"z\", \"group\"]",
            "thresholds = { accuracy = \">= 0.3\" }, slices = [\"group\"], max_slice_regression = { accuracy = \"0.01\" }",
        ),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let o = r.json();
    assert_eq!(step(&o, "bless")["summary"]["blessing"]["blessed"], false);
    assert_eq!(step(&o, "bless")["summary"]["blessing"]["failed"], 2);
    assert!(step(&o, "push")["summary"]["refused"].is_string());

    // A metric no task reports is caught before anything runs.
    env.write("p.toml", &pipeline("features = [\"x\"]", "thresholds = { acuracy = \">= 0.5\" }"));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("`acuracy` is not a metric `evaluate` reports"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `accuracy`?"), "{}", r.stderr);
}
