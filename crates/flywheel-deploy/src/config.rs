//! `DeploymentConfig`: the deployment file as the user wrote it, each
//! section's keys and values with their places, read leniently so that
//! every problem is reported at once (`compile.rs` checks the values).
//!
//! ```toml
//! [deployment]
//! name = "bike-sharing"
//! pipeline = "pipeline.toml"        # relative to this file
//!
//! [serving]
//! split = { production = 100 }
//!
//! [monitoring]
//! window = 500                       # requests, or a duration: "10m"
//! performance = { rmse = "<= 120" }
//!
//! [[trigger]]
//! on = "drift"
//! windows = 3
//!
//! [delivery]
//! canary = 10
//! hold = 300
//! ```

use flywheel_pipeline::Diagnostic;
use flywheel_pipeline::config::{Located, Reader, parse_toml, span};
use std::ops::Range;
use toml::de::{DeTable, DeValue};

/// One table of the file: where it is, and its keys with their values.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub span: Range<usize>,
    pub keys: Vec<(Located<String>, Located<serde_json::Value>)>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&Located<serde_json::Value>> {
        self.keys.iter().find(|(k, _)| k.value == key).map(|(_, v)| v)
    }
}

#[derive(Debug, Clone, Default)]
pub struct DeploymentConfig {
    pub deployment: Option<Section>,
    pub serving: Option<Section>,
    pub monitoring: Option<Section>,
    pub delivery: Option<Section>,
    pub triggers: Vec<Section>,
}

pub const TOP_KEYS: &[&str] = &["deployment", "serving", "monitoring", "trigger", "delivery"];

impl DeploymentConfig {
    /// Reads the file: a syntax error stops here; the rest is collected.
    pub fn parse(source: &str, errors: &mut Vec<Diagnostic>) -> Option<DeploymentConfig> {
        let root = parse_toml(source, errors)?;
        let mut r = Reader { errors };
        let root = root.get_ref();
        r.unknown_keys(root, TOP_KEYS, "the deployment file");
        let mut section = |name: &str| {
            let v = root.get(name)?;
            let t = r.table(v, &format!("[{name}]"))?;
            Some(read_section(&mut r, t, span(v)))
        };
        let mut cfg = DeploymentConfig {
            deployment: section("deployment"),
            serving: section("serving"),
            monitoring: section("monitoring"),
            delivery: section("delivery"),
            triggers: Vec::new(),
        };
        if let Some(v) = root.get("trigger") {
            match v.get_ref() {
                DeValue::Array(items) => {
                    for item in items {
                        if let Some(t) = r.table(item, "a [[trigger]]") {
                            cfg.triggers.push(read_section(&mut r, t, span(item)));
                        }
                    }
                }
                other => r.err(
                    format!("`trigger` must be a list of tables ([[trigger]]), found {}", other.type_str()),
                    span(v),
                ),
            }
        }
        Some(cfg)
    }
}

fn read_section(r: &mut Reader<'_>, t: &DeTable<'_>, at: Range<usize>) -> Section {
    let keys =
        t.iter().filter_map(|(k, v)| Some((Located::new(k.get_ref().to_string(), span(k)), r.json(v)?))).collect();
    Section { span: at, keys }
}
