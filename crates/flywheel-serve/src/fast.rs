//! The common request bodies read straight into columns, without building
//! a `serde_json::Value` tree first (which was half the time of a
//! 1,000-row request): MLflow's `{"dataframe_split": {"columns": [...],
//! "data": [[...], ...]}}` and OIP's `{"id": ..., "inputs": [tensors]}` with
//! FP64 tensors for number columns and BYTES for text, read with the
//! strict cursor of `scan.rs`.
//!
//! A fast path only ever succeeds or gives up: on anything else (another
//! format, a field it does not take, a value of the wrong type, a bad
//! count, an escaped string) it returns `None` and the request is read
//! again by the general path, which accepts the same bodies and names what
//! is wrong. So the two cannot disagree on an error; that they read a
//! success alike is what the tests below check, body by body.

use crate::batch::Batch;
use crate::columns::{Builder, builders, check_names, frame, spare_row, with_spares};
use crate::scan::Scan;
use crate::served::{Served, TensorHead};
use flywheel_ml::{Column, ColumnKind, Frame};

/// How deep a skipped value (`"index"`, say) may nest.
const SKIP_DEPTH: usize = 8;

/// The columns of a `dataframe_split` being filled, in the model's input
/// order, and where each given column goes: `None` when given in that order.
/// For a model that takes a row, its first row is read as one first
/// (`row`), and the columns made only when a second row follows.
struct Layout {
    builders: Vec<Builder>,
    order: Option<Vec<usize>>,
    row: Option<Vec<f64>>,
    /// The rows to make room for in each column.
    room: usize,
}

/// A `dataframe_split` body, or `None` to read it the general way.
pub fn dataframe_split(served: &Served, body: &[u8]) -> Option<Batch> {
    let mut scan = Scan::new(body);
    let mut layout = None;
    scan.object(|scan, key| match (key, layout.is_none()) {
        (b"dataframe_split", true) => {
            layout = Some(split(served, scan)?);
            Some(())
        }
        _ => None,
    })?;
    scan.end()?;
    let layout = layout?;
    if let Some(row) = layout.row {
        return Some(Batch::Row(row));
    }
    let columns = layout.builders.into_iter().map(Builder::finish).collect();
    Frame::with_names(served.input_list().clone(), columns).ok().map(Batch::Frame)
}

/// `{"columns": [...], "data": [[...], ...]}`, the columns first.
fn split(served: &Served, scan: &mut Scan) -> Option<Layout> {
    let (mut layout, mut filled) = (None::<Layout>, false);
    scan.object(|scan, key| match (key, layout.as_mut()) {
        (b"columns", None) => {
            layout = Some(names(served, scan)?);
            Some(())
        }
        (b"data", Some(layout)) if !filled => {
            filled = true;
            match layout.row {
                Some(_) => data_from_row(served.input_kinds(), scan, layout),
                None => scan.list(|scan| row(scan, layout)),
            }
        }
        (b"columns" | b"data", _) => None,
        _ => scan.skip(SKIP_DEPTH),
    })?;
    layout.filter(|_| filled)
}

/// The column names, checked against the model's inputs, and an empty
/// column of each input's kind. A client sends the same column list with
/// every request: the first list in the model's order is remembered, byte
/// for byte, and a list that starts the same bytes is taken without
/// reading its names.
fn names(served: &Served, scan: &mut Scan) -> Option<Layout> {
    let inputs = served.input_names_shared();
    scan.peek()?;
    let start = scan.rest();
    let order = match served.split_columns() {
        Some(seen) if start.starts_with(seen) => {
            scan.advance(seen.len());
            None
        }
        _ => {
            let mut names = Vec::with_capacity(inputs.len());
            scan.list(|scan| {
                names.push(scan.str()?);
                Some(())
            })?;
            check_names(served, names.iter().copied()).ok()?;
            if names.iter().zip(inputs).all(|(n, i)| *n == &**i) {
                served.remember_split_columns(&start[..start.len() - scan.rest().len()]);
                None
            } else {
                Some(names.iter().map(|n| inputs.iter().position(|i| &**i == *n)).collect::<Option<Vec<_>>>()?)
            }
        }
    };
    // Room for the rows the bytes left could hold at four a value (`1, `
    // and a bracket take three), capped by `Builder::new`: a column then
    // seldom grows by steps, each a copy.
    let room = scan.rest().len() / (4 * inputs.len().max(1));
    if served.takes_rows() {
        return Some(Layout { builders: Vec::new(), order, row: Some(spare_row(inputs.len())), room });
    }
    Some(Layout { builders: builders(served.input_kinds(), room), order, row: None, room })
}

