//! Compilation against a small registry of test components.

use flywheel_core::{
    ArtifactType, Component, ComponentRegistry, ComponentSpec, ExecContext, ExecError, ParamProblem, ParamSpec,
    ParamType, PortSpec,
};
use flywheel_pipeline::{PipelineError, compile};
use serde_json::{Map, Value as Json, json};
use std::path::Path;
use std::sync::Arc;

struct Fake(&'static ComponentSpec);

impl Component for Fake {
    fn spec(&self) -> &'static ComponentSpec {
        self.0
    }
    fn execute(&self, _: &ExecContext) -> Result<(), ExecError> {
        Ok(())
    }
}

static SOURCE: ComponentSpec = ComponentSpec {
    name: "source",
    version: "1",
    description: "",
    params: &[
        ParamSpec { name: "path", ty: ParamType::Path, required: true, doc: "a file" },
        ParamSpec { name: "n", ty: ParamType::Int, required: false, doc: "" },
        ParamSpec { name: "mode", ty: ParamType::Enum(&["fast", "slow"]), required: false, doc: "" },
    ],
    inputs: &[],
    outputs: &[PortSpec { name: "data", ty: ArtifactType::Dataset, doc: "", optional: false }],
    dynamic_ports: false,
};

static SINK: ComponentSpec = ComponentSpec {
    name: "sink",
    version: "2",
    description: "",
    params: &[],
    inputs: &[PortSpec { name: "model", ty: ArtifactType::Model, doc: "a model", optional: false }],
    outputs: &[],
    dynamic_ports: false,
};

/// A component whose check refuses every rule that is not `ok`, every
/// negative `n`, and the key `bad` of its `rules` table.
struct Picky;

static PICKY: ComponentSpec = ComponentSpec {
    name: "picky",
    version: "1",
    description: "",
    params: &[
        ParamSpec { name: "rules", ty: ParamType::StringMap, required: false, doc: "" },
        ParamSpec { name: "n", ty: ParamType::Int, required: false, doc: "" },
        ParamSpec { name: "list", ty: ParamType::StringList, required: false, doc: "" },
    ],
    inputs: &[PortSpec { name: "model", ty: ArtifactType::Model, doc: "", optional: true }],
    outputs: &[],
    dynamic_ports: false,
};

impl Component for Picky {
    fn spec(&self) -> &'static ComponentSpec {
        &PICKY
    }
    fn execute(&self, _: &ExecContext) -> Result<(), ExecError> {
        Ok(())
    }
    fn check_params(&self, params: &Map<String, Json>) -> Vec<ParamProblem> {
        let mut out = Vec::new();
        for (k, v) in params.get("rules").and_then(Json::as_object).into_iter().flatten() {
            if k == "bad" {
                out.push(ParamProblem::key(&["rules", k], "no rule may be called `bad`").help("rename it"));
            } else if v != "ok" {
                out.push(ParamProblem::value(&["rules", k], format!("rule `{k}` is {v}")));
            }
        }
        if params.get("n").and_then(Json::as_i64).is_some_and(|n| n < 0) {
            out.push(ParamProblem::value(&["n"], "n is negative"));
        }
        for (i, item) in params.get("list").and_then(Json::as_array).into_iter().flatten().enumerate() {
            if item == "x" {
                out.push(ParamProblem::value(&["list", &i.to_string()], "no `x` in lists"));
            }
        }
        out
    }
}

fn registry() -> ComponentRegistry {
    ComponentRegistry::new(vec![Arc::new(Fake(&SOURCE)), Arc::new(Fake(&SINK)), Arc::new(Picky)])
}

fn errors(src: &str) -> Vec<String> {
    match compile(src, Path::new("p.toml"), &registry()) {
        Ok(_) => Vec::new(),
        Err(PipelineError::Invalid(d)) => d
            .items
            .iter()
            .map(|i| {
                let (l, c) = d.line_col(i.span.clone().unwrap_or(0..0).start);
                format!("{l}:{c} {}", i.message)
            })
            .collect(),
        Err(e) => vec![e.to_string()],
    }
}

