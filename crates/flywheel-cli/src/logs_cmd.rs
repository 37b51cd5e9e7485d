//! `flywheel logs MODEL`: the model's logged predictions joined with their
//! feedback labels (read by `flywheel_serve::log::read`), as CSV on stdout
//! or to a file (Parquet for `.parquet`).

use crate::Failure;
use crate::cli::LogsArgs;
use crate::fail;
use flywheel_serve::log::read::{self, Window};
use std::io::Write;
use std::path::Path;

pub fn run(home: &Path, args: &LogsArgs) -> Result<u8, Failure> {
    let window = Window {
        since_us: args.since.as_deref().map(|t| instant("--since", t, false)).transpose()?,
        until_us: args.until.as_deref().map(|t| instant("--until", t, true)).transpose()?,
        version: None,
    };
    let home = flywheel_registry::Home::open(home)?;
    let table = read::read_log(&home.root, &home.metadata, &args.model, window)?;
    match &args.output {
        Some(path) => {
            read::write_file(&table, path)?;
            let rows: usize = table.batches.iter().map(|b| b.num_rows()).sum();
            eprintln!("{rows} row(s) of `{}` written to {}", args.model, path.display());
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            read::write_csv(&table, &mut out)?;
            // A reader that went away (`| head`) is not a failure.
            let _ = out.flush();
        }
    }
    Ok(0)
}

/// An ISO 8601 time (no zone: UTC) as microseconds; a date alone is its
/// midnight, or for `--until` the next one, so that the day is included.
fn instant(flag: &str, text: &str, end_of_day: bool) -> Result<i64, Failure> {
    let Some(t) = flywheel_stats::time::parse(text.trim()) else {
        return Err(fail(
            2,
            format!(
                "{flag} `{text}`: not an ISO 8601 date or time; write 2026-11-30, 2026-11-30T08:00 or 2026-11-30T08:00:00Z"
            ),
        ));
    };
    Ok(if t.date_only && end_of_day { t.micros + 86_400_000_000 } else { t.micros })
}
