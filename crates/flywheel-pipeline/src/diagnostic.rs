//! Errors that point at a place in the pipeline file.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub span: Option<Range<usize>>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, span: Option<Range<usize>>) -> Self {
        Self { message: message.into(), span, help: None }
    }
    pub fn with_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// All problems found in one file, rendered as `file:line:col: error: …`.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub file: PathBuf,
    pub source: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.source, offset)
    }

    /// Machine-readable form for `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        let items: Vec<_> = self
            .items
            .iter()
            .map(|d| {
                let (line, column) = d.span.as_ref().map_or((0, 0), |s| self.line_col(s.start));
                serde_json::json!({
                    "file": self.file.display().to_string(),
                    "line": line,
                    "column": column,
                    "message": d.message,
                    "help": d.help,
                })
            })
            .collect();
        serde_json::Value::Array(items)
    }
}

pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    flywheel_core::line_col(source, offset)
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match &d.span {
                Some(span) => {
                    let (line, col) = self.line_col(span.start);
                    write!(f, "{}:{line}:{col}: error: {}", self.file.display(), d.message)?;
                    if let Some(text) = self.source.lines().nth(line - 1) {
                        write!(f, "\n    | {text}")?;
                        let width = self.source[span.clone()].lines().next().map_or(1, |l| l.chars().count().max(1));
                        write!(f, "\n    | {}{}", " ".repeat(col - 1), "^".repeat(width))?;
                    }
                }
                None => write!(f, "{}: error: {}", self.file.display(), d.message)?,
            }
            if let Some(help) = &d.help {
                write!(f, "\n    = help: {help}")?;
            }
        }
        if self.items.len() > 1 {
            write!(f, "\n{} errors in {}", self.items.len(), self.file.display())?;
        }
        Ok(())
    }
}

/// "did you mean `x`?" for the closest candidate, when one is close enough.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    flywheel_core::closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, src.find('=').unwrap()), (1, 3));
        assert_eq!(line_col(src, src.rfind('=').unwrap()), (2, 4));
    }

    #[test]
    fn suggestions_only_when_close() {
        assert_eq!(did_you_mean("statistcs", ["ingest", "statistics"]), Some("did you mean `statistics`?".into()));
        assert_eq!(did_you_mean("zzz", ["ingest", "statistics"]), None);
    }
}
