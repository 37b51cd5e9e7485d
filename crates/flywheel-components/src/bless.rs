//! `bless`: model validation. The candidate and the baseline (the version
//! aliased `production`, passed as `@model:NAME@production`) are scored
//! on the same evaluation data in this step, by the same code as
//! `evaluate`; the candidate is blessed only when every declared check
//! passes: absolute bounds, a gain over the baseline (absolute or
//! relative), per-slice bounds, and no slice worse than the baseline's by
//! more than a margin. Without a baseline (the first model), checks
//! against it are skipped and the blessing says so. `push` refuses a model
//! whose blessing is negative.

use crate::evaluate::{check_metric, check_slices, evaluate_model};
use flywheel_core::{
    ArtifactType, ComponentSpec, ExecContext, ExecError, ParamProblem, ParamSpec, ParamType, PortSpec, TypedComponent,
};
use flywheel_data::model_file::load;
use flywheel_data::table::write_json;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;

pub struct Bless;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "bless",
    version: "1",
    description: "Validates a model against declared thresholds and against the baseline (production) model on the same data; writes a blessing that `push` requires.",
    params: &[
        ParamSpec {
            name: "thresholds",
            ty: ParamType::StringMap,
            required: false,
            doc: "per metric, rules joined by `,`: a bound (\">= 0.8\", \"<= 0.3\") and/or a gain over the baseline in the metric's better direction (\"gain >= 0\", \"gain >= 1%\"), e.g. { accuracy = \">= 0.8, gain >= 0\" }",
        },
        ParamSpec {
            name: "slices",
            ty: ParamType::StringList,
            required: false,
            doc: "slices checked one by one (as evaluate's `slices`)",
        },
        ParamSpec {
            name: "slice_thresholds",
            ty: ParamType::StringMap,
            required: false,
            doc: "rules every slice must meet, per metric, as `thresholds` (e.g. { accuracy = \">= 0.7\" })",
        },
        ParamSpec {
            name: "max_slice_regression",
            ty: ParamType::StringMap,
            required: false,
            doc: "per metric, how much worse than the baseline any slice may get: an amount or a percentage, e.g. { accuracy = \"0.01\" }",
        },
    ],
    inputs: &[
        PortSpec { name: "model", ty: ArtifactType::Model, doc: "the candidate model", optional: false },
        PortSpec { name: "data", ty: ArtifactType::Dataset, doc: "evaluation data with the target", optional: false },
        PortSpec {
            name: "baseline",
            ty: ArtifactType::Model,
            doc: "the model to beat, usually \"@model:NAME@production\"; absent for the first model",
            optional: true,
        },
    ],
    outputs: &[PortSpec {
        name: "blessing",
        ty: ArtifactType::Blessing,
        doc: "whether the model is blessed, with every check",
        optional: false,
    }],
    dynamic_ports: false,
};

/// Metrics where lower is better; every other metric is higher-is-better.
const LOWER_IS_BETTER: &[&str] = &["log_loss", "brier", "rmse", "mae", "mape"];

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    AtLeast(f64),
    AtMost(f64),
    /// Improvement over the baseline, in metric units or (when `relative`) as a fraction of the baseline.
    Gain {
        min: f64,
        relative: bool,
    },
}

/// An amount, or a percentage as a fraction; never NaN or infinite (a
/// bound of NaN would fail every check, an infinite one none).
fn parse_amount(s: &str) -> Option<(f64, bool)> {
    let s = s.trim();
    match s.strip_suffix('%') {
        Some(p) => finite(p.trim()).map(|v| (v / 100.0, true)),
        None => finite(s).map(|v| (v, false)),
    }
}

fn finite(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `bless`'s parameters (see [`SPEC`]): rules per metric, as written.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default)]
    pub thresholds: BTreeMap<String, String>,
    #[serde(default)]
    pub slices: Vec<String>,
    #[serde(default)]
    pub slice_thresholds: BTreeMap<String, String>,
    #[serde(default)]
    pub max_slice_regression: BTreeMap<String, String>,
}

