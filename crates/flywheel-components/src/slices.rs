//! Data slices for sliced evaluation: `"sex"` (each value), `"age:25,45,65"`
//! (a numeric column in bins at those edges) and crosses of two,
//! `"sex*race"` or `"sex*age:40"`.

use flywheel_core::ExecError;
use flywheel_data::table::{Table, is_numeric, suggest};
use std::collections::BTreeMap;

/// One side of a slice spec: a column, with bin edges when numeric bins.
#[derive(Debug, Clone, PartialEq)]
struct Part {
    column: String,
    edges: Option<Vec<f64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SliceSpec {
    pub text: String,
    parts: Vec<Part>,
}

fn bad(spec: &str, msg: impl std::fmt::Display) -> ExecError {
    ExecError::failed(format!("slice \"{spec}\": {msg}"))
}

impl SliceSpec {
    pub fn parse(text: &str) -> Result<SliceSpec, ExecError> {
        let sides: Vec<&str> = text.split('*').map(str::trim).collect();
        if sides.len() > 2 {
            return Err(bad(text, "a cross takes two columns, like \"sex*race\""));
        }
        let mut parts = Vec::new();
        for side in sides {
            if side.is_empty() {
                return Err(bad(text, "an empty column name"));
            }
            let part = match side.split_once(':') {
                None => Part { column: side.to_string(), edges: None },
                Some((col, edges)) => {
                    let mut e = Vec::new();
                    for s in edges.split(',').map(str::trim) {
                        e.push(s.parse::<f64>().map_err(|_| {
                            bad(text, format!("bin edge `{s}` is not a number (write edges like \"age:25,45,65\")"))
                        })?);
                    }
                    if e.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(bad(text, "bin edges must increase"));
                    }
                    Part { column: col.trim().to_string(), edges: Some(e) }
                }
            };
            parts.push(part);
        }
        Ok(SliceSpec { text: text.to_string(), parts })
    }

    /// Each row's slice name (`None` where it falls in none, never here:
    /// missing values form their own slice).
    pub fn keys(&self, t: &Table) -> Result<Vec<String>, ExecError> {
        let mut keys: Vec<String> = vec![String::new(); t.rows()];
        for (k, part) in self.parts.iter().enumerate() {
            let i = t.column_index(&part.column).ok_or_else(|| {
                let names = t.column_names();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                bad(
                    &self.text,
                    format!("`{}` is not a column of the evaluation data{}", part.column, suggest(&part.column, &refs)),
                )
            })?;
            let c = &part.column;
            let labels: Vec<String> = match &part.edges {
                None => t
                    .str_column(i)
                    .into_iter()
                    .map(|v| format!("{c}={}", v.as_deref().unwrap_or("<missing>")))
                    .collect(),
                Some(edges) => {
                    if !is_numeric(t.schema.field(i).data_type()) {
                        return Err(bad(&self.text, format!("`{c}` holds text; bins need numbers")));
                    }
                    t.f64_column(i).into_iter().map(|v| bin_label(c, edges, v)).collect()
                }
            };
            for (key, l) in keys.iter_mut().zip(labels) {
                if k > 0 {
                    key.push_str(", ");
                }
                key.push_str(&l);
            }
        }
        Ok(keys)
    }
}

fn fmt(x: f64) -> String {
    let s = format!("{x}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn bin_label(c: &str, edges: &[f64], v: Option<f64>) -> String {
    let Some(x) = v else { return format!("{c}=<missing>") };
    let k = edges.partition_point(|e| *e <= x);
    if k == 0 {
        format!("{c}<{}", fmt(edges[0]))
    } else if k == edges.len() {
        format!("{c}≥{}", fmt(edges[k - 1]))
    } else {
        format!("{}≤{c}<{}", fmt(edges[k - 1]), fmt(edges[k]))
    }
}

/// Rows per slice name, in name order.
pub fn group(keys: &[String]) -> BTreeMap<&str, Vec<usize>> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        groups.entry(k.as_str()).or_default().push(i);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bins_are_labelled() {
        let s = SliceSpec::parse("sex * age:25,45").unwrap();
        assert_eq!(s.parts.len(), 2);
        assert_eq!(bin_label("age", &[25.0, 45.0], Some(20.0)), "age<25");
        assert_eq!(bin_label("age", &[25.0, 45.0], Some(25.0)), "25≤age<45");
        assert_eq!(bin_label("age", &[25.0, 45.0], Some(60.5)), "age≥45");
        assert_eq!(bin_label("age", &[25.0, 45.0], None), "age=<missing>");
        assert!(SliceSpec::parse("a*b*c").is_err());
        assert!(SliceSpec::parse("age:40,30").unwrap_err().to_string().contains("must increase"));
        assert!(SliceSpec::parse("age:x").unwrap_err().to_string().contains("`x` is not a number"));
    }
}
