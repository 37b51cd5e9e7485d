//! Dataset statistics in one streaming pass: record batches are read in
//! bounded memory and spread over worker threads, each keeping mergeable
//! column profiles (`flywheel_stats::profile`), merged at the end.

use crate::DataError;
use crate::table::{Batches, ReadOptions, read_batches};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema};
use flywheel_stats::profile::{Checks, ColumnProfile, EXACT_QUANTILE_LIMIT, ValueType};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::path::Path;

pub struct DatasetProfile {
    pub rows: u64,
    pub columns: Vec<(String, ColumnProfile)>,
}

fn value_type(dt: &DataType) -> ValueType {
    match crate::table::type_name(dt) {
        "int" => ValueType::Int,
        "float" => ValueType::Float,
        "bool" => ValueType::Bool,
        "timestamp" => ValueType::Timestamp,
        _ => ValueType::String,
    }
}

impl DatasetProfile {
    pub fn new(schema: &Schema, exact_limit: usize) -> Self {
        let columns = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), ColumnProfile::with_exact_limit(value_type(f.data_type()), exact_limit)))
            .collect();
        Self { rows: 0, columns }
    }

    pub fn add_batch(&mut self, b: &RecordBatch) {
        self.rows += b.num_rows() as u64;
        for (i, (_, p)) in self.columns.iter_mut().enumerate() {
            let col = b.column(i);
            p.add_missing(col.null_count() as u64);
            match p.ty {
                ValueType::String => {
                    if let Ok(a) = arrow_cast::cast(col, &DataType::Utf8)
                        && let Some(a) = a.as_any().downcast_ref::<arrow_array::StringArray>()
                    {
                        p.add_strs(a.iter().flatten());
                    }
                }
                ValueType::Bool => {
                    if let Some(a) = col.as_any().downcast_ref::<arrow_array::BooleanArray>() {
                        let xs: Vec<f64> = a.iter().flatten().map(|v| if v { 1.0 } else { 0.0 }).collect();
                        p.add_f64s(&xs);
                    }
                }
                ValueType::Timestamp => {
                    let xs: Vec<f64> = crate::table::seconds(col).into_iter().flatten().collect();
                    p.add_f64s(&xs);
                }
                _ => {
                    if let Ok(a) = arrow_cast::cast(col, &DataType::Float64)
                        && let Some(a) = a.as_any().downcast_ref::<arrow_array::Float64Array>()
                    {
                        if a.null_count() == 0 {
                            p.add_f64s(a.values());
                        } else {
                            let xs: Vec<f64> = a.iter().flatten().collect();
                            p.add_f64s(&xs);
                        }
                    }
                }
            }
        }
    }

    pub fn merge(&mut self, o: &DatasetProfile) {
        self.rows += o.rows;
        for ((_, a), (_, b)) in self.columns.iter_mut().zip(&o.columns) {
            a.merge(b);
        }
    }

    /// The JSON `flywheel stats` prints and the `statistics` artifact holds.
    pub fn to_json(&self, top_k: usize) -> Json {
        let columns: serde_json::Map<String, Json> =
            self.columns.iter().map(|(n, p)| (n.clone(), p.to_json(top_k))).collect();
        json!({ "rows": self.rows, "columns": columns })
    }
}

/// Profiles a file with `threads` workers.
pub fn profile_file(path: &Path, opts: &ReadOptions, threads: usize) -> Result<DatasetProfile, DataError> {
    profile_file_with(path, opts, threads, EXACT_QUANTILE_LIMIT, &BTreeMap::new())
}

/// Profiles a file, also counting the values that break `checks` (a
/// schema's ranges and domains) in the same pass.
pub fn profile_file_with(
    path: &Path,
    opts: &ReadOptions,
    threads: usize,
    exact_limit: usize,
    checks: &BTreeMap<String, Checks>,
) -> Result<DatasetProfile, DataError> {
    read_batches(path, opts, |batches| profile_batches(batches, threads, exact_limit, checks))
}

fn profile_batches(
    batches: Batches,
    threads: usize,
    exact_limit: usize,
    checks: &BTreeMap<String, Checks>,
) -> Result<DatasetProfile, DataError> {
    let schema = batches.schema.clone();
    let threads = threads.max(1);
    let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(threads * 2);
    let rx = std::sync::Mutex::new(rx);
    let (profiles, read) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut p = DatasetProfile::new(&schema, exact_limit);
                    for (name, col) in p.columns.iter_mut() {
                        col.checks = checks.get(name).cloned();
                    }
                    loop {
                        let next = rx.lock().map(|r| r.recv());
                        match next {
                            Ok(Ok(b)) => p.add_batch(&b),
                            _ => break,
                        }
                    }
                    p
                })
            })
            .collect();
        let mut read: Result<(), DataError> = Ok(());
        for b in batches {
            match b {
                Ok(b) => {
                    if tx.send(b).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    read = Err(e);
                    break;
                }
            }
        }
        drop(tx);
        let profiles: Vec<DatasetProfile> = workers.into_iter().filter_map(|w| w.join().ok()).collect();
        (profiles, read)
    });
    read?;
    let mut total = DatasetProfile::new(&schema, exact_limit);
    for p in &profiles {
        total.merge(p);
    }
    Ok(total)
}
