//! Data schemas and anomalies.
//!
//! A schema is a TOML file a person curates and checks into git
//! (`flywheel schema infer` writes a first one). It says, per column: the
//! type, the minimum fraction of rows with a value, whether NaN is allowed,
//! the numeric range, the categories, distinct-count bounds, the longest
//! text, and in which environments (e.g. TRAINING, SERVING) the column
//! exists; and for the dataset, row-count bounds. [`check`] compares a
//! dataset's profile with it and lists every [`Anomaly`]; the catalogue of
//! kinds is [`KINDS`] (documented in `docs/anomalies.md`).

use crate::profile::{Checks, ColumnProfile, Quantiles, ValueType};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatasetRules {
    pub min_rows: Option<u64>,
    pub max_rows: Option<u64>,
    pub environments: Vec<String>,
    pub default_environment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRules {
    pub ty: ValueType,
    /// Minimum fraction of rows with a value (1.0 = never missing).
    pub min_presence: f64,
    pub nan_allowed: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub domain: Option<Vec<String>>,
    /// Fraction of values allowed outside the range or domain before it is an error.
    pub max_violation: f64,
    pub min_distinct: Option<u64>,
    pub max_distinct: Option<u64>,
    pub max_length: Option<u64>,
    /// Environments the column exists in; `None` = all.
    pub environments: Option<Vec<String>>,
}

impl ColumnRules {
    pub fn new(ty: ValueType) -> Self {
        Self {
            ty,
            min_presence: 1.0,
            nan_allowed: false,
            min: None,
            max: None,
            domain: None,
            max_violation: 0.0,
            min_distinct: None,
            max_distinct: None,
            max_length: None,
            environments: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    pub dataset: DatasetRules,
    pub columns: Vec<(String, ColumnRules)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
}

/// Every anomaly kind, its default severity and what it means.
pub const KINDS: &[(&str, Severity, &str)] = &[
    ("empty_dataset", Severity::Error, "the data has no rows"),
    ("row_count_below_min", Severity::Error, "fewer rows than `min_rows`"),
    ("row_count_above_max", Severity::Error, "more rows than `max_rows`"),
    ("missing_column", Severity::Error, "a column of the schema is not in the data (a warning if it may be absent)"),
    ("unexpected_column", Severity::Warning, "a column of the data is not in the schema"),
    (
        "unexpected_in_environment",
        Severity::Warning,
        "a column is present in an environment the schema excludes it from",
    ),
    (
        "type_mismatch",
        Severity::Error,
        "the column's type differs from the schema's (int where float is expected is fine)",
    ),
    ("column_entirely_missing", Severity::Error, "every value of a required column is missing"),
    ("presence_below_minimum", Severity::Error, "the share of rows with a value is below `min_presence`"),
    ("nan_not_allowed", Severity::Error, "NaN values where `nan_allowed = false`"),
    ("infinite_values", Severity::Warning, "±inf values in a numeric column"),
    ("out_of_range", Severity::Error, "values below `min` or above `max` (a warning within `max_violation`)"),
    ("unexpected_category", Severity::Error, "values outside `domain` (a warning within `max_violation`)"),
    ("too_many_distinct", Severity::Error, "more distinct values than `max_distinct`"),
    ("too_few_distinct", Severity::Warning, "fewer distinct values than `min_distinct`"),
    ("constant_column", Severity::Warning, "a single value where the schema expects a range or several categories"),
    ("text_too_long", Severity::Warning, "a text value longer than `max_length`"),
];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Anomaly {
    pub column: Option<String>,
    pub kind: &'static str,
    pub severity: Severity,
    pub count: u64,
    pub fraction: f64,
    pub example: Option<String>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{0}")]
    Invalid(String),
}

const COLUMN_KEYS: &[&str] = &[
    "type",
    "min_presence",
    "nan_allowed",
    "min",
    "max",
    "domain",
    "max_violation",
    "min_distinct",
    "max_distinct",
    "max_length",
    "environments",
];
const DATASET_KEYS: &[&str] = &["min_rows", "max_rows", "environments", "default_environment"];

fn parse_type(s: &str) -> Option<ValueType> {
    match s {
        "int" => Some(ValueType::Int),
        "float" => Some(ValueType::Float),
        "string" => Some(ValueType::String),
        "bool" => Some(ValueType::Bool),
        "timestamp" => Some(ValueType::Timestamp),
        _ => None,
    }
}

struct Reader<'a> {
    file: &'a str,
    source: &'a str,
    errors: Vec<String>,
}

impl Reader<'_> {
    fn err(&mut self, span: Range<usize>, msg: String, help: Option<String>) {
        let (line, col) = flywheel_core::line_col(self.source, span.start);
        let mut text = format!("{}:{line}:{col}: error: {msg}", self.file);
        if let Some(h) = help {
            let _ = write!(text, "\n    = help: {h}");
        }
        self.errors.push(text);
    }

    fn keys(&mut self, t: &DeTable<'_>, allowed: &[&str], what: &str) {
        for (k, _) in t.iter() {
            let key = k.get_ref().as_ref();
            if !allowed.contains(&key) {
                let help = flywheel_core::closest(key, allowed.iter().copied())
                    .map(|c| format!("did you mean `{c}`?"))
                    .or_else(|| Some(format!("allowed: {}", allowed.join(", "))));
                self.err(k.span(), format!("unknown key `{key}` in {what}"), help);
            }
        }
    }

    fn num(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<f64> {
        match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|x| x as f64),
            DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
            other => {
                self.err(v.span(), format!("`{key}` must be a number, found {}", other.type_str()), None);
                None
            }
        }
    }

    fn uint(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<u64> {
        match v.get_ref() {
            DeValue::Integer(i) => match u64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.err(v.span(), format!("`{key}` must be a whole number ≥ 0"), None);
                    None
                }
            },
            other => {
                self.err(v.span(), format!("`{key}` must be a whole number, found {}", other.type_str()), None);
                None
            }
        }
    }

    fn fraction(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<f64> {
        let x = self.num(v, key)?;
        if (0.0..=1.0).contains(&x) {
            Some(x)
        } else {
            self.err(v.span(), format!("`{key}` must be between 0 and 1"), None);
            None
        }
    }

    fn strings(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<Vec<String>> {
        match v.get_ref() {
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for x in a.iter() {
                    match x.get_ref() {
                        DeValue::String(s) => out.push(s.to_string()),
                        other => {
                            self.err(x.span(), format!("`{key}` must list strings, found {}", other.type_str()), None)
                        }
                    }
                }
                Some(out)
            }
            other => {
                self.err(v.span(), format!("`{key}` must be a list of strings, found {}", other.type_str()), None);
                None
            }
        }
    }
}

