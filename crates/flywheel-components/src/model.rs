//! Models as artifact files (the format itself is `flywheel_ml::model`),
//! and tables turned into the frames that transforms and models read.

use crate::table::Table;
use arrow_array::{Array, ArrayRef, StringArray};
use arrow_schema::DataType;
use flywheel_core::ExecError;
use flywheel_ml::{Column, Frame, MlError, Model, Text};
use std::path::Path;

pub fn ml_error(e: MlError) -> ExecError {
    ExecError::failed(e.to_string())
}

pub fn load(path: &Path) -> Result<Model, ExecError> {
    let bytes = std::fs::read(path).map_err(|e| ExecError::io(format!("cannot read model {}", path.display()), e))?;
    Model::from_json(&bytes).map_err(|e| ExecError::failed(format!("{}: {e}", path.display())))
}

pub fn save(path: &Path, model: &Model) -> Result<(), ExecError> {
    let text = String::from_utf8(model.to_json()).map_err(|e| ExecError::failed(e.to_string()))?;
    crate::html::write_atomic(path, &text)
        .map_err(|e| ExecError::io(format!("cannot write model {}", path.display()), e))
}

/// The named columns of `t` as a frame: numbers (and booleans as 0/1) with
/// NaN for missing, everything else as text.
pub fn to_frame(t: &Table, columns: &[String]) -> Result<Frame, ExecError> {
    let mut frame = Frame::new();
    for name in columns {
        let i = t.column_index(name).ok_or_else(|| ExecError::failed(format!("the data has no column `{name}`")))?;
        let col = if crate::table::is_numeric(t.schema.field(i).data_type()) {
            Column::Num(t.f64_column(i).into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        } else {
            let arrays: Vec<ArrayRef> = t
                .batches
                .iter()
                .map(|b| arrow_cast::cast(b.column(i), &DataType::Utf8))
                .collect::<Result<_, _>>()
                .map_err(|e| ExecError::failed(format!("column `{name}` cannot be read as text: {e}")))?;
            let strings: Vec<&StringArray> =
                arrays.iter().filter_map(|a| a.as_any().downcast_ref::<StringArray>()).collect();
            Column::Text(Text::encode(strings.into_iter().flat_map(|a| a.iter())))
        };
        frame.push(name.clone(), col).map_err(ml_error)?;
    }
    Ok(frame)
}