/// `data` for a layout that reads its first row as a row: it stays one
/// when it is the only row; with none, or with more, the rows go to
/// columns as [`row`] reads them.
fn data_from_row(kinds: &[ColumnKind], scan: &mut Scan, layout: &mut Layout) -> Option<()> {
    scan.expect(b'[')?;
    let mut first = layout.row.take()?;
    if scan.eat(b']') {
        crate::columns::recycle_row(first);
        layout.builders = builders(kinds, 0);
        return Some(());
    }
    row_values(scan, layout.order.as_deref(), kinds.len(), &mut first)?;
    if scan.eat(b']') {
        layout.row = Some(first);
        return Some(());
    }
    layout.builders = builders(kinds, layout.room);
    for (b, v) in layout.builders.iter_mut().zip(&first) {
        if let Builder::Num(out) = b {
            out.push(*v);
        }
    }
    crate::columns::recycle_row(first);
    loop {
        scan.expect(b',')?;
        row(scan, layout)?;
        if scan.eat(b']') {
            return Some(());
        }
    }
}

/// One row of numbers into `out` (emptied, then `n` long), in the model's
/// order: as [`row`] reads it into number columns.
fn row_values(scan: &mut Scan, order: Option<&[usize]>, n: usize, out: &mut Vec<f64>) -> Option<()> {
    scan.expect(b'[')?;
    out.clear();
    out.resize(n, f64::NAN);
    for i in 0..n {
        if i > 0 {
            scan.expect(b',')?;
        }
        let at = order.map_or(i, |order| order[i]);
        *out.get_mut(at)? = number_cell(scan, true)?;
    }
    scan.expect(b']')
}

/// One row: a value per column, in order, no more.
fn row(scan: &mut Scan, layout: &mut Layout) -> Option<()> {
    scan.expect(b'[')?;
    for i in 0..layout.builders.len() {
        if i > 0 {
            scan.expect(b',')?;
        }
        let at = layout.order.as_ref().map_or(i, |order| order[i]);
        match &mut layout.builders[at] {
            Builder::Num(out) => out.push(number_cell(scan, true)?),
            b => cell(scan, b, true)?,
        }
    }
    scan.expect(b']')
}

/// One value into a column, as `Builder::push_json` takes it: a number or
/// null (and, with `booleans`, true or false) for numbers; text or null
/// for text.
#[inline]
fn cell(scan: &mut Scan, b: &mut Builder, booleans: bool) -> Option<()> {
    match b {
        Builder::Num(out) => out.push(number_cell(scan, booleans)?),
        Builder::Text(out) => out.push(match scan.peek()? {
            b'"' => Some(scan.str()?.to_string()),
            b'n' if scan.word(b"null") => None,
            _ => return None,
        }),
    }
    Some(())
}

/// A number cell's value (missing as NaN); kept apart from [`cell`] to be
/// inlined into the loops over a tensor's numbers.
#[inline(always)]
fn number_cell(scan: &mut Scan, booleans: bool) -> Option<f64> {
    Some(match scan.peek()? {
        b'-' | b'0'..=b'9' => scan.number_here()?,
        b'n' if scan.word(b"null") => f64::NAN,
        b't' if booleans && scan.word(b"true") => 1.0,
        b'f' if booleans && scan.word(b"false") => 0.0,
        _ => return None,
    })
}