impl Reader<'_> {
    /// The `[dataset]` table's rules.
    fn dataset(&mut self, t: &DeTable<'_>) -> DatasetRules {
        self.keys(t, DATASET_KEYS, "[dataset]");
        let mut d = DatasetRules {
            min_rows: t.get("min_rows").and_then(|v| self.uint(v, "min_rows")),
            max_rows: t.get("max_rows").and_then(|v| self.uint(v, "max_rows")),
            environments: t.get("environments").and_then(|v| self.strings(v, "environments")).unwrap_or_default(),
            ..DatasetRules::default()
        };
        if let Some(v) = t.get("default_environment") {
            match v.get_ref() {
                DeValue::String(s) => d.default_environment = Some(s.to_string()),
                _ => self.err(v.span(), "`default_environment` must be a string".into(), None),
            }
        }
        d
    }

    /// A column's `type`; `None` (reported) when missing or unknown.
    fn column_type(&mut self, ct: &DeTable<'_>, name: &str, name_span: Range<usize>) -> Option<ValueType> {
        let Some(tv) = ct.get("type") else {
            self.err(name_span, format!("column `{name}` has no `type`"), None);
            return None;
        };
        let DeValue::String(s) = tv.get_ref() else {
            self.err(tv.span(), "`type` must be a string".into(), None);
            return None;
        };
        let ty = parse_type(s);
        if ty.is_none() {
            let help = flywheel_core::closest(s, ["int", "float", "string", "bool", "timestamp"])
                .map(|c| format!("did you mean `{c}`?"));
            self.err(tv.span(), format!("unknown type `{s}`; use int, float, string, bool or timestamp"), help);
        }
        ty
    }

    /// A column's rules besides its type; `envs` are the declared environments.
    fn column_rules(&mut self, ct: &DeTable<'_>, ty: ValueType, envs: &[String]) -> ColumnRules {
        let mut rules = ColumnRules::new(ty);
        if let Some(v) = ct.get("min_presence") {
            rules.min_presence = self.fraction(v, "min_presence").unwrap_or(1.0);
        }
        if let Some(v) = ct.get("nan_allowed") {
            match v.get_ref() {
                DeValue::Boolean(b) => rules.nan_allowed = *b,
                _ => self.err(v.span(), "`nan_allowed` must be true or false".into(), None),
            }
        }
        rules.min = ct.get("min").and_then(|v| self.num(v, "min"));
        rules.max = ct.get("max").and_then(|v| self.num(v, "max"));
        if let (Some(lo), Some(hi), Some(v)) = (rules.min, rules.max, ct.get("max"))
            && lo > hi
        {
            self.err(v.span(), format!("`max` ({hi}) is below `min` ({lo})"), None);
        }
        rules.domain = ct.get("domain").and_then(|v| self.strings(v, "domain"));
        if let Some(v) = ct.get("max_violation") {
            rules.max_violation = self.fraction(v, "max_violation").unwrap_or(0.0);
        }
        rules.min_distinct = ct.get("min_distinct").and_then(|v| self.uint(v, "min_distinct"));
        rules.max_distinct = ct.get("max_distinct").and_then(|v| self.uint(v, "max_distinct"));
        rules.max_length = ct.get("max_length").and_then(|v| self.uint(v, "max_length"));
        if let Some(v) = ct.get("environments") {
            rules.environments = Some(self.environments(v, envs));
        }
        rules
    }

    /// A column's environments, each of which must be declared in `[dataset]`.
    fn environments(&mut self, v: &Spanned<DeValue<'_>>, envs: &[String]) -> Vec<String> {
        let list = self.strings(v, "environments").unwrap_or_default();
        for e in &list {
            if !envs.contains(e) {
                let help = flywheel_core::closest(e, envs.iter().map(String::as_str))
                    .map(|c| format!("did you mean `{c}`?"))
                    .or_else(|| Some("declare it in [dataset] environments".into()));
                self.err(v.span(), format!("environment `{e}` is not declared"), help);
            }
        }
        list
    }
}