#[test]
fn a_valid_pipeline_compiles_in_dependency_order() {
    let src = r#"
[pipeline]
name = "ok"
[parameters]
n = 3
file = "d.csv"
[steps.z_last]
component = "sink"
inputs = { model = "a.data" }
[steps.a]
component = "source"
params = { path = "${file}", n = "${n}", mode = "fast" }
retries = 2
timeout = "1m"
"#;
    // `a` makes a dataset but `sink` wants a model: the one error.
    assert_eq!(errors(src), ["9:20 input `model` of step `z_last` expects a model, but `a.data` is a dataset"]);

    let src = src.replace("[steps.z_last]\ncomponent = \"sink\"\ninputs = { model = \"a.data\" }\n", "");
    let p = compile(&src, Path::new("dir/p.toml"), &registry()).unwrap();
    assert_eq!(p.name, "ok");
    assert_eq!(p.base_dir, Path::new("dir"));
    assert_eq!(p.steps[0].retries, 2);
    assert_eq!(p.steps[0].timeout, Some(std::time::Duration::from_secs(60)));
    assert_eq!(p.steps[0].path_params, ["path"]);
    let values = p.resolve_parameters(&[("n".into(), "7".into())]).unwrap();
    let params = p.steps[0].resolve_params(&values);
    assert_eq!(params["n"], json!(7));
    assert_eq!(params["path"], json!("d.csv"));
    assert_eq!(p.digest, flywheel_core::digest_bytes(src.as_bytes()));
}

#[test]
fn parameter_types_are_checked_after_substitution() {
    let src = r#"
[pipeline]
name = "t"
[parameters]
n = "three"
[steps.a]
component = "source"
params = { path = "x", n = "${n}", mode = "medium" }
"#;
    assert_eq!(
        errors(src),
        [
            "8:28 parameter `n` of step `a`: expected an integer, found a string",
            "8:43 parameter `mode` of step `a`: `medium` is not one of `fast`, `slow`",
        ]
    );
}

#[test]
fn structural_mistakes_are_all_reported() {
    let src = r#"
[pipeline]
nam = "t"
[stepz.a]
component = "source"
[steps.a]
params = { path = "x" }
[steps.b]
component = "sink"
inputs = { model = "nowhere" }
"#;
    assert_eq!(
        errors(src),
        [
            "2:1 [pipeline] has no `name`",
            "3:1 unknown key `nam` in [pipeline]",
            "4:2 unknown key `stepz` in the pipeline file",
            "6:8 step `a` has no `component`",
            "10:20 input `model` = \"nowhere\" must name a step's output as \"step.output\"",
        ]
    );
}

#[test]
fn overrides_parse_as_the_default_type() {
    let src = "[pipeline]\nname = \"t\"\n[parameters]\nrate = 0.5\non = true\nname = \"x\"\n[steps.a]\ncomponent = \"source\"\nparams = { path = \"${name}\" }\n";
    let p = compile(src, Path::new("p.toml"), &registry()).unwrap();
    let v = p.resolve_parameters(&[("rate".into(), "2".into()), ("on".into(), "false".into())]).unwrap();
    assert_eq!(v["rate"], json!(2.0));
    assert_eq!(v["on"], json!(false));
    let e = p.resolve_parameters(&[("on".into(), "yes".into())]).unwrap_err().to_string();
    assert_eq!(e, "--set on=yes: `yes` is not a boolean like the default `true`");
}

#[test]
fn component_param_problems_point_at_the_key_or_value_inside_a_table() {
    let src = r#"[pipeline]
name = "t"
[parameters]
rule = "so-so"
n = -1
[steps.a]
component = "picky"
params = { rules = { fine = "ok", bad = "ok", meh = "${rule}" }, n = "${n}", list = ["a", "x"] }
"#;
    assert_eq!(
        errors(src),
        [
            "8:35 step `a`: no rule may be called `bad`",
            "8:53 step `a`: rule `meh` is \"so-so\"",
            "8:70 step `a`: n is negative",
            "8:91 step `a`: no `x` in lists",
        ]
    );
}

#[test]
fn a_whole_table_from_a_parameter_is_checked_at_the_reference() {
    let src = r#"[pipeline]
name = "t"
[parameters]
rules = { default = { bad = "ok" } }
[steps.a]
component = "picky"
params = { rules = "${rules}" }
"#;
    assert_eq!(errors(src), ["7:20 step `a`: no rule may be called `bad`"]);
}

#[test]
fn model_references_substitute_parameters_and_follow_the_run_values() {
    let src = r#"[pipeline]
name = "t"
[parameters]
model = "bikes"
[steps.a]
component = "picky"
inputs = { model = "@model:${model}@production" }
"#;
    let p = compile(src, Path::new("p.toml"), &registry()).unwrap();
    let r = &p.steps[0].resolved_inputs["model"].0;
    assert_eq!(r.to_string(), "@model:bikes@production");
    let values = p.resolve_parameters(&[("model".into(), "cars".into())]).unwrap();
    let run = p.steps[0].for_run(&values);
    assert_eq!(run.resolved_inputs["model"].0.to_string(), "@model:cars@production");
    let e = p.resolve_parameters(&[("model".into(), "..".into())]).unwrap_err().to_string();
    assert!(e.starts_with("--set model=..: step `a`: input `model` = \"@model:..@production\""), "{e}");
    assert!(e.contains("cannot be `.` or `..`"), "{e}");
}

