//! ISO 8601 dates and times as instants: `2024-01-05`, `2024-1-5`,
//! `2024-01-05 13:00`, `2024-01-05T13:00:00.250+02:00`, `…Z`. Values with an
//! offset become UTC instants, so that `10:00+02:00` sorts before
//! `09:00+00:00`; values without one are taken as written (naive).

/// A parsed date or time: microseconds since 1970-01-01 (UTC when
/// `offset`), and what the text held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    pub micros: i64,
    /// Only a date, no time of day.
    pub date_only: bool,
    /// The text carried a zone (`Z`, `+02:00`, `-0500`).
    pub offset: bool,
}

use flywheel_core::{civil_from_days, days_from_civil};

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Splits off up to `max` leading ASCII digits (at least `min`) as a number.
fn digits(s: &str, min: usize, max: usize) -> Option<(u32, &str)> {
    let n = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

fn date(s: &str) -> Option<(i64, &str)> {
    let (y, rest) = digits(s, 4, 4)?;
    let (m, rest) = digits(rest.strip_prefix('-')?, 1, 2)?;
    let (d, rest) = digits(rest.strip_prefix('-')?, 1, 2)?;
    let y = i64::from(y);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some((days_from_civil(y, m, d), rest))
}

/// `HH:MM[:SS[.fraction]]` → microseconds into the day.
fn clock(s: &str) -> Option<(i64, &str)> {
    let (h, rest) = digits(s, 1, 2)?;
    let (mi, rest) = digits(rest.strip_prefix(':')?, 2, 2)?;
    let (sec, mut rest) = match rest.strip_prefix(':') {
        Some(r) => digits(r, 2, 2)?,
        None => (0, rest),
    };
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut micros = (i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec)) * 1_000_000;
    if let Some(r) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let frac: String = r[..n].chars().chain(std::iter::repeat('0')).take(6).collect();
        micros += frac.parse::<i64>().ok()?;
        rest = &r[n..];
    }
    Some((micros, rest))
}

/// `Z`, `±HH`, `±HHMM` or `±HH:MM` → seconds east of UTC.
fn zone(s: &str) -> Option<i64> {
    if s == "Z" || s == "z" {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, rest) = digits(&s[1..], 2, 2)?;
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    let (m, rest) = if rest.is_empty() { (0, rest) } else { digits(rest, 2, 2)? };
    if !rest.is_empty() || h > 23 || m > 59 {
        return None;
    }
    Some(sign * i64::from(h * 3600 + m * 60))
}

/// Parses an ISO 8601 date or date-time; `None` when `s` is not one.
pub fn parse(s: &str) -> Option<Parsed> {
    let (days, rest) = date(s)?;
    let day_micros = days * 86_400 * 1_000_000;
    if rest.is_empty() {
        return Some(Parsed { micros: day_micros, date_only: true, offset: false });
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let (time, rest) = clock(rest)?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    if rest.is_empty() {
        return Some(Parsed { micros: day_micros + time, date_only: false, offset: false });
    }
    let east = zone(rest)?;
    Some(Parsed { micros: day_micros + time - east * 1_000_000, date_only: false, offset: true })
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` of microseconds since 1970 (the date
/// alone at midnight when `date_only`).
pub fn format_micros(micros: i64, date_only: bool) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    if date_only {
        return format!("{y:04}-{m:02}-{d:02}");
    }
    let in_day = micros.rem_euclid(86_400_000_000);
    let (secs, frac) = (in_day / 1_000_000, in_day % 1_000_000);
    let clock = format!("{:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60);
    if frac == 0 { format!("{y:04}-{m:02}-{d:02} {clock}") } else { format!("{y:04}-{m:02}-{d:02} {clock}.{frac:06}") }
}

/// The same for seconds since 1970, as statistics hold them.
pub fn format_seconds(secs: f64) -> String {
    if !secs.is_finite() {
        return "-".into();
    }
    let micros = (secs * 1e6).round() as i64;
    format_micros(micros, micros.rem_euclid(86_400_000_000) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpadded_dates_order_as_dates_not_as_text() {
        let a = parse("2024-1-5").unwrap();
        let b = parse("2024-01-10").unwrap();
        assert!(a.micros < b.micros);
        assert!("2024-1-5" > "2024-01-10");
        assert!(a.date_only && !a.offset);
    }

    #[test]
    fn offsets_make_instants() {
        let east = parse("2024-01-05T10:00:00+02:00").unwrap();
        let utc = parse("2024-01-05 09:00:00Z").unwrap();
        assert!(east.micros < utc.micros);
        assert_eq!(parse("2024-01-05T08:00:00-0100").unwrap().micros, utc.micros);
        assert!(east.offset);
    }

    #[test]
    fn rejects_what_is_not_a_date() {
        for s in ["2024-13-01", "2023-02-29", "12.5", "2024-01-05x", "2024-01-05T25:00", "abc", "2024", ""] {
            assert_eq!(parse(s), None, "{s}");
        }
        assert!(parse("2024-02-29").is_some());
    }

    #[test]
    fn formats_round_trip() {
        for s in ["2011-01-01", "2011-01-01 13:05:09", "1969-12-31 23:59:59.500000"] {
            let p = parse(s).unwrap();
            assert_eq!(format_micros(p.micros, p.date_only), s);
        }
        assert_eq!(parse("2012-02-29 00:00").unwrap().micros, 1_330_473_600_000_000);
    }
}
