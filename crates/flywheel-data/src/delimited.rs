//! CSV in: the delimiter detected (comma, semicolon, tab, pipe) or given,
//! column types inferred from the first [`INFER_ROWS`] rows or declared, ISO
//! dates and times read as instants, and the file read again with the
//! types of all its rows when a later row needs a wider type (an integer
//! column whose first decimal comes late). Only a value that fits no
//! widening is a type change, reported at its line.

use crate::DataError;
use crate::batch::{Batches, DEFAULT_MISSING, INFER_ROWS, ReadOptions, open_file, suggest};
use crate::quotes::QuoteWatch;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_cast::parse::Parser;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use std::io::BufReader;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The delimiters tried, in order of preference on a tie.
pub const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// A column's type as its values show it: each value's kind, joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Date,
    Time,
    Text,
}

impl Kind {
    /// The narrowest kind that reads `s` (which is not a missing marker).
    pub fn of(s: &str) -> Kind {
        if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
            Kind::Bool
        } else if arrow_array::types::Int64Type::parse(s).is_some() {
            Kind::Int
        } else if s.strip_prefix(['+', '-']).unwrap_or(s).bytes().all(|b| b.is_ascii_digit()) {
            // Digits beyond i64 (long ids) stay text rather than lose digits as floats.
            Kind::Text
        } else if arrow_array::types::Float64Type::parse(s).is_some() {
            Kind::Float
        } else {
            match flywheel_stats::time::parse(s) {
                Some(p) if p.date_only => Kind::Date,
                Some(_) => Kind::Time,
                None => Kind::Text,
            }
        }
    }

    /// The narrowest kind that reads values of both kinds.
    pub fn join(self, o: Kind) -> Kind {
        use Kind::*;
        match (self, o) {
            (a, b) if a == b => a,
            (Null, x) | (x, Null) => x,
            (Int, Float) | (Float, Int) => Float,
            (Date, Time) | (Time, Date) => Time,
            _ => Text,
        }
    }

    pub fn data_type(self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Date => DataType::Date32,
            Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, None),
            // An all-missing column has no type to infer.
            Kind::Null | Kind::Text => DataType::Utf8,
        }
    }

    /// The name people declare it by.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Date | Kind::Time => "timestamp",
            Kind::Null | Kind::Text => "string",
        }
    }

    /// Read as text by arrow-csv, then parsed here.
    fn temporal(self) -> bool {
        matches!(self, Kind::Date | Kind::Time)
    }
}

/// A declared type (`int`, `float`, `string`, `bool`, `timestamp`).
pub fn declared_kind(ty: &str) -> Option<Kind> {
    Some(match ty {
        "int" | "integer" => Kind::Int,
        "float" | "number" | "double" => Kind::Float,
        "string" | "str" | "category" | "text" => Kind::Text,
        "bool" | "boolean" => Kind::Bool,
        "timestamp" | "datetime" | "date" | "time" => Kind::Time,
        _ => return None,
    })
}

/// `,` `;` `|`, a tab (`\t`, `tab`) or their names.
pub fn parse_delimiter(s: &str) -> Result<u8, String> {
    let d = match s {
        "," | "comma" => b',',
        ";" | "semicolon" => b';',
        "\t" | "\\t" | "tab" => b'\t',
        "|" | "pipe" => b'|',
        other if other.len() == 1 && other.is_ascii() && !other.as_bytes()[0].is_ascii_alphanumeric() => {
            other.as_bytes()[0]
        }
        other => {
            return Err(format!(
                "delimiter `{other}` is not one character; use `,`, `;`, `tab`, `|` (or any one punctuation character)"
            ));
        }
    };
    if matches!(d, b'"' | b'\n' | b'\r') {
        return Err(format!("delimiter `{s}` cannot be a quote or a line break"));
    }
    Ok(d)
}