#[test]
fn model_references_with_bad_names_or_unknown_parameters_are_refused() {
    let src = r#"[pipeline]
name = "t"
[parameters]
model = ".."
[steps.a]
component = "picky"
inputs = { model = "@model:${model}@production" }
[steps.b]
component = "picky"
inputs = { model = "@model:${modle}" }
[steps.c]
component = "picky"
inputs = { model = "@model:x@a/b/c" }
"#;
    let e = errors(src);
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].starts_with(
            "7:20 input `model` = \"@model:..@production\" is not a resolvable reference: the model name `..`"
        ),
        "{}",
        e[0]
    );
    assert_eq!(e[1], "10:20 unknown pipeline parameter `${modle}`");
    assert!(e[2].contains("the input name `b/c`"), "{}", e[2]);
}

#[test]
fn pipeline_names_of_dots_are_refused() {
    for name in [".", "..", "a/b"] {
        let src = format!("[pipeline]\nname = \"{name}\"\n[steps.a]\ncomponent = \"picky\"\n");
        let e = errors(&src);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with(&format!("2:8 pipeline name `{name}` may use only")), "{}", e[0]);
    }
}

#[test]
fn durations_substitute_parameters() {
    let src =
        "[pipeline]\nname = \"t\"\n[parameters]\nt = \"2m\"\n[steps.a]\ncomponent = \"picky\"\ntimeout = \"${t}\"\n";
    let p = compile(src, Path::new("p.toml"), &registry()).unwrap();
    assert_eq!(p.steps[0].timeout, Some(std::time::Duration::from_secs(120)));
}

static INFRA: ComponentSpec = ComponentSpec {
    name: "infra",
    version: "1",
    description: "",
    params: &[],
    inputs: &[],
    outputs: &[PortSpec { name: "verdict", ty: ArtifactType::InfraBlessing, doc: "", optional: false }],
    dynamic_ports: false,
};

static PUBLISH: ComponentSpec = ComponentSpec {
    name: "publish",
    version: "1",
    description: "",
    params: &[],
    inputs: &[
        PortSpec { name: "data", ty: ArtifactType::Dataset, doc: "", optional: false },
        PortSpec { name: "infra_blessing", ty: ArtifactType::InfraBlessing, doc: "", optional: true },
    ],
    outputs: &[],
    dynamic_ports: false,
};

struct Publisher;

impl Component for Publisher {
    fn spec(&self) -> &'static ComponentSpec {
        &PUBLISH
    }
    fn execute(&self, _: &ExecContext) -> Result<(), ExecError> {
        Ok(())
    }
    fn role(&self) -> flywheel_core::Role {
        flywheel_core::Role::Publisher
    }
}

fn publishing_errors(src: &str) -> Vec<String> {
    let registry = ComponentRegistry::new(vec![Arc::new(Fake(&SOURCE)), Arc::new(Fake(&INFRA)), Arc::new(Publisher)]);
    match compile(src, Path::new("p.toml"), &registry) {
        Ok(_) => Vec::new(),
        Err(PipelineError::Invalid(d)) => vec![d.to_string()],
        Err(e) => vec![e.to_string()],
    }
}

#[test]
fn an_infra_blessing_no_publisher_reads_is_reported_at_the_publisher() {
    let src = r#"
[pipeline]
name = "p"
[steps.a]
component = "source"
params = { path = "d.csv" }
[steps.check]
component = "infra"
[steps.push]
component = "publish"
inputs = { data = "a.data" }
"#;
    insta::assert_snapshot!(publishing_errors(src).join("\n"), @r#"
    p.toml:9:8: error: step `push` publishes without reading the infra blessing of step `check`
        | [steps.push]
        |        ^^^^
        = help: add `infra_blessing = "check.verdict"` to its inputs, so that a model that failed infra validation is not published
    "#);
    let wired = src.replace("{ data = \"a.data\" }", "{ data = \"a.data\", infra_blessing = \"check.verdict\" }");
    assert!(publishing_errors(&wired).is_empty());
    // Without a publisher, an infra validation alone is fine.
    let alone = src.replace("[steps.push]\ncomponent = \"publish\"\ninputs = { data = \"a.data\" }\n", "");
    assert!(publishing_errors(&alone).is_empty());
    // The publisher reads another infra blessing: reported at the unread one.
    let other = format!("{wired}[steps.check2]\ncomponent = \"infra\"\n");
    insta::assert_snapshot!(publishing_errors(&other).join("\n"), @r#"
    p.toml:12:8: error: the infra blessing of step `check2` is read by no publisher
        | [steps.check2]
        |        ^^^^^^
        = help: `push` reads another infra blessing through `infra_blessing`: wire this one into the publisher of the model it validates, or remove step `check2`
    "#);
}
