//! The common request bodies read straight into columns, without building
//! a `serde_json::Value` tree first (which was half the time of a
//! 1,000-row request): MLflow's `{"dataframe_split": {"columns": [...],
//! "data": [[...], ...]}}` and OIP's `{"id": ..., "inputs": [tensors]}` with
//! FP64 tensors for number columns and BYTES for text.
//!
//! A fast path only ever succeeds or gives up: on anything else (another
//! format, a field it does not take, a value of the wrong type, a bad
//! count) it returns `None` and the request is read again by the general
//! path, which accepts the same bodies and names what is wrong. So the two
//! cannot disagree on an error; that they read a success alike is what the
//! tests below check, body by body.

use crate::columns::{Builder, check_names, frame};
use crate::served::Served;
use flywheel_ml::{ColumnKind, Frame};
use serde::de::{DeserializeSeed, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A seed that is its own visitor, read with `deserialize_$how`.
macro_rules! seed_is_visitor {
    ($ty:ty, $how:ident) => {
        impl<'de> DeserializeSeed<'de> for $ty {
            type Value = <Self as Visitor<'de>>::Value;
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.$how(self)
            }
        }
    };
}

/// Why the fast path gave up; never shown.
fn give_up<E: Error>() -> E {
    E::custom("not the fast path")
}

/// A `dataframe_split` body, or `None` to read it the general way.
pub fn dataframe_split(served: &Served, body: &[u8]) -> Option<Frame> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let columns = Top { served }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    frame(served, columns).ok()
}

/// An OIP inference body of JSON tensors: its id and frame, or `None`.
pub fn infer(served: &Served, body: &[u8]) -> Option<(Option<String>, Frame)> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let (id, columns) = InferTop { served }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some((id, frame(served, columns).ok()?))
}

type Columns<'de> = Vec<(Cow<'de, str>, Builder)>;

/// A key or name, borrowed from the body when it has no escapes (serde's
/// own `Cow<str>` always copies).
struct Name<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Name<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a name")
    }
    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Borrowed(v)))
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Owned(v.to_string())))
    }
}

struct Top<'s> {
    served: &'s Served,
}

seed_is_visitor!(Top<'_>, deserialize_map);

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Columns<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a dataframe_split body")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Columns<'de>, A::Error> {
        match map.next_key::<Name<'de>>()?.as_ref().map(|n| n.0.as_ref()) {
            Some("dataframe_split") => {}
            _ => return Err(give_up()),
        }
        let columns = map.next_value_seed(Split { served: self.served })?;
        match map.next_key::<IgnoredAny>()? {
            None => Ok(columns),
            Some(_) => Err(give_up()),
        }
    }
}

struct Split<'s> {
    served: &'s Served,
}

seed_is_visitor!(Split<'_>, deserialize_map);

impl<'de> Visitor<'de> for Split<'_> {
    type Value = Columns<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("columns, then data")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Columns<'de>, A::Error> {
        let mut columns: Option<Columns<'de>> = None;
        let mut filled = false;
        while let Some(key) = map.next_key::<Name<'de>>()? {
            match (key.0.as_ref(), columns.as_mut()) {
                ("columns", None) => {
                    let names: Vec<Name<'de>> = map.next_value()?;
                    check_names(self.served, names.iter().map(|n| n.0.as_ref())).map_err(|_| give_up())?;
                    columns = Some(builders(self.served, names));
                }
                ("data", Some(columns)) if !filled => {
                    map.next_value_seed(Rows { columns })?;
                    filled = true;
                }
                ("columns" | "data", _) => return Err(give_up()),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        columns.filter(|_| filled).ok_or_else(give_up)
    }
}

fn builders<'de>(served: &Served, names: Vec<Name<'de>>) -> Columns<'de> {
    let kind = |i, n: &str| served.input_kind_at(i, n).unwrap_or(ColumnKind::Text);
    names
        .into_iter()
        .enumerate()
        .map(|(i, Name(n))| {
            let b = Builder::new(kind(i, &n), 0);
            (n, b)
        })
        .collect()
}

/// `[[v, ...], ...]`, each row's values going to the columns in order.
struct Rows<'c, 'n> {
    columns: &'c mut Columns<'n>,
}

