//! The columns a model reads: numbers (NaN = missing) or text, dictionary
//! encoded so that a transform looks each distinct value up once per batch
//! instead of once per row.

use std::collections::HashMap;
use std::sync::Arc;

/// A text column: `codes[row]` indexes `values`, [`MISSING`] for none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Text {
    pub values: Vec<String>,
    pub codes: Vec<u32>,
}

pub const MISSING: u32 = u32::MAX;

impl Text {
    /// Encodes owned or borrowed optional strings.
    pub fn encode<'a>(items: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut index: HashMap<&'a str, u32> = HashMap::new();
        let mut values = Vec::new();
        let codes = items
            .into_iter()
            .map(|v| match v {
                None => MISSING,
                Some(s) => *index.entry(s).or_insert_with(|| {
                    values.push(s.to_string());
                    (values.len() - 1) as u32
                }),
            })
            .collect();
        Text { values, codes }
    }

    pub fn get(&self, row: usize) -> Option<&str> {
        let c = self.codes[row];
        (c != MISSING).then(|| self.values[c as usize].as_str())
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Keeps the rows whose mask is true.
    pub fn filter(&self, keep: &[bool]) -> Text {
        Text {
            values: self.values.clone(),
            codes: self.codes.iter().zip(keep).filter(|(_, k)| **k).map(|(c, _)| *c).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers; NaN is missing.
    Num(Vec<f64>),
    Text(Text),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Num(v) => v.len(),
            Column::Text(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn kind(&self) -> ColumnKind {
        match self {
            Column::Num(_) => ColumnKind::Number,
            Column::Text(_) => ColumnKind::Text,
        }
    }

    pub fn filter(&self, keep: &[bool]) -> Column {
        match self {
            Column::Num(v) => Column::Num(v.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect()),
            Column::Text(t) => Column::Text(t.filter(keep)),
        }
    }

    /// Whether row `i` has no value.
    pub fn is_missing(&self, i: usize) -> bool {
        match self {
            Column::Num(v) => v[i].is_nan(),
            Column::Text(t) => t.codes[i] == MISSING,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Number,
    Text,
}

impl ColumnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::Number => "number",
            ColumnKind::Text => "text",
        }
    }
}

/// A frame's column names, shared: the frames a server builds for one
/// model hold one list, so that a model bound to it ([`crate::model::Binding`])
/// finds its inputs by position, without comparing names.
pub type Names = Arc<Vec<Arc<str>>>;

/// Named columns of equal length. Names are shared (`Arc<str>`, in a
/// shared list): a server builds a frame per request from its model's
/// input names without copying them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    names: Names,
    columns: Vec<Column>,
    rows: usize,
}

impl Frame {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty frame with room for `columns` columns.
    pub fn with_capacity(columns: usize) -> Self {
        Frame { names: Arc::new(Vec::with_capacity(columns)), columns: Vec::with_capacity(columns), rows: 0 }
    }

    /// A frame of `columns` named by `names`, in order.
    pub fn with_names(names: Names, columns: Vec<Column>) -> Result<Frame, crate::MlError> {
        let rows = columns.first().map_or(0, Column::len);
        if names.len() != columns.len() {
            let (n, c) = (names.len(), columns.len());
            return Err(crate::MlError::Data(format!("{n} column name(s) for {c} column(s)")));
        }
        if let Some((name, col)) = names.iter().zip(&columns).find(|(_, c)| c.len() != rows) {
            return Err(crate::MlError::Data(format!("column `{name}` has {} rows, the others {rows}", col.len())));
        }
        Ok(Frame { names, columns, rows })
    }

    /// Whether the frame's names are the list `names` itself (not only equal).
    pub fn has_names(&self, names: &Names) -> bool {
        Arc::ptr_eq(&self.names, names)
    }

    /// The `i`th column.
    pub fn column_index(&self, i: usize) -> Option<&Column> {
        self.columns.get(i)
    }

    /// Refuses ±inf in numeric columns, at training and at prediction alike
    /// (NaN is a missing value; infinity is not a number a model can use,
    /// and a tree split next to it has no finite threshold).
    pub fn check_finite(&self) -> Result<(), crate::MlError> {
        for (name, col) in self.columns() {
            if let Column::Num(v) = col
                && let Some(i) = v.iter().position(|x| x.is_infinite())
            {
                return Err(crate::MlError::Data(format!(
                    "column `{name}` holds {} on data row {}; models take finite numbers (or missing values) only, at training and at prediction: clean the data, or write the value as missing",
                    v[i],
                    i + 1
                )));
            }
        }
        Ok(())
    }

    /// Adds a column; the first one sets the row count.
    pub fn push(&mut self, name: impl Into<Arc<str>>, col: Column) -> Result<(), crate::MlError> {
        let name = name.into();
        if self.names.is_empty() {
            self.rows = col.len();
        } else if col.len() != self.rows {
            return Err(crate::MlError::Data(format!(
                "column `{name}` has {} rows, the others {}",
                col.len(),
                self.rows
            )));
        }
        Arc::make_mut(&mut self.names).push(name);
        self.columns.push(col);
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.names.iter().position(|n| &**n == name).map(|i| &self.columns[i])
    }

    /// The column `name`, looked for at position `hint` first: where a frame
    /// built in a model's input order has it, so that reading every input
    /// is not a search per input.
    pub fn column_at(&self, hint: usize, name: &str) -> Option<&Column> {
        match self.names.get(hint) {
            Some(n) if &**n == name => Some(&self.columns[hint]),
            _ => self.column(name),
        }
    }

    /// The columns, taken out (a server reuses their buffers).
    pub fn into_columns(self) -> Vec<Column> {
        self.columns
    }

    pub fn columns(&self) -> impl Iterator<Item = (&str, &Column)> {
        self.names.iter().map(|n| &**n).zip(&self.columns)
    }

    /// Keeps the rows whose mask is true.
    pub fn filter(&self, keep: &[bool]) -> Frame {
        Frame {
            names: self.names.clone(),
            columns: self.columns.iter().map(|c| c.filter(keep)).collect(),
            rows: keep.iter().filter(|k| **k).count(),
        }
    }

    /// Rows `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> Frame {
        let columns = self
            .columns
            .iter()
            .map(|c| match c {
                Column::Num(v) => Column::Num(v[start..end].to_vec()),
                Column::Text(t) => Column::Text(Text { values: t.values.clone(), codes: t.codes[start..end].to_vec() }),
            })
            .collect();
        Frame { names: self.names.clone(), columns, rows: end - start }
    }

    /// The rows at `idx`, in that order.
    pub fn take(&self, idx: &[usize]) -> Frame {
        let columns = self
            .columns
            .iter()
            .map(|c| match c {
                Column::Num(v) => Column::Num(idx.iter().map(|&i| v[i]).collect()),
                Column::Text(t) => {
                    Column::Text(Text { values: t.values.clone(), codes: idx.iter().map(|&i| t.codes[i]).collect() })
                }
            })
            .collect();
        Frame { names: self.names.clone(), columns, rows: idx.len() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_dictionary_encoded() {
        let t = Text::encode([Some("a"), None, Some("b"), Some("a")]);
        assert_eq!(t.values, ["a", "b"]);
        assert_eq!(t.codes, [0, MISSING, 1, 0]);
        assert_eq!(t.get(3), Some("a"));
        assert_eq!(t.get(1), None);
    }

    #[test]
    fn columns_must_have_equal_length() {
        let mut f = Frame::new();
        f.push("x", Column::Num(vec![1.0, 2.0])).unwrap();
        assert!(f.push("y", Column::Num(vec![1.0])).is_err());
        assert_eq!(f.filter(&[false, true]).column("x"), Some(&Column::Num(vec![2.0])));
    }

    #[test]
    fn a_frame_on_a_shared_name_list_knows_it_and_checks_its_columns() {
        let names: Names = Arc::new(vec!["x".into(), "y".into()]);
        let f = Frame::with_names(names.clone(), vec![Column::Num(vec![1.0]), Column::Num(vec![2.0])]).unwrap();
        assert!(f.has_names(&names) && f.rows() == 1 && f.column_index(1) == Some(&Column::Num(vec![2.0])));
        let mut copy = f.clone();
        assert!(copy.has_names(&names), "a clone shares the list");
        copy.push("z", Column::Num(vec![3.0])).unwrap();
        assert!(!copy.has_names(&names) && names.len() == 2, "a push copies a shared list");
        let equal: Names = Arc::new(vec!["x".into(), "y".into()]);
        assert!(!f.has_names(&equal), "equal is not the same");
        let e = Frame::with_names(names.clone(), vec![Column::Num(vec![1.0])]).unwrap_err().to_string();
        assert!(e.contains("2 column name(s) for 1 column(s)"), "{e}");
        let e = Frame::with_names(names, vec![Column::Num(vec![1.0]), Column::Num(vec![])]).unwrap_err().to_string();
        assert!(e.contains("column `y` has 0 rows, the others 1"), "{e}");
    }
}
