//! The binary tensor data extension of the inference protocol: a JSON
//! header of `Inference-Header-Content-Length` bytes, then each binary
//! tensor's raw little-endian elements in order (BYTES as 4-byte
//! little-endian lengths, each followed by that many bytes).

use crate::{Result, bad};

/// The datatypes a tensor may have here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    Fp64,
    Fp32,
    Int64,
    Int32,
    Bool,
    Bytes,
}

impl Dtype {
    pub fn parse(s: &str) -> Option<Dtype> {
        Some(match s {
            "FP64" => Dtype::Fp64,
            "FP32" => Dtype::Fp32,
            "INT64" => Dtype::Int64,
            "INT32" => Dtype::Int32,
            "BOOL" => Dtype::Bool,
            "BYTES" => Dtype::Bytes,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::Fp64 => "FP64",
            Dtype::Fp32 => "FP32",
            Dtype::Int64 => "INT64",
            Dtype::Int32 => "INT32",
            Dtype::Bool => "BOOL",
            Dtype::Bytes => "BYTES",
        }
    }

    /// Bytes per element; `None` for BYTES, whose elements vary.
    fn width(self) -> Option<usize> {
        match self {
            Dtype::Fp64 | Dtype::Int64 => Some(8),
            Dtype::Fp32 | Dtype::Int32 => Some(4),
            Dtype::Bool => Some(1),
            Dtype::Bytes => None,
        }
    }
}

/// A tensor's elements read from raw bytes.
#[derive(Debug, PartialEq)]
pub enum Elements {
    Num(Vec<f64>),
    Text(Vec<String>),
}

/// Reads `n` elements of `dtype` from exactly `raw`.
pub fn decode(dtype: Dtype, raw: &[u8], n: usize, name: &str) -> Result<Elements> {
    let Some(width) = dtype.width() else {
        return decode_bytes(raw, n, name).map(Elements::Text);
    };
    if raw.len() != n * width {
        return Err(bad(format!(
            "input `{name}`: {} bytes of binary data, where {n} {} elements take {}",
            raw.len(),
            dtype.as_str(),
            n * width
        )));
    }
    let chunks = raw.chunks_exact(width);
    let arr = |c: &[u8]| -> [u8; 8] {
        let mut a = [0u8; 8];
        a[..c.len()].copy_from_slice(c);
        a
    };
    let values: Vec<f64> = match dtype {
        Dtype::Fp64 => chunks.map(|c| f64::from_le_bytes(arr(c))).collect(),
        Dtype::Fp32 => chunks.map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        Dtype::Int64 => chunks.map(|c| i64::from_le_bytes(arr(c)) as f64).collect(),
        Dtype::Int32 => chunks.map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        Dtype::Bool => chunks.map(|c| f64::from(u8::from(c[0] != 0))).collect(),
        Dtype::Bytes => unreachable!("BYTES has no fixed width"),
    };
    Ok(Elements::Num(values))
}

fn decode_bytes(mut raw: &[u8], n: usize, name: &str) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(n.min(crate::RESERVE));
    while !raw.is_empty() {
        let Some((len, rest)) = raw.split_first_chunk::<4>() else {
            return Err(bad(format!("input `{name}`: BYTES element {} has a cut length prefix", out.len())));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(bad(format!(
                "input `{name}`: BYTES element {} says {len} bytes, {} are left",
                out.len(),
                rest.len()
            )));
        }
        let text = std::str::from_utf8(&rest[..len])
            .map_err(|_| bad(format!("input `{name}`: BYTES element {} is not UTF-8 text", out.len())))?;
        out.push(text.to_string());
        raw = &rest[len..];
    }
    if out.len() != n {
        return Err(bad(format!(
            "input `{name}`: {} BYTES elements in the binary data, the shape says {n}",
            out.len()
        )));
    }
    Ok(out)
}

pub fn encode_f64(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn encode_bytes<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for s in items {
        out.extend((s.len() as u32).to_le_bytes());
        out.extend(s.as_bytes());
    }
    out
}

/// Splits a body into its JSON header and the binary data after it.
pub fn split<'a>(body: &'a [u8], header_len: &str) -> Result<(&'a [u8], &'a [u8])> {
    let n: usize = header_len
        .trim()
        .parse()
        .map_err(|_| bad(format!("header Inference-Header-Content-Length: `{header_len}` is not a byte count")))?;
    if n > body.len() {
        return Err(bad(format!(
            "header Inference-Header-Content-Length: {n} bytes of JSON, the body has {}",
            body.len()
        )));
    }
    Ok(body.split_at(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_read_back_what_was_written() {
        let v = [1.5, -0.0, f64::NAN, 1e300];
        let Elements::Num(back) = decode(Dtype::Fp64, &encode_f64(&v), 4, "x").unwrap() else { panic!() };
        assert_eq!(back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), v.map(f64::to_bits));
        let raw = encode_bytes(["a", "", "héllo"]);
        assert_eq!(
            decode(Dtype::Bytes, &raw, 3, "c").unwrap(),
            Elements::Text(vec!["a".into(), "".into(), "héllo".into()])
        );
        let ints: Vec<u8> = [7i32, -2].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(decode(Dtype::Int32, &ints, 2, "i").unwrap(), Elements::Num(vec![7.0, -2.0]));
        assert_eq!(decode(Dtype::Bool, &[0, 1, 2], 3, "b").unwrap(), Elements::Num(vec![0.0, 1.0, 1.0]));
    }

    #[test]
    fn short_or_long_data_is_refused_naming_the_input() {
        let e = decode(Dtype::Fp64, &[0; 12], 2, "x").unwrap_err().to_string();
        assert!(e.contains("input `x`") && e.contains("12 bytes") && e.contains("16"), "{e}");
        let mut raw = encode_bytes(["ab"]);
        raw.pop();
        let e = decode(Dtype::Bytes, &raw, 1, "c").unwrap_err().to_string();
        assert!(e.contains("says 2 bytes, 1 are left"), "{e}");
        let e = decode(Dtype::Bytes, &encode_bytes(["a", "b"]), 3, "c").unwrap_err().to_string();
        assert!(e.contains("2 BYTES elements") && e.contains("says 3"), "{e}");
        assert!(split(b"{}", "9").is_err() && split(b"{}", "x").is_err());
        assert_eq!(split(b"{}ab", "2").unwrap(), (&b"{}"[..], &b"ab"[..]));
    }
}
