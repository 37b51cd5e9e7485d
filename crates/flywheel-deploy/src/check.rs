//! Typed reads of a section's values, each refusal a diagnostic at the
//! value (or the section, for a missing key), reading going on after it.

use crate::config::Section;
use crate::model::Span;
use flywheel_pipeline::Diagnostic;
use flywheel_pipeline::config::Located;
use flywheel_pipeline::diagnostic::did_you_mean;
use serde_json::Value as Json;
use std::time::Duration;

pub struct Check<'a> {
    pub errors: &'a mut Vec<Diagnostic>,
}

impl Check<'_> {
    pub fn err(&mut self, message: impl Into<String>, at: &std::ops::Range<usize>, help: Option<String>) {
        self.errors.push(Diagnostic::new(message, Some(at.clone())).with_help(help));
    }

    /// Every key of `s` must be one of `allowed`.
    pub fn keys(&mut self, s: &Section, allowed: &[&str], what: &str) {
        for (k, _) in &s.keys {
            if !allowed.contains(&k.value.as_str()) {
                let help = did_you_mean(&k.value, allowed.iter().copied())
                    .or_else(|| Some(format!("{what} takes: {}", allowed.join(", "))));
                self.err(format!("unknown key `{}` in {what}", k.value), &k.span, help);
            }
        }
    }

    pub fn string(&mut self, s: &Section, key: &str) -> Option<Located<String>> {
        let v = s.get(key)?;
        match &v.value {
            Json::String(text) => Some(Located::new(text.clone(), v.span.clone())),
            other => {
                self.err(format!("`{key}` must be a string, found {}", kind(other)), &v.span, None);
                None
            }
        }
    }

    /// A number within `lo..=hi`.
    pub fn number(&mut self, s: &Section, key: &str, lo: f64, hi: f64, meaning: &str) -> Option<f64> {
        let v = s.get(key)?;
        match v.value.as_f64() {
            Some(x) if (lo..=hi).contains(&x) => Some(x),
            _ => {
                self.err(format!("`{key}` must be {meaning}, found {}", v.value), &v.span, None);
                None
            }
        }
    }

    /// A whole number within `lo..=hi`.
    pub fn integer(&mut self, s: &Section, key: &str, lo: u64, hi: u64, meaning: &str) -> Option<u64> {
        let v = s.get(key)?;
        match v.value.as_u64() {
            Some(n) if (lo..=hi).contains(&n) => Some(n),
            _ => {
                self.err(format!("`{key}` must be {meaning}, found {}", v.value), &v.span, None);
                None
            }
        }
    }

    pub fn duration(&mut self, s: &Section, key: &str) -> Option<Duration> {
        let v = s.get(key)?;
        match v.value.as_str().and_then(flywheel_pipeline::compile::parse_duration) {
            Some(d) => Some(d),
            None => {
                let help = Some("write a duration such as \"30s\", \"10m\" or \"2h\"".to_string());
                self.err(format!("`{key}` must be a duration, found {}", v.value), &v.span, help);
                None
            }
        }
    }

    /// A number of requests (a whole number) or a time (a duration).
    pub fn span(&mut self, s: &Section, key: &str) -> Option<Span> {
        let v = s.get(key)?;
        let read = match &v.value {
            Json::Number(n) => n.as_u64().filter(|n| *n >= 1).map(Span::Requests),
            Json::String(t) => {
                flywheel_pipeline::compile::parse_duration(t).filter(|d| *d >= Duration::from_secs(1)).map(Span::Time)
            }
            _ => None,
        };
        if read.is_none() {
            let help = Some(format!("`{key} = 500` (requests) or `{key} = \"10m\"` (a time, 1s or more)"));
            self.err(format!("`{key}` must be a number of requests or a duration, found {}", v.value), &v.span, help);
        }
        read
    }

    /// One of `choices`.
    pub fn choice(&mut self, s: &Section, key: &str, choices: &[&str]) -> Option<Located<String>> {
        let text = self.string(s, key)?;
        if choices.contains(&text.value.as_str()) {
            return Some(text);
        }
        let help = did_you_mean(&text.value, choices.iter().copied());
        let message = format!("`{key}` must be one of {}, found \"{}\"", quoted(choices), text.value);
        self.err(message, &text.span, help);
        None
    }
}

pub fn quoted(words: &[&str]) -> String {
    words.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ")
}

pub fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "nothing",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a table",
    }
}
