//! Reading and writing tables: CSV (plain or gzip) and Parquet in, Parquet
//! out, with errors that name the file, the line and the column.

use arrow_array::{Array, RecordBatch};
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use crate::DataError;

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

fn open(path: &Path) -> Result<File, DataError> {
    File::open(path).map_err(|source| DataError::Open { path: path.to_path_buf(), source })
}

fn is_gzip(path: &Path) -> Result<bool, DataError> {
    let mut f = open(path)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(|source| DataError::Open { path: path.to_path_buf(), source })?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

fn is_parquet(path: &Path) -> Result<bool, DataError> {
    let mut f = open(path)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(|source| DataError::Open { path: path.to_path_buf(), source })?;
    Ok(n == 4 && &magic == b"PAR1")
}

/// Reads CSV, gzip-compressed CSV or Parquet, recognised by content.
pub fn read_table(path: &Path, opts: &ReadOptions) -> Result<Table, DataError> {
    if is_parquet(path)? { read_parquet(path) } else { read_csv(path, opts) }
}

pub fn read_parquet(path: &Path) -> Result<Table, DataError> {
    open_parquet_batches(path)?.collect_table()
}

/// Hands the batches of a file to `consume`; when a CSV column turns out
/// wider than its first rows showed (ints with a late decimal), hands it
/// the file again, read with the types of all rows.
pub fn read_batches<T>(
    path: &Path,
    opts: &ReadOptions,
    mut consume: impl FnMut(Batches) -> Result<T, DataError>,
) -> Result<T, DataError> {
    match consume(open_batches(path, opts)?) {
        Err(DataError::Widened { kinds, .. }) => consume(crate::delimited::widened(opts, path, &kinds)?),
        other => other,
    }
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

/// Opens CSV, gzip-compressed CSV or Parquet as a stream of batches. A CSV
/// stream may end in [`DataError::Widened`]: use [`read_batches`].
pub fn open_batches(path: &Path, opts: &ReadOptions) -> Result<Batches, DataError> {
    if is_parquet(path)? { open_parquet_batches(path) } else { open_csv_batches(path, opts) }
}

fn open_parquet_batches(path: &Path) -> Result<Batches, DataError> {
    let invalid = |e: parquet::errors::ParquetError| DataError::Invalid {
        path: path.to_path_buf(),
        message: format!("invalid Parquet: {e}"),
    };
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open(path)?).map_err(invalid)?;
    let schema = builder.schema().clone();
    let reader = builder.with_batch_size(8192).build().map_err(invalid)?;
    let owned = path.to_path_buf();
    let iter = reader.map(move |b| {
        b.map_err(|e| DataError::Invalid { path: owned.clone(), message: format!("invalid Parquet: {e}") })
    });
    Ok(Batches { schema, iter: Box::new(iter) })
}

pub(crate) fn csv_reader(path: &Path) -> Result<Box<dyn Read + Send>, DataError> {
    let gz = is_gzip(path)?;
    let f = BufReader::with_capacity(1 << 16, open(path)?);
    Ok(if gz { Box::new(flate2::read::MultiGzDecoder::new(f)) } else { Box::new(f) })
}

pub fn read_csv(path: &Path, opts: &ReadOptions) -> Result<Table, DataError> {
    let table = read_batches(path, opts, Batches::collect_table)?;
    if table.rows() == 0 {
        return Err(DataError::NoRows { path: path.to_path_buf() });
    }
    Ok(table)
}

fn open_csv_batches(path: &Path, opts: &ReadOptions) -> Result<Batches, DataError> {
    {
        let mut probe = csv_reader(path)?;
        let mut first = [0u8; 1];
        let n = probe
            .read(&mut first)
            .map_err(|e| DataError::Invalid { path: path.to_path_buf(), message: format!("cannot read: {e}") })?;
        if n == 0 {
            return Err(DataError::Empty { path: path.to_path_buf() });
        }
    }
    crate::delimited::open(crate::delimited::plan(path, opts)?)
}

/// "; did you mean `x`?" or nothing.
pub fn suggest(word: &str, candidates: &[&str]) -> String {
    flywheel_core::did_you_mean(word, candidates.iter().copied())
}

/// Turns arrow-csv's messages into ones that say where and what to do.
pub(crate) fn map_csv_error(path: &Path, e: ArrowError, schema: Option<&Schema>) -> DataError {
    let msg = e.to_string();
    let fields =
        regex::Regex::new(r"incorrect number of fields for line (\d+), expected (\d+) got (?:more than )?(\d+)").ok();
    if let Some(c) = fields.and_then(|re| re.captures(&msg)) {
        let line: usize = c[1].parse().unwrap_or(0);
        return DataError::AtLine {
            path: path.to_path_buf(),
            line,
            message: format!(
                "this row has {} fields but the header has {}; fix the row (quote values that contain commas)",
                &c[3], &c[2]
            ),
        };
    }
    if msg.to_lowercase().contains("utf-8") {
        let line =
            regex::Regex::new(r"line (\d+)").ok().and_then(|re| re.captures(&msg)).and_then(|c| c[1].parse().ok());
        let field = regex::Regex::new(r"field (\d+)")
            .ok()
            .and_then(|re| re.captures(&msg))
            .and_then(|c| c[1].parse::<usize>().ok());
        let column = field
            .and_then(|f| schema.and_then(|s| s.fields().get(f)).map(|c| format!(" (column `{}`)", c.name())))
            .unwrap_or_default();
        let message =
            format!("this row is not valid UTF-8{column}; convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8`)");
        return match line {
            Some(line) => DataError::AtLine { path: path.to_path_buf(), line, message },
            None => DataError::Invalid { path: path.to_path_buf(), message },
        };
    }
    let unequal = regex::Regex::new(r"Expected (\d+) records, found (\d+) records at line (\d+)").ok();
    if let Some(c) = unequal.and_then(|re| re.captures(&msg)) {
        return DataError::AtLine {
            path: path.to_path_buf(),
            line: c[3].parse().unwrap_or(0),
            message: format!(
                "this row has {} fields but the header has {}; fix the row (quote values that contain commas)",
                &c[2], &c[1]
            ),
        };
    }
    DataError::Invalid { path: path.to_path_buf(), message: format!("invalid CSV: {msg}") }
}

/// Writes a table as Parquet (snappy).
pub fn write_parquet(path: &Path, table: &Table) -> Result<(), DataError> {
    let werr = |message: String| DataError::Write { path: path.to_path_buf(), message };
    let file = File::create(path).map_err(|e| werr(e.to_string()))?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, table.schema.clone(), Some(props))
        .map_err(|e| werr(e.to_string()))?;
    for b in &table.batches {
        w.write(b).map_err(|e| werr(e.to_string()))?;
    }
    w.close().map_err(|e| werr(e.to_string()))?;
    Ok(())
}

/// Reads a small text file that a previous step wrote.
pub fn read_json(path: &Path) -> Result<serde_json::Value, DataError> {
    serde_json::from_reader(BufReader::new(open(path)?))
        .map_err(|e| DataError::Invalid { path: path.to_path_buf(), message: format!("invalid JSON: {e}") })
}

pub fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), DataError> {
    let text = serde_json::to_vec_pretty(v)
        .map_err(|e| DataError::Write { path: path.to_path_buf(), message: e.to_string() })?;
    std::fs::write(path, text).map_err(|e| DataError::Write { path: path.to_path_buf(), message: e.to_string() })
}
