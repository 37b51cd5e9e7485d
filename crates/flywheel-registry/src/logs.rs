//! Reading the prediction log back (the server writes it): the logged requests of one model in a time
//! window, from the segments the index names, with their feedback joined as
//! a `label` column (null when none arrived). Segments of different
//! versions may have different inputs: the table has every column any of
//! them has (null where a segment lacks it; a column whose type differs
//! between versions becomes text). `flywheel logs` exports it; monitoring
//! reads it in windows.

use crate::{RegistryError, Result};
use arrow_array::builder::{Float64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use flywheel_data::batch::Table;
use flywheel_metadata::{Label, MetadataStore};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The column feedback is joined into.
pub const LABEL: &str = "label";
/// The column a logged row's prediction is in.
pub const PREDICTION: &str = "prediction";

/// A window of request times, microseconds since 1970 UTC: `[since, until)`;
/// of one version's answers when `version` is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    pub version: Option<i64>,
}

impl Window {
    fn holds(&self, us: i64) -> bool {
        self.since_us.is_none_or(|s| us >= s) && self.until_us.is_none_or(|u| us < u)
    }
}

/// The models that have logged predictions.
pub fn logged_models(metadata: &MetadataStore) -> Result<Vec<String>> {
    metadata.logged_models().map_err(RegistryError::Metadata)
}

/// The logged rows of `model` in `window` with their labels, oldest
/// segment first. A model without any log is refused, naming those with one.
pub fn read_log(home: &Path, metadata: &MetadataStore, model: &str, window: Window) -> Result<Table> {
    let logged = logged_models(metadata)?;
    if !logged.iter().any(|m| m == model) {
        return Err(RegistryError::NoLog(if logged.is_empty() {
            format!("no predictions are logged for model `{model}`: no model has logs in {}", home.display())
        } else {
            format!("no predictions are logged for model `{model}`; models with logs: {}", logged.join(", "))
        }));
    }
    let of_version = |s: &flywheel_metadata::Segment| window.version.is_none_or(|v| s.version == v);
    let mut segments = metadata.segments(model, window.since_us, window.until_us).map_err(RegistryError::Metadata)?;
    segments.retain(of_version);
    if segments.is_empty() {
        // Nothing in the window: the newest segment still gives the columns.
        segments = metadata
            .segments(model, None, None)
            .map_err(RegistryError::Metadata)?
            .into_iter()
            .rfind(of_version)
            .into_iter()
            .collect();
    }
    let mut schemas = Vec::new();
    let mut batches = Vec::new();
    for s in &segments {
        let (schema, kept) = read_segment(&home.join(&s.path), window)?;
        schemas.push(schema);
        batches.extend(kept);
    }
    let labels: HashMap<(String, i64), Label> = metadata
        .feedback(model, window.since_us, window.until_us)
        .map_err(RegistryError::Metadata)?
        .into_iter()
        .map(|f| ((f.request_id, f.row), f.label))
        .collect();
    let schema = union_schema(&schemas);
    let batches = batches
        .iter()
        .map(|b| conform(b, &schema, &labels))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| RegistryError::Log(format!("cannot join the log of `{model}`: {e}")))?;
    Ok(Table { schema, batches })
}

/// The segment's schema and its rows in `window`.
fn read_segment(path: &Path, window: Window) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let err = |e: &dyn std::fmt::Display| {
        RegistryError::Log(format!(
            "prediction log segment {}: {e} (`flywheel doctor` checks the home)",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| err(&e))?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| err(&e))?;
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(|e| err(&e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| err(&e))?;
        let Some(time) = batch.column_by_name("time").and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
        else {
            return Err(err(&"no `time` column"));
        };
        let keep: BooleanArray = time.iter().map(|t| Some(t.is_some_and(|t| window.holds(t)))).collect();
        let kept = arrow_select::filter::filter_record_batch(&batch, &keep).map_err(|e| err(&e))?;
        if kept.num_rows() > 0 {
            out.push(kept);
        }
    }
    Ok((schema, out))
}

/// Every column of every segment, in first-seen order, then `label`.
fn union_schema(schemas: &[SchemaRef]) -> SchemaRef {
    let mut fields: Vec<Field> = Vec::new();
    for schema in schemas {
        for f in schema.fields() {
            match fields.iter_mut().find(|u| u.name() == f.name()) {
                Some(u) if u.data_type() != f.data_type() => *u = Field::new(f.name(), DataType::Utf8, true),
                Some(_) => {}
                None => fields.push(Field::new(f.name(), f.data_type().clone(), true)),
            }
        }
    }
    let label_type = match fields.iter().find(|f| f.name() == PREDICTION).map(|f| f.data_type()) {
        Some(DataType::Float64) => DataType::Float64,
        _ => DataType::Utf8,
    };
    fields.push(Field::new(LABEL, label_type, true));
    Arc::new(Schema::new(fields))
}