impl Schema {
    /// Parses a schema file, reporting every problem with line and column.
    pub fn parse(source: &str, file: &str) -> Result<Schema, SchemaError> {
        let mut r = Reader { file, source, errors: Vec::new() };
        let root = match DeTable::parse(source) {
            Ok(t) => t,
            Err(e) => {
                r.err(e.span().unwrap_or(0..0), format!("invalid TOML: {}", e.message().trim()), None);
                return Err(SchemaError::Invalid(r.errors.join("\n")));
            }
        };
        let root = root.get_ref();
        r.keys(root, &["dataset", "columns"], "the schema file");
        let mut schema = Schema::default();
        if let Some(d) = root.get("dataset") {
            match d.get_ref() {
                DeValue::Table(t) => schema.dataset = r.dataset(t),
                _ => r.err(d.span(), "[dataset] must be a table".into(), None),
            }
        }
        let envs = schema.dataset.environments.clone();
        match root.get("columns") {
            Some(c) => match c.get_ref() {
                DeValue::Table(t) => {
                    for (name, v) in t.iter() {
                        let name_s = name.get_ref().to_string();
                        let DeValue::Table(ct) = v.get_ref() else {
                            r.err(v.span(), format!("[columns.{name_s}] must be a table"), None);
                            continue;
                        };
                        r.keys(ct, COLUMN_KEYS, &format!("column `{name_s}`"));
                        let Some(ty) = r.column_type(ct, &name_s, name.span()) else { continue };
                        let rules = r.column_rules(ct, ty, &envs);
                        schema.columns.push((name_s, rules));
                    }
                }
                _ => r.err(c.span(), "[columns] must be a table".into(), None),
            },
            None => r.err(0..0, "the schema has no [columns]".into(), None),
        }
        if r.errors.is_empty() { Ok(schema) } else { Err(SchemaError::Invalid(r.errors.join("\n"))) }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnRules> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, r)| r)
    }

    /// Infers a schema from a profile: observed types, presence, NaN,
    /// ranges; categories for text columns with at most `max_categories`
    /// distinct values (all of them seen exactly).
    pub fn infer(rows: u64, columns: &[(String, ColumnProfile)], max_categories: usize) -> Schema {
        let mut out = Vec::new();
        for (name, p) in columns {
            let mut rules = ColumnRules::new(p.ty);
            let present = p.count() as f64 / rows.max(1) as f64;
            // Round down to 2 decimals so that a little less presence is not an anomaly.
            rules.min_presence = if p.missing == 0 { 1.0 } else { (present * 100.0).floor() / 100.0 };
            rules.nan_allowed = p.nan > 0;
            if matches!(p.ty, ValueType::Int | ValueType::Float) && p.moments.count > 0 {
                rules.min = Some(p.moments.min);
                rules.max = Some(p.moments.max);
            } else if let (Some(d), true) = (p.texts.distinct_if_exact(), p.count() > 0)
                && p.ty != ValueType::Timestamp
                && d <= max_categories
            {
                let mut domain: Vec<String> = p.texts.top(d).into_iter().map(|(v, _)| v).collect();
                domain.sort();
                rules.domain = Some(domain);
            }
            out.push((name.clone(), rules));
        }
        Schema { dataset: DatasetRules { min_rows: Some(1), ..Default::default() }, columns: out }
    }

    /// Infers a schema from the JSON of a `statistics` artifact (as
    /// [`crate::profile::ColumnProfile::to_json`] writes it). Numeric
    /// ranges are widened by `range_margin` × their span on each side, and
    /// every column tolerates `max_violation` of its values outside range or
    /// domain: an inferred schema is a starting point, not a contract.
    pub fn infer_from_statistics(
        stats: &serde_json::Value,
        max_categories: usize,
        range_margin: f64,
        max_violation: f64,
    ) -> Schema {
        let rows = stats["rows"].as_u64().unwrap_or(0);
        let mut columns = Vec::new();
        let empty = serde_json::Map::new();
        for (name, c) in stats["columns"].as_object().unwrap_or(&empty) {
            let ty = match c["type"].as_str() {
                Some("int") => ValueType::Int,
                Some("float") => ValueType::Float,
                Some("bool") => ValueType::Bool,
                Some("timestamp") => ValueType::Timestamp,
                _ => ValueType::String,
            };
            let mut r = ColumnRules::new(ty);
            let missing = c["missing"].as_u64().unwrap_or(0);
            let present = rows.saturating_sub(missing) as f64 / rows.max(1) as f64;
            r.min_presence = if missing == 0 { 1.0 } else { (present * 100.0).floor() / 100.0 };
            r.nan_allowed = c["nan"].as_u64().unwrap_or(0) > 0;
            r.max_violation = max_violation;
            // No range for times: later data is out of any range by design.
            if ty != ValueType::Timestamp
                && let (Some(lo), Some(hi)) = (c["min"].as_f64(), c["max"].as_f64())
            {
                let pad = (hi - lo) * range_margin;
                let (lo, hi) =
                    if ty == ValueType::Int { ((lo - pad).floor(), (hi + pad).ceil()) } else { (lo - pad, hi + pad) };
                r.min = Some(lo);
                r.max = Some(hi);
            } else if matches!(ty, ValueType::String | ValueType::Bool)
                && c["distinct_exact"] != false
                && let (Some(d), Some(top)) = (c["distinct"].as_u64(), c["top"].as_array())
                && d as usize <= max_categories
                && top.len() as u64 == d
                && d > 0
            {
                let mut domain: Vec<String> =
                    top.iter().filter_map(|t| t["value"].as_str().map(str::to_string)).collect();
                domain.sort();
                r.domain = Some(domain);
            }
            columns.push((name.clone(), r));
        }
        Schema { dataset: DatasetRules { min_rows: Some(1), ..Default::default() }, columns }
    }

    /// The schema as TOML, with a header saying how to curate it.
    pub fn to_toml(&self, header: &str) -> String {
        let mut s = String::new();
        for line in header.lines() {
            let _ = writeln!(s, "# {line}");
        }
        let _ = writeln!(
            s,
            "#\n# Curate it and commit it: widen ranges, add categories, relax `min_presence`,\n# allow a share of values outside range or domain with `max_violation`, or\n# declare environments (e.g. a label only in TRAINING). Keys per column: type,\n# min_presence, nan_allowed, min, max, domain, max_violation, min_distinct,\n# max_distinct, max_length, environments.\n"
        );
        let _ = writeln!(s, "[dataset]");
        if let Some(n) = self.dataset.min_rows {
            let _ = writeln!(s, "min_rows = {n}");
        }
        if let Some(n) = self.dataset.max_rows {
            let _ = writeln!(s, "max_rows = {n}");
        }
        if !self.dataset.environments.is_empty() {
            let _ = writeln!(s, "environments = {}", list(&self.dataset.environments));
        }
        for (name, r) in &self.columns {
            let _ = writeln!(s, "\n[columns.{}]", key(name));
            let _ = writeln!(s, "type = \"{}\"", r.ty.as_str());
            let _ = writeln!(s, "min_presence = {}", float(r.min_presence));
            if r.nan_allowed {
                let _ = writeln!(s, "nan_allowed = true");
            }
            if let Some(x) = r.min {
                let _ = writeln!(s, "min = {}", float(x));
            }
            if let Some(x) = r.max {
                let _ = writeln!(s, "max = {}", float(x));
            }
            if let Some(d) = &r.domain {
                let _ = writeln!(s, "domain = {}", list(d));
            }
            if r.max_violation > 0.0 {
                let _ = writeln!(s, "max_violation = {}", float(r.max_violation));
            }
            for (k, v) in
                [("min_distinct", r.min_distinct), ("max_distinct", r.max_distinct), ("max_length", r.max_length)]
            {
                if let Some(v) = v {
                    let _ = writeln!(s, "{k} = {v}");
                }
            }
            if let Some(e) = &r.environments {
                let _ = writeln!(s, "environments = {}", list(e));
            }
        }
        s
    }
}

