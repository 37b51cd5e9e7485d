//! Rules about what a publisher must read before it publishes. An infra
//! validation whose verdict no publisher reads gates nothing: the model
//! would be registered whatever the serving stack did with it, so a
//! pipeline that validates infra and publishes must wire the infra
//! blessing into its publisher. Checked at compile time, before anything runs.

use crate::config::StepConfig;
use crate::diagnostic::Diagnostic;
use flywheel_core::{ArtifactType, ComponentSpec, Role};

/// One step as these rules see it: its component's spec and role, and the
/// outputs it declares.
pub struct StepView<'a> {
    pub config: &'a StepConfig,
    pub spec: Option<&'static ComponentSpec>,
    pub role: Role,
    pub outputs: &'a [(String, ArtifactType)],
}

/// Every infra blessing that no publisher reads, when the pipeline has a
/// publisher that could read one: reported at a publisher whose infra
/// blessing input is empty, or else at the step that writes it.
pub fn unread_infra_blessings(steps: &[StepView]) -> Vec<Diagnostic> {
    let infra_port = |v: &StepView| {
        v.spec.and_then(|s| s.inputs.iter().find(|p| p.ty == ArtifactType::InfraBlessing)).map(|p| p.name)
    };
    let publishers: Vec<(&StepView, &str)> = steps
        .iter()
        .filter(|v| v.role == Role::Publisher)
        .filter_map(|v| infra_port(v).map(|port| (v, port)))
        .collect();
    let mut out = Vec::new();
    for v in steps {
        for (output, _) in v.outputs.iter().filter(|(_, ty)| *ty == ArtifactType::InfraBlessing) {
            let reference = format!("{}.{output}", v.config.name.value);
            let reads = |p: &StepView| p.config.inputs.iter().any(|(_, r)| r.value == reference);
            if publishers.iter().any(|(p, _)| reads(p)) {
                continue;
            }
            let empty = publishers.iter().find(|(p, port)| !p.config.inputs.iter().any(|(n, _)| n.value == *port));
            let diagnostic = match (empty, publishers.first()) {
                (Some((p, port)), _) => Diagnostic::new(
                    format!(
                        "step `{}` publishes without reading the infra blessing of step `{}`",
                        p.config.name.value, v.config.name.value
                    ),
                    Some(p.config.name.span.clone()),
                )
                .with_help(Some(format!(
                    "add `{port} = \"{reference}\"` to its inputs, so that a model that failed infra validation is not published"
                ))),
                (None, Some((p, port))) => Diagnostic::new(
                    format!("the infra blessing of step `{}` is read by no publisher", v.config.name.value),
                    Some(v.config.name.span.clone()),
                )
                .with_help(Some(format!(
                    "`{}` reads another infra blessing through `{port}`: wire this one into the publisher of the model it validates, or remove step `{}`",
                    p.config.name.value, v.config.name.value
                ))),
                (None, None) => continue,
            };
            out.push(diagnostic);
        }
    }
    out
}
