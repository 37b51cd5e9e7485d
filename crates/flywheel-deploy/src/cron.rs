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
    /// Five fields (or `@daily` and its kin), that fire at some time to come.
    pub fn parse(text: &str) -> Result<Schedule, CronProblem> {
        let fields = text.split_whitespace().count();
        if fields != 5 && !text.trim_start().starts_with('@') {
            // croner also takes seconds first and a year last: a sixth field
            // would silently change what the other five mean.
            return Err(CronProblem {
                message: format!(
                    "`{text}` has {fields} field(s); write five: minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\""
                ),
                at: 0..text.len(),
            });
        }
        let cron = croner::Cron::from_str(text).map_err(|e| locate(text, &e.to_string()))?;
        let schedule = Schedule { text: text.to_string(), cron };
        if schedule.next_after(chrono::Utc::now()).is_none() {
            return Err(CronProblem { message: format!("`{text}` never fires (no such date)"), at: 0..text.len() });
        }
        Ok(schedule)
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
    if fields.len() != 5 {
        return whole;
    }
    for (i, (start, field)) in fields.iter().enumerate() {
        let mut trial: Vec<&str> = fields.iter().map(|(_, f)| *f).collect();
        trial[i] = "*";
        if croner::Cron::from_str(&trial.join(" ")).is_ok() {
            let name = FIELDS[i];
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
        let p = Schedule::parse("0 3 * * 1 *").unwrap_err();
        assert!(p.message.contains("6 field(s); write five"), "seconds or a year change the meaning: {p:?}");
        let p = Schedule::parse("0 3 30 2 *").unwrap_err();
        assert!(p.message.contains("never fires"), "{p:?}");
    }
}
