//! The rows waiting to be written for one model version and hour, kept as
//! columns the handlers append to: a logged request costs the copy of its
//! values, not an allocation per input or a frame handed to another thread
//! (which glibc's and most allocators' cross-thread frees make dear).
//!
//! A `Pending` splits in two when it is written: its [`Requests`] (ids,
//! times, arms: what the index and feedback lookups need) and its columns,
//! which become the Arrow batch of the segment.

use super::Entry;
use super::segment::{FIXED, PREDICTION, input_column};
use crate::batch::{Batch, Input};
use crate::served::Served;
use arrow_array::builder::{BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
use flywheel_core::ModelRef;
use flywheel_metadata::{LoggedRequest, RequestRow};
use flywheel_ml::{Column, ColumnKind, Prediction};
use std::sync::Arc;

pub(crate) const HOUR_US: i64 = 3_600_000_000;

/// One logged request, its id being `ids[id_start..id_end]`.
struct Req {
    id_start: usize,
    id_end: usize,
    rows: usize,
    at_us: i64,
    latency_us: i64,
    arm: usize,
    shadow: bool,
}

/// The requests of a group: what indexing and feedback lookups read.
pub(crate) struct Requests {
    pub served: Arc<Served>,
    /// Hours since 1970, UTC.
    pub hour: i64,
    ids: String,
    reqs: Vec<Req>,
    arms: Vec<ModelRef>,
    /// Predicted rows, over all the requests.
    pub rows: usize,
}

/// Numbers are kept as the frame has them (NaN for missing) and copied
/// whole, their nulls found once at the flush: an Arrow builder took a
/// null bit per value, on the handler's time.
enum Values {
    Num(Vec<f64>),
    Text(StringBuilder),
}

enum Predicted {
    Values(Vec<f64>),
    /// The class index per row (`NO_CLASS` when none), and a probability
    /// column per class.
    Classes {
        label: Vec<u32>,
        proba: Vec<Vec<f64>>,
    },
}

const NO_CLASS: u32 = u32::MAX;

/// Rows of one model version and hour, waiting.
pub(crate) struct Pending {
    pub requests: Requests,
    inputs: Vec<Values>,
    predicted: Predicted,
}

impl Pending {
    pub fn new(served: &Arc<Served>, hour: i64) -> Self {
        let inputs = served
            .model
            .signature
            .inputs
            .iter()
            .map(|i| match i.kind {
                ColumnKind::Number => Values::Num(Vec::new()),
                ColumnKind::Text => Values::Text(StringBuilder::new()),
            })
            .collect();
        let predicted = if served.is_classifier() {
            let proba = served.model.classes.iter().map(|_| Vec::new()).collect();
            Predicted::Classes { label: Vec::new(), proba }
        } else {
            Predicted::Values(Vec::new())
        };
        let requests =
            Requests { served: served.clone(), hour, ids: String::new(), reqs: Vec::new(), arms: Vec::new(), rows: 0 };
        Pending { requests, inputs, predicted }
    }

    /// Whether `e` belongs here.
    pub fn holds(&self, served: &Arc<Served>, hour: i64) -> bool {
        self.requests.hour == hour && Arc::ptr_eq(&self.requests.served, served)
    }

    pub fn append(&mut self, e: &Entry) {
        let rows = e.batch.rows();
        let r = &mut self.requests;
        let arm = match r.arms.iter().position(|a| a == e.arm) {
            Some(i) => i,
            None => {
                r.arms.push(e.arm.clone());
                r.arms.len() - 1
            }
        };
        let id_start = r.ids.len();
        r.ids.push_str(e.request_id);
        let (at_us, latency_us, shadow) = (e.at_us, e.latency_us, e.shadow);
        r.reqs.push(Req { id_start, id_end: r.ids.len(), rows, at_us, latency_us, arm, shadow });
        r.rows += rows;
        match e.batch {
            // A value each, straight: a row's inputs are numbers, in order.
            Batch::Row(values) if values.len() == self.inputs.len() => {
                for (out, v) in self.inputs.iter_mut().zip(values) {
                    if let Values::Num(column) = out {
                        column.push(*v);
                    }
                }
            }
            batch => {
                for (i, out) in self.inputs.iter_mut().enumerate() {
                    append_input(out, batch.input(&r.served, i), rows);
                }
            }
        }
        append_prediction(&mut self.predicted, e.prediction, &r.served.model.classes, rows);
    }

    /// The requests, and the rows as one record batch.
    pub fn finish(mut self) -> (Requests, Result<RecordBatch, ArrowError>) {
        let r = &self.requests;
        let mut fields = fixed_fields();
        let mut columns = r.fixed_columns();
        for (input, values) in r.served.model.signature.inputs.iter().zip(&mut self.inputs) {
            let name = input_column(&input.name);
            let (dtype, array): (DataType, ArrayRef) = match values {
                Values::Num(v) => (DataType::Float64, Arc::new(numbers(std::mem::take(v)))),
                Values::Text(b) => (DataType::Utf8, Arc::new(b.finish())),
            };
            fields.push(Field::new(name, dtype, true));
            columns.push(array);
        }
        match &mut self.predicted {
            Predicted::Values(v) => {
                fields.push(Field::new(PREDICTION, DataType::Float64, true));
                columns.push(Arc::new(numbers(std::mem::take(v))));
            }
            Predicted::Classes { label, proba } => {
                let classes = &r.served.model.classes;
                fields.push(Field::new(PREDICTION, DataType::Utf8, true));
                let labels = label.iter().map(|&l| classes.get(l as usize));
                columns.push(Arc::new(arrow_array::StringArray::from_iter(labels)));
                for (class, v) in classes.iter().zip(proba) {
                    fields.push(Field::new(format!("probability({class})"), DataType::Float64, true));
                    columns.push(Arc::new(numbers(std::mem::take(v))));
                }
            }
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns);
        (self.requests, batch)
    }
}

fn append_input(out: &mut Values, input: Option<Input>, rows: usize) {
    match (out, input) {
        (Values::Num(v), Some(Input::Value(x))) => v.push(x),
        // One row, most requests: a push, not a copy call.
        (Values::Num(v), Some(Input::Column(Column::Num(x)))) if x.len() == 1 => v.push(x[0]),
        (Values::Num(v), Some(Input::Column(Column::Num(x)))) => v.extend_from_slice(x),
        (Values::Text(b), Some(Input::Column(Column::Text(t)))) => {
            (0..t.len()).for_each(|i| b.append_option(t.get(i)));
        }
        (Values::Num(v), _) => v.resize(v.len() + rows, f64::NAN),
        (Values::Text(b), _) => (0..rows).for_each(|_| b.append_null()),
    }
}

fn append_prediction(out: &mut Predicted, pred: &Prediction, classes: &[String], rows: usize) {
    match (out, pred) {
        (Predicted::Values(v), Prediction::Values(x)) => v.extend_from_slice(x),
        (Predicted::Classes { label, proba }, Prediction::Classes { probabilities, labels }) => {
            let class = |l: usize| if l < classes.len() { u32::try_from(l).unwrap_or(NO_CLASS) } else { NO_CLASS };
            label.extend(labels.iter().map(|&l| class(l)));
            for (j, v) in proba.iter_mut().enumerate() {
                if j < probabilities.cols {
                    v.extend((0..labels.len()).map(|i| probabilities.get(i, j)));
                } else {
                    v.resize(v.len() + labels.len(), f64::NAN);
                }
            }
        }
        (Predicted::Values(v), _) => v.resize(v.len() + rows, f64::NAN),
        (Predicted::Classes { label, proba }, _) => {
            label.resize(label.len() + rows, NO_CLASS);
            proba.iter_mut().for_each(|v| v.resize(v.len() + rows, f64::NAN));
        }
    }
}

/// A column of numbers, NaN written as null (missing, as the frame means it).
fn numbers(values: Vec<f64>) -> arrow_array::Float64Array {
    let nulls = values
        .iter()
        .any(|x| x.is_nan())
        .then(|| arrow_buffer::NullBuffer::from_iter(values.iter().map(|x| !x.is_nan())));
    arrow_array::Float64Array::new(values.into(), nulls)
}

fn fixed_fields() -> Vec<Field> {
    let types = [
        DataType::Utf8,
        DataType::Int64,
        DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        DataType::Utf8,
        DataType::Int64,
        DataType::Utf8,
        DataType::Boolean,
        DataType::Int64,
    ];
    FIXED.iter().zip(types).map(|(name, t)| Field::new(*name, t, false)).collect()
}

impl Requests {
    fn id(&self, r: &Req) -> &str {
        &self.ids[r.id_start..r.id_end]
    }

    /// The columns every segment starts with (`FIXED`), one row per
    /// predicted row.
    fn fixed_columns(&self) -> Vec<ArrayRef> {
        let (rows, served) = (self.rows, &self.served);
        let arms: Vec<String> = self.arms.iter().map(ToString::to_string).collect();
        // The exact bytes of each string column, so neither grows by copies
        // (a made id is 36 bytes, an arm often more than 20).
        let id_bytes = self.reqs.iter().map(|r| (r.id_end - r.id_start) * r.rows).sum();
        let arm_bytes = self.reqs.iter().map(|r| arms[r.arm].len() * r.rows).sum();
        let mut id = StringBuilder::with_capacity(rows, id_bytes);
        let mut row = Int64Builder::with_capacity(rows);
        let mut time = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("+00:00");
        let mut arm = StringBuilder::with_capacity(rows, arm_bytes);
        let mut shadow = BooleanBuilder::with_capacity(rows);
        let mut latency = Int64Builder::with_capacity(rows);
        for r in &self.reqs {
            for i in 0..r.rows {
                id.append_value(self.id(r));
                row.append_value(i as i64);
                time.append_value(r.at_us);
                arm.append_value(&arms[r.arm]);
                shadow.append_value(r.shadow);
                latency.append_value(r.latency_us);
            }
        }
        let model = arrow_array::StringArray::from_iter_values(std::iter::repeat_n(served.name.as_str(), rows));
        let version = arrow_array::Int64Array::from_iter_values(std::iter::repeat_n(served.version, rows));
        vec![
            Arc::new(id.finish()),
            Arc::new(row.finish()),
            Arc::new(time.finish()),
            Arc::new(model),
            Arc::new(version),
            Arc::new(arm.finish()),
            Arc::new(shadow.finish()),
            Arc::new(latency.finish()),
        ]
    }

    /// The first and last time of a request here.
    pub fn span(&self) -> (i64, i64) {
        let times = self.reqs.iter().map(|r| r.at_us);
        (times.clone().min().unwrap_or(0), times.max().unwrap_or(0))
    }

    /// Every request, as the index records it.
    pub fn rows(&self) -> impl Iterator<Item = RequestRow<'_>> {
        self.reqs.iter().map(|r| RequestRow { request_id: self.id(r), rows: r.rows as i64, at_us: r.at_us })
    }

    /// The request with this id, if it is here.
    pub fn find(&self, id: &str) -> Option<LoggedRequest> {
        self.reqs.iter().find(|r| self.id(r) == id).map(|r| self.logged_request(r))
    }

    fn logged_request(&self, r: &Req) -> LoggedRequest {
        LoggedRequest {
            request_id: self.id(r).to_string(),
            model_name: self.served.name.clone(),
            version: self.served.version,
            rows: r.rows as i64,
            target: super::target_kind(&self.served),
            at_us: r.at_us,
        }
    }
}