pub fn delimiter_name(d: u8) -> String {
    match d {
        b'\t' => "tab".into(),
        other => format!("`{}`", other as char),
    }
}

fn invalid(path: &Path, message: String) -> DataError {
    DataError::Invalid { path: path.to_path_buf(), message }
}

/// The first lines of the file, whole.
fn sample(path: &Path) -> Result<Vec<u8>, DataError> {
    let mut buf = Vec::new();
    csv_reader(path)?.take(1 << 16).read_to_end(&mut buf).map_err(|e| invalid(path, format!("cannot read: {e}")))?;
    if buf.len() == 1 << 16
        && let Some(end) = buf.iter().rposition(|&b| b == b'\n')
    {
        buf.truncate(end + 1);
    }
    Ok(buf)
}

/// The delimiter that splits the first lines into the most columns, the
/// same number on every line.
pub fn detect_delimiter(path: &Path) -> Result<u8, DataError> {
    let head = sample(path)?;
    let mut best = (1, b',');
    for d in DELIMITERS {
        let format = arrow_csv::reader::Format::default().with_header(true).with_delimiter(d);
        if let Ok((schema, _)) = format.infer_schema(std::io::Cursor::new(&head), Some(200))
            && schema.fields().len() > best.0
        {
            best = (schema.fields().len(), d);
        }
    }
    Ok(best.1)
}

/// The first value (file line, text) a column's kind cannot take.
type Break = (usize, String);

/// How one file is read: its format, header, and each column's kind.
#[derive(Clone)]
pub(crate) struct Plan {
    path: PathBuf,
    format: arrow_csv::reader::Format,
    delimiter: u8,
    names: Vec<String>,
    kinds: Vec<Kind>,
    /// Who chose each column's type, when not inferred.
    declared: Vec<Option<&'static str>>,
    /// The kinds come from every row: no further widening.
    whole_file: bool,
}

impl Plan {
    fn text_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.names.iter().map(|n| Field::new(n, DataType::Utf8, true)).collect::<Vec<_>>()))
    }

    /// The schema arrow-csv decodes: times as text, parsed afterwards.
    fn read_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .names
            .iter()
            .zip(&self.kinds)
            .map(|(n, k)| Field::new(n, if k.temporal() { DataType::Utf8 } else { k.data_type() }, true))
            .collect();
        Arc::new(Schema::new(fields))
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> =
            self.names.iter().zip(&self.kinds).map(|(n, k)| Field::new(n, k.data_type(), true)).collect();
        Arc::new(Schema::new(fields))
    }

    fn text_reader(&self, batch: usize) -> Result<arrow_csv::Reader<Box<dyn Read + Send>>, DataError> {
        arrow_csv::ReaderBuilder::new(self.text_schema())
            .with_format(self.format.clone())
            .with_batch_size(batch)
            .build(csv_reader(&self.path)?)
            .map_err(|e| map_csv_error(&self.path, e, None))
    }

    /// Joins the kind of every value in the first `rows` rows (all when
    /// `None`); with `breaks`, also the first value (line, text) that each
    /// column's current kind cannot take.
    fn scan(&self, rows: Option<usize>) -> Result<(Vec<Kind>, Vec<Option<Break>>), DataError> {
        let mut kinds = vec![Kind::Null; self.names.len()];
        let mut breaks = vec![None; self.names.len()];
        let mut seen = 0;
        for b in self.text_reader(rows.unwrap_or(8192).min(8192))? {
            let b = b.map_err(|e| map_csv_error(&self.path, e, None))?;
            let take = rows.map_or(b.num_rows(), |r| (r - seen).min(b.num_rows()));
            for (i, kind) in kinds.iter_mut().enumerate() {
                let Some(a) = b.column(i).as_any().downcast_ref::<StringArray>() else { continue };
                for (r, v) in a.iter().take(take).enumerate() {
                    let Some(v) = v else { continue };
                    let k = Kind::of(v);
                    let before = self.kinds.get(i).copied().unwrap_or(Kind::Null);
                    let inferred = self.declared.get(i).is_some_and(Option::is_none);
                    if breaks[i].is_none()
                        && inferred
                        && !matches!(before, Kind::Null | Kind::Text)
                        && before.join(k) == Kind::Text
                    {
                        breaks[i] = Some((seen + r + 2, v.to_string()));
                    }
                    *kind = kind.join(k);
                }
            }
            seen += take;
            if rows.is_some_and(|r| seen >= r) {
                break;
            }
        }
        Ok((kinds, breaks))
    }
}

