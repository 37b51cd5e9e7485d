//! `push`: registers a model as the next version under a model name, and
//! optionally moves an alias (e.g. `production`) to it. Given a blessing,
//! it refuses (registers nothing) when the model is not blessed, or when
//! the alias no longer points at the version the blessing compared with.
//! Given an infra blessing (`infra_validate`), it refuses a model that did
//! not pass infra validation the same way.

use flywheel_core::{
    AliasMove, ArtifactType, ComponentSpec, ExecContext, ExecError, ParamProblem, ParamSpec, ParamType, PortSpec,
    Published, RegisteredModel, Role, TypedComponent,
};
use flywheel_data::table::write_json;
use serde_json::{Value as Json, json};

pub struct Push;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "push",
    version: "4",
    description: "Registers the model as a new version of a named model (the same model twice keeps one version) and moves an alias to it, in one transaction; refuses a model its blessing or its infra blessing rejects, or an alias that moved since the blessing compared against it. Runs last, only when every other step succeeded; never cached.",
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
        PortSpec {
            name: "infra_blessing",
            ty: ArtifactType::InfraBlessing,
            doc: "the model's infra blessing from `infra_validate`: a model that failed it is not pushed",
            optional: true,
        },
    ],
    outputs: &[PortSpec {
        name: "pushed",
        ty: ArtifactType::PushedModel,
        doc: "which version was registered, or why nothing was",
        optional: false,
    }],
    dynamic_ports: false,
};

/// `push`'s parameters (see [`SPEC`]).
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub model_name: String,
    pub alias: Option<String>,
}

/// The model name and alias must be names (see `flywheel_core::is_name`);
/// an alias must not be a whole number, which `NAME@N` reads as a version.
pub fn check_names(params: &Params) -> Vec<ParamProblem> {
    let mut out = Vec::new();
    if let Err(e) = flywheel_core::check_name("model name", &params.model_name) {
        out.push(ParamProblem::value(&["model_name"], e));
    }
    if let Some(alias) = &params.alias
        && let Err(e) = flywheel_core::check_alias(alias)
    {
        out.push(ParamProblem::value(&["alias"], e));
    }
    out
}

impl TypedComponent for Push {
    type Params = Params;

    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn role(&self) -> Role {
        Role::Publisher
    }

    fn check(&self, params: &Params) -> Vec<ParamProblem> {
        check_names(params)
    }

    fn run(&self, params: Params, ctx: &ExecContext) -> Result<(), ExecError> {
        let name = params.model_name.as_str();
        flywheel_core::check_name("model name", name).map_err(ExecError::Failed)?;
        let alias = params.alias.as_deref();
        if let Some(a) = alias {
            flywheel_core::check_alias(a).map_err(ExecError::Failed)?;
        }
        let model = ctx.input("model")?;
        let blessing = match ctx.inputs.get("blessing") {
            Some(b) => Some(flywheel_data::table::read_json(&b.path)?),
            None => None,
        };
        if let Some(b) = &blessing {
            if b["model_digest"].as_str() != Some(model.digest.as_str()) {
                return Err(ExecError::failed(
                    "the blessing is for another model than the one given to push; wire both from the same `train` output",
                ));
            }
            if b["blessed"] != true {
                let failed = failed_checks(b);
                let reason = format!("not blessed ({} failed checks: {})", failed.len(), failed.join("; "));
                return refuse(ctx, &model.digest, reason, json!({ "failed_checks": failed }));
            }
        }
        if let Some(b) = ctx.inputs.get("infra_blessing") {
            let b = flywheel_data::table::read_json(&b.path)?;
            if b["model_digest"].as_str() != Some(model.digest.as_str()) {
                return Err(ExecError::failed(
                    "the infra blessing is for another model than the one given to push; wire `infra_validate` and push from the same `train` output",
                ));
            }
            if b["blessed"] != true {
                let failed = failed_infra_checks(&b);
                let reason = format!("failed infra validation ({} failed checks: {})", failed.len(), failed.join("; "));
                return refuse(ctx, &model.digest, reason, json!({ "failed_infra_checks": failed }));
            }
        }
        let (expected, compared) = expected_target(blessing.as_ref(), name);
        let checked = compared.filter(|c| Some(c.as_str()) != alias);
        let moving = alias.map(|a| AliasMove { alias: a.to_string(), expected, checked: checked.clone() });
        let published = ctx.registry.publish(name, model, ctx.run_id, moving).map_err(ExecError::Failed)?;
        let guard = checked.as_deref().or(alias).unwrap_or_default();
        match published {
            Published::Done { model: registered, alias_was } => {
                record_push(ctx, &model.digest, &registered, alias, alias_was)
            }
            Published::AliasMoved { current } => moved(ctx, &model.digest, name, guard, expected.flatten(), current),
            Published::AliasTaken { current } => {
                let alias = alias.unwrap_or_default();
                let reason = format!(
                    "`{alias}` points at {name}@{current}, which is still being judged; nothing was registered. \
                     Its verdict comes first (`flywheel status`)"
                );
                refuse(ctx, &model.digest, reason, json!({ "alias": alias, "current": current }))
            }
        }
    }
}