impl Params {
    fn tables(&self) -> [(&'static str, &BTreeMap<String, String>); 3] {
        [
            ("thresholds", &self.thresholds),
            ("slice_thresholds", &self.slice_thresholds),
            ("max_slice_regression", &self.max_slice_regression),
        ]
    }
}

/// Problems `execute` would meet in the rules, before anything runs: each
/// rule read by the same parsers, each metric a known one.
fn check_rules(params: &Params) -> Vec<ParamProblem> {
    let mut out = Vec::new();
    for (key, table) in params.tables() {
        for (metric, text) in table {
            out.extend(check_metric(&[key, metric], metric));
            let parsed = if key == "max_slice_regression" {
                parse_margin(metric, text).map(|_| ())
            } else {
                parse_rules(metric, text).map(|_| ())
            };
            if let Err(e) = parsed {
                out.push(ParamProblem::value(&[key, metric], e.to_string()));
            }
        }
    }
    out.extend(check_slices(&params.slices, "slices"));
    for (key, table) in params.tables().into_iter().skip(1) {
        if params.slices.is_empty() && !table.is_empty() {
            out.push(
                ParamProblem::key(&[key], format!("`{key}` needs `slices`"))
                    .help("add the slices to check, e.g. slices = [\"sex\"]"),
            );
        }
    }
    out
}

/// `max_slice_regression` of one metric: an amount ≥ 0 or a percentage.
fn parse_margin(metric: &str, text: &str) -> Result<(f64, bool), ExecError> {
    parse_amount(text).filter(|(v, _)| *v >= 0.0).ok_or_else(|| {
        ExecError::failed(format!(
            "max_slice_regression for `{metric}`: `{text}` must be an amount ≥ 0 or a percentage, like \"0.01\" or \"2%\""
        ))
    })
}

fn parse_rules(metric: &str, text: &str) -> Result<Vec<Rule>, ExecError> {
    let bad = |part: &str| {
        ExecError::failed(format!(
            "threshold for `{metric}`: `{part}` is not a rule; write \">= 0.8\", \"<= 0.3\", \"gain >= 0\" or \"gain >= 1%\""
        ))
    };
    let mut rules = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (gain, rest) = match part.strip_prefix("gain") {
            Some(r) => (true, r.trim()),
            None => (false, part),
        };
        let rule = if let Some(v) = rest.strip_prefix(">=") {
            let (v, relative) = parse_amount(v).ok_or_else(|| bad(part))?;
            if gain {
                Rule::Gain { min: v, relative }
            } else if relative {
                return Err(bad(part));
            } else {
                Rule::AtLeast(v)
            }
        } else if let Some(v) = rest.strip_prefix("<=") {
            if gain {
                return Err(bad(part));
            }
            Rule::AtMost(finite(v.trim()).ok_or_else(|| bad(part))?)
        } else {
            return Err(bad(part));
        };
        rules.push(rule);
    }
    if rules.is_empty() {
        return Err(bad(text));
    }
    Ok(rules)
}

fn describe(rule: &Rule) -> String {
    match rule {
        Rule::AtLeast(v) => format!(">= {v}"),
        Rule::AtMost(v) => format!("<= {v}"),
        Rule::Gain { min, relative: false } => format!("gain >= {min}"),
        Rule::Gain { min, relative: true } => format!("gain >= {}%", min * 100.0),
    }
}

/// Improvement of `value` over `base` in the metric's better direction.
fn gain(metric: &str, value: f64, base: f64, relative: bool) -> f64 {
    let d = if LOWER_IS_BETTER.contains(&metric) { base - value } else { value - base };
    if relative { d / base.abs().max(f64::EPSILON) } else { d }
}

struct Checker {
    checks: Vec<Json>,
    skipped: Vec<String>,
}

impl Checker {
    fn check(&mut self, scope: &str, metric: &str, rule: &Rule, value: Option<f64>, base: Option<f64>) {
        let Some(value) = value else {
            self.checks.push(json!({
                "scope": scope, "metric": metric, "rule": describe(rule), "value": null, "passed": false,
                "note": "the metric is undefined here (e.g. ROC AUC of a slice with one class)",
            }));
            return;
        };
        let (passed, margin, baseline) = match rule {
            Rule::AtLeast(v) => (value >= *v, value - v, None),
            Rule::AtMost(v) => (value <= *v, v - value, None),
            Rule::Gain { min, relative } => {
                let Some(b) = base else {
                    self.skipped.push(format!("{scope}: {metric} {}: no baseline model", describe(rule)));
                    return;
                };
                let g = gain(metric, value, b, *relative);
                (g >= *min, g - min, Some(b))
            }
        };
        self.checks.push(json!({
            "scope": scope, "metric": metric, "rule": describe(rule), "value": value,
            "baseline": baseline, "passed": passed, "margin": margin,
        }));
    }
}

