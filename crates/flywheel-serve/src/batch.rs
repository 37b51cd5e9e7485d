//! A request's rows as the handlers pass them from the body to the model,
//! the log and back to the spares: a frame, or for a model that reads
//! numbers alone, its single row as read. A one-row request of twenty
//! numbers made twenty one-value columns, then took them apart again:
//! half of what its prediction cost besides reading the numbers.

use crate::served::Served;
use flywheel_ml::{Column, Frame};

/// The rows of one request.
pub enum Batch {
    Frame(Frame),
    /// One row, a value per input in the model's order (missing as NaN),
    /// for a model [`Served::takes_rows`] says reads it so.
    Row(Vec<f64>),
}

impl Batch {
    pub fn rows(&self) -> usize {
        match self {
            Batch::Frame(f) => f.rows(),
            Batch::Row(_) => 1,
        }
    }

    /// The rows as a frame on the model's input list, as the general path
    /// would have read them.
    pub fn to_frame(&self, served: &Served) -> Frame {
        match self {
            Batch::Frame(f) => f.clone(),
            Batch::Row(values) => row_frame(served, values),
        }
    }

    /// [`to_frame`](Self::to_frame), without a copy of a frame.
    pub fn into_frame(self, served: &Served) -> Frame {
        match self {
            Batch::Frame(f) => f,
            Batch::Row(values) => {
                let frame = row_frame(served, &values);
                crate::columns::recycle_row(values);
                frame
            }
        }
    }

    /// Gives the rows' memory to this thread's spares, for the next
    /// requests' columns and rows.
    pub fn recycle(self) {
        match self {
            Batch::Frame(f) => crate::columns::recycle(f),
            Batch::Row(values) => crate::columns::recycle_row(values),
        }
    }

    /// Input `i` (in the model's order) of these rows: a column of the
    /// frame, or the row's value.
    pub fn input(&self, served: &Served, i: usize) -> Option<Input<'_>> {
        match self {
            Batch::Frame(f) if f.has_names(served.input_list()) => f.column_index(i).map(Input::Column),
            Batch::Frame(f) => f.column_at(i, served.input_names_shared().get(i)?).map(Input::Column),
            Batch::Row(values) => values.get(i).map(|v| Input::Value(*v)),
        }
    }
}

/// One input of a batch.
pub enum Input<'a> {
    Column(&'a Column),
    Value(f64),
}

fn row_frame(served: &Served, values: &[f64]) -> Frame {
    let columns = values.iter().map(|v| Column::Num(vec![*v])).collect();
    // As long as the list: a row is read one value per input.
    Frame::with_names(served.input_list().clone(), columns).unwrap_or_default()
}
