//! Typed component specs: what a component accepts and produces.
//!
//! The pipeline compiler checks a step against its component's spec before
//! anything runs; the launcher uses the same spec to know which outputs to
//! collect. Components never parse their own step configuration.

use serde::Serialize;
use std::fmt;

/// The kind of an artifact. An input port accepts an artifact only when the
/// types match (or the port accepts [`ArtifactType::Any`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactType {
    /// A table, stored as Parquet.
    Dataset,
    /// Per-column statistics (JSON).
    Statistics,
    /// A data schema (JSON).
    Schema,
    /// The anomalies found by validation (JSON).
    ValidationReport,
    /// A trained model in Flywheel's own format (JSON, never executable code).
    Model,
    /// Evaluation metrics (JSON).
    Metrics,
    /// A record that a model version was registered.
    PushedModel,
    /// Whether a model passed model validation, check by check (JSON).
    Blessing,
    /// Whether a model passed infra validation on the real server: answers
    /// equal to in-process predictions, load-test figures within targets (JSON).
    InfraBlessing,
    /// Chosen hyperparameters (what `tune` hands to `train`).
    Hyperparameters,
    /// Any file, e.g. what a `command` step wrote.
    File,
    /// Accepts any artifact type (only valid on inputs).
    Any,
}

impl ArtifactType {
    pub const NAMED: [ArtifactType; 11] = [
        ArtifactType::Dataset,
        ArtifactType::Statistics,
        ArtifactType::Schema,
        ArtifactType::ValidationReport,
        ArtifactType::Model,
        ArtifactType::Metrics,
        ArtifactType::PushedModel,
        ArtifactType::Blessing,
        ArtifactType::InfraBlessing,
        ArtifactType::Hyperparameters,
        ArtifactType::File,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactType::Dataset => "dataset",
            ArtifactType::Statistics => "statistics",
            ArtifactType::Schema => "schema",
            ArtifactType::ValidationReport => "validation_report",
            ArtifactType::Model => "model",
            ArtifactType::Metrics => "metrics",
            ArtifactType::PushedModel => "pushed_model",
            ArtifactType::Blessing => "blessing",
            ArtifactType::InfraBlessing => "infra_blessing",
            ArtifactType::Hyperparameters => "hyperparameters",
            ArtifactType::File => "file",
            ArtifactType::Any => "any",
        }
    }

    pub fn parse(s: &str) -> Option<ArtifactType> {
        Self::NAMED.into_iter().chain([ArtifactType::Any]).find(|t| t.as_str() == s)
    }

    /// Whether an artifact of type `self` may feed a port declared as `port`.
    pub fn fits(self, port: ArtifactType) -> bool {
        port == ArtifactType::Any || self == port
    }
}

impl fmt::Display for ArtifactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a component parameter, checked at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    /// A file path; relative paths are resolved against the pipeline file's folder.
    Path,
    Int,
    /// A number; integers are accepted.
    Float,
    Bool,
    StringList,
    /// A table of string keys to strings (e.g. column name → type).
    StringMap,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
}

impl ParamType {
    pub fn describe(&self) -> String {
        match self {
            ParamType::String => "a string".into(),
            ParamType::Path => "a path (string)".into(),
            ParamType::Int => "an integer".into(),
            ParamType::Float => "a number".into(),
            ParamType::Bool => "a boolean".into(),
            ParamType::StringList => "a list of strings".into(),
            ParamType::StringMap => "a table of strings".into(),
            ParamType::Enum(options) => format!("one of {}", quoted_list(options)),
        }
    }

    /// Checks a JSON value against this type; `Err` explains the mismatch.
    pub fn check(&self, value: &serde_json::Value) -> Result<(), String> {
        use serde_json::Value as J;
        let ok = match (self, value) {
            (ParamType::String | ParamType::Path, J::String(_)) => true,
            (ParamType::Int, J::Number(n)) => n.is_i64(),
            (ParamType::Float, J::Number(_)) => true,
            (ParamType::Bool, J::Bool(_)) => true,
            (ParamType::StringList, J::Array(items)) => items.iter().all(|i| i.is_string()),
            (ParamType::StringMap, J::Object(map)) => map.values().all(|v| v.is_string()),
            (ParamType::Enum(options), J::String(s)) => {
                if options.contains(&s.as_str()) {
                    true
                } else {
                    return Err(format!("`{s}` is not {}", self.describe()));
                }
            }
            _ => false,
        };
        if ok { Ok(()) } else { Err(format!("expected {}, found {}", self.describe(), json_kind(value))) }
    }
}