seed_is_visitor!(Rows<'_, '_>, deserialize_seq);

impl<'de> Visitor<'de> for Rows<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Row { columns: &mut *self.columns })?.is_some() {}
        Ok(())
    }
}

struct Row<'c, 'n> {
    columns: &'c mut Columns<'n>,
}

seed_is_visitor!(Row<'_, '_>, deserialize_seq);

impl<'de> Visitor<'de> for Row<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        for (_, b) in self.columns.iter_mut() {
            seq.next_element_seed(Cell(b))?.ok_or_else(give_up)?;
        }
        match seq.next_element::<IgnoredAny>()? {
            None => Ok(()),
            Some(_) => Err(give_up()),
        }
    }
}

/// One value into a column, as `Builder::push_json` takes it: a number,
/// null or a boolean for numbers; text or null for text.
struct Cell<'b>(&'b mut Builder);

seed_is_visitor!(Cell<'_>, deserialize_any);

impl<'de> Visitor<'de> for Cell<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<(), E> {
        num(self.0, v)
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<(), E> {
        num(self.0, v as f64)
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<(), E> {
        num(self.0, v as f64)
    }
    fn visit_bool<E: Error>(self, v: bool) -> Result<(), E> {
        num(self.0, f64::from(u8::from(v)))
    }
    fn visit_unit<E: Error>(self) -> Result<(), E> {
        match self.0 {
            Builder::Num(out) => out.push(f64::NAN),
            Builder::Text(out) => out.push(None),
        }
        Ok(())
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<(), E> {
        match self.0 {
            Builder::Text(out) => {
                out.push(Some(v.to_string()));
                Ok(())
            }
            Builder::Num(_) => Err(give_up()),
        }
    }
}

fn num<E: Error>(b: &mut Builder, v: f64) -> Result<(), E> {
    match b {
        Builder::Num(out) => {
            out.push(v);
            Ok(())
        }
        Builder::Text(_) => Err(give_up()),
    }
}

struct InferTop<'s> {
    served: &'s Served,
}

seed_is_visitor!(InferTop<'_>, deserialize_map);

impl<'de> Visitor<'de> for InferTop<'_> {
    type Value = (Option<String>, Columns<'de>);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an inference request")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut id, mut columns) = (None, None);
        while let Some(key) = map.next_key::<Name<'de>>()? {
            match key.0.as_ref() {
                "id" if id.is_none() => id = Some(map.next_value::<String>()?),
                "inputs" if columns.is_none() => columns = Some(map.next_value_seed(Tensors { served: self.served })?),
                _ => return Err(give_up()),
            }
        }
        let columns = columns.ok_or_else(give_up)?;
        check_names(self.served, columns.iter().map(|(n, _)| n.as_ref())).map_err(|_| give_up())?;
        let rows = columns.first().map_or(0, |(_, b)| b.len());
        if columns.iter().any(|(_, b)| b.len() != rows) {
            return Err(give_up());
        }
        Ok((id, columns))
    }
}

struct Tensors<'s> {
    served: &'s Served,
}

seed_is_visitor!(Tensors<'_>, deserialize_seq);

impl<'de> Visitor<'de> for Tensors<'_> {
    type Value = Columns<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of tensors")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Columns<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(column) = seq.next_element_seed(Tensor { served: self.served })? {
            out.push(column);
        }
        Ok(out)
    }
}

/// `{"name", "datatype", "shape", "data"}`, `data` after `name`: FP64 for a
/// number column, BYTES for text, a flat list as long as the shape says.
struct Tensor<'s> {
    served: &'s Served,
}

