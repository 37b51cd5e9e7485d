//! The small core every other Flywheel crate points toward.
//!
//! It holds only what two or more crates must agree on: the kinds of artifacts
//! that flow between steps, the typed spec of a component (its parameters,
//! inputs and outputs), and the contract between the launcher and a
//! component's executor. Nothing here does I/O beyond what an executor's
//! context hands out.

pub mod context_builder;
pub mod exec;
pub mod model_ref;
pub mod params;
pub mod slice;
pub mod spec;

pub use context_builder::{ExecContextBuilder, LogBuffer, PublishCall, RecordingRegistry};
pub use exec::{
    AliasMove, CancelToken, ChildRecord, Component, ComponentRegistry, ExecContext, ExecError, InputArtifact,
    ModelRefResolution, ModelRegistry, Published, RegisteredModel, Role,
};
pub use model_ref::{ModelInputRef, ModelRef, Selector, check_alias};
pub use params::TypedComponent;
pub use spec::{ArtifactType, ComponentSpec, ParamProblem, ParamSpec, ParamType, PortSpec};

/// Hex blake3 digest of a byte slice. Used for content addresses and cache keys.
pub fn digest_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Current UTC time as RFC 3339 with milliseconds, e.g. `2026-11-26T09:12:03.512Z`.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format_rfc3339(now.as_millis() as i64)
}

/// Formats milliseconds since the Unix epoch as RFC 3339 UTC.
pub fn format_rfc3339(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) in the proleptic Gregorian calendar → days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        // 2012-10-29T13:00:00Z, Hurricane Sandy in the bike data
        assert_eq!(format_rfc3339(1_351_515_600_000), "2012-10-29T13:00:00.000Z");
        for days in [-1000, 0, 15_000, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

/// 1-based line and column (in characters) of a byte offset in `source`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// "; did you mean `x`?" when a candidate is close to `word`, else nothing:
/// the tail every "not found" message in Flywheel ends with.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default()
}

/// Whether `s` may name a registered model or an alias: letters, digits,
/// `-`, `_` and `.` (so that `name@alias/input` references stay parseable),
/// and not only dots: `.` and `..` mean folders wherever a name becomes a
/// path or is shown beside one.
pub fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) && !s.chars().all(|c| c == '.')
}

/// What [`is_name`] accepts, for messages: "model name `a/b` {NAME_RULE}".
pub const NAME_RULE: &str = "may use only letters, digits, `-`, `_` and `.`, and cannot be `.` or `..`";

/// `Err` with a sentence when `s` is not a valid name; `what` names it
/// ("model name", "alias").
pub fn check_name(what: &str, s: &str) -> Result<(), String> {
    if is_name(s) { Ok(()) } else { Err(format!("{what} `{s}` {NAME_RULE}")) }
}

#[cfg(test)]
mod name_tests {
    use super::{check_name, is_name};

    #[test]
    fn names_refuse_dots_alone_separators_and_empty() {
        for ok in ["bikes", "adult-income", "v1.2", "a_b", ".hidden-ish.", "x.."] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "...", "a/b", "a\\b", "../x", "a b", "a@b", "ü"] {
            assert!(!is_name(bad), "{bad}");
        }
        assert_eq!(
            check_name("alias", "..").unwrap_err(),
            "alias `..` may use only letters, digits, `-`, `_` and `.`, and cannot be `.` or `..`"
        );
    }
}

/// The candidate closest to `word`, if it is close enough to be what the
/// user meant: a small edit (typo, swapped letters) or a high Jaro–Winkler
/// similarity. Used for every "did you mean".
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let max_edits = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (c, strsim::damerau_levenshtein(word, c), strsim::jaro_winkler(word, c)))
        .filter(|(_, edits, sim)| *edits <= max_edits || *sim > 0.85)
        .min_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)))
        .map(|(c, _, _)| c)
}

#[cfg(test)]
mod closest_tests {
    use super::closest;

    #[test]
    fn finds_typos_and_swaps_but_not_strangers() {
        assert_eq!(closest("dya", ["day", "x", "group"]), Some("day"));
        assert_eq!(closest("statistcs", ["ingest", "statistics"]), Some("statistics"));
        assert_eq!(closest("eval_fractoin", ["eval_fraction", "split_key"]), Some("eval_fraction"));
        assert_eq!(closest("zzz", ["ingest", "statistics"]), None);
        assert_eq!(closest("x", ["y"]), Some("y"));
        assert_eq!(closest("ab", ["xy"]), None);
    }
}
