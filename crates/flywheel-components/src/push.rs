//! `push`: registers a model as the next version under a model name, and
//! optionally moves an alias (e.g. `production`) to it. Given a blessing,
//! it refuses (registers nothing) when the model is not blessed.

use crate::table::write_json;
use flywheel_core::{ArtifactType, Component, ComponentSpec, ExecContext, ExecError, ParamSpec, ParamType, PortSpec};
use serde_json::json;

pub struct Push;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "push",
    version: "2",
    description: "Registers the model as a new version of a named model (the same model twice keeps one version), moves an alias to it, and refuses a model its blessing rejects.",
    params: &[
        ParamSpec { name: "model_name", ty: ParamType::String, required: true, doc: "the registered model's name" },
        ParamSpec {
            name: "alias",
            ty: ParamType::String,
            required: false,
            doc: "an alias to point at the registered version, e.g. \"production\"",
        },
    ],
    inputs: &[
        PortSpec { name: "model", ty: ArtifactType::Model, doc: "the model to register", optional: false },
        PortSpec {
            name: "blessing",
            ty: ArtifactType::Blessing,
            doc: "the model's blessing from `bless`: an unblessed model is not pushed",
            optional: true,
        },
    ],
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
        if !flywheel_core::is_name(name) {
            return Err(ExecError::failed(format!(
                "`model_name` = \"{name}\" may use only letters, digits, `-`, `_` and `.`"
            )));
        }
        let alias = ctx.str_param("alias");
        if let Some(a) = alias
            && !flywheel_core::is_name(a)
        {
            return Err(ExecError::failed(format!("`alias` = \"{a}\" may use only letters, digits, `-`, `_` and `.`")));
        }
        let model = ctx.input("model")?;
        if let Some(b) = ctx.inputs.get("blessing") {
            let blessing = crate::table::read_json(&b.path)?;
            if blessing["model_digest"].as_str() != Some(model.digest.as_str()) {
                return Err(ExecError::failed(
                    "the blessing is for another model than the one given to push; wire both from the same `train` output",
                ));
            }
            if blessing["blessed"] != true {
                let failed: Vec<String> = blessing["checks"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|c| c["passed"] != true)
                            .map(|c| {
                                format!(
                                    "{} {} {} (value {}, short by {})",
                                    c["scope"].as_str().unwrap_or_default(),
                                    c["metric"].as_str().unwrap_or_default(),
                                    c["rule"].as_str().unwrap_or_default(),
                                    c["value"],
                                    c["margin"].as_f64().map_or("?".into(), |m| format!("{:.6}", -m))
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let record = json!({ "pushed": false, "model_digest": model.digest, "refused": failed });
                ctx.log(format!("refused: the model is not blessed: {}", failed.join("; ")));
                write_json(&ctx.output_path("pushed"), &record)?;
                ctx.set_properties("pushed", record.clone());
                ctx.add_summary("refused", json!(format!("not blessed ({} failed checks)", failed.len())));
                return Ok(());
            }
        }
        let registered = ctx.registry.register_model(name, model, ctx.run_id).map_err(ExecError::Failed)?;
        let moved = match alias {
            Some(a) => {
                Some(ctx.registry.set_alias(name, a, registered.version, ctx.run_id).map_err(ExecError::Failed)?)
            }
            None => None,
        };
        let record = json!({
            "pushed": true,
            "model_name": registered.name,
            "version": registered.version,
            "model_digest": model.digest,
            "new_version": registered.created,
            "alias": alias,
            "alias_was": moved.flatten(),
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
        if let Some(a) = alias {
            ctx.log(format!("alias `{a}` → {}@{}", registered.name, registered.version));
            ctx.add_summary("alias", json!(a));
        }
        Ok(())
    }
}