fn metric_of(m: &Json, name: &str) -> Option<f64> {
    m.get(name).and_then(Json::as_f64)
}

/// The slice entries of an evaluation, by slice name.
fn slices_of(m: &Json) -> BTreeMap<String, Json> {
    m["slices"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| Some((s["slice"].as_str()?.to_string(), s["metrics"].clone()))).collect())
        .unwrap_or_default()
}

impl TypedComponent for Bless {
    type Params = Params;

    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn check(&self, params: &Params) -> Vec<ParamProblem> {
        check_rules(params)
    }

    fn run(&self, params: Params, ctx: &ExecContext) -> Result<(), ExecError> {
        let rules = Rules::parse(&params)?;
        let input = ctx.input("model")?;
        let candidate = load(&input.path)?;
        let data = &ctx.input("data")?.path;
        let (cm, _) = evaluate_model(&candidate, data, &params.slices)?;
        let base = match ctx.inputs.get("baseline") {
            Some(b) => {
                let model = load(&b.path)?;
                if model.task != candidate.task || model.target != candidate.target {
                    return Err(ExecError::failed(format!(
                        "the baseline predicts `{}` ({:?}) and the candidate `{}` ({:?}): they cannot be compared",
                        model.target, model.task, candidate.target, candidate.task
                    )));
                }
                Some((b.digest.clone(), evaluate_model(&model, data, &params.slices)?.0))
            }
            None => None,
        };
        let bm = base.as_ref().map(|(_, m)| m);
        rules.require_metrics(&cm)?;
        let c = rules.apply(&cm, bm);
        let failed: Vec<&Json> = c.checks.iter().filter(|k| k["passed"] != true).collect();
        let blessed = failed.is_empty();
        for s in &c.skipped {
            ctx.log(format!("skipped {s}"));
        }
        for f in &failed {
            ctx.log(format!(
                "failed {}: {} {} (value {}, margin {})",
                f["scope"].as_str().unwrap_or_default(),
                f["metric"].as_str().unwrap_or_default(),
                f["rule"].as_str().unwrap_or_default(),
                f["value"],
                f["margin"]
            ));
        }
        let record = json!({
            "blessed": blessed,
            "model_digest": input.digest,
            "baseline_digest": base.as_ref().map(|(d, _)| d.clone()),
            // Which registered version (if any) the candidate was compared
            // with: `push` moves an alias only if it still points there.
            "baseline_ref": ctx.model_ref("baseline"),
            "checks": c.checks,
            "skipped": c.skipped,
            "metrics": cm,
            "baseline_metrics": bm,
        });
        write_blessing(ctx, &record, failed.len(), base.is_some())
    }
}

/// The step's rules, parsed: overall, per slice, and the slice margins.
struct Rules {
    overall: Vec<(String, Vec<Rule>)>,
    slices: Vec<(String, Vec<Rule>)>,
    /// (metric, margin, relative)
    margins: Vec<(String, f64, bool)>,
}

impl Rules {
    fn parse(params: &Params) -> Result<Self, ExecError> {
        let (slice_thresholds, regression) = (&params.slice_thresholds, &params.max_slice_regression);
        if (!slice_thresholds.is_empty() || !regression.is_empty()) && params.slices.is_empty() {
            return Err(ExecError::failed(
                "`slice_thresholds` and `max_slice_regression` need `slices` (e.g. slices = [\"sex\"])",
            ));
        }
        let parse_all = |table: &BTreeMap<String, String>| {
            table.iter().map(|(m, t)| Ok((m.clone(), parse_rules(m, t)?))).collect::<Result<Vec<_>, ExecError>>()
        };
        let overall = parse_all(&params.thresholds)?;
        let slices = parse_all(slice_thresholds)?;
        let margins = regression
            .iter()
            .map(|(m, t)| parse_margin(m, t).map(|(v, rel)| (m.clone(), v, rel)))
            .collect::<Result<_, ExecError>>()?;
        Ok(Self { overall, slices, margins })
    }