fn float(x: f64) -> String {
    // TOML floats need a decimal point or exponent.
    let t = format!("{x:?}");
    if t.contains(['.', 'e', 'E']) || t.contains("inf") || t.contains("nan") { t } else { format!("{t}.0") }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn key(name: &str) -> String {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        name.to_string()
    } else {
        quote(name)
    }
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|i| quote(i)).collect::<Vec<_>>().join(", "))
}

/// The range and domain checks a profile counts for this schema.
pub fn checks_for(rules: &ColumnRules) -> crate::profile::Checks {
    crate::profile::Checks {
        min: rules.min,
        max: rules.max,
        domain: rules.domain.as_ref().map(|d| d.iter().cloned().collect()),
        ..Default::default()
    }
}

fn anomaly(
    column: Option<&str>,
    kind: &'static str,
    severity: Severity,
    count: u64,
    of: u64,
    example: Option<String>,
    message: String,
) -> Anomaly {
    Anomaly {
        column: column.map(str::to_string),
        kind,
        severity,
        count,
        fraction: if of == 0 { 0.0 } else { count as f64 / of as f64 },
        example,
        message,
    }
}

/// Every anomaly of a profiled dataset against the schema, in `environment`.
pub fn check(
    schema: &Schema,
    rows: u64,
    columns: &[(String, ColumnProfile)],
    environment: Option<&str>,
) -> Vec<Anomaly> {
    let mut out = Vec::new();
    dataset_anomalies(&schema.dataset, rows, &mut out);
    let in_env = |r: &ColumnRules| match (&r.environments, environment) {
        (Some(envs), Some(e)) => envs.iter().any(|x| x == e),
        _ => true,
    };
    for (name, rules) in &schema.columns {
        let col = Some(name.as_str());
        let Some((_, p)) = columns.iter().find(|(n, _)| n == name) else {
            if in_env(rules) {
                let sev = if rules.min_presence > 0.0 { Severity::Error } else { Severity::Warning };
                out.push(anomaly(col, "missing_column", sev, rows, rows, None, "the column is not in the data".into()));
            }
            continue;
        };
        if !in_env(rules) {
            out.push(anomaly(
                col,
                "unexpected_in_environment",
                Severity::Warning,
                p.count(),
                rows,
                None,
                format!("the schema excludes this column from {}", environment.unwrap_or("")),
            ));
            continue;
        }
        column_anomalies(col, rules, p, rows, &mut out);
    }
    let known: BTreeSet<&str> = schema.columns.iter().map(|(n, _)| n.as_str()).collect();
    for (name, p) in columns {
        if !known.contains(name.as_str()) {
            out.push(anomaly(
                Some(name),
                "unexpected_column",
                Severity::Warning,
                p.count(),
                rows,
                None,
                "the column is not in the schema".into(),
            ));
        }
    }
    out
}

