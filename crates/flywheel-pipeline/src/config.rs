//! `PipelineConfig`: the pipeline file as the user wrote it, every key and
//! value with its byte span, read leniently so that all problems can be
//! reported together.
//!
//! ```toml
//! [pipeline]
//! name = "bike-sharing"
//!
//! [parameters]
//! data = "data/bike.csv.gz"          # a default; its type is the parameter's type
//!
//! [steps.ingest]
//! component = "ingest"
//! params = { path = "${data}" }
//!
//! [steps.stats]
//! component = "statistics"
//! inputs = { data = "ingest.train" }
//! retries = 2
//! timeout = "5m"
//! ```

use crate::diagnostic::{Diagnostic, did_you_mean};
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<T> Located<T> {
    pub fn new(value: T, span: Range<usize>) -> Self {
        Self { value, span }
    }
}

#[derive(Debug, Clone)]
pub struct ParameterConfig {
    pub name: Located<String>,
    pub default: Located<serde_json::Value>,
    pub description: Option<String>,
}

/// Where a parameter, or a key or item inside it, was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// The parameter's name, then table keys or list indices: `["thresholds", "accuracy"]`.
    pub path: Vec<String>,
    /// The key's span (for a list item, the item's).
    pub key: Range<usize>,
    pub value: Range<usize>,
}

#[derive(Debug, Clone)]
pub struct StepConfig {
    pub name: Located<String>,
    pub component: Option<Located<String>>,
    pub params: Vec<(Located<String>, Located<serde_json::Value>)>,
    /// Every parameter and everything nested in one, so that a problem
    /// inside a table (`thresholds.accuracy`) points at its own key or value.
    pub param_places: Vec<Place>,
    pub inputs: Vec<(Located<String>, Located<String>)>,
    /// Only for components with dynamic ports (`command`): output name → type.
    pub outputs: Vec<(Located<String>, Located<String>)>,
    pub retries: Option<Located<i64>>,
    pub retry_backoff: Option<Located<String>>,
    pub timeout: Option<Located<String>>,
    pub cache: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub name: Option<Located<String>>,
    pub description: Option<String>,
    pub parameters: Vec<ParameterConfig>,
    pub steps: Vec<StepConfig>,
}

const TOP_KEYS: &[&str] = &["pipeline", "parameters", "steps"];
const PIPELINE_KEYS: &[&str] = &["name", "description"];
const STEP_KEYS: &[&str] =
    &["component", "params", "inputs", "outputs", "retries", "retry_backoff", "timeout", "cache"];

/// The TOML tree of `source`, every key and value with its place; a
/// syntax error is the one diagnostic (nothing else can be trusted).
pub fn parse_toml<'i>(source: &'i str, errors: &mut Vec<Diagnostic>) -> Option<Spanned<DeTable<'i>>> {
    match DeTable::parse(source) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(Diagnostic::new(format!("invalid TOML: {}", e.message().trim()), e.span().or(Some(0..0))));
            None
        }
    }
}

/// Where a key or value was written.
pub fn span<T>(s: &Spanned<T>) -> Range<usize> {
    s.span()
}

/// Converts a TOML value to JSON; datetimes become their RFC 3339 text.
pub fn to_json(v: &DeValue<'_>) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        DeValue::String(s) => J::String(s.to_string()),
        DeValue::Integer(i) => {
            let n = i64::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| format!("integer {i} does not fit in 64 bits"))?;
            J::from(n)
        }
        DeValue::Float(f) => {
            let x: f64 =
                f.as_str().replace('_', "").parse().map_err(|_| format!("`{}` is not a number", f.as_str()))?;
            serde_json::Number::from_f64(x)
                .map(J::Number)
                .ok_or_else(|| "infinite and NaN numbers are not allowed here".to_string())?
        }
        DeValue::Boolean(b) => J::Bool(*b),
        DeValue::Datetime(d) => J::String(d.to_string()),
        DeValue::Array(a) => J::Array(a.iter().map(|x| to_json(x.get_ref())).collect::<Result<Vec<_>, _>>()?),
        DeValue::Table(t) => {
            let mut m = serde_json::Map::new();
            for (k, x) in t.iter() {
                m.insert(k.get_ref().to_string(), to_json(x.get_ref())?);
            }
            J::Object(m)
        }
    })
}

