//! Models as artifact files (the format itself is `flywheel_ml::model`),
//! and tables turned into the frames that transforms and models read.

use crate::DataError;
use crate::table::Table;
use arrow_array::ArrayRef;
use arrow_schema::DataType;
use flywheel_ml::{Column, Frame, Model};
use std::path::Path;

/// Reads a model file: Flywheel's JSON format, or an ONNX file that
/// carries its signature in `metadata_props` (what a `command` step that
/// trains elsewhere writes to its model output).
pub fn load(path: &Path) -> Result<Model, DataError> {
    let bytes = std::fs::read(path)
        .map_err(|source| DataError::Io { context: format!("cannot read model {}", path.display()), source })?;
    if bytes.first().is_some_and(|b| *b == b'{') {
        return Model::from_json(&bytes).map_err(|source| DataError::ModelFile { path: path.to_path_buf(), source });
    }
    flywheel_ml::model::onnx_estimator::import(bytes, None, &path.display().to_string())
        .map_err(|source| DataError::NotAModel { source })
}

/// Writes a model file atomically.
pub fn save(path: &Path, model: &Model) -> Result<(), DataError> {
    let text = String::from_utf8(model.to_json()).map_err(|e| DataError::Frame(e.to_string()))?;
    crate::atomic::write_atomic(path, &text)
        .map_err(|source| DataError::Io { context: format!("cannot write model {}", path.display()), source })
}

/// The column types a model's inputs were trained with, to read serving
/// data the way training read it: numbers as `float`, dates a `datetime`
/// transform reads as `timestamp`, other text as `string`.
pub fn signature_types(model: &Model) -> std::collections::BTreeMap<String, String> {
    use flywheel_ml::frame::ColumnKind;
    use flywheel_ml::transform::Encoder;
    let dates = |name: &str| {
        model.transform.columns.iter().any(|c| c.column == name && matches!(c.encoder, Encoder::Datetime { .. }))
    };
    model
        .signature
        .inputs
        .iter()
        .map(|i| {
            let ty = match i.kind {
                ColumnKind::Number => "float",
                ColumnKind::Text if dates(&i.name) => "timestamp",
                ColumnKind::Text => "string",
            };
            (i.name.clone(), ty.to_string())
        })
        .collect()
}

/// The frame a model reads from `t`: its signature's input columns, every
/// one of which `t` must have (the missing ones are named, with the closest
/// column `t` has).
pub fn model_frame(model: &Model, t: &Table) -> Result<Frame, DataError> {
    let names = t.column_names();
    let inputs: Vec<String> = model.signature.inputs.iter().map(|i| i.name.clone()).collect();
    let missing: Vec<String> = inputs
        .iter()
        .filter(|i| !names.contains(i))
        .map(|i| {
            let hint = flywheel_core::closest(i, names.iter().map(String::as_str))
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            format!("`{i}`{hint}")
        })
        .collect();
    if !missing.is_empty() {
        return Err(DataError::Frame(format!(
            "the model needs columns the data does not have: {}",
            missing.join(", ")
        )));
    }
    to_frame(t, &inputs)
}

/// The named columns of `t` as a frame: numbers (and booleans as 0/1) with
/// NaN for missing, everything else as text.
pub fn to_frame(t: &Table, columns: &[String]) -> Result<Frame, DataError> {
    let mut frame = Frame::new();
    for name in columns {
        let i = t.column_index(name).ok_or_else(|| DataError::Frame(format!("the data has no column `{name}`")))?;
        let col = if crate::table::is_numeric(t.schema.field(i).data_type()) {
            Column::Num(t.f64_values(i))
        } else {
            Column::Text(
                t.text(i).map_err(|e| DataError::Frame(format!("column `{name}` cannot be read as text: {e}")))?,
            )
        };
        frame.push(name.clone(), col)?;
    }
    Ok(frame)
}

/// Writes `t` with the predictions appended (`prediction`, and for
/// classification one `probability(<class>)` column per class) to `path`,
/// as Parquet, or as CSV when the name ends in `.csv`. Atomic: a temporary
/// file renamed into place.
pub fn write_predictions(
    t: &Table,
    model: &Model,
    pred: &flywheel_ml::Prediction,
    path: &Path,
) -> Result<(), DataError> {
    use arrow_array::{Float64Array, RecordBatch, StringArray};
    use arrow_schema::{Field, Schema};
    use std::sync::Arc;
    let mut fields: Vec<Field> = t.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    match pred {
        flywheel_ml::Prediction::Values(_) => fields.push(Field::new("prediction", DataType::Float64, false)),
        flywheel_ml::Prediction::Classes { .. } => {
            fields.push(Field::new("prediction", DataType::Utf8, false));
            for c in &model.classes {
                fields.push(Field::new(format!("probability({c})"), DataType::Float64, false));
            }
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let mut batches = Vec::with_capacity(t.batches.len());
    let mut offset = 0;
    for b in &t.batches {
        let n = b.num_rows();
        let mut cols: Vec<ArrayRef> = b.columns().to_vec();
        match pred {
            flywheel_ml::Prediction::Values(v) => {
                cols.push(Arc::new(Float64Array::from(v[offset..offset + n].to_vec())))
            }
            flywheel_ml::Prediction::Classes { probabilities, labels } => {
                cols.push(Arc::new(StringArray::from_iter_values(
                    labels[offset..offset + n].iter().map(|&l| model.classes[l].as_str()),
                )));
                for c in 0..probabilities.cols {
                    cols.push(Arc::new(Float64Array::from_iter_values(
                        (offset..offset + n).map(|i| probabilities.get(i, c)),
                    )));
                }
            }
        }
        batches.push(RecordBatch::try_new(schema.clone(), cols).map_err(|e| DataError::Frame(e.to_string()))?);
        offset += n;
    }
    let out = Table { schema, batches };
    let csv = path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".csv"));
    crate::atomic::write_atomic_with(path, |tmp| -> std::io::Result<()> {
        if csv {
            let mut w = arrow_csv::Writer::new(std::fs::File::create(tmp)?);
            out.batches.iter().try_for_each(|b| w.write(b)).map_err(std::io::Error::other)
        } else {
            crate::table::write_parquet(tmp, &out).map_err(std::io::Error::other)
        }
    })
    .map_err(|e| DataError::Frame(format!("cannot write {}: {e}", path.display())))
}
