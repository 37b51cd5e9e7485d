//! Reading and writing tables: CSV (plain or gzip, through `delimited.rs`)
//! and Parquet in, recognised by content; Parquet and JSON out; errors that
//! name the file, the line and the column.

use crate::DataError;
use crate::batch::open_file;
pub use crate::batch::{
    Batches, DEFAULT_MISSING, INFER_ROWS, ReadOptions, Table, is_numeric, seconds, suggest, type_name,
};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

fn is_parquet(path: &Path) -> Result<bool, DataError> {
    let mut f = open_file(path)?;
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

/// Opens CSV, gzip-compressed CSV or Parquet as a stream of batches. A CSV
/// stream may end in [`DataError::Widened`]: use [`read_batches`].
pub fn open_batches(path: &Path, opts: &ReadOptions) -> Result<Batches, DataError> {
    if is_parquet(path)? { open_parquet_batches(path) } else { crate::delimited::open_csv_batches(path, opts) }
}

fn open_parquet_batches(path: &Path) -> Result<Batches, DataError> {
    let invalid = |e: parquet::errors::ParquetError| DataError::Invalid {
        path: path.to_path_buf(),
        message: format!("invalid Parquet: {e}"),
    };
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open_file(path)?).map_err(invalid)?;
    let schema = builder.schema().clone();
    let reader = builder.with_batch_size(8192).build().map_err(invalid)?;
    let owned = path.to_path_buf();
    let iter = reader.map(move |b| {
        b.map_err(|e| DataError::Invalid { path: owned.clone(), message: format!("invalid Parquet: {e}") })
    });
    Ok(Batches { schema, iter: Box::new(iter) })
}

/// Writes a table as Parquet (snappy).
pub fn write_parquet(path: &Path, table: &Table) -> Result<(), DataError> {
    let werr = |message: String| DataError::Write { path: path.to_path_buf(), message };
    let file = File::create(path).map_err(|e| werr(e.to_string()))?;
    parquet_into(file, table).map_err(werr)
}

/// The table as Parquet bytes, as [`write_parquet`] writes them.
pub fn parquet_bytes(table: &Table) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::new();
    parquet_into(&mut out, table)
        .map_err(|message| DataError::Write { path: std::path::PathBuf::from("<memory>"), message })?;
    Ok(out)
}

fn parquet_into<W: std::io::Write + Send>(out: W, table: &Table) -> Result<(), String> {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(out, table.schema.clone(), Some(props)).map_err(|e| e.to_string())?;
    for b in &table.batches {
        w.write(b).map_err(|e| e.to_string())?;
    }
    w.close().map_err(|e| e.to_string())?;
    Ok(())
}

/// Reads a small text file that a previous step wrote.
pub fn read_json(path: &Path) -> Result<serde_json::Value, DataError> {
    serde_json::from_reader(BufReader::new(open_file(path)?))
        .map_err(|e| DataError::Invalid { path: path.to_path_buf(), message: format!("invalid JSON: {e}") })
}

pub fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), DataError> {
    let text = serde_json::to_vec_pretty(v)
        .map_err(|e| DataError::Write { path: path.to_path_buf(), message: e.to_string() })?;
    std::fs::write(path, text).map_err(|e| DataError::Write { path: path.to_path_buf(), message: e.to_string() })
}

/// Reads a whole CSV file (plain or gzip), read again with wider types when
/// a later row needs them; a header without rows is an error.
pub fn read_csv(path: &Path, opts: &ReadOptions) -> Result<Table, DataError> {
    let table = read_batches(path, opts, Batches::collect_table)?;
    if table.rows() == 0 {
        return Err(DataError::NoRows { path: path.to_path_buf() });
    }
    Ok(table)
}
