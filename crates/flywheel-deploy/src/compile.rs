//! `DeploymentConfig` → `Deployment`: every section checked, the named
//! pipeline compiled too, and every problem of both files reported at once.

use crate::DeployError;
use crate::check::{Check, kind, quoted};
use crate::config::{DeploymentConfig, Section};
use crate::cron::Schedule;
use crate::model::*;
use flywheel_core::ComponentRegistry;
use flywheel_core::slice::SliceSpec;
use flywheel_pipeline::config::Located;
use flywheel_pipeline::{Diagnostic, Diagnostics, Pipeline, PipelineError};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEPLOYMENT_KEYS: &[&str] = &["name", "pipeline", "model", "params"];
const SERVING_KEYS: &[&str] = &["addr", "split", "shadow", "log_sample"];
const MONITORING_KEYS: &[&str] = &["window", "drift_share", "columns", "performance", "slices"];
const DELIVERY_KEYS: &[&str] = &["approval", "canary", "hold", "max_error_rate", "tolerance", "max_hold"];
const TRIGGER_KINDS: &[&str] = &["on_demand", "schedule", "new_data", "drift", "performance"];
const TRIGGER_COMMON: &[&str] = &["on", "cooldown", "when_busy"];
/// What the monitor computes from feedback labels.
pub const METRICS: &[&str] = &["rmse", "mae", "mape", "r2", "accuracy", "f1_macro", "log_loss"];

pub fn compile_file(path: &Path, components: &ComponentRegistry) -> Result<Deployment, DeployError> {
    let source = std::fs::read_to_string(path).map_err(|source| DeployError::Read { path: path.into(), source })?;
    compile(&source, path, components)
}

pub fn compile(source: &str, path: &Path, components: &ComponentRegistry) -> Result<Deployment, DeployError> {
    let mut errors = Vec::new();
    let config = DeploymentConfig::parse(source, &mut errors);
    let mut invalid = Vec::new();
    let deployment =
        config.and_then(|c| Compiler { errors: &mut errors, path, source, components }.deployment(&c, &mut invalid));
    let mut all = Vec::new();
    if !errors.is_empty() {
        all.push(Diagnostics { file: path.to_path_buf(), source: source.to_string(), items: errors });
    }
    all.extend(invalid);
    match deployment {
        Some(mut d) if all.is_empty() => {
            d.source = source.to_string();
            d.digest = blake3::hash(source.as_bytes()).to_hex().to_string();
            Ok(d)
        }
        _ => Err(DeployError::Invalid(all)),
    }
}

struct Compiler<'a> {
    errors: &'a mut Vec<Diagnostic>,
    path: &'a Path,
    source: &'a str,
    components: &'a ComponentRegistry,
}