/// Records the place of `v` at `path` and of everything nested in it.
fn places(path: &mut Vec<String>, key: Range<usize>, v: &Spanned<DeValue<'_>>, out: &mut Vec<Place>) {
    out.push(Place { path: path.clone(), key, value: span(v) });
    match v.get_ref() {
        DeValue::Table(t) => {
            for (k, x) in t.iter() {
                path.push(k.get_ref().to_string());
                places(path, span(k), x, out);
                path.pop();
            }
        }
        DeValue::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                path.push(i.to_string());
                places(path, span(x), x, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Reads a TOML tree leniently, collecting a diagnostic per problem: the
/// pipeline file's reader, and the deployment file's (`flywheel-deploy`).
pub struct Reader<'a> {
    pub errors: &'a mut Vec<Diagnostic>,
}

impl Reader<'_> {
    pub fn err(&mut self, msg: impl Into<String>, span: Range<usize>) {
        self.errors.push(Diagnostic::new(msg, Some(span)));
    }

    pub fn unknown_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], what: &str) {
        for (k, _) in table.iter() {
            let key = k.get_ref().as_ref();
            if !allowed.contains(&key) {
                let help = did_you_mean(key, allowed.iter().copied())
                    .or_else(|| Some(format!("allowed keys in {what}: {}", flywheel_core::spec::quoted_list(allowed))));
                self.errors
                    .push(Diagnostic::new(format!("unknown key `{key}` in {what}"), Some(span(k))).with_help(help));
            }
        }
    }

    pub fn table<'t, 'i>(&mut self, v: &'t Spanned<DeValue<'i>>, what: &str) -> Option<&'t DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.err(format!("{what} must be a table, found {}", other.type_str()), span(v));
                None
            }
        }
    }

    pub fn string(&mut self, v: &Spanned<DeValue<'_>>, what: &str) -> Option<Located<String>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Located::new(s.to_string(), span(v))),
            other => {
                self.err(format!("{what} must be a string, found {}", other.type_str()), span(v));
                None
            }
        }
    }

    pub fn json(&mut self, v: &Spanned<DeValue<'_>>) -> Option<Located<serde_json::Value>> {
        match to_json(v.get_ref()) {
            Ok(j) => Some(Located::new(j, span(v))),
            Err(e) => {
                self.err(e, span(v));
                None
            }
        }
    }

    fn string_table(&mut self, v: &Spanned<DeValue<'_>>, what: &str) -> Vec<(Located<String>, Located<String>)> {
        let mut out = Vec::new();
        if let Some(t) = self.table(v, what) {
            for (k, x) in t.iter() {
                if let Some(s) = self.string(x, &format!("`{}` in {what}", k.get_ref())) {
                    out.push((Located::new(k.get_ref().to_string(), span(k)), s));
                }
            }
        }
        out
    }

    fn step(&mut self, name: &Spanned<std::borrow::Cow<'_, str>>, v: &Spanned<DeValue<'_>>) -> Option<StepConfig> {
        let what = format!("step `{}`", name.get_ref());
        let t = self.table(v, &what)?;
        self.unknown_keys(t, STEP_KEYS, &what);
        let mut step = StepConfig {
            name: Located::new(name.get_ref().to_string(), span(name)),
            component: None,
            params: Vec::new(),
            param_places: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            retries: None,
            retry_backoff: None,
            timeout: None,
            cache: None,
        };
        if let Some(c) = t.get("component") {
            step.component = self.string(c, "`component`");
        }
        if let Some(p) = t.get("params") {
            self.params(p, &what, &mut step);
        }
        if let Some(i) = t.get("inputs") {
            step.inputs = self.string_table(i, &format!("`inputs` of {what}"));
        }
        if let Some(o) = t.get("outputs") {
            step.outputs = self.outputs(o, &what);
        }
        if let Some(r) = t.get("retries") {
            step.retries = self.retries(r);
        }
        if let Some(x) = t.get("timeout") {
            step.timeout = self.string(x, "`timeout` (e.g. \"30s\", \"5m\")");
        }
        if let Some(x) = t.get("retry_backoff") {
            step.retry_backoff = self.string(x, "`retry_backoff` (e.g. \"1s\")");
        }
        if let Some(c) = t.get("cache") {
            match c.get_ref() {
                DeValue::Boolean(b) => step.cache = Some(*b),
                other => self.err(format!("`cache` must be true or false, found {}", other.type_str()), span(c)),
            }
        }
        Some(step)
    }
}

