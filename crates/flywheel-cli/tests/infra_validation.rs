//! Infra validation through the real binary: the candidate is served by
//! the real server inside the run; a model that misses a target fails the
//! step and is never pushed; `push` refuses a model whose infra blessing
//! says it failed, and one made for another model.

mod common;
use common::*;

/// 300 rows; `y` depends on `x` and `group`.
fn csv() -> String {
    let mut s = String::from("day,x,group,y\n");
    for i in 0..300 {
        let x = (i * 37 % 101) as f64 / 10.0;
        let group = ["a", "b", "c"][i % 3];
        let y = 2.0 * x + if group == "b" { 3.0 } else { 0.0 } + (i % 7) as f64 / 10.0;
        s.push_str(&format!("2024-{:02}-{:02},{x},{group},{y}\n", 1 + i / 28 % 12, 1 + i % 28));
    }
    s
}

const HEAD: &str = "[pipeline]\nname = \"infra\"\n\
    [steps.ingest]\ncomponent = \"ingest\"\nparams = { path = \"d.csv\", split_key = \"day\" }\n\
    [steps.train]\ncomponent = \"train\"\ninputs = { data = \"ingest.train\" }\nparams = { target = \"y\", drop = [\"day\"] }\n";

const PUSH: &str = "[steps.push]\ncomponent = \"push\"\n\
    params = { model_name = \"m\", alias = \"production\" }\n";

fn pipeline(targets: &str) -> String {
    format!(
        "{HEAD}[steps.infra]\ncomponent = \"infra_validate\"\ninputs = {{ model = \"train.model\", data = \"ingest.eval\" }}\n\
         params = {{ concurrency = 2, duration_ms = 300, {targets} }}\n\
         {PUSH}inputs = {{ model = \"train.model\", infra_blessing = \"infra.infra_blessing\" }}\n"
    )
}

fn versions(env: &Env) -> usize {
    env.run(&["models", "--json"]).json().as_array().map_or(0, Vec::len)
}

#[test]
fn a_model_that_misses_a_target_is_not_pushed_and_one_that_meets_them_is() {
    let env = Env::new();
    env.write("d.csv", &csv());
    env.write("p.toml", &pipeline("min_rps = 1e9"));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let o = r.json();
    let infra = step(&o, "infra");
    assert_eq!(infra["status"], "failed");
    let error = infra["error"].as_str().unwrap();
    assert!(error.contains("infra validation failed (1 of 3 checks): min_rps (figure "), "{error}");
    assert_eq!(step(&o, "push")["status"], "skipped");
    assert_eq!(versions(&env), 0);
    let log = env.step_log(1, "infra");
    assert!(log.contains("eval rows served twice, 0 answers differ"), "{log}");

    env.write("p.toml", &pipeline("min_rps = 1, max_p99_ms = 60000, max_memory_mb = 4096"));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = r.json();
    let b = &step(&o, "infra")["summary"]["infra_blessing"];
    assert_eq!(
        (b["blessed"].as_bool(), b["mismatches"].as_u64(), b["failed"].as_u64()),
        (Some(true), Some(0), Some(0))
    );
    assert!(b["rps"].as_f64().unwrap() >= 1.0, "{b}");
    assert_eq!(step(&o, "push")["summary"]["model_version"], "m@1");
}

/// A pipeline whose infra blessing is written by a `command` step, as
/// given, for the model whose digest is `digest`.
fn with_verdict(blessed: bool, digest: &str) -> String {
    let verdict = format!(
        r#"{{"blessed": {blessed}, "model_digest": "{digest}", "checks": [{{"check": "max_p99_ms", "figure": 900.5, "rule": "p99_ms <=", "threshold": 250.0, "passed": {blessed}}}]}}"#
    );
    format!(
        "{HEAD}[steps.verdict]\ncomponent = \"command\"\ninputs = {{ model = \"train.model\" }}\n\
         params = {{ run = [\"sh\", \"-c\", '''printf '%s' '{verdict}' > \"$FLYWHEEL_OUTPUT_INFRA\"'''] }}\n\
         outputs = {{ infra = \"infra_blessing\" }}\n\
         {PUSH}inputs = {{ model = \"train.model\", infra_blessing = \"verdict.infra\" }}\n"
    )
}

#[test]
fn push_refuses_a_failed_infra_blessing_and_one_of_another_model() {
    let env = Env::new();
    env.write("d.csv", &csv());
    env.write("p.toml", HEAD);
    assert_eq!(env.run(&["run", "p.toml"]).code, 0);
    let digest = env.execution(1, "train")["outputs"][0]["artifact"]["digest"].as_str().unwrap().to_string();

    env.write("p.toml", &with_verdict(false, &digest));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let push = step(&r.json(), "push").clone();
    assert_eq!(push["status"], "refused");
    let refused = push["summary"]["refused"].as_str().unwrap();
    assert_eq!(refused, "failed infra validation (1 failed checks: max_p99_ms (figure 900.5, p99_ms <= 250.0))");
    assert_eq!(versions(&env), 0);

    env.write("p.toml", &with_verdict(true, "0000"));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let error = step(&r.json(), "push")["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("the infra blessing is for another model"), "{error}");
    assert_eq!(versions(&env), 0);

    env.write("p.toml", &with_verdict(true, &digest));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(step(&r.json(), "push")["summary"]["model_version"], "m@1");
}