fn null_regex(path: &Path, opts: &ReadOptions) -> Result<regex::Regex, DataError> {
    let markers: Vec<String> =
        opts.missing_values.clone().unwrap_or_else(|| DEFAULT_MISSING.iter().map(|s| s.to_string()).collect());
    let alternatives: Vec<String> = markers.iter().map(|m| regex::escape(m)).collect();
    regex::Regex::new(&format!("^(?:{})$", alternatives.join("|")))
        .map_err(|e| invalid(path, format!("invalid missing-value markers: {e}")))
}

fn header(path: &Path, format: &arrow_csv::reader::Format) -> Result<Vec<String>, DataError> {
    let (schema, _) = format.infer_schema(csv_reader(path)?, Some(0)).map_err(|e| map_csv_error(path, e, None))?;
    let mut names = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        if f.name().is_empty() {
            return Err(invalid(path, format!("column {} has an empty name in the header", names.len() + 1)));
        }
        if names.contains(f.name()) {
            return Err(invalid(path, format!("column `{}` appears twice in the header", f.name())));
        }
        names.push(f.name().clone());
    }
    Ok(names)
}

/// Reads the header and infers each column's kind from the first rows.
pub(crate) fn plan(path: &Path, opts: &ReadOptions) -> Result<Plan, DataError> {
    let delimiter = match opts.delimiter {
        Some(d) => d,
        None => detect_delimiter(path)?,
    };
    let format = arrow_csv::reader::Format::default()
        .with_header(true)
        .with_delimiter(delimiter)
        .with_null_regex(null_regex(path, opts)?);
    let names = header(path, &format)?;
    check_declared(path, opts, &names)?;
    let mut plan = Plan {
        path: path.to_path_buf(),
        format,
        delimiter,
        kinds: vec![Kind::Null; names.len()],
        declared: names
            .iter()
            .map(|n| {
                if opts.columns.contains_key(n) {
                    Some("the type `columns` declares for it")
                } else if opts.hints.contains_key(n) {
                    Some("the type of this input in the model's signature")
                } else {
                    None
                }
            })
            .collect(),
        names,
        whole_file: false,
    };
    let (sampled, _) = plan.scan(Some(INFER_ROWS))?;
    for (i, name) in plan.names.iter().enumerate() {
        plan.kinds[i] = kind_of(path, opts, name, sampled[i])?;
    }
    Ok(plan)
}

/// Every column `columns` declares must be in the header.
fn check_declared(path: &Path, opts: &ReadOptions, names: &[String]) -> Result<(), DataError> {
    for declared in opts.columns.keys() {
        if !names.contains(declared) {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let hint = suggest(declared, &refs);
            let also = if names.len() == 1 && opts.delimiter.is_none() {
                " (the header reads as one column: give the delimiter)"
            } else {
                ""
            };
            return Err(invalid(
                path,
                format!("`columns` declares `{declared}`, which is not in the header{hint}{also}"),
            ));
        }
    }
    Ok(())
}