    /// Every metric a rule names must exist for this task.
    fn require_metrics(&self, cm: &Json) -> Result<(), ExecError> {
        for (metric, _) in self.overall.iter().chain(&self.slices) {
            if metric_of(cm, metric).is_none() && cm.get(metric).is_none() {
                let known: Vec<&str> = cm
                    .as_object()
                    .map(|o| o.iter().filter(|(_, v)| v.is_number()).map(|(k, _)| k.as_str()).collect())
                    .unwrap_or_default();
                let hint = flywheel_core::did_you_mean(metric, known.iter().copied());
                return Err(ExecError::failed(format!(
                    "threshold for `{metric}`: this model's evaluation has no such metric{hint} (it has: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Every check of the candidate's metrics `cm` against the rules and
    /// the baseline's metrics `bm`.
    fn apply(&self, cm: &Json, bm: Option<&Json>) -> Checker {
        let mut c = Checker { checks: Vec::new(), skipped: Vec::new() };
        for (metric, rs) in &self.overall {
            for r in rs {
                c.check("overall", metric, r, metric_of(cm, metric), bm.and_then(|b| metric_of(b, metric)));
            }
        }
        let cs = slices_of(cm);
        let bs = bm.map(slices_of).unwrap_or_default();
        for (name, m) in &cs {
            let scope = format!("slice {name}");
            let base = |metric: &str| bs.get(name).and_then(|b| metric_of(b, metric));
            for (metric, rs) in &self.slices {
                for r in rs {
                    c.check(&scope, metric, r, metric_of(m, metric), base(metric));
                }
            }
            for (metric, margin, relative) in &self.margins {
                // "No slice worse by more than the margin": gain ≥ −margin.
                let rule = Rule::Gain { min: -margin, relative: *relative };
                c.check(&scope, metric, &rule, metric_of(m, metric), base(metric));
            }
        }
        c
    }
}

/// Writes the blessing, its properties and the step's summary.
fn write_blessing(ctx: &ExecContext, record: &Json, failed: usize, baseline: bool) -> Result<(), ExecError> {
    write_json(&ctx.output_path("blessing"), record)?;
    let blessed = record["blessed"].clone();
    ctx.set_properties("blessing", json!({ "blessed": blessed, "model_digest": record["model_digest"] }));
    ctx.add_summary(
        "blessing",
        json!({
            "blessed": blessed,
            "checks": record["checks"].as_array().map_or(0, Vec::len),
            "failed": failed,
            "skipped": record["skipped"].as_array().map_or(0, Vec::len),
            "baseline": baseline,
        }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_gains_follow_the_metric_direction() {
        assert_eq!(
            parse_rules("accuracy", ">= 0.8, gain >= 1%").unwrap(),
            [Rule::AtLeast(0.8), Rule::Gain { min: 0.01, relative: true }]
        );
        assert!(parse_rules("accuracy", "> 0.8").is_err());
        assert!(parse_rules("accuracy", "gain <= 2").is_err());
        assert!(parse_rules("accuracy", ">= NaN").is_err());
        assert!(parse_rules("rmse", "<= inf").is_err());
        assert!(parse_margin("accuracy", "-1").is_err());
        assert_eq!(parse_margin("accuracy", "2%").unwrap(), (0.02, true));
        assert!((gain("log_loss", 0.30, 0.35, false) - 0.05).abs() < 1e-12);
        assert!((gain("accuracy", 0.80, 0.85, false) + 0.05).abs() < 1e-12);
        assert!((gain("rmse", 90.0, 100.0, true) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn check_reports_bad_rules_unknown_metrics_and_slices_without_a_list() {
        let params = json!({
            "thresholds": { "acuracy": ">= 0.8", "rmse": "> 3" },
            "max_slice_regression": { "accuracy": "-0.1" },
        });
        let problems = flywheel_core::Component::check_params(&Bless, params.as_object().unwrap());
        let found: Vec<(String, bool)> = problems.iter().map(|p| (p.path.join("."), p.at_key)).collect();
        assert_eq!(
            found,
            [
                ("thresholds.acuracy".into(), true),
                ("thresholds.rmse".into(), false),
                ("max_slice_regression.accuracy".into(), false),
                ("max_slice_regression".into(), true),
            ]
        );
        assert_eq!(problems[0].help.as_deref().map(|h| h.starts_with("did you mean `accuracy`?")), Some(true));
    }
}