/// `batch` with `schema`'s columns (missing ones null, differing ones cast)
/// and its labels.
fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
    labels: &HashMap<(String, i64), Label>,
) -> std::result::Result<RecordBatch, arrow_schema::ArrowError> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields().iter().filter(|f| f.name() != LABEL) {
        columns.push(match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => c.clone(),
            Some(c) => arrow_cast::cast(c, f.data_type())?,
            None => arrow_array::new_null_array(f.data_type(), batch.num_rows()),
        });
    }
    columns.push(label_column(batch, schema, labels));
    RecordBatch::try_new(schema.clone(), columns)
}

fn label_column(batch: &RecordBatch, schema: &SchemaRef, labels: &HashMap<(String, i64), Label>) -> ArrayRef {
    let ids = batch.column_by_name("request_id").and_then(|c| c.as_string_opt::<i32>());
    let rows = batch.column_by_name("row").and_then(|c| c.as_primitive_opt::<Int64Type>());
    let find = |i: usize| -> Option<&Label> {
        let (ids, rows) = (ids?, rows?);
        labels.get(&(ids.value(i).to_string(), rows.value(i)))
    };
    let numeric = schema.field_with_name(LABEL).is_ok_and(|f| f.data_type() == &DataType::Float64);
    if numeric {
        let mut b = Float64Builder::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            b.append_option(match find(i) {
                Some(Label::Number(n)) => Some(*n),
                Some(Label::Text(t)) => t.parse().ok(),
                None => None,
            });
        }
        Arc::new(b.finish())
    } else {
        let mut b = StringBuilder::new();
        for i in 0..batch.num_rows() {
            match find(i) {
                Some(Label::Text(t)) => b.append_value(t),
                Some(Label::Number(n)) => b.append_value(n.to_string()),
                None => b.append_null(),
            }
        }
        Arc::new(b.finish())
    }
}

/// Writes the table as CSV.
pub fn write_csv(table: &Table, out: impl std::io::Write) -> Result<()> {
    let mut w = arrow_csv::Writer::new(out);
    if table.batches.is_empty() {
        // The header alone, so that an empty window still reads as a table.
        let empty = RecordBatch::new_empty(table.schema.clone());
        w.write(&empty).map_err(|e| RegistryError::Log(format!("cannot write the log as CSV: {e}")))?;
    }
    for b in &table.batches {
        w.write(b).map_err(|e| RegistryError::Log(format!("cannot write the log as CSV: {e}")))?;
    }
    Ok(())
}

/// Writes the table to `path`: Parquet for `.parquet`, CSV otherwise;
/// atomically.
pub fn write_file(table: &Table, path: &Path) -> Result<()> {
    let parquet = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    flywheel_data::atomic::write_atomic_with(path, |tmp| -> std::io::Result<()> {
        if parquet {
            flywheel_data::table::write_parquet(tmp, table).map_err(std::io::Error::other)
        } else {
            let file = std::io::BufWriter::new(std::fs::File::create(tmp)?);
            write_csv(table, file).map_err(std::io::Error::other)
        }
    })
    .map_err(|e| RegistryError::Log(format!("cannot write {}: {e}", path.display())))
}

impl crate::Home {
    /// `@logs:MODEL` as a dataset artifact: every row the server answered
    /// for `model` so far (shadow answers left out), with its feedback
    /// label, stored and recorded; `None` while the model has no log.
    pub async fn log_dataset(&self, model: &str) -> Result<Option<flywheel_metadata::ArtifactRecord>> {
        let table = match read_log(&self.root, &self.metadata, model, Window::default()) {
            Ok(t) => t,
            Err(RegistryError::NoLog(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let table = answered(table)?;
        let bytes = flywheel_data::table::parquet_bytes(&table).map_err(|e| RegistryError::Log(e.to_string()))?;
        let stored = self.artifacts.put_bytes(bytes).await?;
        let labeled = table.column_index(LABEL).map_or(0, |i| table.str_column(i).iter().flatten().count());
        let id = self.metadata.record_artifact(&flywheel_metadata::NewArtifact {
            ty: "dataset".into(),
            uri: stored.uri,
            digest: stored.digest,
            size: stored.size,
            properties: serde_json::json!({ "rows": table.rows(), "labeled": labeled, "logs_of": model }),
        })?;
        Ok(Some(self.metadata.artifact(id)?))
    }
}

/// The rows an arm answered: a shadow's answers were never returned.
pub fn answered(t: Table) -> Result<Table> {
    let Some(i) = t.column_index("shadow") else { return Ok(t) };
    let shadow = t.str_column(i);
    let keep: Vec<bool> = shadow.iter().map(|s| s.as_deref() != Some("true")).collect();
    t.filter(&keep).map_err(|e| RegistryError::Log(e.to_string()))
}