/// A column's kind: declared (`columns`), hinted (a model's signature), or
/// what the first rows showed.
fn kind_of(path: &Path, opts: &ReadOptions, name: &str, sampled: Kind) -> Result<Kind, DataError> {
    let Some(ty) = opts.columns.get(name).or_else(|| opts.hints.get(name)) else {
        return Ok(sampled);
    };
    match declared_kind(ty) {
        // A numeric signature input was a bool column in training too.
        Some(Kind::Float) if sampled == Kind::Bool && !opts.columns.contains_key(name) => Ok(Kind::Bool),
        Some(k) => Ok(k),
        None => Err(invalid(
            path,
            format!("column `{name}`: unknown type `{ty}`; use one of `int`, `float`, `string`, `bool`, `timestamp`"),
        )),
    }
}

/// Opens the CSV stream for a plan.
pub(crate) fn open(plan: Plan) -> Result<Batches, DataError> {
    let (watched, unclosed) = QuoteWatch::new(csv_reader(&plan.path)?, plan.delimiter);
    let reader = arrow_csv::ReaderBuilder::new(plan.read_schema())
        .with_format(plan.format.clone())
        .with_batch_size(8192)
        .build(Box::new(watched) as Box<dyn Read + Send>)
        .map_err(|e| map_csv_error(&plan.path, e, None))?;
    let schema = plan.schema();
    let mut stream = Stream { plan, reader, rows: 0, failed: false, unclosed };
    let iter = std::iter::from_fn(move || stream.next_batch());
    Ok(Batches { schema, iter: Box::new(iter) })
}

struct Stream {
    plan: Plan,
    reader: arrow_csv::Reader<Box<dyn Read + Send>>,
    rows: usize,
    failed: bool,
    /// The line of a quote left open at the end of the file (0: none).
    unclosed: Arc<AtomicUsize>,
}

/// A value a column's kind could not take: where, and which.
struct Misfit {
    column: usize,
    line: usize,
    value: String,
}

impl Stream {
    fn next_batch(&mut self) -> Option<Result<RecordBatch, DataError>> {
        if self.failed {
            return None;
        }
        let out = match self.reader.next() {
            Some(Ok(b)) => self.convert(b),
            Some(Err(e)) => Err(self.arrow_error(e)),
            None => match self.unclosed.load(Ordering::Relaxed) {
                0 => return None,
                line => Err(DataError::AtLine {
                    path: self.plan.path.clone(),
                    line,
                    message: "a quote opens a field here and never closes, so every row after it would be read \
                              as one value; close the quote, or double a quote meant as a character (\"\")"
                        .into(),
                }),
            },
        };
        self.failed = out.is_err();
        Some(out)
    }

    /// Parses the temporal columns of a batch decoded as text.
    fn convert(&mut self, b: RecordBatch) -> Result<RecordBatch, DataError> {
        let start = self.rows;
        self.rows += b.num_rows();
        if !self.plan.kinds.iter().any(|k| k.temporal()) {
            return Ok(b);
        }
        let mut columns: Vec<ArrayRef> = b.columns().to_vec();
        for (i, kind) in self.plan.kinds.iter().enumerate() {
            if !kind.temporal() {
                continue;
            }
            let Some(text) = b.column(i).as_any().downcast_ref::<StringArray>() else { continue };
            columns[i] = match temporal(text, *kind) {
                Ok(a) => a,
                Err((row, value)) => return Err(self.misfit(Misfit { column: i, line: start + row + 2, value })),
            };
        }
        RecordBatch::try_new(self.plan.schema(), columns).map_err(|e| invalid(&self.plan.path, e.to_string()))
    }

    fn arrow_error(&self, e: ArrowError) -> DataError {
        let msg = e.to_string();
        let parse =
            regex::Regex::new(r"Error while parsing value '(.*)' as type '\w+' for column (\d+) at line (\d+)").ok();
        match parse.and_then(|re| re.captures(&msg)) {
            Some(c) => self.misfit(Misfit {
                column: c[2].parse().unwrap_or(0),
                // arrow-csv counts data rows from 1 after the header; people count file lines.
                line: c[3].parse::<usize>().unwrap_or(0) + 1,
                value: c[1].to_string(),
            }),
            None => map_csv_error(&self.plan.path, e, Some(self.plan.schema().as_ref())),
        }
    }