/// The values of a JSON tensor's `data` into `b`, its `[` read: numbers in
/// one loop for a number column (most values of most requests).
#[inline]
fn tensor_data(scan: &mut Scan, b: &mut Builder) -> Option<()> {
    if scan.eat(b']') {
        return Some(());
    }
    match b {
        Builder::Num(out) => numbers_into(scan, out),
        Builder::Text(_) => loop {
            cell(scan, b, false)?;
            if scan.eat(b']') {
                return Some(());
            }
            scan.expect(b',')?;
        },
    }
}

/// A number tensor's values into `out`, its `[` read and at least one
/// value to come, through its `]`; inlined into the loop over remembered
/// tensors, where a call per one-value tensor was a tenth of its cost.
#[inline(always)]
fn numbers_into(scan: &mut Scan, out: &mut Vec<f64>) -> Option<()> {
    loop {
        out.push(number_cell(scan, false)?);
        match scan.peek()? {
            b',' => scan.advance(1),
            b']' => {
                scan.advance(1);
                return Some(());
            }
            _ => return None,
        }
    }
}

/// An OIP inference body of JSON tensors: its id and frame, or `None`.
pub fn infer<'a>(served: &'a Served, body: &'a [u8]) -> Option<(Option<String>, Batch)> {
    let mut scan = Scan::new(body);
    let (mut id, mut read) = (None, None);
    scan.object(|scan, key| match key {
        b"id" if id.is_none() => {
            id = Some(scan.str()?.to_string());
            Some(())
        }
        b"inputs" if read.is_none() => {
            read = Some(inputs(served, scan)?);
            Some(())
        }
        _ => None,
    })?;
    scan.end()?;
    let batch = match read? {
        Inputs::Row(row) => Batch::Row(row),
        Inputs::Remembered(columns) => Batch::Frame(Frame::with_names(served.input_list().clone(), columns).ok()?),
        Inputs::Read(tensors) => Batch::Frame(tensors_frame(served, tensors)?),
    };
    Some((id, batch))
}

/// The frame of tensors read one by one: their names checked, their
/// lengths equal; their heads remembered when they were recorded.
fn tensors_frame(served: &Served, Tensors { columns, heads }: Tensors) -> Option<Frame> {
    check_names(served, columns.iter().map(|(n, _)| *n)).ok()?;
    let rows = columns.first().map_or(0, |(_, b)| b.len());
    if columns.iter().any(|(_, b)| b.len() != rows) {
        return None;
    }
    let frame = frame(served, columns).ok()?;
    if let Some(heads) = heads {
        served.remember_tensor_heads(heads);
    }
    Some(frame)
}

/// The `inputs` list, read whole by its remembered heads when it is
/// written as they say (as a row when it holds one and the model takes
/// one), else tensor by tensor.
enum Inputs<'a> {
    Row(Vec<f64>),
    Remembered(Vec<Column>),
    Read(Tensors<'a>),
}

fn inputs<'a>(served: &'a Served, scan: &mut Scan<'a>) -> Option<Inputs<'a>> {
    if let Some(heads) = served.tensor_heads() {
        if served.takes_rows() {
            let mut tried = scan.clone();
            if let Some(row) = remembered_row(heads, &mut tried) {
                *scan = tried;
                return Some(Inputs::Row(row));
            }
        }
        let mut tried = scan.clone();
        if let Some(columns) = remembered(served.input_kinds(), heads, &mut tried) {
            *scan = tried;
            return Some(Inputs::Remembered(columns));
        }
    }
    tensors(served, scan).map(Inputs::Read)
}

/// The tensors of `inputs`, and, while the model has none remembered, how
/// each was written when all were given whole in the model's order.
struct Tensors<'a> {
    columns: Vec<(&'a str, Builder)>,
    heads: Option<Vec<TensorHead>>,
}

