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
        [
            "ingest",
            "statistics",
            "schema",
            "validate",
            "tune",
            "train",
            "evaluate",
            "bless",
            "infra_validate",
            "push",
            "command"
        ]
    );
}

// What `check` can know about components' parameters, it reports: each
// class of mistake below is refused with exit 2 and its file:line:col,
// before anything runs.

/// A pipeline around one step under test: data, a model, evaluation data.
fn with_step(step: &str) -> String {
    format!(
        "[pipeline]\nname = \"t\"\n[parameters]\nmodel_name = \"bikes\"\n\
         [steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"d.csv\" }}\n\
         [steps.train]\ncomponent = \"train\"\ninputs = {{ data = \"ingest.train\" }}\nparams = {{ target = \"y\" }}\n\
         {step}"
    )
}

/// `flywheel check` on `text`: it must fail with exit 2; the error lines.
fn check_fails(text: &str) -> String {
    let env = Env::new();
    env.write("p.toml", text);
    let r = env.run(&["check", "p.toml"]);
    assert_eq!(r.code, 2, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    r.stderr.lines().filter(|l| l.starts_with("p.toml:")).collect::<Vec<_>>().join("\n")
}

#[test]
fn check_refuses_a_transform_no_column_could_take_at_its_column() {
    let e = check_fails(&with_step(
        "[steps.t2]\ncomponent = \"train\"\ninputs = { data = \"ingest.train\" }\nparams = { target = \"y\", transform = { a = \"standardize\", b = \"impute(middle) | standardize\" } }\n",
    ));
    assert!(e.starts_with("p.toml:15:63: error: step `t2`: transform of `b`"), "{e}");
    assert!(e.contains("`middle`"), "{e}");
}

#[test]
fn check_refuses_bad_bless_rules_and_unknown_metrics_at_their_keys() {
    let e = check_fails(&with_step(
        "[steps.bless]\ncomponent = \"bless\"\ninputs = { model = \"train.model\", data = \"ingest.eval\" }\n\
         params = { thresholds = { acuracy = \">= 0.8\", rmse = \"< 3\" }, max_slice_regression = { r2 = \"-1\" } }\n",
    ));
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert!(lines[0].starts_with("p.toml:15:27: error: step `bless`: `acuracy` is not a metric"), "{e}");
    assert!(lines[1].contains("`< 3` is not a rule"), "{e}");
    assert!(lines[2].contains("`max_slice_regression` needs `slices`"), "{e}");
    assert!(lines[3].contains("`-1` must be an amount ≥ 0"), "{e}");
}

#[test]
fn check_refuses_slice_specs_that_do_not_parse() {
    let e = check_fails(&with_step(
        "[steps.evaluate]\ncomponent = \"evaluate\"\ninputs = { model = \"train.model\", data = \"ingest.eval\" }\nparams = { slices = [\"sex\", \"age:40,30\", \"a*b*c\"] }\n",
    ));
    assert_eq!(e.lines().count(), 2, "{e}");
    assert!(e.starts_with("p.toml:15:29: error: step `evaluate`: slice \"age:40,30\": bin edges must increase"), "{e}");
}

#[test]
fn check_refuses_a_drift_share_that_is_not_a_share() {
    let step = |share: &str| {
        with_step(&format!(
            "[steps.schema]\ncomponent = \"schema\"\ninputs = {{ statistics = \"stats.statistics\" }}\n\
             [steps.stats]\ncomponent = \"statistics\"\ninputs = {{ data = \"ingest.train\" }}\n\
             [steps.validate]\ncomponent = \"validate\"\ninputs = {{ data = \"ingest.eval\", schema = \"schema.schema\" }}\nparams = {{ drift_share = {share} }}\n"
        ))
    };
    for bad in ["-1", "1.5"] {
        let e = check_fails(&step(bad));
        assert!(e.starts_with("p.toml:21:26: error: step `validate`: `drift_share` ="), "{e}");
    }
}

#[test]
fn check_refuses_a_tune_space_train_would_refuse() {
    let e = check_fails(&with_step(
        "[steps.tune]\ncomponent = \"tune\"\ninputs = { data = \"ingest.train\" }\nparams = { target = \"y\", model = \"gbt\", space = { max_depth = \"0..4\", learning_rat = \"0.1\" }, metric = \"r3\" }\n",
    ));
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(lines[0].contains("`space.max_depth` = \"0..4\" includes 0"), "{e}");
    assert!(lines[1].contains("`space.learning_rat` is not a parameter"), "{e}");
    assert!(lines[2].contains("`r3` is not a metric"), "{e}");
}

#[test]
fn check_refuses_dot_names_for_models_aliases_and_references() {
    let e = check_fails(&with_step(
        "[steps.push]\ncomponent = \"push\"\ninputs = { model = \"train.model\" }\nparams = { model_name = \"..\", alias = \"a/b\" }\n\
         [steps.eval]\ncomponent = \"evaluate\"\ninputs = { model = \"@model:.@production\", data = \"ingest.eval\" }\n",
    ));
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(lines[0].starts_with("p.toml:15:25: error: step `push`: model name `..` may use only"), "{e}");
    assert!(lines[1].contains("alias `a/b` may use only"), "{e}");
    assert!(lines[2].contains("the model name `.` may use only"), "{e}");
}

#[test]
fn check_substitutes_parameters_in_model_references() {
    let env = Env::new();
    let ok = with_step(
        "[steps.eval]\ncomponent = \"evaluate\"\ninputs = { model = \"@model:${model_name}@production\", data = \"ingest.eval\" }\n",
    );
    env.write("p.toml", &ok);
    let r = env.run(&["check", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let e = check_fails(&ok.replace("model_name = \"bikes\"", "model_name = \"..\""));
    assert!(
        e.starts_with("p.toml:14:20: error: input `model` = \"@model:..@production\" is not a resolvable reference"),
        "{e}"
    );
}

#[test]
fn a_run_resolves_model_references_with_its_set_values() {
    let env = Env::new();
    env.write(
        "p.toml",
        &format!(
            "{PIPELINE_HEADER}[parameters]\nm = \"bikes\"\n[steps.a]\ncomponent = \"command\"\nparams = {{ run = [\"true\"] }}\ninputs = {{ x = \"@model:${{m}}\" }}\n"
        ),
    );
    let r = env.run(&["run", "p.toml", "--set", "m=cars", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let error = step(&r.json(), "a")["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("\"@model:cars\" found nothing"), "{error}");
    // A value that makes the reference invalid stops the run before anything is recorded.
    let r = env.run(&["run", "p.toml", "--set", "m=.."]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("input `x` = \"@model:..\" is not a resolvable reference"), "{}", r.stderr);
    assert_eq!(env.runs().as_array().map_or(0, |a| a.len()), 1);
}

#[test]
fn a_set_value_a_component_refuses_is_reported_at_its_place() {
    let env = Env::new();
    env.write(
        "p.toml",
        &format!(
            "{PIPELINE_HEADER}[parameters]\nshare = 0.5\n[steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"d.csv\" }}\n\
             [steps.stats]\ncomponent = \"statistics\"\ninputs = {{ data = \"ingest.train\" }}\n\
             [steps.schema]\ncomponent = \"schema\"\ninputs = {{ statistics = \"stats.statistics\" }}\n\
             [steps.validate]\ncomponent = \"validate\"\ninputs = {{ data = \"ingest.eval\", schema = \"schema.schema\" }}\nparams = {{ drift_share = \"${{share}}\" }}\n"
        ),
    );
    let r = env.run(&["run", "p.toml", "--set", "share=-1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.starts_with("p.toml:17:26: error: step `validate`: `drift_share` = -1"), "{}", r.stderr);
    assert_eq!(env.runs().as_array().map_or(0, |a| a.len()), 0);
}

#[test]
fn models_alias_and_import_refuse_dot_names() {
    let env = Env::new();
    for alias in [".", "..", "a/b", "7"] {
        let r = env.run(&["models", "alias", "bikes@1", alias]);
        assert_eq!(r.code, 2, "{alias}: {}", r.stderr);
        assert!(r.stderr.contains(&format!("alias `{alias}`")), "{}", r.stderr);
    }
    env.write("m.onnx", "not onnx");
    for name in [".", ".."] {
        let r = env.run(&["models", "import", name, "m.onnx"]);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(r.stderr.contains("cannot be `.` or `..`"), "{}", r.stderr);
    }
}

const MANY: &str = r#"[pipeline]
name = ".."

[parameters]
model_name = "adult"
share = 1.5

[steps.ingest]
component = "ingest"
params = { path = "d.csv", eval_fraction = 1.0, split = "time" }

[steps.train]
component = "train"
inputs = { data = "ingest.train" }
params = { target = "y", features = ["a", "y"], transform = { a = "impute(mean) | onehot", c = "standardise" }, max_depth = 0 }

[steps.evaluate]
component = "evaluate"
inputs = { model = "train.model", data = "ingest.eval" }
params = { slices = ["age:x"] }

[steps.bless]
component = "bless"
inputs = { model = "train.model", data = "ingest.eval", baseline = "@model:${model_name}@.." }
params = { thresholds = { acuracy = ">= 0.8", roc_auc = ">= NaN" }, slice_thresholds = { f1 = ">= 0.5" } }

[steps.push]
component = "push"
inputs = { model = "train.model", blessing = "bless.blessing" }
params = { model_name = "${model_name}/v2", alias = "." }

[steps.stats]
component = "statistics"
inputs = { data = "ingest.train" }
params = { top_k = 0 }

[steps.schema]
component = "schema"
inputs = { statistics = "stats.statistics" }

[steps.validate]
component = "validate"
inputs = { data = "ingest.eval", schema = "schema.schema" }
params = { drift_share = "${share}" }

[steps.tune]
component = "tune"
inputs = { data = "ingest.train" }
params = { target = "y", space = { alpha = "1..0" }, fixed = { seeed = "1" }, folds = 1 }
"#;

#[test]
fn check_reports_every_parameter_problem_at_once_with_places() {
    let env = Env::new();
    env.write("many.toml", MANY);
    let r = env.run(&["check", "many.toml"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
    let r = env.run(&["check", "many.toml", "--json"]);
    assert_eq!(r.code, 2);
    let errors = r.json()["errors"].as_array().cloned().unwrap_or_default();
    assert!(errors.len() >= 20, "{errors:#?}");
    assert!(errors.iter().all(|e| e["line"].as_u64() > Some(0) && e["column"].as_u64() > Some(0)));
}