    /// A value the column's kind cannot take: a declared type is wrong; an
    /// inferred one is widened by reading all rows, or is a type change.
    fn misfit(&self, m: Misfit) -> DataError {
        let name = self.plan.names.get(m.column).cloned().unwrap_or_else(|| format!("#{}", m.column + 1));
        let kind = self.plan.kinds.get(m.column).copied().unwrap_or(Kind::Text);
        let fits = kind.join(Kind::of(&m.value)).name();
        let at = |line, message| DataError::AtLine { path: self.plan.path.clone(), line, message };
        if let Some(Some(by)) = self.plan.declared.get(m.column) {
            return at(
                m.line,
                format!(
                    "column `{name}`: value '{}' is not {}, {by}; fix the value, or declare the column `{fits}`",
                    m.value,
                    kind.name()
                ),
            );
        }
        if self.plan.whole_file {
            return at(m.line, format!("column `{name}`: value '{}' is not {}", m.value, kind.name()));
        }
        match self.plan.scan(None) {
            Err(e) => e,
            Ok((kinds, breaks)) => {
                match breaks.iter().enumerate().filter_map(|(i, b)| b.as_ref().map(|b| (i, b))).min_by_key(|(_, b)| b.0)
                {
                    Some((i, (line, value))) => {
                        let name = &self.plan.names[i];
                        let (was, now) = (self.plan.kinds[i], kinds[i]);
                        at(
                            *line,
                            format!(
                                "column `{name}`: value '{value}' is not {}: the first {INFER_ROWS} rows made the column {}, so it changes type in the file; its values fit `{}`. Fix the value, or declare that type: `columns = {{ {name} = \"{}\" }}` in a pipeline, `--columns {name}={}` on the command line",
                                was.name(),
                                was.name(),
                                now.name(),
                                now.name(),
                                now.name()
                            ),
                        )
                    }
                    None => DataError::Widened { path: self.plan.path.clone(), kinds },
                }
            }
        }
    }
}

/// Opens the file again with the kinds of all its rows (from a
/// [`DataError::Widened`]); declared columns keep their types.
pub(crate) fn widened(opts: &ReadOptions, path: &Path, kinds: &[Kind]) -> Result<Batches, DataError> {
    let mut p = plan(path, opts)?;
    for (i, k) in kinds.iter().enumerate() {
        // A column missing from every sampled row stays text, as on a first read.
        if p.declared.get(i).is_some_and(Option::is_none) && p.kinds[i] != Kind::Null {
            p.kinds[i] = p.kinds[i].join(*k);
        }
    }
    p.whole_file = true;
    open(p)
}

/// Text → Date32 or Timestamp(µs); values with an offset become UTC.
/// Err: the row and value that is not a date or time (or, in a date
/// column, a time of day).
fn temporal(text: &StringArray, kind: Kind) -> Result<ArrayRef, (usize, String)> {
    let mut micros = Vec::with_capacity(text.len());
    for (r, v) in text.iter().enumerate() {
        micros.push(match v {
            None => None,
            Some(s) => match flywheel_stats::time::parse(s) {
                Some(p) if kind == Kind::Time || p.date_only => Some(p.micros),
                _ => return Err((r, s.to_string())),
            },
        });
    }
    Ok(match kind {
        Kind::Date => Arc::new(arrow_array::Date32Array::from(
            micros.into_iter().map(|m| m.map(|m| m.div_euclid(86_400_000_000) as i32)).collect::<Vec<_>>(),
        )),
        _ => Arc::new(arrow_array::TimestampMicrosecondArray::from(micros)),
    })
}

