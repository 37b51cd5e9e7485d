//! The rows a model served that got feedback labels, as more rows of the
//! file's table: the label fills `logs_label`, each other column of the
//! file is the logged column of that name cast to the file's type (null
//! when the log lacks it, say a column the model does not read), and what
//! only the log has (request ids, times, predictions) is left out. The
//! split's `time_column`, when the model does not read it, is when the row
//! was served: served rows come after the file's, in the order they came.

use super::{Params, column};
use arrow_array::{ArrayRef, RecordBatch};
use flywheel_core::{ExecContext, ExecError};
use flywheel_data::table::{Table, read_parquet};
use flywheel_serve::log::read::LABEL;
use std::path::Path;

pub(super) fn joined(ctx: &ExecContext, params: &Params, table: Table, path: &Path) -> Result<Table, ExecError> {
    let label_as = params.logs_label.as_deref().ok_or_else(|| {
        ExecError::failed(
            "input `logs` needs `logs_label`: the column its feedback labels fill, e.g. `logs_label = \"cnt\"`",
        )
    })?;
    column(&table, label_as, "logs_label")?;
    let log = read_parquet(path).map_err(|e| ExecError::failed(format!("input `logs`: {e}")))?;
    let served = log.rows();
    let since = match params.logs_since.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => flywheel_stats::time::parse(t)
            .map(|t| t.micros as f64 / 1e6)
            .ok_or_else(|| ExecError::failed(format!("`logs_since` = \"{t}\" is not a date or time")))?,
        None => f64::NEG_INFINITY,
    };
    let log = labeled(log, since, params.logs_last)?;
    let mut batches = table.batches.clone();
    // Empty batches left out: with no row joined, the output is the file's
    // alone, byte for byte, and what reads it comes from the cache.
    for b in log.batches.iter().filter(|b| b.num_rows() > 0) {
        batches.push(shaped(b, &table, label_as, params.time_column.as_deref())?);
    }
    ctx.log(format!("joined {} labeled row(s) of the prediction log ({} served row(s) in all)", log.rows(), served));
    Ok(Table { schema: table.schema.clone(), batches })
}

/// The rows with a label served from `since` (seconds); with `last`, only
/// the newest `last` of them.
fn labeled(log: Table, since: f64, last: Option<u64>) -> Result<Table, ExecError> {
    let err = |e: &dyn std::fmt::Display| ExecError::failed(format!("input `logs`: {e}"));
    let Some(li) = log.column_index(LABEL) else {
        return Err(err(&"it has no `label` column: wire it to `@logs:MODEL`"));
    };
    if last == Some(0) {
        return Err(err(&"`logs_last` = 0 takes no logged rows; leave it out to take them all"));
    }
    let labels = log.str_column(li);
    let times: Vec<f64> = match log.column_index("time") {
        Some(ti) => log
            .batches
            .iter()
            .flat_map(|b| flywheel_data::table::seconds(b.column(ti)))
            .map(|t| t.unwrap_or(0.0))
            .collect(),
        None => vec![0.0; log.rows()],
    };
    let wanted = |t: f64, l: &Option<String>| l.is_some() && t >= since;
    if times.len() != labels.len() {
        return Err(err(&"its `time` column is not a time: wire it to `@logs:MODEL`"));
    }
    let mut newest: Vec<f64> = times.iter().zip(&labels).filter(|(t, l)| wanted(**t, l)).map(|(t, _)| *t).collect();
    newest.sort_by(f64::total_cmp);
    let from = match last.map(|n| usize::try_from(n).unwrap_or(usize::MAX)) {
        Some(n) if n < newest.len() => newest[newest.len() - n],
        _ => since,
    };
    let keep: Vec<bool> = labels.iter().zip(&times).map(|(l, t)| wanted(*t, l) && *t >= from).collect();
    log.filter(&keep).map_err(|e| err(&e))
}

/// A logged batch with the file's columns and types.
fn shaped(b: &RecordBatch, file: &Table, label_as: &str, time_as: Option<&str>) -> Result<RecordBatch, ExecError> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(file.schema.fields().len());
    for f in file.schema.fields() {
        let mut name = if f.name() == label_as { LABEL } else { f.name().as_str() };
        // A number (an index, seconds of some epoch) is not comparable with
        // the serving time; a date, a time or ISO text is.
        let as_served = !flywheel_data::table::is_numeric(f.data_type());
        if Some(f.name().as_str()) == time_as && b.column_by_name(name).is_none() && as_served {
            name = "time";
        }
        columns.push(match b.column_by_name(name) {
            Some(c) if c.data_type() == f.data_type() => c.clone(),
            // A value that does not read as the file's type is missing.
            Some(c) => arrow_cast::cast(c, f.data_type()).map_err(|e| {
                ExecError::failed(format!(
                    "input `logs`: column `{name}` cannot be read as the file's {}: {e}",
                    f.data_type()
                ))
            })?,
            None => arrow_array::new_null_array(f.data_type(), b.num_rows()),
        });
    }
    RecordBatch::try_new(file.schema.clone(), columns).map_err(|e| ExecError::failed(format!("input `logs`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use std::sync::Arc;

    fn file(time: ArrayRef) -> Table {
        let b = RecordBatch::try_from_iter_with_nullable([
            ("when", time, true),
            ("x", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef, true),
            ("y", Arc::new(StringArray::from(vec!["a"])), true),
        ])
        .unwrap();
        Table { schema: b.schema(), batches: vec![b] }
    }

    fn log() -> RecordBatch {
        let served = TimestampMicrosecondArray::from(vec![5_000_000, 6_000_000]).with_timezone("UTC");
        RecordBatch::try_from_iter([
            ("time", Arc::new(served) as ArrayRef),
            ("x", Arc::new(Float64Array::from(vec![2.0, 3.0]))),
            ("label", Arc::new(StringArray::from(vec!["b", "c"]))),
        ])
        .unwrap()
    }

    #[test]
    fn a_time_column_the_model_does_not_read_is_when_the_row_was_served() {
        let t = file(Arc::new(TimestampMicrosecondArray::from(vec![1_000_000])));
        let b = shaped(&log(), &t, "y", Some("when")).unwrap();
        let when = b.column(0).as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
        assert_eq!(when.values().to_vec(), [5_000_000, 6_000_000]);
        let y = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((y.value(0), y.value(1)), ("b", "c"));
        // Not the split's column: missing, as any column the log lacks.
        assert_eq!(shaped(&log(), &t, "y", None).unwrap().column(0).null_count(), 2);
        // A number is not comparable with the time it was served.
        let numbered = file(Arc::new(Int64Array::from(vec![7])));
        assert_eq!(shaped(&log(), &numbered, "y", Some("when")).unwrap().column(0).null_count(), 2);
    }
}
