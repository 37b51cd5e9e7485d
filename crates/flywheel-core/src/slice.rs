//! Slice specs, as pipelines and deployments write them: `"sex"` (each
//! value), `"age:25,45,65"` (a numeric column in bins at those edges) and
//! crosses of two, `"sex*race"` or `"sex*age:40"`. Read here, so that
//! `check` reports a bad one; a table is cut into them by
//! `flywheel_data::slices`.

/// One side of a slice spec: a column, with bin edges when numeric bins.
#[derive(Debug, Clone, PartialEq)]
pub struct SlicePart {
    pub column: String,
    pub edges: Option<Vec<f64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SliceSpec {
    pub text: String,
    pub parts: Vec<SlicePart>,
}

fn bad(spec: &str, msg: impl std::fmt::Display) -> String {
    format!("slice \"{spec}\": {msg}")
}

impl SliceSpec {
    pub fn parse(text: &str) -> Result<SliceSpec, String> {
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
                None => SlicePart { column: side.to_string(), edges: None },
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
                    SlicePart { column: col.trim().to_string(), edges: Some(e) }
                }
            };
            parts.push(part);
        }
        Ok(SliceSpec { text: text.to_string(), parts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_into_columns_and_bins() {
        let s = SliceSpec::parse("sex * age:25,45").unwrap();
        assert_eq!(s.parts.len(), 2);
        assert_eq!(s.parts[1], SlicePart { column: "age".into(), edges: Some(vec![25.0, 45.0]) });
        assert!(SliceSpec::parse("a*b*c").is_err());
        assert!(SliceSpec::parse("age:40,30").unwrap_err().contains("must increase"));
        assert!(SliceSpec::parse("age:x").unwrap_err().contains("`x` is not a number"));
    }
}