impl Compiler<'_> {
    fn check(&mut self) -> Check<'_> {
        Check { errors: self.errors }
    }

    /// The whole file; `invalid` gets the pipeline's own diagnostics.
    fn deployment(&mut self, c: &DeploymentConfig, invalid: &mut Vec<Diagnostics>) -> Option<Deployment> {
        let Some(d) = &c.deployment else {
            let help = "start the file with:\n[deployment]\npipeline = \"pipeline.toml\"".to_string();
            self.check().err("the deployment file has no [deployment] table", &(0..0), Some(help));
            return None;
        };
        self.check().keys(d, DEPLOYMENT_KEYS, "[deployment]");
        let pipeline = self.pipeline(d, invalid);
        let serving = self.serving(c.serving.as_ref());
        let monitoring = self.monitoring(c.monitoring.as_ref());
        let triggers: Vec<Option<Trigger>> = c.triggers.iter().map(|t| self.trigger(t, &monitoring)).collect();
        let delivery = self.delivery(c.delivery.as_ref());
        let pipeline = pipeline?;
        let params = self.params(d, &pipeline);
        let model = self.model(d, &pipeline)?;
        let name = self.name(d, &pipeline)?;
        Some(Deployment {
            name,
            params: params?,
            path: self.path.to_path_buf(),
            source: String::new(),
            digest: String::new(),
            pipeline,
            model,
            serving: serving?,
            monitoring,
            triggers: triggers.into_iter().collect::<Option<_>>()?,
            delivery: delivery?,
        })
    }

    fn base(&self) -> PathBuf {
        self.path.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    fn pipeline(&mut self, d: &Section, invalid: &mut Vec<Diagnostics>) -> Option<Pipeline> {
        let Some(p) = self.check().string(d, "pipeline") else {
            if d.get("pipeline").is_none() {
                let help = Some("name the pipeline this deploys: pipeline = \"pipeline.toml\"".into());
                self.check().err("[deployment] has no `pipeline`", &d.span, help);
            }
            return None;
        };
        let file = self.base().join(&p.value);
        match flywheel_pipeline::compile_file(&file, self.components) {
            Ok(pipeline) => Some(pipeline),
            Err(PipelineError::Invalid(d)) => {
                invalid.push(d);
                None
            }
            Err(e) => {
                self.check().err(format!("`pipeline`: {e}"), &p.span, Some("a path relative to this file".into()));
                None
            }
        }
    }

    /// `model`, or the one model the pipeline pushes.
    fn model(&mut self, d: &Section, pipeline: &Pipeline) -> Option<String> {
        let pushed = pushed_models(pipeline);
        if let Some(m) = self.check().string(d, "model") {
            if let Err(why) = flywheel_core::check_name("model", &m.value) {
                self.check().err(why, &m.span, None);
                return None;
            }
            if !pushed.is_empty() && !pushed.contains(&m.value) {
                let help = Some(format!("the pipeline pushes {}", pushed.join(", ")));
                self.check().err(format!("the pipeline pushes no model `{}`", m.value), &m.span, help);
                return None;
            }
            return Some(m.value);
        }
        match pushed.as_slice() {
            [one] => Some(one.clone()),
            [] => {
                let help = Some("add a `push` step to the pipeline, or name the model: model = \"NAME\"".into());
                self.check().err("the pipeline pushes no model, so there is nothing to deploy", &d.span, help);
                None
            }
            many => {
                let help = Some(format!("it pushes {}: name one with model = \"NAME\"", many.join(", ")));
                self.check().err("the pipeline pushes several models", &d.span, help);
                None
            }
        }
    }

    /// `params = { data = "2011.csv" }`: the pipeline's parameters as this
    /// deployment runs it, each checked as `flywheel run --set` checks it.
    fn params(&mut self, d: &Section, pipeline: &Pipeline) -> Option<Vec<(String, String)>> {
        let Some(p) = d.get("params") else { return Some(Vec::new()) };
        let Json::Object(map) = &p.value else {
            let help = Some("params = { data = \"data/latest.csv\" }".into());
            self.check().err(format!("`params` must be a table, found {}", kind(&p.value)), &p.span, help);
            return None;
        };
        let mut out = Vec::new();
        for (name, v) in map {
            let text = match v {
                Json::String(s) => s.clone(),
                Json::Number(_) | Json::Bool(_) => v.to_string(),
                other => {
                    self.check().err(
                        format!("`params.{name}` must be a string, number or boolean, found {}", kind(other)),
                        &p.span,
                        None,
                    );
                    return None;
                }
            };
            out.push((name.clone(), text));
        }
        for one in &out {
            if let Err(e) = pipeline.resolve_parameters(std::slice::from_ref(one)) {
                let text = e.to_string();
                let text = text.strip_prefix("--set ").unwrap_or(&text);
                self.check().err(format!("`params`: {text}"), &p.span, None);
                return None;
            }
        }
        Some(out)
    }

    fn name(&mut self, d: &Section, pipeline: &Pipeline) -> Option<String> {
        let Some(n) = self.check().string(d, "name") else { return Some(pipeline.name.clone()) };
        match flywheel_core::check_name("deployment", &n.value) {
            Ok(()) => Some(n.value),
            Err(why) => {
                self.check().err(why, &n.span, None);
                None
            }
        }
    }
}