/// The `inputs` list tensor by tensor, each named and checked.
fn tensors<'a>(served: &'a Served, scan: &mut Scan<'a>) -> Option<Tensors<'a>> {
    let names = served.input_names_shared();
    let mut columns = Vec::with_capacity(names.len());
    let record = served.tensor_heads().is_none();
    let mut heads = record.then(|| Vec::with_capacity(names.len()));
    scan.list(|scan| {
        let i = columns.len();
        let (name, b, head) = tensor(served, i, heads.is_some(), scan)?;
        let in_order = names.get(i).is_some_and(|n| **n == *name);
        heads = heads.take().zip(head.filter(|_| in_order)).map(|(mut all, head)| {
            all.push(head);
            all
        });
        columns.push((name, b));
        Some(())
    })?;
    Some(Tensors { columns, heads })
}

/// The whole `inputs` list when a client writes it as it did the first
/// time it sent the model's inputs in order, but for the row counts and
/// values: each tensor is then its head's bytes, a count, the bytes
/// before its data, and its values. One loop, no names to look up, the
/// columns in the model's order; it checks what [`tensor`] does, the rest
/// being the same bytes, and that all counts agree.
fn remembered(kinds: &[ColumnKind], heads: &[TensorHead], scan: &mut Scan) -> Option<Vec<Column>> {
    scan.expect(b'[')?;
    let mut columns = Vec::with_capacity(heads.len());
    let mut rows = None;
    with_spares(|spares| {
        for (i, (head, kind)) in heads.iter().zip(kinds).enumerate() {
            let count = remembered_head(scan, i, head)?;
            if *rows.get_or_insert(count) != count {
                return None;
            }
            let mut b = spares.builder(*kind, count.try_into().unwrap_or(0));
            match &mut b {
                Builder::Num(out) if count > 0 => numbers_into(scan, out)?,
                b => tensor_data(scan, b)?,
            }
            scan.expect(b'}')?;
            if b.len() as u64 != count {
                return None;
            }
            columns.push(b.finish());
        }
        Some(())
    })?;
    scan.expect(b']')?;
    Some(columns)
}

/// The whole `inputs` list as [`remembered`] reads it, when every tensor
/// holds one value: into one row, no column each.
fn remembered_row(heads: &[TensorHead], scan: &mut Scan) -> Option<Vec<f64>> {
    scan.expect(b'[')?;
    let mut row = spare_row(heads.len());
    for (i, head) in heads.iter().enumerate() {
        if remembered_head(scan, i, head)? != 1 {
            return None;
        }
        numbers_into(scan, &mut row)?;
        scan.expect(b'}')?;
        if row.len() != i + 1 {
            return None;
        }
    }
    scan.expect(b']')?;
    Some(row)
}

/// Tensor `i`'s head, as remembered, through the `[` of its data (after
/// the `,` before it): its row count.
#[inline(always)]
fn remembered_head(scan: &mut Scan, i: usize, head: &TensorHead) -> Option<u64> {
    if i > 0 {
        scan.expect(b',')?;
    }
    scan.peek()?;
    if !scan.literal(&head.before_count) {
        return None;
    }
    let count = scan.count()?;
    scan.literal(&head.before_data).then_some(count)
}

