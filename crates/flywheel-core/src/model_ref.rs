//! How every part of Flywheel names a registered model: `NAME` (its latest
//! version), `NAME@3` (a version) or `NAME@production` (whatever version an
//! alias points at), and, in a pipeline, `@model:NAME[@ALIAS][/INPUT]`.
//! One parser for the CLI, the pipeline compiler, the launcher and the
//! server; resolving a reference against the store is the registry's job.

use std::fmt;
use std::str::FromStr;

/// Which version of a model a reference names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// The latest version.
    Latest,
    /// A version number (`NAME@3`).
    Version(i64),
    /// The version an alias points at (`NAME@production`).
    Alias(String),
}

/// `NAME`, `NAME@VERSION` or `NAME@ALIAS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    pub name: String,
    pub selector: Selector,
}

impl ModelRef {
    pub fn latest(name: impl Into<String>) -> Self {
        Self { name: name.into(), selector: Selector::Latest }
    }

    /// Parses a reference, or says which part of it is wrong. A part after
    /// `@` made only of digits is a version; anything else is an alias.
    pub fn parse(s: &str) -> Result<ModelRef, String> {
        let (name, after) = match s.split_once('@') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        crate::check_name("the model name", name)?;
        let selector = match after {
            None => Selector::Latest,
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                Selector::Version(v.parse().map_err(|_| format!("version `{v}` is too large"))?)
            }
            Some(a) => {
                crate::check_name("the alias", a)?;
                Selector::Alias(a.to_string())
            }
        };
        Ok(ModelRef { name: name.to_string(), selector })
    }

    pub fn alias(&self) -> Option<&str> {
        match &self.selector {
            Selector::Alias(a) => Some(a),
            _ => None,
        }
    }

    pub fn version(&self) -> Option<i64> {
        match self.selector {
            Selector::Version(v) => Some(v),
            _ => None,
        }
    }
}

impl FromStr for ModelRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match &self.selector {
            Selector::Latest => Ok(()),
            Selector::Version(v) => write!(f, "@{v}"),
            Selector::Alias(a) => write!(f, "@{a}"),
        }
    }
}

/// A pipeline input taken from the registry, `@model:NAME[@ALIAS][/INPUT]`,
/// resolved when the step runs: the model artifact of the version `ALIAS`
/// (or `@VERSION`) names, or of the latest version registered before the
/// run; with `/INPUT`, the artifact that fed input `INPUT` of the step that
/// produced that model — e.g. `@model:bikes@production/data`, the data the
/// production model was trained on.
///
/// `@logs:NAME` is the model's prediction log joined with its feedback
/// labels, as a dataset of the rows logged before the step ran: data that
/// only arrives through serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInputRef {
    pub model: ModelRef,
    pub input: Option<String>,
    /// `@logs:NAME`: the model's prediction log, not a registered artifact.
    pub logs: bool,
}

impl ModelInputRef {
    pub const PREFIX: &'static str = "@model:";
    pub const LOGS_PREFIX: &'static str = "@logs:";

    /// Parses a reference, or says which part of it is wrong.
    pub fn parse(s: &str) -> Result<ModelInputRef, String> {
        if let Some(name) = s.strip_prefix(Self::LOGS_PREFIX) {
            crate::check_name("the model name", name).map_err(|e| format!("{e} (write `@logs:MODEL`)"))?;
            return Ok(ModelInputRef { model: ModelRef::latest(name), input: None, logs: true });
        }
        let rest = s.strip_prefix(Self::PREFIX).ok_or("it starts with neither `@model:` nor `@logs:`")?;
        let (head, input) = match rest.split_once('/') {
            Some((h, i)) => (h, Some(i)),
            None => (rest, None),
        };
        let model = ModelRef::parse(head)?;
        if let Some(i) = input {
            crate::check_name("the input name", i)?;
        }
        Ok(ModelInputRef { model, input: input.map(str::to_string), logs: false })
    }
}

impl fmt::Display for ModelInputRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.logs {
            return write!(f, "{}{}", Self::LOGS_PREFIX, self.model.name);
        }
        write!(f, "{}{}", Self::PREFIX, self.model)?;
        if let Some(i) = &self.input {
            write!(f, "/{i}")?;
        }
        Ok(())
    }
}

/// An alias: a name that is not a version number (which `NAME@3` would read
/// as version 3).
pub fn check_alias(alias: &str) -> Result<(), String> {
    crate::check_name("alias", alias)?;
    if alias.parse::<i64>().is_ok() {
        return Err(format!("alias `{alias}` is a number, which `NAME@{alias}` would read as version {alias}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_names_the_latest_a_version_or_an_alias() {
        assert_eq!(ModelRef::parse("bikes").unwrap(), ModelRef::latest("bikes"));
        assert_eq!(ModelRef::parse("bikes@3").unwrap().version(), Some(3));
        assert_eq!(ModelRef::parse("bikes@production").unwrap().alias(), Some("production"));
        assert_eq!(ModelRef::parse("v1.2@v2").unwrap().alias(), Some("v2"));
    }

    #[test]
    fn each_wrong_part_is_named() {
        assert!(ModelRef::parse("..").unwrap_err().contains("the model name `..`"));
        assert!(ModelRef::parse("@prod").unwrap_err().contains("the model name ``"));
        assert!(ModelRef::parse("m@").unwrap_err().contains("the alias ``"));
        assert!(ModelRef::parse("m@a/b").unwrap_err().contains("the alias `a/b`"));
        assert!(ModelRef::parse("m@99999999999999999999").unwrap_err().contains("too large"));
        assert!(ModelInputRef::parse("model:m").unwrap_err().contains("neither `@model:` nor `@logs:`"));
        assert!(ModelInputRef::parse("@logs:m@production").unwrap_err().contains("@logs:MODEL"));
        let logs = ModelInputRef::parse("@logs:bike-sharing").unwrap();
        assert!(logs.logs && logs.model.name == "bike-sharing");
        assert_eq!(logs.to_string(), "@logs:bike-sharing");
        assert!(ModelInputRef::parse("@model:m@p/b/c").unwrap_err().contains("the input name `b/c`"));
    }

    #[test]
    fn display_gives_back_what_was_parsed() {
        for s in ["@model:m", "@model:m@3", "@model:m@production/examples", "@model:a.b/c"] {
            assert_eq!(ModelInputRef::parse(s).unwrap().to_string(), s);
        }
        for s in ["m", "m@1", "m@canary"] {
            assert_eq!(ModelRef::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn aliases_refuse_numbers() {
        assert!(check_alias("production").is_ok());
        assert!(check_alias("2").unwrap_err().contains("would read as version 2"));
        assert!(check_alias(".").unwrap_err().contains("cannot be `.` or `..`"));
    }
}
