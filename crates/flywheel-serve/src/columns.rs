//! Request values turned into the frame a model reads: one column per
//! signature input, numbers (`null` → NaN, a missing value) or text, each
//! refusal naming the column, and the row when there is one.

use crate::served::Served;
use crate::{Result, bad};
use flywheel_ml::{Column, ColumnKind, Frame, Text};
use serde_json::Value;

/// One input column being filled.
pub enum Builder {
    Num(Vec<f64>),
    Text(Vec<Option<String>>),
}

impl Builder {
    /// An empty column of `kind` with room for `rows` (capped), a number
    /// column recycled when this thread has one.
    pub fn new(kind: ColumnKind, rows: usize) -> Self {
        with_spares(|spares| spares.builder(kind, rows))
    }

    /// Adds one JSON value; `at` says where it came from for the error.
    pub fn push_json(&mut self, v: &Value, column: &str, at: &dyn Fn() -> String) -> Result<()> {
        match (self, v) {
            (Builder::Num(out), Value::Null) => out.push(f64::NAN),
            (Builder::Num(out), Value::Number(n)) => out.push(n.as_f64().unwrap_or(f64::NAN)),
            (Builder::Num(out), Value::Bool(b)) => out.push(f64::from(u8::from(*b))),
            (Builder::Text(out), Value::Null) => out.push(None),
            (Builder::Text(out), Value::String(s)) => out.push(Some(s.clone())),
            (Builder::Num(_), other) => {
                return Err(bad(format!("input `{column}`{}: expected a number, got {}", at(), describe(other))));
            }
            (Builder::Text(_), other) => {
                return Err(bad(format!(
                    "input `{column}`{}: expected text (a string), got {}",
                    at(),
                    describe(other)
                )));
            }
        }
        Ok(())
    }

    /// Adds one CSV field: empty is missing; numbers must parse.
    pub fn push_field(&mut self, field: &str, column: &str, line: u64) -> Result<()> {
        match self {
            Builder::Num(out) if field.trim().is_empty() => out.push(f64::NAN),
            Builder::Num(out) => {
                out.push(field.trim().parse::<f64>().map_err(|_| {
                    bad(format!("CSV line {line}, column `{column}`: expected a number, got `{field}`"))
                })?)
            }
            Builder::Text(out) if field.is_empty() => out.push(None),
            Builder::Text(out) => out.push(Some(field.to_string())),
        }
        Ok(())
    }

    /// Adds decoded binary elements; the caller checked their datatype
    /// against the column's kind.
    pub fn extend(&mut self, elements: crate::binary::Elements) {
        use crate::binary::Elements;
        match (self, elements) {
            (Builder::Num(out), Elements::Num(v)) => out.extend(v),
            (Builder::Text(out), Elements::Text(v)) => out.extend(v.into_iter().map(Some)),
            // Unreachable after the datatype check; the column stays short
            // and the frame refuses its length.
            _ => {}
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Builder::Num(v) => v.len(),
            Builder::Text(v) => v.len(),
        }
    }

    #[inline]
    pub fn finish(self) -> Column {
        match self {
            Builder::Num(v) => Column::Num(v),
            Builder::Text(v) => Column::Text(Text::encode(v.iter().map(Option::as_deref))),
        }
    }
}

/// Number columns kept by [`recycle`] on this thread.
const SPARE_COLUMNS: usize = 256;
/// The largest number column kept: small requests' columns, which are
/// most requests' allocations; a large one allocates little per row.
const SPARE_ROWS: usize = 64;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<Vec<f64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[inline]
fn spare_or_new(spare: &mut Vec<Vec<f64>>, rows: usize) -> Vec<f64> {
    match spare.pop() {
        Some(mut v) => {
            v.reserve(rows);
            v
        }
        None => Vec::with_capacity(rows),
    }
}

/// This thread's spare number columns, held for the length of one visit.
pub struct Spares<'a>(&'a mut Vec<Vec<f64>>);

