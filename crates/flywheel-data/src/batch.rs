//! What every read takes and gives: a [`Table`] in memory, a stream of
//! [`Batches`], the [`ReadOptions`] a caller sets, the logical column types
//! users see, and the defaults CSV reading starts from. Below both the
//! generic readers (`table.rs`) and the CSV reader (`delimited.rs`).

use crate::DataError;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// Rows used to infer column types when a CSV column's type is not declared.
pub const INFER_ROWS: usize = 10_000;

/// Markers read as missing values unless a dataset says otherwise.
pub const DEFAULT_MISSING: &[&str] = &["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"];

/// A table in memory: Arrow batches sharing one schema.
#[derive(Debug, Clone)]
pub struct Table {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// The logical column types Flywheel exposes to users.
pub fn type_name(dt: &DataType) -> &'static str {
    match dt {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => "int",
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => "int",
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "float",
        DataType::Boolean => "bool",
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => "timestamp",
        _ => "string",
    }
}

pub fn is_numeric(dt: &DataType) -> bool {
    matches!(type_name(dt), "int" | "float" | "bool")
}

impl Table {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.schema.index_of(name).ok()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.schema.fields().iter().map(|f| f.name().clone()).collect()
    }

    /// A column's values as f64 (bool → 0/1), NaN where missing or not a number.
    pub fn f64_values(&self, i: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.rows());
        for b in &self.batches {
            let col = b.column(i);
            let cast = if col.data_type() == &DataType::Boolean {
                arrow_cast::cast(
                    &arrow_cast::cast(col, &DataType::UInt8).unwrap_or_else(|_| col.clone()),
                    &DataType::Float64,
                )
            } else {
                arrow_cast::cast(col, &DataType::Float64)
            };
            match cast.ok().as_ref().and_then(|a| a.as_any().downcast_ref::<arrow_array::Float64Array>()) {
                Some(a) => {
                    let start = out.len();
                    out.extend_from_slice(a.values());
                    if let Some(nulls) = a.nulls().filter(|n| n.null_count() > 0) {
                        for (v, valid) in out[start..].iter_mut().zip(nulls.iter()) {
                            if !valid {
                                *v = f64::NAN;
                            }
                        }
                    }
                }
                None => out.extend(std::iter::repeat_n(f64::NAN, b.num_rows())),
            }
        }
        out
    }

    /// A column's values as f64 (bool → 0/1), `None` where missing or NaN.
    pub fn f64_column(&self, i: usize) -> Vec<Option<f64>> {
        self.f64_values(i).into_iter().map(|v| (!v.is_nan()).then_some(v)).collect()
    }

    /// A column's values as dictionary-encoded text: each distinct value
    /// once, and a code per row.
    pub fn text(&self, i: usize) -> Result<flywheel_ml::Text, ArrowError> {
        let arrays: Vec<arrow_array::ArrayRef> =
            self.batches.iter().map(|b| arrow_cast::cast(b.column(i), &DataType::Utf8)).collect::<Result<_, _>>()?;
        let strings: Vec<&arrow_array::StringArray> =
            arrays.iter().filter_map(|a| a.as_any().downcast_ref::<arrow_array::StringArray>()).collect();
        Ok(flywheel_ml::Text::encode(strings.into_iter().flat_map(|a| a.iter())))
    }

    /// A column's values as text, `None` where missing.
    pub fn str_column(&self, i: usize) -> Vec<Option<String>> {
        let mut out = Vec::with_capacity(self.rows());
        for b in &self.batches {
            match arrow_cast::cast(b.column(i), &DataType::Utf8) {
                Ok(a) => {
                    let a = a.as_any().downcast_ref::<arrow_array::StringArray>().cloned();
                    match a {
                        Some(a) => out.extend(a.iter().map(|v| v.map(str::to_string))),
                        None => out.extend(std::iter::repeat_n(None, b.num_rows())),
                    }
                }
                Err(_) => out.extend(std::iter::repeat_n(None, b.num_rows())),
            }
        }
        out
    }

    /// Keeps the rows where `mask` is true.
    pub fn filter(&self, mask: &[bool]) -> Result<Table, ArrowError> {
        let mut offset = 0;
        let mut batches = Vec::with_capacity(self.batches.len());
        for b in &self.batches {
            let m = arrow_array::BooleanArray::from(mask[offset..offset + b.num_rows()].to_vec());
            offset += b.num_rows();
            batches.push(arrow_select::filter::filter_record_batch(b, &m)?);
        }
        Ok(Table { schema: self.schema.clone(), batches })
    }

    /// Drops columns by name (names not present are ignored).
    pub fn without(&self, drop: &[String]) -> Result<Table, ArrowError> {
        let keep: Vec<usize> =
            (0..self.schema.fields().len()).filter(|&i| !drop.contains(self.schema.field(i).name())).collect();
        let schema = Arc::new(self.schema.project(&keep)?);
        let batches = self.batches.iter().map(|b| b.project(&keep)).collect::<Result<_, _>>()?;
        Ok(Table { schema, batches })
    }
}

/// Seconds since 1970 of a date or timestamp column (`None` where
/// missing); an empty vector for any other type.
pub fn seconds(col: &arrow_array::ArrayRef) -> Vec<Option<f64>> {
    use arrow_array::{Date32Array, TimestampMicrosecondArray};
    let any = col.as_any();
    if let Some(a) = any.downcast_ref::<Date32Array>() {
        return a.iter().map(|d| d.map(|d| f64::from(d) * 86_400.0)).collect();
    }
    if let Some(a) = any.downcast_ref::<TimestampMicrosecondArray>() {
        return a.iter().map(|t| t.map(|t| t as f64 / 1e6)).collect();
    }
    // Parquet written elsewhere may hold other units.
    match arrow_cast::cast(col, &DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None)) {
        Ok(c) if c.data_type() != col.data_type() => seconds(&c),
        _ => Vec::new(),
    }
}

/// Options for reading a file.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Declared column types (`int`, `float`, `string`, `bool`, `timestamp`) that override inference.
    pub columns: BTreeMap<String, String>,
    /// Values read as missing; `None` means [`DEFAULT_MISSING`].
    pub missing_values: Option<Vec<String>>,
    /// The CSV delimiter; `None` detects comma, semicolon, tab or pipe.
    pub delimiter: Option<u8>,
    /// Types for these columns when the file has them (a model's
    /// signature); `columns` wins. `float` keeps a bool column bool.
    pub hints: BTreeMap<String, String>,
}

pub(crate) fn open_file(path: &Path) -> Result<File, DataError> {
    File::open(path).map_err(|source| DataError::Open { path: path.to_path_buf(), source })
}

/// A stream of record batches from a file, read in bounded memory.
pub struct Batches {
    pub schema: SchemaRef,
    pub(crate) iter: Box<dyn Iterator<Item = Result<RecordBatch, DataError>> + Send>,
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.iter.next()
    }
}

impl Batches {
    pub fn collect_table(self) -> Result<Table, DataError> {
        let schema = self.schema.clone();
        let batches = self.collect::<Result<Vec<_>, _>>()?;
        Ok(Table { schema, batches })
    }
}

/// "; did you mean `x`?" or nothing.
pub fn suggest(word: &str, candidates: &[&str]) -> String {
    flywheel_core::did_you_mean(word, candidates.iter().copied())
}