/// Refused: the alias the blessing compared through moved meanwhile.
fn moved(
    ctx: &ExecContext,
    digest: &str,
    name: &str,
    alias: &str,
    expected: Option<i64>,
    current: Option<i64>,
) -> Result<(), ExecError> {
    let at = |v: Option<i64>| v.map_or("no version".to_string(), |v| format!("{name}@{v}"));
    let reason = format!(
        "`{alias}` moved: it points at {} but the blessing compared the candidate with {}; nothing was registered. Run the pipeline again to compare against {}",
        at(current),
        at(expected),
        at(current)
    );
    refuse(ctx, digest, reason, json!({ "alias": alias, "expected": expected, "current": current }))
}

/// Writes and logs what was registered, and where the alias points now.
fn record_push(
    ctx: &ExecContext,
    digest: &str,
    registered: &RegisteredModel,
    alias: Option<&str>,
    alias_was: Option<i64>,
) -> Result<(), ExecError> {
    let record = json!({
        "pushed": true,
        "model_name": registered.name,
        "version": registered.version,
        "model_digest": digest,
        "new_version": registered.created,
        "alias": alias,
        "alias_was": alias.and(alias_was),
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

/// The version the alias must still point at: the one the blessing compared
/// the candidate with, when it compared with a version of this model
/// (`Some(None)`: there was none yet), and the alias it was found by. No
/// condition otherwise.
fn expected_target(blessing: Option<&Json>, model_name: &str) -> (Option<Option<i64>>, Option<String>) {
    let Some(r) = blessing.and_then(|b| b.get("baseline_ref")) else { return (None, None) };
    if r["model"].as_str() != Some(model_name) {
        return (None, None);
    }
    (Some(r["version"].as_i64()), r["alias"].as_str().map(str::to_string))
}

fn failed_checks(blessing: &Json) -> Vec<String> {
    let Some(checks) = blessing["checks"].as_array() else { return Vec::new() };
    checks
        .iter()
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
}

fn failed_infra_checks(blessing: &Json) -> Vec<String> {
    let Some(checks) = blessing["checks"].as_array() else {
        return vec!["the infra blessing lists no checks".into()];
    };
    crate::infra_validate::failed_checks(checks)
}

/// Ends the step as refused: its record says why, nothing was published.
fn refuse(ctx: &ExecContext, digest: &str, reason: String, details: Json) -> Result<(), ExecError> {
    let record = json!({ "pushed": false, "model_digest": digest, "refused": reason, "details": details });
    ctx.log(format!("refused: {reason}"));
    write_json(&ctx.output_path("pushed"), &record)?;
    ctx.set_properties("pushed", record);
    ctx.add_summary("refused", json!(reason));
    ctx.refuse(reason);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_and_aliases_refuse_dots_separators_and_numbers() {
        let problems = |v: Json| {
            flywheel_core::Component::check_params(&Push, v.as_object().unwrap())
                .into_iter()
                .map(|p| p.path.join("."))
                .collect::<Vec<_>>()
        };
        assert!(problems(json!({ "model_name": "bikes", "alias": "production" })).is_empty());
        assert_eq!(problems(json!({ "model_name": "..", "alias": "a/b" })), ["model_name", "alias"]);
        assert_eq!(problems(json!({ "model_name": "x", "alias": "2" })), ["alias"]);
        assert!(flywheel_core::check_alias(".").unwrap_err().contains("cannot be `.` or `..`"));
    }

    use flywheel_core::{
        Component, ExecContextBuilder, ModelRegistry, PublishCall, RecordingRegistry, RegisteredModel,
    };
    use std::sync::Arc;

    /// A push step over a model file and a blessing written in `dir`.
    fn step(dir: &std::path::Path, params: Json, blessing: Json) -> ExecContextBuilder {
        let model = dir.join("model.json");
        std::fs::write(&model, "{}").unwrap();
        let digest = flywheel_core::digest_bytes(b"{}");
        let mut blessing = blessing;
        blessing["model_digest"] = json!(digest);
        let blessing_path = dir.join("blessing.json");
        write_json(&blessing_path, &blessing).unwrap();
        ExecContext::builder()
            .params(params)
            .input_file("model", ArtifactType::Model, &model)
            .input_file("blessing", ArtifactType::Blessing, &blessing_path)
            .output("pushed", ArtifactType::PushedModel)
    }

    fn recorder(answer: Option<Published>) -> Arc<RecordingRegistry> {
        Arc::new(answer.map_or_else(RecordingRegistry::refusing, RecordingRegistry::answering))
    }

    #[test]
    fn an_unblessed_model_is_refused_and_nothing_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let blessing = json!({ "blessed": false, "checks": [
            { "scope": "overall", "metric": "accuracy", "rule": ">= 0.9", "value": 0.8, "margin": -0.1, "passed": false },
        ]});
        let registry = recorder(None);
        let ctx = step(dir.path(), json!({ "model_name": "bikes", "alias": "production" }), blessing)
            .registry(registry.clone() as Arc<dyn ModelRegistry>)
            .build();
        Push.execute(&ctx).unwrap();
        let refusal = ctx.take_refusal().unwrap_or_default();
        assert!(refusal.starts_with("not blessed (1 failed checks: overall accuracy >= 0.9"), "{refusal}");
        assert_eq!(registry.calls(), Vec::<PublishCall>::new());
        let record = flywheel_data::table::read_json(&ctx.output_path("pushed")).unwrap();
        assert_eq!(record["pushed"], json!(false));
    }

    #[test]
    fn the_alias_moves_only_from_the_version_the_blessing_compared_with() {
        let dir = tempfile::tempdir().unwrap();
        let blessing = json!({ "blessed": true, "checks": [],
            "baseline_ref": { "model": "bikes", "alias": "production", "version": 3 } });
        let registered = RegisteredModel { name: "bikes".into(), version: 4, created: true };
        let registry = recorder(Some(Published::Done { model: registered, alias_was: Some(3) }));
        let ctx = step(dir.path(), json!({ "model_name": "bikes", "alias": "production" }), blessing)
            .run_id(12)
            .registry(registry.clone() as Arc<dyn ModelRegistry>)
            .build();
        Push.execute(&ctx).unwrap();
        let calls = registry.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!((calls[0].model_name.as_str(), calls[0].run_id), ("bikes", 12));
        assert_eq!(
            calls[0].alias,
            Some(AliasMove { alias: "production".into(), expected: Some(Some(3)), checked: None })
        );
        assert_eq!(ctx.take_refusal(), None);
        assert_eq!(ctx.take_summary()["model_version"], json!("bikes@4"));
    }

    #[test]
    fn a_bad_parameter_is_named_and_nothing_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let registry = recorder(None);
        let run = |params: Json| {
            let ctx = step(dir.path(), params, json!({ "blessed": true }))
                .registry(registry.clone() as Arc<dyn ModelRegistry>)
                .build();
            Push.execute(&ctx).map_err(|e| e.to_string()).unwrap_err()
        };
        assert_eq!(run(json!({ "model_name": 5 })), "parameter `model_name`: expected a string, found an integer");
        assert_eq!(run(json!({ "alias": "production" })), "parameter `model_name` is required");
        assert!(run(json!({ "model_name": "bikes", "alias": "2" })).starts_with("alias `2` is a number"));
        assert!(registry.calls().is_empty());
    }

    /// A push step as [`step`], with an infra blessing for `digest` too.
    fn with_infra(dir: &std::path::Path, infra: Json, digest: &str) -> ExecContextBuilder {
        let mut infra = infra;
        infra["model_digest"] = json!(digest);
        let path = dir.join("infra_blessing.json");
        write_json(&path, &infra).unwrap();
        step(dir, json!({ "model_name": "bikes", "alias": "production" }), json!({ "blessed": true })).input_file(
            "infra_blessing",
            ArtifactType::InfraBlessing,
            &path,
        )
    }

    #[test]
    fn a_model_that_failed_infra_validation_is_refused_and_nothing_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let infra = json!({ "blessed": false, "checks": [
            { "check": "answers", "figure": 0, "rule": "mismatches <= 0", "threshold": 0.0, "passed": true },
            { "check": "min_rps", "figure": 12.5, "rule": "rps >=", "threshold": 50.0, "passed": false },
        ]});
        let registry = recorder(None);
        let digest = flywheel_core::digest_bytes(b"{}");
        let ctx = with_infra(dir.path(), infra, &digest).registry(registry.clone() as Arc<dyn ModelRegistry>).build();
        Push.execute(&ctx).unwrap();
        let refusal = ctx.take_refusal().unwrap_or_default();
        assert_eq!(refusal, "failed infra validation (1 failed checks: min_rps (figure 12.5, rps >= 50.0))");
        assert!(registry.calls().is_empty());
        let record = flywheel_data::table::read_json(&ctx.output_path("pushed")).unwrap();
        assert_eq!(record["pushed"], json!(false));
    }

    #[test]
    fn an_infra_blessing_of_another_model_stops_the_push() {
        let dir = tempfile::tempdir().unwrap();
        let registry = recorder(None);
        let ctx = with_infra(dir.path(), json!({ "blessed": true, "checks": [] }), "another-digest")
            .registry(registry.clone() as Arc<dyn ModelRegistry>)
            .build();
        let e = Push.execute(&ctx).unwrap_err().to_string();
        assert!(e.starts_with("the infra blessing is for another model"), "{e}");
        assert!(registry.calls().is_empty());
    }

    #[test]
    fn a_model_that_passed_infra_validation_is_pushed() {
        let dir = tempfile::tempdir().unwrap();
        let registered = RegisteredModel { name: "bikes".into(), version: 1, created: true };
        let registry = recorder(Some(Published::Done { model: registered, alias_was: None }));
        let digest = flywheel_core::digest_bytes(b"{}");
        let ctx = with_infra(dir.path(), json!({ "blessed": true, "checks": [] }), &digest)
            .registry(registry.clone() as Arc<dyn ModelRegistry>)
            .build();
        Push.execute(&ctx).unwrap();
        assert_eq!(ctx.take_refusal(), None);
        assert_eq!(registry.calls().len(), 1);
    }
}
