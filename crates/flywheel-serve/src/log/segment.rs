//! A batch of logged requests of one model version as an Arrow record
//! batch (one row per predicted row), and that batch written as one
//! Parquet segment.
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

use super::Entry;
use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
use flywheel_ml::{Column, ColumnKind, Prediction};
use std::path::Path;
use std::sync::Arc;

/// The columns every segment starts with, in order.
pub const FIXED: [&str; 8] = ["request_id", "row", "time", "model", "version", "arm", "shadow", "latency_us"];
/// The prediction column (after the inputs).
pub const PREDICTION: &str = "prediction";

/// The column name an input is written under.
pub fn input_column(name: &str) -> String {
    if FIXED.contains(&name) || name == PREDICTION || name == "label" || name.starts_with("probability(") {
        format!("input.{name}")
    } else {
        name.to_string()
    }
}

/// The entries (all of one model version) as one record batch.
pub fn to_batch(entries: &[Entry]) -> Result<RecordBatch, ArrowError> {
    let Some(first) = entries.first() else {
        return Ok(RecordBatch::new_empty(Arc::new(Schema::empty())));
    };
    let served = &first.served;
    let rows: usize = entries.iter().map(|e| e.frame.rows()).sum();
    let mut fields = vec![
        Field::new("request_id", DataType::Utf8, false),
        Field::new("row", DataType::Int64, false),
        Field::new("time", DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), false),
        Field::new("model", DataType::Utf8, false),
        Field::new("version", DataType::Int64, false),
        Field::new("arm", DataType::Utf8, false),
        Field::new("shadow", DataType::Boolean, false),
        Field::new("latency_us", DataType::Int64, false),
    ];
    let mut columns = fixed_columns(entries, rows);
    for input in &served.model.signature.inputs {
        let (field, array) = input_array(entries, &input.name, input.kind, rows);
        fields.push(field);
        columns.push(array);
    }
    let (pred_fields, pred_columns) = prediction_arrays(entries, rows);
    fields.extend(pred_fields);
    columns.extend(pred_columns);
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

fn fixed_columns(entries: &[Entry], rows: usize) -> Vec<ArrayRef> {
    let mut id = StringBuilder::with_capacity(rows, rows * 16);
    let mut row = Int64Builder::with_capacity(rows);
    let mut time = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("+00:00");
    let mut model = StringBuilder::with_capacity(rows, rows * 8);
    let mut version = Int64Builder::with_capacity(rows);
    let mut arm = StringBuilder::with_capacity(rows, rows * 16);
    let mut shadow = BooleanBuilder::with_capacity(rows);
    let mut latency = Int64Builder::with_capacity(rows);
    for e in entries {
        for i in 0..e.frame.rows() {
            id.append_value(&e.request_id);
            row.append_value(i as i64);
            time.append_value(e.at_us);
            model.append_value(&e.served.name);
            version.append_value(e.served.version);
            arm.append_value(&e.arm);
            shadow.append_value(e.shadow);
            latency.append_value(e.latency_us);
        }
    }
    vec![
        Arc::new(id.finish()),
        Arc::new(row.finish()),
        Arc::new(time.finish()),
        Arc::new(model.finish()),
        Arc::new(version.finish()),
        Arc::new(arm.finish()),
        Arc::new(shadow.finish()),
        Arc::new(latency.finish()),
    ]
}

fn input_array(entries: &[Entry], name: &str, kind: ColumnKind, rows: usize) -> (Field, ArrayRef) {
    let column = input_column(name);
    match kind {
        ColumnKind::Number => {
            let mut b = Float64Builder::with_capacity(rows);
            for e in entries {
                match e.frame.column(name) {
                    Some(Column::Num(v)) => v.iter().for_each(|&x| b.append_option((!x.is_nan()).then_some(x))),
                    _ => b.append_nulls(e.frame.rows()),
                }
            }
            (Field::new(column, DataType::Float64, true), Arc::new(b.finish()))
        }
        ColumnKind::Text => {
            let mut b = StringBuilder::with_capacity(rows, rows * 8);
            for e in entries {
                match e.frame.column(name) {
                    Some(Column::Text(t)) => (0..t.len()).for_each(|i| b.append_option(t.get(i))),
                    _ => (0..e.frame.rows()).for_each(|_| b.append_null()),
                }
            }
            (Field::new(column, DataType::Utf8, true), Arc::new(b.finish()))
        }
    }
}

fn prediction_arrays(entries: &[Entry], rows: usize) -> (Vec<Field>, Vec<ArrayRef>) {
    let classes = &entries[0].served.model.classes;
    if !entries[0].served.is_classifier() {
        let mut b = Float64Builder::with_capacity(rows);
        for e in entries {
            if let Prediction::Values(v) = &e.prediction {
                v.iter().for_each(|&x| b.append_option((!x.is_nan()).then_some(x)));
            } else {
                b.append_nulls(e.frame.rows());
            }
        }
        return (vec![Field::new(PREDICTION, DataType::Float64, true)], vec![Arc::new(b.finish())]);
    }
    let mut label = StringBuilder::with_capacity(rows, rows * 8);
    let mut proba: Vec<Float64Builder> = classes.iter().map(|_| Float64Builder::with_capacity(rows)).collect();
    for e in entries {
        match &e.prediction {
            Prediction::Classes { probabilities, labels } => {
                for (i, &l) in labels.iter().enumerate() {
                    label.append_option(classes.get(l));
                    for (j, b) in proba.iter_mut().enumerate() {
                        b.append_option((j < probabilities.cols).then(|| probabilities.get(i, j)));
                    }
                }
            }
            Prediction::Values(v) => {
                (0..v.len()).for_each(|_| label.append_null());
                proba.iter_mut().for_each(|b| b.append_nulls(v.len()));
            }
        }
    }
    let mut fields = vec![Field::new(PREDICTION, DataType::Utf8, true)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(label.finish())];
    for (class, mut b) in classes.iter().zip(proba) {
        fields.push(Field::new(format!("probability({class})"), DataType::Float64, true));
        columns.push(Arc::new(b.finish()));
    }
    (fields, columns)
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
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, first.schema(), Some(props)).map_err(|e| err(&e))?;
        for batch in batches {
            w.write(batch).map_err(|e| err(&e))?;
        }
        w.close().map_err(|e| err(&e))?;
        Ok(())
    })
}