/// `{"name", "datatype", "shape", "data"}`, `data` after `name`: FP64 for a
/// number column, BYTES for text, a flat list as long as the shape says;
/// usually the model's input `hint`. With `record`, and when its shape came
/// before its data and its data last, how it was written.
fn tensor<'a>(
    served: &Served,
    hint: usize,
    record: bool,
    scan: &mut Scan<'a>,
) -> Option<(&'a str, Builder, Option<TensorHead>)> {
    scan.peek()?;
    let start = scan.position();
    let (mut name, mut datatype, mut shape, mut data) = (None, None, None, None);
    let (mut fields, mut count_at, mut data_at) = (0, 0..0, None);
    scan.object(|scan, key| {
        fields += 1;
        match key {
            b"name" if name.is_none() => {
                let n = scan.str()?;
                name = Some((n, served.input_kind_at(hint, n)?));
            }
            b"datatype" if datatype.is_none() => datatype = Some(scan.raw_str()?),
            b"shape" if shape.is_none() => {
                let (rows, digits) = rows_of_shape(scan)?;
                (shape, count_at) = (Some(rows), digits);
            }
            b"data" if data.is_none() => {
                let (_, kind) = name?;
                let rows = shape.unwrap_or(0).try_into().unwrap_or(0);
                let mut b = Builder::new(kind, rows);
                scan.peek()?;
                // The fourth field, so the last (none repeats), after the shape.
                data_at = (fields == 4).then_some(scan.position() + 1);
                scan.expect(b'[')?;
                tensor_data(scan, &mut b)?;
                data = Some(b);
            }
            _ => return None,
        }
        Some(())
    })?;
    let ((name, kind), datatype, shape, data) = (name?, datatype?, shape?, data?);
    let wanted = match kind {
        ColumnKind::Number => &b"FP64"[..],
        ColumnKind::Text => b"BYTES",
    };
    if shape != data.len() as u64 || datatype != wanted {
        return None;
    }
    let head = data_at.filter(|_| record).map(|opens| TensorHead {
        before_count: scan.between(start, count_at.start).into(),
        before_data: scan.between(count_at.end, opens).into(),
    });
    Some((name, data, head))
}