fn is_gzip(path: &Path) -> Result<bool, DataError> {
    let mut f = open_file(path)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(|source| DataError::Open { path: path.to_path_buf(), source })?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

fn csv_reader(path: &Path) -> Result<Box<dyn Read + Send>, DataError> {
    let gz = is_gzip(path)?;
    let f = BufReader::with_capacity(1 << 16, open_file(path)?);
    Ok(if gz { Box::new(flate2::read::MultiGzDecoder::new(f)) } else { Box::new(f) })
}

pub(crate) fn open_csv_batches(path: &Path, opts: &ReadOptions) -> Result<Batches, DataError> {
    {
        let mut probe = csv_reader(path)?;
        let mut first = [0u8; 1];
        let n = probe
            .read(&mut first)
            .map_err(|e| DataError::Invalid { path: path.to_path_buf(), message: format!("cannot read: {e}") })?;
        if n == 0 {
            return Err(DataError::Empty { path: path.to_path_buf() });
        }
    }
    open(plan(path, opts)?)
}

/// Turns arrow-csv's messages into ones that say where and what to do.
fn map_csv_error(path: &Path, e: ArrowError, schema: Option<&Schema>) -> DataError {
    let msg = e.to_string();
    let fields =
        regex::Regex::new(r"incorrect number of fields for line (\d+), expected (\d+) got (?:more than )?(\d+)").ok();
    if let Some(c) = fields.and_then(|re| re.captures(&msg)) {
        let line: usize = c[1].parse().unwrap_or(0);
        return DataError::AtLine {
            path: path.to_path_buf(),
            line,
            message: format!(
                "this row has {} fields but the header has {}; fix the row (quote values that contain commas)",
                &c[3], &c[2]
            ),
        };
    }
    if msg.to_lowercase().contains("utf-8") {
        let line =
            regex::Regex::new(r"line (\d+)").ok().and_then(|re| re.captures(&msg)).and_then(|c| c[1].parse().ok());
        let field = regex::Regex::new(r"field (\d+)")
            .ok()
            .and_then(|re| re.captures(&msg))
            .and_then(|c| c[1].parse::<usize>().ok());
        let column = field
            .and_then(|f| schema.and_then(|s| s.fields().get(f)).map(|c| format!(" (column `{}`)", c.name())))
            .unwrap_or_default();
        let message =
            format!("this row is not valid UTF-8{column}; convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8`)");
        return match line {
            Some(line) => DataError::AtLine { path: path.to_path_buf(), line, message },
            None => DataError::Invalid { path: path.to_path_buf(), message },
        };
    }
    let unequal = regex::Regex::new(r"Expected (\d+) records, found (\d+) records at line (\d+)").ok();
    if let Some(c) = unequal.and_then(|re| re.captures(&msg)) {
        return DataError::AtLine {
            path: path.to_path_buf(),
            line: c[3].parse().unwrap_or(0),
            message: format!(
                "this row has {} fields but the header has {}; fix the row (quote values that contain commas)",
                &c[2], &c[1]
            ),
        };
    }
    DataError::Invalid { path: path.to_path_buf(), message: format!("invalid CSV: {msg}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_widen_only_where_values_allow() {
        assert_eq!(Kind::of("12"), Kind::Int);
        assert_eq!(Kind::of("12.66666667"), Kind::Float);
        assert_eq!(Kind::of("2024-1-5"), Kind::Date);
        assert_eq!(Kind::of("2024-01-05T10:00:00+02:00"), Kind::Time);
        assert_eq!(Kind::of("123456789012345678901234"), Kind::Text);
        assert_eq!(Kind::Int.join(Kind::Float), Kind::Float);
        assert_eq!(Kind::Date.join(Kind::Time), Kind::Time);
        assert_eq!(Kind::Int.join(Kind::Text), Kind::Text);
        assert_eq!(Kind::Bool.join(Kind::Int), Kind::Text);
    }

    #[test]
    fn delimiters_by_name_or_character() {
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert!(parse_delimiter("ab").is_err());
        assert!(parse_delimiter("\"").is_err());
    }
}
