//! `flywheel check` and bad pipelines: every problem at once, with places.

mod common;
use common::*;

const BAD: &str = r#"[pipeline]
name = "bad"

[parameters]
data = "x.csv"

[steps.ingest]
component = "ingest"
params = { path = "${dta}", eval_fractoin = 0.2 }

[steps.stats]
component = "statistcs"
inputs = { data = "ingest.trian" }

[steps.a]
component = "command"
params = { run = ["true"] }
inputs = { x = "b.out" }
outputs = ["out"]

[steps.b]
component = "command"
params = { run = ["true"] }
inputs = { x = "a.out" }
outputs = ["out"]

[steps.train]
component = "train"
inputs = { data = "ingest.eval", extra = "ingest.train" }
params = { target = 3 }
retries = "two"
timeout = "5 parsecs"

[steps.eval]
component = "evaluate"
inputs = { model = "ingest.eval", data = "ingest.eval" }
"#;

#[test]
fn check_reports_every_error_with_file_line_column_and_suggestions() {
    let env = Env::new();
    env.write("bad.toml", BAD);
    let r = env.run(&["check", "bad.toml"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn check_json_lists_errors_for_machines() {
    let env = Env::new();
    env.write("bad.toml", BAD);
    let r = env.run(&["check", "bad.toml", "--json"]);
    assert_eq!(r.code, 2);
    let v = r.json();
    assert_eq!(v["valid"], false);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 10, "{v:#}");
    assert!(errors.iter().all(|e| e["line"].as_u64().unwrap() > 0 && e["column"].as_u64().unwrap() > 0));
}

#[test]
fn a_cycle_is_reported_with_its_path() {
    let env = Env::new();
    env.write(
        "cycle.toml",
        &format!(
            "{PIPELINE_HEADER}[steps.a]\ncomponent = \"command\"\nparams = {{ run = [\"true\"] }}\ninputs = {{ x = \"c.out\" }}\noutputs = [\"out\"]\n\
             [steps.b]\ncomponent = \"command\"\nparams = {{ run = [\"true\"] }}\ninputs = {{ x = \"a.out\" }}\noutputs = [\"out\"]\n\
             [steps.c]\ncomponent = \"command\"\nparams = {{ run = [\"true\"] }}\ninputs = {{ x = \"b.out\" }}\noutputs = [\"out\"]\n"
        ),
    );
    let r = env.run(&["run", "cycle.toml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("steps form a cycle: a → b → c → a"), "{}", r.stderr);
    // Nothing ran, nothing was recorded.
    assert_eq!(env.runs().as_array().map_or(0, |a| a.len()), 0);
}

#[test]
fn invalid_toml_names_the_place() {
    let env = Env::new();
    env.write("broken.toml", "[pipeline]\nname = \"x\"\n[steps.a\ncomponent = \"ingest\"\n");
    let r = env.run(&["check", "broken.toml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("broken.toml:3:"), "{}", r.stderr);
    assert!(r.stderr.contains("invalid TOML"), "{}", r.stderr);
}

#[test]
fn missing_pipeline_file_is_a_clear_error() {
    let env = Env::new();
    let r = env.run(&["run", "nope.toml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read pipeline file nope.toml"), "{}", r.stderr);
}

#[test]
fn set_of_an_undeclared_parameter_is_rejected_before_anything_runs() {
    let env = Env::new();
    env.write("p.toml", &format!("{PIPELINE_HEADER}[parameters]\nalpha = 0.5\n[steps.a]\ncomponent = \"command\"\nparams = {{ run = [\"true\"] }}\n"));
    let r = env.run(&["run", "p.toml", "--set", "alpah=1"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("has no parameter `alpah`; did you mean `alpha`?"), "{}", r.stderr);
    let r = env.run(&["run", "p.toml", "--set", "alpha=fast"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("`fast` is not a number"), "{}", r.stderr);
    let r = env.run(&["run", "p.toml", "--set", "alpha"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("NAME=VALUE"), "{}", r.stderr);
    assert_eq!(env.runs().as_array().map_or(0, |a| a.len()), 0);
}

#[test]
fn components_are_listed() {
    let env = Env::new();
    let r = env.run(&["components", "--json"]);
    assert_eq!(r.code, 0);
    let names: Vec<String> =
        r.json().as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        names,
        ["ingest", "statistics", "schema", "validate", "tune", "train", "evaluate", "bless", "push", "command"]
    );
}