impl Spares<'_> {
    /// An empty column of `kind` with room for `rows` (capped at
    /// `RESERVE`), a number column from the spares when there is one.
    #[inline]
    pub fn builder(&mut self, kind: ColumnKind, rows: usize) -> Builder {
        let rows = rows.min(crate::RESERVE);
        match kind {
            ColumnKind::Number => Builder::Num(spare_or_new(self.0, rows)),
            ColumnKind::Text => Builder::Text(Vec::with_capacity(rows)),
        }
    }
}

/// `f` with this thread's spares: one visit for all of a request's columns.
pub fn with_spares<R>(f: impl FnOnce(&mut Spares) -> R) -> R {
    SPARE.with_borrow_mut(|spare| f(&mut Spares(spare)))
}

/// An empty column of each of `kinds`, as [`Builder::new`] makes them, the
/// spares taken in one visit to this thread's.
pub fn builders(kinds: &[ColumnKind], rows: usize) -> Vec<Builder> {
    with_spares(|spares| kinds.iter().map(|kind| spares.builder(*kind, rows)).collect())
}

/// Keeps the small number columns of an answered request's frame for the
/// next requests on this thread ([`Builder::new`]), instead of a free now
/// and a malloc then for each.
pub fn recycle(frame: Frame) {
    SPARE.with_borrow_mut(|spare| {
        for column in frame.into_columns() {
            if let Column::Num(v) = column {
                keep(spare, v);
            }
        }
    });
}

/// Keeps `values` among the spares when it is small and they are few.
#[inline]
fn keep(spare: &mut Vec<Vec<f64>>, mut values: Vec<f64>) {
    if values.capacity() <= SPARE_ROWS && spare.len() < SPARE_COLUMNS {
        values.clear();
        spare.push(values);
    }
}

/// An empty row with room for `len` values, from this thread's spares
/// when it has one (a row of up to `SPARE_ROWS` inputs is kept).
pub fn spare_row(len: usize) -> Vec<f64> {
    with_spares(|spares| spare_or_new(spares.0, len))
}

/// Gives a row back to this thread's spares.
pub fn recycle_row(values: Vec<f64>) {
    SPARE.with_borrow_mut(|spare| keep(spare, values));
}

/// What a JSON value is, for an error message.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.len() > 40 => format!("the text \"{}…\"", s.chars().take(40).collect::<String>()),
        Value::String(s) => format!("the text \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A JSON body, or an error with its line and column. Python's `json`
/// (and so tritonclient and many MLflow clients) writes NaN, Infinity and
/// -Infinity bare: NaN is read as `null` (a missing value), an infinity is
/// refused as no number a model can use.
pub fn read_json(body: &[u8]) -> Result<Value> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(first) => match nan_as_null(body)? {
            Some(fixed) => serde_json::from_slice(&fixed).map_err(|_| bad(format!("malformed JSON: {first}"))),
            None => Err(bad(format!("malformed JSON: {first}"))),
        },
    }
}

/// `body` with bare `NaN` tokens (outside strings) written `null`, if it has any.
fn nan_as_null(body: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let (mut line, mut column) = (1, 1);
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if body[i..].starts_with(b"NaN") {
            out.extend_from_slice(b"null");
            (i, column, changed) = (i + 3, column + 3, true);
            continue;
        } else if body[i..].starts_with(b"Infinity") || body[i..].starts_with(b"-Infinity") {
            return Err(bad(format!(
                "JSON line {line} column {column}: Infinity is no number a model can use; send a finite number, or null (or NaN) for a missing value"
            )));
        }
        if b == b'\n' {
            (line, column) = (line + 1, 0);
        }
        column += 1;
        out.push(b);
        i += 1;
    }
    Ok(changed.then_some(out))
}

