//! A segment's columns, and its rows (built by `buffer.rs`, one row per
//! predicted row) written as one Parquet file.
//!
//! Columns: `request_id`, `row` (within the request), `time` (UTC,
//! microseconds), `model`, `version`, `arm` (the split's reference that
//! chose the version), `shadow` (true when the answer was a shadow's, never
//! returned), `latency_us` (of the whole request),
//! the model's input columns (numbers as f64, text as utf8, missing as
//! null; an input named like one of these columns, or `label`, is written
//! `input.NAME`),
//! `prediction` (the class label or the number), and for classifiers
//! `probability(CLASS)` per class (as `flywheel predict` names them).

use arrow_array::RecordBatch;
use std::path::Path;

/// The columns every segment starts with, in order.
pub const FIXED: [&str; 8] = ["request_id", "row", "time", "model", "version", "arm", "shadow", "latency_us"];
/// The prediction column (after the inputs).
pub use flywheel_registry::logs::PREDICTION;

/// The column name an input is written under.
pub fn input_column(name: &str) -> String {
    if FIXED.contains(&name) || name == PREDICTION || name == "label" || name.starts_with("probability(") {
        format!("input.{name}")
    } else {
        name.to_string()
    }
}

/// Why a segment could not be written, naming the file.
pub struct WriteError(pub String);

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        WriteError(e.to_string())
    }
}

/// Writes `batches` (of one schema) as a Parquet file at `path`,
/// atomically (a reader sees the whole segment or none).
pub fn write(path: &Path, batches: &[RecordBatch]) -> Result<(), WriteError> {
    let Some(first) = batches.first() else { return Ok(()) };
    let err = |e: &dyn std::fmt::Display| WriteError(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
    }
    flywheel_data::atomic::write_atomic_with(path, |tmp| -> Result<(), WriteError> {
        let file = std::fs::File::create(tmp).map_err(|e| err(&e))?;
        let props = properties();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, first.schema(), Some(props)).map_err(|e| err(&e))?;
        for batch in batches {
            w.write(batch).map_err(|e| err(&e))?;
        }
        w.close().map_err(|e| err(&e))?;
        Ok(())
    })
}

/// Rows of a row group. The writer holds a row group's encoded pages until
/// it is written, and frees them then: at 8,192 rows that was 2 MB for 31
/// columns, which glibc (its trim threshold 1 MiB) gave back to the system
/// after each group and faulted in again, page by page, for the next — 0.11
/// page faults a logged request, at about 2 µs each on a small VM, the
/// writer's system time halved without them. At 2,048 rows a group's 0.5 MB
/// is reused from the heap; a segment grows by a few percent.
pub(super) const ROW_GROUP_ROWS: usize = 2048;
// A group of 31 columns of 8-byte values stays under that 1 MiB.
const _: () = assert!(31 * 8 * ROW_GROUP_ROWS <= 1 << 20);

/// Row groups of `ROW_GROUP_ROWS`; snappy; no dictionaries: over real
/// numbers one grows its hash table to the page limit per column before
/// giving up, megabytes each for nothing; request ids (one per one-row
/// request; a many-row request's repeats snappy takes) were 12% of the
/// writer's time, hashed a row each; and the model, the arm and a class
/// label, which repeat, cost a hash a row too (~300 instructions a logged
/// request in all), where snappy takes their repeats as well (the same
/// segment sizes). Statistics on the time alone (readers find segments by
/// the index, and by time within one).
fn properties() -> parquet::file::properties::WriterProperties {
    use parquet::file::properties::EnabledStatistics;
    parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_column_statistics_enabled("time".into(), EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}