/// The row count against the dataset's rules.
fn dataset_anomalies(d: &DatasetRules, rows: u64, out: &mut Vec<Anomaly>) {
    if rows == 0 {
        out.push(anomaly(None, "empty_dataset", Severity::Error, 0, 0, None, "the data has no rows".into()));
    }
    if let Some(min) = d.min_rows
        && rows < min
    {
        out.push(anomaly(
            None,
            "row_count_below_min",
            Severity::Error,
            rows,
            min,
            None,
            format!("{rows} rows, fewer than min_rows = {min}"),
        ));
    }
    if let Some(max) = d.max_rows
        && rows > max
    {
        out.push(anomaly(
            None,
            "row_count_above_max",
            Severity::Error,
            rows,
            max,
            None,
            format!("{rows} rows, more than max_rows = {max}"),
        ));
    }
}

/// One column of the data, present in this environment, against its rules.
/// A wrong type or a column with no value at all is the one anomaly
/// reported: every other check would only repeat it.
fn column_anomalies(col: Option<&str>, rules: &ColumnRules, p: &ColumnProfile, rows: u64, out: &mut Vec<Anomaly>) {
    // Ints are floats; times are text in the file (schemas written
    // before times were inferred say `string`).
    let numeric_ok = (rules.ty == ValueType::Float && p.ty == ValueType::Int)
        || (rules.ty == ValueType::String && p.ty == ValueType::Timestamp);
    if p.ty != rules.ty && !numeric_ok {
        out.push(anomaly(
            col,
            "type_mismatch",
            Severity::Error,
            p.count(),
            rows,
            None,
            format!("expected {}, found {}", rules.ty.as_str(), p.ty.as_str()),
        ));
        return;
    }
    let present = p.count();
    if present == 0 && rows > 0 && rules.min_presence > 0.0 {
        out.push(anomaly(
            col,
            "column_entirely_missing",
            Severity::Error,
            rows,
            rows,
            None,
            "every value is missing".into(),
        ));
        return;
    }
    value_anomalies(col, rules, p, rows, out);
    if let Some(c) = &p.checks {
        rule_violations(col, rules, c, present, out);
    }
    distinct_anomalies(col, rules, p, rows, out);
    if let Some(max) = rules.max_length
        && p.lengths.count > 0
        && p.lengths.max > max as f64
    {
        out.push(anomaly(
            col,
            "text_too_long",
            Severity::Warning,
            1,
            present,
            None,
            format!("a value has {} characters, more than max_length = {max}", p.lengths.max),
        ));
    }
}