/// The `model_name` of every `push` step, a `${parameter}` read as its default.
pub fn pushed_models(p: &Pipeline) -> Vec<String> {
    let mut names: Vec<String> = p
        .steps
        .iter()
        .filter(|s| s.component == "push")
        .filter_map(|s| s.params.get("model_name").and_then(Json::as_str))
        .map(|n| match n.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
            Some(param) => p.parameters.get(param).and_then(|x| x.default.as_str()).unwrap_or(n).to_string(),
            None => n.to_string(),
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

impl Compiler<'_> {
    fn serving(&mut self, s: Option<&Section>) -> Option<Serving> {
        let mut serving =
            Serving { addr: None, split: vec![("production".into(), 100)], shadow: None, log_sample: 1.0 };
        let Some(s) = s else { return Some(serving) };
        let mut c = self.check();
        c.keys(s, SERVING_KEYS, "[serving]");
        let mut ok = true;
        if let Some(a) = c.string(s, "addr") {
            match a.value.parse() {
                Ok(addr) => serving.addr = Some(addr),
                Err(_) => {
                    let help = Some("for example \"127.0.0.1:8080\" (port 0: a free one)".into());
                    c.err(format!("`addr` must be HOST:PORT with an IP address, found \"{}\"", a.value), &a.span, help);
                    ok = false;
                }
            }
        }
        if let Some(x) = s.get("log_sample") {
            let sample = c.number(s, "log_sample", 0.0, 1.0, "a share of requests from 0 to 1");
            ok &= sample.is_some();
            serving.log_sample = sample.unwrap_or(x.value.as_f64().unwrap_or(1.0));
        }
        if let Some(split) = s.get("split") {
            match read_split(&mut c, split) {
                Some(arms) => serving.split = arms,
                None => ok = false,
            }
        }
        if let Some(sh) = c.string(s, "shadow") {
            if let Err(why) = flywheel_core::check_alias(&sh.value) {
                c.err(format!("`shadow`: {why}"), &sh.span, None);
                ok = false;
            } else if serving.split.iter().any(|(a, _)| *a == sh.value) {
                c.err(
                    format!(
                        "`shadow`: `{}` is in the split already; a shadow gets a copy of traffic, not a share",
                        sh.value
                    ),
                    &sh.span,
                    None,
                );
                ok = false;
            }
            serving.shadow = Some(sh.value);
        }
        ok.then_some(serving)
    }
}

/// `split = { production = 90, canary = 10 }`: aliases with whole weights.
fn read_split(c: &mut Check<'_>, v: &Located<Json>) -> Option<Vec<(String, u32)>> {
    let Json::Object(arms) = &v.value else {
        let help = Some("split = { production = 90, canary = 10 }".into());
        c.err(format!("`split` must be a table of alias = weight, found {}", kind(&v.value)), &v.span, help);
        return None;
    };
    let mut out = Vec::new();
    for (alias, w) in arms {
        if let Err(why) = flywheel_core::check_alias(alias) {
            c.err(format!("`split`: {why}"), &v.span, None);
            return None;
        }
        match w.as_u64().and_then(|w| u32::try_from(w).ok()) {
            Some(w) => out.push((alias.clone(), w)),
            None => {
                c.err(format!("`split`: the weight of `{alias}` must be a whole number, found {w}"), &v.span, None);
                return None;
            }
        }
    }
    if out.iter().all(|(_, w)| *w == 0) {
        c.err("`split` sends no traffic anywhere: give an alias a weight above 0", &v.span, None);
        return None;
    }
    Some(out)
}

impl Compiler<'_> {
    fn monitoring(&mut self, s: Option<&Section>) -> Monitoring {
        let mut m = Monitoring {
            window: Span::Requests(500),
            drift_share: 0.5,
            columns: None,
            performance: None,
            slices: Vec::new(),
        };
        let Some(s) = s else { return m };
        let mut c = self.check();
        c.keys(s, MONITORING_KEYS, "[monitoring]");
        m.window = c.span(s, "window").unwrap_or(m.window);
        m.drift_share = c.number(s, "drift_share", 1e-9, 1.0, "a share of columns above 0, at most 1").unwrap_or(0.5);
        if let Some(cols) = s.get("columns") {
            match cols.value.as_array().map(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect()) {
                Some(Some(names)) => m.columns = Some(names),
                _ => c.err("`columns` must be a list of column names", &cols.span, None),
            }
        }
        if let Some(p) = s.get("performance") {
            m.performance = read_bound(&mut c, p);
        }
        if let Some(v) = s.get("slices") {
            m.slices = read_slices(&mut c, v, m.performance.is_some());
        }
        m
    }
}

