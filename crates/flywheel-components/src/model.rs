//! Models as artifact files (the format itself is `flywheel_ml::model`),
//! and tables turned into the frames that transforms and models read.

use crate::table::Table;
use arrow_array::ArrayRef;
use arrow_schema::DataType;
use flywheel_core::ExecError;
use flywheel_ml::{Column, Frame, MlError, Model};
use std::path::Path;

pub fn ml_error(e: MlError) -> ExecError {
    match e {
        MlError::Cancelled => ExecError::Cancelled,
        e => ExecError::failed(e.to_string()),
    }
}

/// Reads a model file: Flywheel's JSON format, or an ONNX file that
/// carries its signature in `metadata_props` (what a `command` step that
/// trains elsewhere writes to its model output).
pub fn load(path: &Path) -> Result<Model, ExecError> {
    let bytes = std::fs::read(path).map_err(|e| ExecError::io(format!("cannot read model {}", path.display()), e))?;
    if bytes.first().is_some_and(|b| *b == b'{') {
        return Model::from_json(&bytes).map_err(|e| ExecError::failed(format!("{}: {e}", path.display())));
    }
    flywheel_ml::model::onnx_estimator::import(bytes, None, &path.display().to_string()).map_err(|e| {
        ExecError::failed(format!("{e} (a model file is Flywheel's JSON model or an ONNX file with its signature)"))
    })
}

pub fn save(path: &Path, model: &Model) -> Result<(), ExecError> {
    let text = String::from_utf8(model.to_json()).map_err(|e| ExecError::failed(e.to_string()))?;
    crate::html::write_atomic(path, &text)
        .map_err(|e| ExecError::io(format!("cannot write model {}", path.display()), e))
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

/// The named columns of `t` as a frame: numbers (and booleans as 0/1) with
/// NaN for missing, everything else as text.
pub fn to_frame(t: &Table, columns: &[String]) -> Result<Frame, ExecError> {
    let mut frame = Frame::new();
    for name in columns {
        let i = t.column_index(name).ok_or_else(|| ExecError::failed(format!("the data has no column `{name}`")))?;
        let col = if crate::table::is_numeric(t.schema.field(i).data_type()) {
            Column::Num(t.f64_values(i))
        } else {
            Column::Text(
                t.text(i).map_err(|e| ExecError::failed(format!("column `{name}` cannot be read as text: {e}")))?,
            )
        };
        frame.push(name.clone(), col).map_err(ml_error)?;
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
) -> Result<(), ExecError> {
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
        batches.push(RecordBatch::try_new(schema.clone(), cols).map_err(|e| ExecError::failed(e.to_string()))?);
        offset += n;
    }
    let out = Table { schema, batches };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "predictions".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = if name.ends_with(".csv") {
        std::fs::File::create(&tmp).map_err(|e| e.to_string()).and_then(|f| {
            let mut w = arrow_csv::Writer::new(f);
            out.batches.iter().try_for_each(|b| w.write(b)).map_err(|e| e.to_string())
        })
    } else {
        crate::table::write_parquet(&tmp, &out).map_err(|e| e.to_string())
    };
    let result = written.and_then(|_| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ExecError::failed(format!("cannot write {}: {e}", path.display())));
    }
    Ok(())
}