/// `given` is the input name `input`: the same string (a fast path took
/// the name from the model's list, having matched its bytes) or equal.
#[inline]
fn same_name(given: &str, input: &str) -> bool {
    std::ptr::eq(given, input) || given == input
}

/// Checks that `given` names exactly the model's inputs: the missing and
/// the unexpected ones are named (the latter with the closest input).
pub fn check_names<'a>(served: &Served, given: impl IntoIterator<Item = &'a str, IntoIter: Clone>) -> Result<()> {
    let shared = served.input_names_shared();
    // The common case, checked without a copy of the names: the model's
    // order, one comparison a name.
    let given = given.into_iter();
    if given.clone().count() == shared.len() && given.clone().zip(shared).all(|(g, i)| same_name(g, i)) {
        return Ok(());
    }
    let given: Vec<&str> = given.collect();
    // Any order, still without building a message.
    if given.len() == shared.len() && shared.iter().all(|i| given.contains(&&**i)) {
        return Ok(());
    }
    let inputs = served.input_names();
    if let Some(dup) = given.iter().enumerate().find(|(i, g)| given[..*i].contains(g)).map(|(_, g)| g) {
        return Err(bad(format!("input `{dup}` is given twice")));
    }
    let missing: Vec<String> = inputs.iter().filter(|i| !given.contains(i)).map(|i| format!("`{i}`")).collect();
    let extra: Vec<String> = given
        .iter()
        .filter(|g| !inputs.contains(g))
        .map(|g| match flywheel_core::closest(g, inputs.iter().copied()) {
            Some(c) => format!("`{g}` (did you mean `{c}`?)"),
            None => format!("`{g}`"),
        })
        .collect();
    let reads = inputs.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ");
    match (missing.is_empty(), extra.is_empty()) {
        (true, true) => Ok(()),
        (false, _) => Err(bad(format!("missing input {}: model `{}` reads {reads}", missing.join(", "), served.name))),
        (true, false) => {
            Err(bad(format!("unexpected input {}: model `{}` reads {reads}", extra.join(", "), served.name)))
        }
    }
}

/// The frame from named, filled columns, in the signature's order, under
/// the model's own (shared) input names.
pub fn frame<N: AsRef<str>>(served: &Served, columns: Vec<(N, Builder)>) -> Result<Frame> {
    let names = served.input_names_shared();
    let in_order =
        columns.len() == names.len() && columns.iter().zip(names).all(|((n, _), i)| same_name(n.as_ref(), i));
    let ordered = if in_order {
        columns.into_iter().map(|(_, col)| col.finish()).collect()
    } else {
        let mut columns: Vec<Option<(N, Builder)>> = columns.into_iter().map(Some).collect();
        let mut ordered = Vec::with_capacity(names.len());
        for input in names {
            let here = |c: &Option<(N, Builder)>| c.as_ref().is_some_and(|(n, _)| n.as_ref() == &**input);
            let Some((_, col)) = columns.iter().position(here).and_then(|at| columns[at].take()) else {
                return Err(bad(format!("missing input `{input}`")));
            };
            ordered.push(col.finish());
        }
        ordered
    };
    // On the model's own list, which its binding reads by position.
    Frame::with_names(served.input_list().clone(), ordered).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_nan_is_a_missing_value_and_infinity_is_refused_where_it_is() {
        let v = read_json(br#"{"x": [1.5, NaN, -2], "s": "NaN \" Infinity"}"#).unwrap();
        assert_eq!(v["x"][1], Value::Null);
        assert_eq!(v["s"], "NaN \" Infinity", "strings are left alone");
        let e = read_json(b"{\"x\": [1,\n -Infinity]}").unwrap_err().to_string();
        assert!(e.contains("line 2 column 2") && e.contains("Infinity"), "{e}");
        let e = read_json(b"{\"x\": [1,, NaN]}").unwrap_err().to_string();
        assert!(e.starts_with("malformed JSON") && e.contains("line 1 column 10"), "{e}");
    }
}