/// `slices = ["day", "period:0.25,0.5,0.75"]`, as `evaluate` takes them;
/// they slice the `performance` metric, so they need one.
fn read_slices(c: &mut Check<'_>, v: &Located<Json>, performance: bool) -> Vec<SliceSpec> {
    let help = Some("slices = [\"day\", \"age:25,45,65\", \"sex*race\"]".to_string());
    let Some(list) = v.value.as_array() else {
        c.err("`slices` must be a list of slices", &v.span, help);
        return Vec::new();
    };
    if !performance {
        let help = Some("add `performance = { accuracy = \">= 0.8\" }`: its metric is computed per slice".into());
        c.err("`slices` slice the `performance` metric, and none is declared", &v.span, help);
    }
    let mut out = Vec::new();
    for item in list {
        match item.as_str().map(SliceSpec::parse) {
            Some(Ok(spec)) => out.push(spec),
            Some(Err(e)) => c.err(format!("`slices`: {e}"), &v.span, None),
            None => c.err(format!("`slices`: {item} is not text"), &v.span, help.clone()),
        }
    }
    out
}

/// `performance = { rmse = "<= 120" }`: one metric and its bound.
fn read_bound(c: &mut Check<'_>, v: &Located<Json>) -> Option<Bound> {
    let help = Some(format!("performance = {{ rmse = \"<= 120\" }}; metrics: {}", METRICS.join(", ")));
    let one = v.value.as_object().filter(|m| m.len() == 1).and_then(|m| m.iter().next());
    let Some((metric, rule)) = one else {
        c.err("`performance` must be a table of one metric and its bound", &v.span, help);
        return None;
    };
    if !METRICS.contains(&metric.as_str()) {
        let help = flywheel_pipeline::diagnostic::did_you_mean(metric, METRICS.iter().copied()).or(help);
        c.err(format!("`performance`: the monitor does not compute `{metric}`"), &v.span, help);
        return None;
    }
    let Some(rule) = rule.as_str().map(str::trim) else {
        c.err(
            format!("`performance`: the bound of `{metric}` must be text such as \"<= 120\", found {rule}"),
            &v.span,
            None,
        );
        return None;
    };
    let (op, rest) = [(">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt)]
        .into_iter()
        .find_map(|(t, op)| rule.strip_prefix(t).map(|r| (op, r)))
        .unzip();
    match (op, rest.and_then(|r| r.trim().parse::<f64>().ok()).filter(|x| x.is_finite())) {
        (Some(op), Some(value)) => Some(Bound { metric: metric.clone(), op, value }),
        _ => {
            c.err(format!("`performance`: `{rule}` is no bound; write \">= 0.8\" or \"<= 120\""), &v.span, None);
            None
        }
    }
}

impl Compiler<'_> {
    fn trigger(&mut self, t: &Section, monitoring: &Monitoring) -> Option<Trigger> {
        let base = self.base();
        let source = self.source;
        let mut c = self.check();
        let Some(on) = c.choice(t, "on", TRIGGER_KINDS) else {
            if t.get("on").is_none() {
                let help = Some(format!("on = one of {}", quoted(TRIGGER_KINDS)));
                c.err("a [[trigger]] without `on`: say what starts a run", &t.span, help);
            }
            return None;
        };
        let extra: &[&str] = match on.value.as_str() {
            "schedule" => &["cron"],
            "new_data" => &["path", "settle"],
            "drift" | "performance" => &["windows"],
            _ => &[],
        };
        let allowed: Vec<&str> = TRIGGER_COMMON.iter().chain(extra).copied().collect();
        c.keys(t, &allowed, &format!("a `{}` trigger", on.value));
        let kind = trigger_kind(&mut c, t, &on, &base, monitoring, source);
        let quiet = on.value == "on_demand";
        let cooldown = c.duration(t, "cooldown").unwrap_or(Duration::from_secs(if quiet { 0 } else { 300 }));
        let busy_default = if matches!(on.value.as_str(), "on_demand" | "new_data") { "queue" } else { "skip" };
        let when_busy = match c.choice(t, "when_busy", &["queue", "skip"]).map(|x| x.value) {
            Some(b) => b,
            None => busy_default.to_string(),
        };
        let when_busy = if when_busy == "queue" { WhenBusy::Queue } else { WhenBusy::Skip };
        Some(Trigger { kind: kind?, cooldown, when_busy })
    }
}

fn trigger_kind(
    c: &mut Check<'_>,
    t: &Section,
    on: &Located<String>,
    base: &Path,
    monitoring: &Monitoring,
    source: &str,
) -> Option<TriggerKind> {
    let required = |c: &mut Check<'_>, key: &str, example: &str| {
        let help = Some(format!("{key} = {example}"));
        c.err(format!("a `{}` trigger needs `{key}`", on.value), &on.span, help);
    };
    match on.value.as_str() {
        "on_demand" => Some(TriggerKind::OnDemand),
        "schedule" => {
            let Some(cron) = c.string(t, "cron") else {
                if t.get("cron").is_none() {
                    required(c, "cron", "\"0 3 * * *\"");
                }
                return None;
            };
            match Schedule::parse(&cron.value) {
                Ok(s) => Some(TriggerKind::Schedule(Box::new(s))),
                Err(p) => {
                    // The field's place inside the quoted string, when the
                    // string is written as its value (no escapes, one quote).
                    let inner = cron.span.start + 1..cron.span.end.saturating_sub(1);
                    let plain = source.get(inner.clone()) == Some(cron.value.as_str());
                    let at = if plain { inner.start + p.at.start..inner.start + p.at.end } else { cron.span.clone() };
                    c.err(
                        p.message,
                        &at,
                        Some(
                            "minute hour day-of-month month day-of-week: \"0 3 * * *\" is 03:00 every day (UTC)".into(),
                        ),
                    );
                    None
                }
            }
        }
        "new_data" => {
            let Some(path) = c.string(t, "path") else {
                if t.get("path").is_none() {
                    required(c, "path", "\"incoming/\" (a folder) or \"incoming/*.csv\"");
                }
                return None;
            };
            let settle = c.duration(t, "settle").unwrap_or(Duration::from_secs(2));
            Some(TriggerKind::NewData { path: base.join(path.value), settle })
        }
        "drift" => {
            let windows = c.integer(t, "windows", 1, 1000, "a number of windows from 1 to 1000").unwrap_or(3) as u32;
            Some(TriggerKind::Drift { windows })
        }
        _ => {
            if monitoring.performance.is_none() {
                let help = Some("declare it: [monitoring] performance = { rmse = \"<= 120\" }".into());
                c.err(
                    "a `performance` trigger needs a metric to watch, and [monitoring] declares none",
                    &on.span,
                    help,
                );
                return None;
            }
            let windows = c.integer(t, "windows", 1, 1000, "a number of windows from 1 to 1000").unwrap_or(1) as u32;
            Some(TriggerKind::Performance { windows })
        }
    }
}