impl ParamType {
    /// A value of this type that stands in for a parameter left out (the
    /// first option of an enum, else the emptiest value).
    pub fn placeholder(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            ParamType::String | ParamType::Path => json!(""),
            ParamType::Int => json!(1),
            ParamType::Float => json!(1.0),
            ParamType::Bool => json!(false),
            ParamType::StringList => json!([]),
            ParamType::StringMap => json!({}),
            ParamType::Enum(options) => json!(options.first().copied().unwrap_or_default()),
        }
    }

    /// Values with whether this type accepts them: what a parameter struct
    /// must accept and refuse alike (see `params::disagreements`).
    pub fn samples(&self) -> Vec<(serde_json::Value, bool)> {
        use serde_json::json;
        let mut out = match self {
            ParamType::String | ParamType::Path => vec![(json!("x"), true), (json!(1), false)],
            ParamType::Int => vec![(json!(1), true), (json!(1.5), false)],
            ParamType::Float => vec![(json!(0.5), true), (json!(1), true)],
            ParamType::Bool => vec![(json!(true), true)],
            ParamType::StringList => vec![(json!(["x"]), true), (json!([1]), false)],
            ParamType::StringMap => vec![(json!({ "k": "v" }), true), (json!({ "k": 1 }), false)],
            ParamType::Enum(options) => options.iter().map(|o| (json!(o), true)).collect(),
        };
        if !matches!(self, ParamType::String | ParamType::Path | ParamType::Enum(_)) {
            out.push((json!("x"), false));
        } else {
            out.push((json!(true), false));
        }
        out
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "nothing",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        serde_json::Value::Number(_) => "a float",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "a table",
    }
}

pub fn quoted_list(items: &[&str]) -> String {
    items.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    pub doc: &'static str,
}

#[derive(Debug, Clone)]
pub struct PortSpec {
    pub name: &'static str,
    pub ty: ArtifactType,
    pub doc: &'static str,
    /// An optional input may be left unconnected, or connected to a
    /// resolved reference (`@model:NAME/INPUT`) that finds nothing yet.
    pub optional: bool,
}

/// A problem a component finds in its parameters before anything runs
/// (see `Component::check_params`). The compiler reports it at the place
/// `path` was written in the pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamProblem {
    /// The parameter, then keys of nested tables or indices of lists:
    /// `["thresholds", "accuracy"]`, `["slices", "1"]`.
    pub path: Vec<String>,
    /// The problem is the key itself (an unknown metric in a table), not its value.
    pub at_key: bool,
    pub message: String,
    pub help: Option<String>,
}

impl ParamProblem {
    /// A problem with the value at `path`.
    pub fn value(path: &[&str], message: impl Into<String>) -> Self {
        Self { path: path.iter().map(|p| p.to_string()).collect(), at_key: false, message: message.into(), help: None }
    }

    /// A problem with the key at `path` (the last element).
    pub fn key(path: &[&str], message: impl Into<String>) -> Self {
        Self { at_key: true, ..Self::value(path, message) }
    }

    /// Adds a help line; an empty one is left out (e.g. no "did you mean").
    pub fn help(mut self, help: impl Into<String>) -> Self {
        let help = help.into();
        self.help = (!help.is_empty()).then_some(help);
        self
    }
}

/// Everything the compiler and launcher need to know about a component.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    pub name: &'static str,
    /// Part of every cache key: bump it whenever the executor's output for the
    /// same inputs and parameters may change.
    pub version: &'static str,
    pub description: &'static str,
    pub params: &'static [ParamSpec],
    pub inputs: &'static [PortSpec],
    pub outputs: &'static [PortSpec],
    /// When true (the `command` component), the step declares its own inputs
    /// of any type and its own outputs, of type `file` unless it says otherwise.
    pub dynamic_ports: bool,
}

impl ComponentSpec {
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
    pub fn input(&self, name: &str) -> Option<&PortSpec> {
        self.inputs.iter().find(|p| p.name == name)
    }
    pub fn output(&self, name: &str) -> Option<&PortSpec> {
        self.outputs.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn param_types_accept_and_reject() {
        assert!(ParamType::Float.check(&json!(3)).is_ok());
        assert!(ParamType::Int.check(&json!(3.5)).is_err());
        assert!(ParamType::StringList.check(&json!(["a", 1])).is_err());
        let e = ParamType::Enum(&["linear", "logistic"]).check(&json!("lin")).unwrap_err();
        assert_eq!(e, "`lin` is not one of `linear`, `logistic`");
        assert_eq!(ParamType::Bool.check(&json!("yes")).unwrap_err(), "expected a boolean, found a string");
    }

    #[test]
    fn artifact_types_round_trip() {
        for t in ArtifactType::NAMED {
            assert_eq!(ArtifactType::parse(t.as_str()), Some(t));
        }
        assert!(ArtifactType::Dataset.fits(ArtifactType::Any));
        assert!(!ArtifactType::Model.fits(ArtifactType::Dataset));
    }
}
