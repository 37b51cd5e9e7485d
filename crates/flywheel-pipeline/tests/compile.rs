//! Compilation against a small registry of test components.

use flywheel_core::{
    ArtifactType, Component, ComponentRegistry, ComponentSpec, ExecContext, ExecError, ParamSpec, ParamType, PortSpec,
};
use flywheel_pipeline::{PipelineError, compile};
use serde_json::json;
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

fn registry() -> ComponentRegistry {
    ComponentRegistry::new(vec![Arc::new(Fake(&SOURCE)), Arc::new(Fake(&SINK))])
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