impl Compiler<'_> {
    fn delivery(&mut self, s: Option<&Section>) -> Option<Delivery> {
        let mut d = Delivery {
            approval: Approval::Auto,
            canary: 10,
            hold: Span::Requests(200),
            max_error_rate: 0.01,
            tolerance: 0.05,
            max_hold: Duration::from_secs(3600),
        };
        let Some(s) = s else { return Some(d) };
        let mut c = self.check();
        let before = c.errors.len();
        c.keys(s, DELIVERY_KEYS, "[delivery]");
        if let Some(a) = c.choice(s, "approval", &["auto", "manual"]) {
            d.approval = if a.value == "manual" { Approval::Manual } else { Approval::Auto };
        }
        d.canary = c.integer(s, "canary", 1, 99, "a percent of traffic from 1 to 99").map_or(d.canary, |n| n as u32);
        d.hold = c.span(s, "hold").unwrap_or(d.hold);
        d.max_error_rate = c.number(s, "max_error_rate", 0.0, 1.0, "a share from 0 to 1").unwrap_or(d.max_error_rate);
        d.tolerance = c.number(s, "tolerance", 0.0, 10.0, "a share from 0 (no worse) to 10").unwrap_or(d.tolerance);
        // By default at least twice a timed hold, so that it can be held.
        if let Span::Time(hold) = d.hold {
            d.max_hold = d.max_hold.max(hold * 2);
        }
        d.max_hold = c.duration(s, "max_hold").unwrap_or(d.max_hold);
        if let Some(v) = s.get("max_hold").filter(|_| d.max_hold.is_zero()) {
            c.err("`max_hold` must be more than 0: every canary would be rolled back at once", &v.span, None);
        }
        if let (Span::Time(hold), Some(v)) = (d.hold, s.get("max_hold"))
            && d.max_hold <= hold
        {
            let help = Some(format!("max_hold = \"{}s\" or more", hold.as_secs() * 2));
            c.err(
                "`max_hold` must be longer than `hold`: the canary would be rolled back before it could hold",
                &v.span,
                help,
            );
        }
        (c.errors.len() == before).then_some(d)
    }
}