/// Presence below the minimum, NaN where not allowed, infinities.
fn value_anomalies(col: Option<&str>, rules: &ColumnRules, p: &ColumnProfile, rows: u64, out: &mut Vec<Anomaly>) {
    let present = p.count();
    let presence = present as f64 / rows.max(1) as f64;
    if presence < rules.min_presence {
        out.push(anomaly(
            col,
            "presence_below_minimum",
            Severity::Error,
            p.missing,
            rows,
            None,
            format!(
                "{:.2}% of rows have a value; the schema wants at least {:.2}%",
                100.0 * presence,
                100.0 * rules.min_presence
            ),
        ));
    }
    if p.nan > 0 && !rules.nan_allowed {
        out.push(anomaly(col, "nan_not_allowed", Severity::Error, p.nan, rows, None, format!("{} NaN values", p.nan)));
    }
    if p.inf > 0 {
        out.push(anomaly(
            col,
            "infinite_values",
            Severity::Warning,
            p.inf,
            rows,
            None,
            format!("{} infinite values", p.inf),
        ));
    }
}

/// Values outside the declared range or domain: an error when more than
/// `max_violation` of the present values are, else a warning.
fn rule_violations(col: Option<&str>, rules: &ColumnRules, c: &Checks, present: u64, out: &mut Vec<Anomaly>) {
    let outside = c.below + c.above;
    if outside > 0 {
        let frac = outside as f64 / present.max(1) as f64;
        let sev = if frac > rules.max_violation { Severity::Error } else { Severity::Warning };
        let example = c.example_below.or(c.example_above).map(|x| x.to_string());
        out.push(anomaly(
            col,
            "out_of_range",
            sev,
            outside,
            present,
            example.clone(),
            format!(
                "{outside} of {present} values ({:.2}%) outside [{}, {}]: {} below, {} above (e.g. {})",
                100.0 * frac,
                rules.min.map_or("-inf".into(), |x| x.to_string()),
                rules.max.map_or("inf".into(), |x| x.to_string()),
                c.below,
                c.above,
                example.unwrap_or_default()
            ),
        ));
    }
    if c.outside_domain > 0 {
        let frac = c.outside_domain as f64 / present.max(1) as f64;
        let sev = if frac > rules.max_violation { Severity::Error } else { Severity::Warning };
        let values: Vec<&String> = c.outside_domain_distinct.iter().take(5).collect();
        out.push(anomaly(
            col,
            "unexpected_category",
            sev,
            c.outside_domain,
            present,
            values.first().map(|v| v.to_string()),
            format!(
                "{} of {present} values ({:.2}%) not in the domain: {}{}",
                c.outside_domain,
                100.0 * frac,
                values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", "),
                if c.outside_domain_distinct.len() > 5 { ", …" } else { "" }
            ),
        ));
    }
}

