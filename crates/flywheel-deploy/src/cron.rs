//! Cron schedules (`croner`: five fields, or six with seconds first; names
//! of months and days; `@daily` and its kin), with the place of a field
//! that does not parse, and the next tick after a time.

use std::str::FromStr;

#[derive(Debug, Clone)]
pub struct Schedule {
    pub text: String,
    cron: croner::Cron,
}

/// Why an expression does not parse, and the byte range within it of the
/// field at fault (the whole expression when no one field is).
#[derive(Debug, Clone, PartialEq)]
pub struct CronProblem {
    pub message: String,
    pub at: std::ops::Range<usize>,
}

const FIELDS: [&str; 5] = ["minute", "hour", "day of month", "month", "day of week"];

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, CronProblem> {
        match croner::Cron::from_str(text) {
            Ok(cron) => Ok(Schedule { text: text.to_string(), cron }),
            Err(e) => Err(locate(text, &e.to_string())),
        }
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}

/// Finds the field at fault: the one that, written `*`, makes the rest
/// parse. croner says what is wrong but not where.
fn locate(text: &str, why: &str) -> CronProblem {
    let fields: Vec<(usize, &str)> =
        text.split_whitespace().map(|f| (f.as_ptr() as usize - text.as_ptr() as usize, f)).collect();
    let whole = CronProblem {
        message: format!(
            "`{text}` is not a cron expression ({why}); write five fields: minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\""
        ),
        at: 0..text.len(),
    };
    if !(5..=6).contains(&fields.len()) {
        return whole;
    }
    let seconds = usize::from(fields.len() == 6);
    for (i, (start, field)) in fields.iter().enumerate() {
        let mut trial: Vec<&str> = fields.iter().map(|(_, f)| *f).collect();
        trial[i] = "*";
        if croner::Cron::from_str(&trial.join(" ")).is_ok() {
            let name = if i < seconds { "second" } else { FIELDS[i - seconds] };
            return CronProblem {
                message: format!("`{field}` is not a valid {name} field in `{text}` ({why})"),
                at: *start..start + field.len(),
            };
        }
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_gives_its_next_tick() {
        let s = Schedule::parse("0 3 * * *").unwrap();
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap().to_utc();
        assert_eq!(s.next_after(t).unwrap().to_rfc3339(), "2026-12-01T03:00:00+00:00");
        assert!(Schedule::parse("*/15 * * * MON-FRI").is_ok());
        assert!(Schedule::parse("@daily").is_ok());
    }

    #[test]
    fn the_field_that_does_not_parse_is_found() {
        let p = Schedule::parse("0 25 * * *").unwrap_err();
        assert_eq!((p.at.clone(), p.message.contains("hour")), (2..4, true), "{p:?}");
        let p = Schedule::parse("0 3 * * FUNDAY").unwrap_err();
        assert_eq!(p.at, 8..14, "{p:?}");
        let p = Schedule::parse("every day").unwrap_err();
        assert_eq!(p.at, 0..9, "{p:?}");
    }
}