/// A `[rows]` or `[rows, 1]` shape: its row count, and where its digits are.
fn rows_of_shape(scan: &mut Scan) -> Option<(u64, std::ops::Range<usize>)> {
    scan.expect(b'[')?;
    scan.peek()?;
    let from = scan.position();
    let rows = scan.count()?;
    let digits = from..scan.position();
    if scan.eat(b',') && scan.count()? != 1 {
        return None;
    }
    scan.expect(b']').map(|()| (rows, digits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::read_json;
    use flywheel_ml::transform::{LINEAR_DEFAULTS, fit};
    use flywheel_ml::{Column, Estimator, Model, Task, Text};
    use std::collections::BTreeMap;

    /// A classifier reading a number `x` and a text `c`.
    fn served() -> Served {
        let mut f = Frame::new();
        f.push("x", Column::Num((0..6).map(f64::from).collect())).unwrap();
        f.push("c", Column::Text(Text::encode((0..6).map(|i| [Some("a"), Some("b")][i % 2])))).unwrap();
        let t = fit(&f, &["x".into(), "c".into()], &BTreeMap::new(), LINEAR_DEFAULTS).unwrap();
        let est = Estimator::Logistic { coef: vec![vec![0.3; t.width()]], intercept: vec![0.1] };
        let model = Model::new(
            Task::Classification,
            "y".into(),
            vec!["no".into(), "yes".into()],
            t,
            est,
            serde_json::json!({}),
        )
        .unwrap();
        Served::new("m".into(), 1, "m@1".into(), model)
    }

    /// A regressor reading the numbers `x` and `y` alone (rows read as rows).
    fn numbers_served() -> Served {
        let mut f = Frame::new();
        f.push("x", Column::Num((0..6).map(f64::from).collect())).unwrap();
        f.push("y", Column::Num((0..6).map(|i| f64::from(i) * 0.5).collect())).unwrap();
        let decl = BTreeMap::from([("x".to_string(), "indicator | impute(mean) | standardize".to_string())]);
        let t = fit(&f, &["x".into(), "y".into()], &decl, LINEAR_DEFAULTS).unwrap();
        let est = Estimator::Linear { algorithm: "ridge".into(), weights: vec![0.5; t.width()], intercept: 1.0 };
        let model = Model::new(Task::Regression, "y".into(), vec![], t, est, serde_json::json!({})).unwrap();
        let s = Served::new("n".into(), 1, "n@1".into(), model);
        assert!(s.takes_rows());
        s
    }

    fn same(s: &Served, a: Batch, b: Batch) -> bool {
        format!("{:?}", a.into_frame(s)) == format!("{:?}", b.into_frame(s))
    }

    fn is_row(b: &Batch) -> bool {
        matches!(b, Batch::Row(_))
    }

    #[test]
    fn a_split_body_reads_as_the_general_path_reads_it() {
        let s = served();
        for body in [
            r#"{"dataframe_split": {"columns": ["c", "x"], "data": [["a", 1.5], [null, null], ["bé", -2e0]]}}"#,
            r#"{"dataframe_split": {"index": [[0, {"k": "v"}]], "columns": ["x", "c"], "data": [[1.5, "a"]], "dtypes": null}}"#,
            r#"{"dataframe_split": {"index": [0], "columns": ["x", "c"], "data": [[true, "a"]]}}"#,
            r#"{"dataframe_split": {"columns": ["x", "c"], "data": []}}"#,
        ] {
            let fast = dataframe_split(&s, body.as_bytes()).unwrap_or_else(|| panic!("fast path gave up on {body}"));
            let general = crate::mlflow::parse_general(&s, body.as_bytes()).map(Batch::Frame).unwrap();
            assert!(same(&s, fast, general), "{body}");
        }
    }

    #[test]
    fn a_remembered_column_list_is_read_as_a_new_one_would_be() {
        let s = served();
        assert_eq!(s.input_names(), ["x", "c"]);
        let reversed = r#"{"dataframe_split": {"columns": ["c", "x"], "data": [["a", 1.5]]}}"#;
        assert!(dataframe_split(&s, reversed.as_bytes()).is_some());
        assert_eq!(s.split_columns(), None, "only a list in the model's order is remembered");
        let first = r#"{"dataframe_split": {"columns": [ "x",  "c"], "data": [[1.5, "a"]]}}"#;
        assert!(dataframe_split(&s, first.as_bytes()).is_some());
        assert_eq!(s.split_columns(), Some(&br#"[ "x",  "c"]"#[..]));
        for body in [
            first,
            r#"{"dataframe_split": {"columns":[ "x",  "c"],"data": [[null, "b"], [2, null]]}}"#,
            r#"{"dataframe_split": {"columns": ["x", "c"], "data": [[1.5, "a"]]}}"#,
            reversed,
        ] {
            let fast = dataframe_split(&s, body.as_bytes()).unwrap_or_else(|| panic!("fast path gave up on {body}"));
            let general = crate::mlflow::parse_general(&s, body.as_bytes()).map(Batch::Frame).unwrap();
            assert!(same(&s, fast, general), "{body}");
        }
        for refused in [
            r#"{"dataframe_split": {"columns": [ "x",  "c"], "data": [[1.5, "a", 2]]}}"#,
            r#"{"dataframe_split": {"columns": [ "x",  "c"] "data": [[1.5, "a"]]}}"#,
            r#"{"dataframe_split": {"columns": [ "x",  "c", "d"], "data": [[1.5, "a", 2]]}}"#,
        ] {
            assert!(dataframe_split(&s, refused.as_bytes()).is_none(), "{refused}");
        }
    }

    #[test]
    fn what_the_fast_path_does_not_take_is_left_to_the_general_path() {
        let s = served();
        for body in [
            r#"{"dataframe_split": {"data": [[1, "a"]], "columns": ["x", "c"]}}"#,
            r#"{"dataframe_split": {"columns": ["x", "c"], "data": [[1, "a", 3]]}}"#,
            r#"{"dataframe_split": {"columns": ["x", "c"], "data": [["a", 1]]}}"#,
            r#"{"dataframe_split": {"columns": ["x"], "data": [[1]]}}"#,
            r#"{"dataframe_split": {"columns": ["x", "c"], "data": [[NaN, "a"]]}}"#,
            r#"{"dataframe_split": {"columns": ["x", "c"], "data": [[1, "a"]]}, "params": {}}"#,
            r#"{"dataframe_records": [{"x": 1, "c": "a"}]}"#,
            r#"{"dataframe_split": {"columns": ["x", "c"], "data": [[1, "b\u00e9"]]}}"#,
            r#"{"dataframe_split": {"columns": ["x", "c"], "data": [[01, "a"]]}}"#,
            r#"{"dataframe_split": {"columns": ["x", "c"], "data": [[1, "a"],]}}"#,
            r#"{"dataframe_split": {"columns": ["x", "c"], "data": [[1, "a"]]}} trailing"#,
        ] {
            assert!(dataframe_split(&s, body.as_bytes()).is_none(), "{body}");
        }
        assert!(read_json(br#"{"x": NaN}"#).is_ok(), "the general path still reads bare NaN");
    }

    #[test]
    fn remembered_tensor_heads_read_as_the_general_path_reads() {
        let s = served();
        let out_of_order = r#"{"inputs": [{"name": "c", "datatype": "BYTES", "shape": [1], "data": ["a"]},
            {"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}]}"#;
        assert!(infer(&s, out_of_order.as_bytes()).is_some());
        assert_eq!(s.tensor_heads(), None, "only tensors in the model's order are remembered");
        let first = r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1, 2]},
            {"shape": [ 2, 1], "name": "c", "datatype": "BYTES", "data": ["a", "b"]}]}"#;
        assert!(infer(&s, first.as_bytes()).is_some());
        let heads = s.tensor_heads().expect("remembered");
        assert_eq!(&*heads[0].before_count, br#"{"name": "x", "datatype": "FP64", "shape": ["#);
        assert_eq!(&*heads[0].before_data, br#"], "data": ["#);
        assert_eq!(&*heads[1].before_count, br#"{"shape": [ "#);
        assert_eq!(&*heads[1].before_data, br#", 1], "name": "c", "datatype": "BYTES", "data": ["#);
        for body in [
            first,
            r#"{"id": "r", "inputs": [{"name": "x", "datatype": "FP64", "shape": [3], "data": [1, null, -2.5e3]},
            {"shape": [ 3, 1], "name": "c", "datatype": "BYTES", "data": ["a", null, "bé"]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [0], "data": [ ]},
            {"shape": [ 0, 1], "name": "c", "datatype": "BYTES", "data": []}]}"#,
            r#"{"inputs": [{"name":"x","datatype":"FP64","shape":[1],"data":[7]},{"name":"c","datatype":"BYTES","shape":[1],"data":["z"]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]},
            {"name": "c", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}"#,
            out_of_order,
        ] {
            let (id, fast) = infer(&s, body.as_bytes()).unwrap_or_else(|| panic!("fast path gave up on {body}"));
            let general = crate::oip::parse_general(&s, body.as_bytes(), &[]).unwrap();
            assert!(id == general.id && same(&s, fast, general.batch), "{body}");
        }
        for refused in [
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1]},
            {"shape": [ 2, 1], "name": "c", "datatype": "BYTES", "data": ["a", "b"]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1], "data": [2]},
            {"shape": [ 1, 1], "name": "c", "datatype": "BYTES", "data": ["a"]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": ["1"]},
            {"shape": [ 1, 1], "name": "c", "datatype": "BYTES", "data": ["a"]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]},
            {"shape": [ 1, 2], "name": "c", "datatype": "BYTES", "data": ["a"]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]},
            {"shape": [ 1, 1], "name": "c", "datatype": "BYTES", "data": [1]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1, 2]},
            {"shape": [ 1, 1], "name": "c", "datatype": "BYTES", "data": ["a"]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]},
            {"shape": [ 1, 1], "name": "c", "datatype": "BYTES", "data": ["a"]},
            {"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}]}"#,
        ] {
            assert!(infer(&s, refused.as_bytes()).is_none(), "{refused}");
        }
    }

    #[test]
    fn oip_json_tensors_read_as_the_general_path_reads_them() {
        let s = served();
        let body = r#"{"id": "r1", "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [3], "data": [1, null, -0.5]},
            {"name": "c", "shape": [3, 1], "datatype": "BYTES", "data": ["a", "b", null]}]}"#;
        let (id, fast) = infer(&s, body.as_bytes()).expect("fast path");
        let general = crate::oip::parse_general(&s, body.as_bytes(), &[]).unwrap();
        assert_eq!(id.as_deref(), Some("r1"));
        assert!(same(&s, fast, general.batch));
        for refused in [
            r#"{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}, {"name": "c", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1]}, {"name": "c", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [[1]]}, {"name": "c", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}"#,
            r#"{"inputs": [{"data": [1], "name": "x", "datatype": "FP64", "shape": [1]}, {"name": "c", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [true]}, {"name": "c", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}], "outputs": []}"#,
            r#"{"id": 7, "inputs": []}"#,
            r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1]}, {"name": "c", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}"#,
        ] {
            assert!(infer(&s, refused.as_bytes()).is_none(), "{refused}");
        }
    }

    #[test]
    fn one_row_of_numbers_is_read_as_a_row_and_as_the_general_path_reads_it() {
        let s = numbers_served();
        let split =
            |columns: &str, data: &str| format!(r#"{{"dataframe_split": {{"columns": {columns}, "data": {data}}}}}"#);
        for (body, row) in [
            (split(r#"["x", "y"]"#, "[[1.5, null]]"), true),
            (split(r#"["y", "x"]"#, "[[1.5, -2]]"), true),
            (split(r#"["x", "y"]"#, "[[true, 2e-3]]"), true),
            (split(r#"["x", "y"]"#, "[[1.5, 2], [null, 3]]"), false),
            (split(r#"["y", "x"]"#, "[[1.5, 2], [null, 3], [4, 5]]"), false),
            (split(r#"["x", "y"]"#, "[]"), false),
        ] {
            let fast = dataframe_split(&s, body.as_bytes()).unwrap_or_else(|| panic!("fast path gave up on {body}"));
            assert_eq!(is_row(&fast), row, "{body}");
            let general = crate::mlflow::parse_general(&s, body.as_bytes()).map(Batch::Frame).unwrap();
            assert!(same(&s, fast, general), "{body}");
        }
        for refused in [
            split(r#"["x", "y"]"#, "[[1.5]]"),
            split(r#"["x", "y"]"#, "[[1.5, 2, 3]]"),
            split(r#"["x", "y"]"#, r#"[["a", 2]]"#),
        ] {
            assert!(dataframe_split(&s, refused.as_bytes()).is_none(), "{refused}");
        }
        let tensor = |name: &str, data: &str| {
            let n = data.matches(',').count() + usize::from(!data.trim().is_empty());
            format!(r#"{{"name": "{name}", "datatype": "FP64", "shape": [{n}], "data": [{data}]}}"#)
        };
        let body = |x: &str, y: &str| format!(r#"{{"inputs": [{}, {}]}}"#, tensor("x", x), tensor("y", y));
        assert!(
            !is_row(&infer(&s, body("1", "2").as_bytes()).unwrap().1),
            "the first request is read tensor by tensor"
        );
        assert!(s.tensor_heads().is_some());
        for (body, row) in [
            (body("1", "2"), true),
            (body("null", "-0.25"), true),
            (body("1, 2", "3, 4"), false),
            (body("", ""), false),
        ] {
            let (_, fast) = infer(&s, body.as_bytes()).unwrap_or_else(|| panic!("fast path gave up on {body}"));
            assert_eq!(is_row(&fast), row, "{body}");
            let general = crate::oip::parse_general(&s, body.as_bytes(), &[]).unwrap();
            assert!(same(&s, fast, general.batch), "{body}");
        }
        for refused in [body("1", "2, 3"), body("1, 2", "3"), body("true", "1")] {
            assert!(infer(&s, refused.as_bytes()).is_none(), "{refused}");
        }
    }
}