/// The number of distinct values against its bounds, and a constant column
/// where the rules expect more than one value.
fn distinct_anomalies(col: Option<&str>, rules: &ColumnRules, p: &ColumnProfile, rows: u64, out: &mut Vec<Anomaly>) {
    let present = p.count();
    let (distinct, _) = p.distinct();
    if let Some(max) = rules.max_distinct
        && distinct > max
    {
        out.push(anomaly(
            col,
            "too_many_distinct",
            Severity::Error,
            distinct,
            max,
            None,
            format!("{distinct} distinct values, more than max_distinct = {max}"),
        ));
    }
    if let Some(min) = rules.min_distinct
        && distinct < min
    {
        out.push(anomaly(
            col,
            "too_few_distinct",
            Severity::Warning,
            distinct,
            min,
            None,
            format!("{distinct} distinct values, fewer than min_distinct = {min}"),
        ));
    }
    let expects_variety =
        rules.min.zip(rules.max).is_some_and(|(a, b)| a < b) || rules.domain.as_ref().is_some_and(|d| d.len() > 1);
    if distinct == 1 && present > 1 && expects_variety {
        let value = match (&p.quantiles, p.ty) {
            (Quantiles::Exact(v), _) if !v.is_empty() => Some(v[0].to_string()),
            _ => p.texts.top(1).first().map(|(v, _)| v.clone()),
        };
        out.push(anomaly(
            col,
            "constant_column",
            Severity::Warning,
            present,
            rows,
            value.clone(),
            format!("every value is the same ({})", value.unwrap_or_default()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(
        ty: ValueType,
        rules: Option<&ColumnRules>,
        numbers: &[f64],
        texts: &[&str],
        missing: u64,
    ) -> ColumnProfile {
        let mut p = ColumnProfile::new(ty);
        p.checks = rules.map(checks_for);
        numbers.iter().for_each(|&x| p.add_f64(x));
        texts.iter().for_each(|s| p.add_str(s));
        p.add_missing(missing);
        p
    }

    fn kinds(a: &[Anomaly]) -> Vec<(&str, &str, Severity)> {
        a.iter().map(|x| (x.column.as_deref().unwrap_or("-"), x.kind, x.severity)).collect()
    }

    #[test]
    fn every_kind_in_the_catalogue_can_be_raised() {
        let src = r#"
[dataset]
min_rows = 10
max_rows = 11
environments = ["TRAINING", "SERVING"]

[columns.age]
type = "int"
min = 0
max = 100
min_distinct = 5
max_violation = 0.1

[columns.color]
type = "string"
domain = ["blue", "red"]
max_distinct = 2
max_length = 4

[columns.score]
type = "float"

[columns.gone]
type = "string"

[columns.name]
type = "int"

[columns.empty]
type = "float"

[columns.part]
type = "float"
min_presence = 0.9
min = 0
max = 10

[columns.label]
type = "string"
environments = ["TRAINING"]
"#;
        let s = Schema::parse(src, "s.toml").unwrap();
        let r = |n: &str| s.column(n).unwrap();
        let cols = vec![
            (
                "age".to_string(),
                profile(
                    ValueType::Int,
                    Some(r("age")),
                    &[5.0, 130.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0],
                    &[],
                    0,
                ),
            ),
            (
                "color".to_string(),
                profile(
                    ValueType::String,
                    Some(r("color")),
                    &[],
                    &["red", "green", "violet", "blue", "red", "red", "red", "red", "red", "red", "red", "red"],
                    0,
                ),
            ),
            (
                "score".to_string(),
                profile(
                    ValueType::Float,
                    None,
                    &[1.0, f64::NAN, f64::INFINITY, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
                    &[],
                    0,
                ),
            ),
            ("name".to_string(), profile(ValueType::String, None, &[], &["a"; 12], 0)),
            ("empty".to_string(), profile(ValueType::Float, None, &[], &[], 12)),
            ("part".to_string(), profile(ValueType::Float, Some(r("part")), &[3.0; 6], &[], 6)),
            ("label".to_string(), profile(ValueType::String, None, &[], &["x"; 12], 0)),
            ("extra".to_string(), profile(ValueType::Int, None, &[1.0; 12], &[], 0)),
        ];
        let found = check(&s, 12, &cols, Some("SERVING"));
        let mut seen: BTreeSet<&str> = found.iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds(&found),
            [
                ("-", "row_count_above_max", Severity::Error),
                ("age", "out_of_range", Severity::Warning),
                ("color", "unexpected_category", Severity::Error),
                ("color", "too_many_distinct", Severity::Error),
                ("color", "text_too_long", Severity::Warning),
                ("score", "nan_not_allowed", Severity::Error),
                ("score", "infinite_values", Severity::Warning),
                ("gone", "missing_column", Severity::Error),
                ("name", "type_mismatch", Severity::Error),
                ("empty", "column_entirely_missing", Severity::Error),
                ("part", "presence_below_minimum", Severity::Error),
                ("part", "constant_column", Severity::Warning),
                ("label", "unexpected_in_environment", Severity::Warning),
                ("extra", "unexpected_column", Severity::Warning),
            ]
        );
        assert_eq!(found[2].message, "2 of 12 values (16.67%) not in the domain: `green`, `violet`");
        // The rest of the catalogue: an empty dataset, too few rows, too few distinct values.
        let few = vec![("age".to_string(), profile(ValueType::Int, Some(r("age")), &[1.0, 1.0], &[], 0))];
        let more = check(&s, 0, &[], None);
        seen.extend(more.iter().map(|a| a.kind));
        seen.extend(check(&s, 2, &few, Some("TRAINING")).iter().map(|a| a.kind));
        let all: BTreeSet<&str> = KINDS.iter().map(|k| k.0).collect();
        assert_eq!(seen, all, "kinds never raised: {:?}", all.difference(&seen).collect::<Vec<_>>());
    }

    #[test]
    fn inferred_schema_round_trips_through_toml_and_accepts_its_own_data() {
        let cols = vec![
            ("n".to_string(), profile(ValueType::Float, None, &[1.5, 2.0, 3.25], &[], 1)),
            ("c".to_string(), profile(ValueType::String, None, &[], &["x", "y \"quoted\"", "x"], 1)),
            ("odd name".to_string(), profile(ValueType::Int, None, &[1.0, 2.0, 3.0, 4.0], &[], 0)),
        ];
        let s = Schema::infer(4, &cols, 50);
        assert_eq!(s.column("n").unwrap().min_presence, 0.75);
        assert_eq!(s.column("c").unwrap().domain.as_deref(), Some(&["x".to_string(), "y \"quoted\"".to_string()][..]));
        let text = s.to_toml("test");
        let back = Schema::parse(&text, "s.toml").unwrap();
        assert_eq!(back, s);
        let with_checks: Vec<(String, ColumnProfile)> = vec![
            ("n".to_string(), profile(ValueType::Float, s.column("n"), &[1.5, 2.0, 3.25], &[], 1)),
            ("c".to_string(), profile(ValueType::String, s.column("c"), &[], &["x", "y \"quoted\"", "x"], 1)),
            ("odd name".to_string(), profile(ValueType::Int, s.column("odd name"), &[1.0, 2.0, 3.0, 4.0], &[], 0)),
        ];
        assert_eq!(check(&s, 4, &with_checks, None), vec![]);
    }

    #[test]
    fn schema_file_mistakes_are_located_with_suggestions() {
        let src = "[dataset]\nmin_rows = -1\nenvironments = [\"TRAINING\"]\n\n[columns.a]\ntype = \"integer\"\n\n[columns.b]\ntype = \"int\"\nmin_presense = 0.5\nmax_violation = 2\nenvironments = [\"TRAINNG\"]\n";
        let e = Schema::parse(src, "s.toml").unwrap_err().to_string();
        let lines: Vec<&str> = e.lines().filter(|l| !l.starts_with("    =")).collect();
        assert_eq!(
            lines,
            [
                "s.toml:2:12: error: `min_rows` must be a whole number ≥ 0",
                "s.toml:6:8: error: unknown type `integer`; use int, float, string, bool or timestamp",
                "s.toml:10:1: error: unknown key `min_presense` in column `b`",
                "s.toml:11:17: error: `max_violation` must be between 0 and 1",
                "s.toml:12:16: error: environment `TRAINNG` is not declared",
            ]
        );
        assert!(e.contains("did you mean `min_presence`?"), "{e}");
        assert!(e.contains("did you mean `TRAINING`?"), "{e}");
        assert!(e.contains("did you mean `int`?"), "{e}");
    }
}