seed_is_visitor!(Tensor<'_>, deserialize_map);

impl<'de> Visitor<'de> for Tensor<'_> {
    type Value = (Cow<'de, str>, Builder);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tensor")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut name, mut datatype, mut shape, mut data) = (None, None, None, None);
        while let Some(key) = map.next_key::<Name<'de>>()? {
            match key.0.as_ref() {
                "name" if name.is_none() => {
                    let Name(n) = map.next_value()?;
                    let kind = self.served.input_kind(&n).ok_or_else(give_up)?;
                    name = Some((n, kind));
                }
                "datatype" if datatype.is_none() => datatype = Some(map.next_value::<Name<'de>>()?),
                "shape" if shape.is_none() => shape = Some(map.next_value_seed(Shape)?),
                "data" if data.is_none() => {
                    let (_, kind) = name.as_ref().ok_or_else(give_up)?;
                    let mut b = Builder::new(*kind, 0);
                    map.next_value_seed(Flat { builder: &mut b })?;
                    data = Some(b);
                }
                _ => return Err(give_up()),
            }
        }
        let ((name, kind), datatype, shape, data) = (
            name.ok_or_else(give_up)?,
            datatype.ok_or_else(give_up)?,
            shape.ok_or_else(give_up)?,
            data.ok_or_else(give_up)?,
        );
        let wanted = match kind {
            ColumnKind::Number => "FP64",
            ColumnKind::Text => "BYTES",
        };
        match shape {
            n if n == data.len() as u64 && datatype.0 == wanted => Ok((name, data)),
            _ => Err(give_up()),
        }
    }
}

/// A `[rows]` or `[rows, 1]` shape, read without a `Vec`: its row count.
struct Shape;

seed_is_visitor!(Shape, deserialize_seq);

impl<'de> Visitor<'de> for Shape {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a shape")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let rows: u64 = seq.next_element()?.ok_or_else(give_up)?;
        match seq.next_element::<u64>()? {
            None => Ok(rows),
            Some(1) if seq.next_element::<IgnoredAny>()?.is_none() => Ok(rows),
            Some(_) => Err(give_up()),
        }
    }
}

/// A flat list of values into one column.
struct Flat<'b> {
    builder: &'b mut Builder,
}

seed_is_visitor!(Flat<'_>, deserialize_seq);

impl<'de> Visitor<'de> for Flat<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a flat list of values")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Strict(&mut *self.builder))?.is_some() {}
        Ok(())
    }
}

/// A value of an FP64 or BYTES tensor: a number or null, or text or null
/// (no booleans, as the general path refuses them for FP64).
struct Strict<'b>(&'b mut Builder);

seed_is_visitor!(Strict<'_>, deserialize_any);

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, text or null")
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<(), E> {
        Cell(self.0).visit_f64(v)
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<(), E> {
        Cell(self.0).visit_i64(v)
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<(), E> {
        Cell(self.0).visit_u64(v)
    }
    fn visit_unit<E: Error>(self) -> Result<(), E> {
        Cell(self.0).visit_unit()
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<(), E> {
        Cell(self.0).visit_str(v)
    }
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

    fn same(a: &Frame, b: &Frame) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn a_split_body_reads_as_the_general_path_reads_it() {
        let s = served();
        for body in [
            r#"{"dataframe_split": {"columns": ["c", "x"], "data": [["a", 1.5], [null, null], ["b\u00e9", -2]]}}"#,
            r#"{"dataframe_split": {"index": [0], "columns": ["x", "c"], "data": [[true, "a"]]}}"#,
            r#"{"dataframe_split": {"columns": ["x", "c"], "data": []}}"#,
        ] {
            let fast = dataframe_split(&s, body.as_bytes()).unwrap_or_else(|| panic!("fast path gave up on {body}"));
            let general = crate::mlflow::parse(&s, None, body.as_bytes()).unwrap();
            assert!(same(&fast, &general), "{body}");
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
        ] {
            assert!(dataframe_split(&s, body.as_bytes()).is_none(), "{body}");
        }
        assert!(read_json(br#"{"x": NaN}"#).is_ok(), "the general path still reads bare NaN");
    }

    #[test]
    fn oip_json_tensors_read_as_the_general_path_reads_them() {
        let s = served();
        let body = r#"{"id": "r1", "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [3], "data": [1, null, -0.5]},
            {"name": "c", "shape": [3, 1], "datatype": "BYTES", "data": ["a", "b", null]}]}"#;
        let (id, fast) = infer(&s, body.as_bytes()).expect("fast path");
        let general = crate::oip::parse_infer(&s, body.as_bytes(), &[]).unwrap();
        assert_eq!(id.as_deref(), Some("r1"));
        assert!(same(&fast, &general.frame));
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
}
