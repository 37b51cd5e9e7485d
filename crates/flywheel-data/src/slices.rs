//! A table cut into slices (`flywheel_core::slice::SliceSpec`), for sliced
//! evaluation and monitoring: each row's slice name, and rows per slice.

use crate::DataError;
use crate::table::{Table, is_numeric, suggest};
use flywheel_core::slice::SliceSpec;
use std::collections::BTreeMap;

fn bad(spec: &str, msg: impl std::fmt::Display) -> DataError {
    DataError::Slice(format!("slice \"{spec}\": {msg}"))
}

/// Each row's slice name (`None` where it falls in none, never here:
/// missing values form their own slice).
pub fn keys(spec: &SliceSpec, t: &Table) -> Result<Vec<String>, DataError> {
    let mut keys: Vec<String> = vec![String::new(); t.rows()];
    for (k, part) in spec.parts.iter().enumerate() {
        let i = t.column_index(&part.column).ok_or_else(|| {
            let names = t.column_names();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            bad(&spec.text, format!("`{}` is not a column of the data{}", part.column, suggest(&part.column, &refs)))
        })?;
        let c = &part.column;
        let labels: Vec<String> = match &part.edges {
            None => {
                t.str_column(i).into_iter().map(|v| format!("{c}={}", v.as_deref().unwrap_or("<missing>"))).collect()
            }
            Some(edges) => {
                if !is_numeric(t.schema.field(i).data_type()) {
                    return Err(bad(&spec.text, format!("`{c}` holds text; bins need numbers")));
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
    fn bins_are_labelled() {
        assert_eq!(bin_label("age", &[25.0, 45.0], Some(20.0)), "age<25");
        assert_eq!(bin_label("age", &[25.0, 45.0], Some(25.0)), "25≤age<45");
        assert_eq!(bin_label("age", &[25.0, 45.0], Some(60.5)), "age≥45");
        assert_eq!(bin_label("age", &[25.0, 45.0], None), "age=<missing>");
    }
}