impl Reader<'_> {
    /// A step's `params`, each with the places of everything nested in it.
    fn params(&mut self, p: &Spanned<DeValue<'_>>, what: &str, step: &mut StepConfig) {
        let Some(pt) = self.table(p, &format!("`params` of {what}")) else { return };
        for (k, x) in pt.iter() {
            if let Some(j) = self.json(x) {
                step.params.push((Located::new(k.get_ref().to_string(), span(k)), j));
                places(&mut vec![k.get_ref().to_string()], span(k), x, &mut step.param_places);
            }
        }
    }

    /// A step's `outputs`: names and types, or a list of names of files.
    fn outputs(&mut self, o: &Spanned<DeValue<'_>>, what: &str) -> Vec<(Located<String>, Located<String>)> {
        match o.get_ref() {
            // `outputs = ["report", "model"]` is shorthand for files.
            DeValue::Array(items) => items
                .iter()
                .filter_map(|x| self.string(x, "an output name"))
                .map(|n| {
                    let ty = Located::new("file".to_string(), n.span.clone());
                    (n, ty)
                })
                .collect(),
            _ => self.string_table(o, &format!("`outputs` of {what}")),
        }
    }

    fn retries(&mut self, r: &Spanned<DeValue<'_>>) -> Option<Located<i64>> {
        match r.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if (0..=100).contains(&n) => return Some(Located::new(n, span(r))),
                _ => self.err("`retries` must be between 0 and 100", span(r)),
            },
            other => self.err(format!("`retries` must be an integer, found {}", other.type_str()), span(r)),
        }
        None
    }

    /// The `[pipeline]` table: its name and description go into `cfg`.
    fn pipeline(&mut self, root: &DeTable<'_>, cfg: &mut PipelineConfig) {
        let Some(p) = root.get("pipeline") else {
            self.errors.push(
                Diagnostic::new("the pipeline file has no [pipeline] table", Some(0..0))
                    .with_help(Some("start the file with:\n[pipeline]\nname = \"my-pipeline\"".into())),
            );
            return;
        };
        let Some(t) = self.table(p, "[pipeline]") else { return };
        self.unknown_keys(t, PIPELINE_KEYS, "[pipeline]");
        match t.get("name") {
            Some(n) => cfg.name = self.string(n, "the pipeline's `name`"),
            None => self.err("[pipeline] has no `name`", span(p)),
        }
        if let Some(d) = t.get("description") {
            cfg.description = self.string(d, "`description`").map(|l| l.value);
        }
    }

    /// One entry of `[parameters]`: a value, or a table with `default` and
    /// `description`.
    fn parameter(
        &mut self,
        k: &Spanned<std::borrow::Cow<'_, str>>,
        v: &Spanned<DeValue<'_>>,
    ) -> Option<ParameterConfig> {
        let name = Located::new(k.get_ref().to_string(), span(k));
        let (default, description) = match v.get_ref() {
            DeValue::Table(pt) => {
                self.unknown_keys(pt, &["default", "description"], &format!("parameter `{}`", name.value));
                let description = pt.get("description").and_then(|d| self.string(d, "`description`")).map(|l| l.value);
                match pt.get("default") {
                    Some(d) => (self.json(d), description),
                    None => {
                        self.err(format!("parameter `{}` has no `default`", name.value), span(v));
                        (None, description)
                    }
                }
            }
            _ => (self.json(v), None),
        };
        default.map(|default| ParameterConfig { name, default, description })
    }

    /// The `[steps]` table, which must hold at least one step.
    fn steps(&mut self, s: Option<&Spanned<DeValue<'_>>>) -> Vec<StepConfig> {
        let Some(s) = s else {
            self.errors.push(
                Diagnostic::new("the pipeline has no steps", None)
                    .with_help(Some("add a step: [steps.ingest]\ncomponent = \"ingest\"".into())),
            );
            return Vec::new();
        };
        let Some(t) = self.table(s, "[steps]") else { return Vec::new() };
        let steps = t.iter().filter_map(|(k, v)| self.step(k, v)).collect();
        if t.is_empty() {
            self.err("the pipeline has no steps", span(s));
        }
        steps
    }
}

impl PipelineConfig {
    /// Reads the file leniently: syntax errors stop here (nothing else can be
    /// trusted), structural errors are collected and reading goes on.
    pub fn parse(source: &str, errors: &mut Vec<Diagnostic>) -> Option<PipelineConfig> {
        let root = parse_toml(source, errors)?;
        let mut r = Reader { errors };
        let root = root.get_ref();
        r.unknown_keys(root, TOP_KEYS, "the pipeline file");
        let mut cfg = PipelineConfig { name: None, description: None, parameters: Vec::new(), steps: Vec::new() };
        r.pipeline(root, &mut cfg);
        if let Some(ps) = root.get("parameters")
            && let Some(t) = r.table(ps, "[parameters]")
        {
            cfg.parameters = t.iter().filter_map(|(k, v)| r.parameter(k, v)).collect();
        }
        cfg.steps = r.steps(root.get("steps"));
        Some(cfg)
    }
}
