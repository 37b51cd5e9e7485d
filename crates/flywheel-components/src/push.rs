//! `push`: registers a model as the next version under a model name.

use crate::table::write_json;
use flywheel_core::{ArtifactType, Component, ComponentSpec, ExecContext, ExecError, ParamSpec, ParamType, PortSpec};
use serde_json::json;

pub struct Push;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "push",
    version: "1",
    description: "Registers the model as a new version of a named model (the same model twice keeps one version).",
    params: &[ParamSpec {
        name: "model_name",
        ty: ParamType::String,
        required: true,
        doc: "the registered model's name",
    }],
    inputs: &[PortSpec { name: "model", ty: ArtifactType::Model, doc: "the model to register", optional: false }],
    outputs: &[PortSpec {
        name: "pushed",
        ty: ArtifactType::PushedModel,
        doc: "which version was registered",
        optional: false,
    }],
    dynamic_ports: false,
};

impl Component for Push {
    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn execute(&self, ctx: &ExecContext) -> Result<(), ExecError> {
        let name = ctx.required_str("model_name")?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(ExecError::failed(format!(
                "`model_name` = \"{name}\" may use only letters, digits, `-`, `_` and `.`"
            )));
        }
        let model = ctx.input("model")?;
        let registered = ctx.registry.register_model(name, model, ctx.run_id).map_err(ExecError::Failed)?;
        let record = json!({
            "model_name": registered.name,
            "version": registered.version,
            "model_digest": model.digest,
            "new_version": registered.created,
        });
        ctx.log(format!(
            "{} {}@{}",
            if registered.created { "registered" } else { "already registered as" },
            registered.name,
            registered.version
        ));
        write_json(&ctx.output_path("pushed"), &record)?;
        ctx.set_properties("pushed", record.clone());
        ctx.add_summary("model_version", json!(format!("{}@{}", registered.name, registered.version)));
        Ok(())
    }
}
