//! `path` as spans: a folder or a glob reads every file it names (or the
//! newest `spans_last` by name), as one table with the first span's columns
//! and types; a span with other columns is refused, naming it.

use arrow_array::{ArrayRef, RecordBatch};
use flywheel_core::{ExecContext, ExecError};
use flywheel_data::table::{ReadOptions, Table, read_table};
use std::path::Path;

pub(super) fn read(ctx: &ExecContext, path: &Path, opts: &ReadOptions, last: Option<u64>) -> Result<Table, ExecError> {
    let all = flywheel_data::spans::spans(path)?;
    if last == Some(0) {
        return Err(ExecError::failed("`spans_last` = 0 reads no span; leave it out to read them all"));
    }
    let keep = last.map_or(all.len(), |n| usize::try_from(n).unwrap_or(usize::MAX).min(all.len()));
    let files = &all[all.len() - keep..];
    let Some((first, rest)) = files.split_first() else {
        return Err(ExecError::failed(format!("{} names no data file yet", path.display())));
    };
    let mut table = read_table(first, opts)?;
    for f in rest {
        let span = read_table(f, opts)?;
        for b in &span.batches {
            table.batches.push(shaped(b, &table, f)?);
        }
    }
    if files.len() > 1 || flywheel_data::spans::is_glob(path) || path.is_dir() {
        let names: Vec<String> =
            files.iter().map(|f| f.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
        ctx.log(format!("{} span(s) of {}: {}", files.len(), path.display(), names.join(", ")));
        ctx.add_summary("spans", serde_json::json!(names));
    }
    Ok(table)
}

/// A later span's batch with the first span's columns and types.
fn shaped(b: &RecordBatch, first: &Table, file: &Path) -> Result<RecordBatch, ExecError> {
    let theirs: Vec<&str> = b.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
    let ours: Vec<&str> = first.schema.fields().iter().map(|f| f.name().as_str()).collect();
    if theirs.len() != ours.len() || ours.iter().any(|c| !theirs.contains(c)) {
        return Err(ExecError::failed(format!(
            "{}: its columns ({}) are not the first span's ({}); spans of one dataset share their columns",
            file.display(),
            theirs.join(", "),
            ours.join(", ")
        )));
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(ours.len());
    for f in first.schema.fields() {
        let c = b.column_by_name(f.name()).cloned().unwrap_or_else(|| arrow_array::new_null_array(f.data_type(), 0));
        columns.push(if c.data_type() == f.data_type() {
            c
        } else {
            arrow_cast::cast(&c, f.data_type()).map_err(|e| {
                ExecError::failed(format!(
                    "{}: column `{}` cannot be read as {}: {e}",
                    file.display(),
                    f.name(),
                    f.data_type()
                ))
            })?
        });
    }
    RecordBatch::try_new(first.schema.clone(), columns)
        .map_err(|e| ExecError::failed(format!("{}: {e}", file.display())))
}
