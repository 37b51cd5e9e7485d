//! JSON answers written straight into their buffer, the other side of
//! `scan.rs`: strings, numbers and lists as serde_json writes them (its
//! number formatter, its escapes for a string that needs one), without a
//! serializer's dispatch per value and a check per byte of every string,
//! which were most of a one-row OIP answer's work.

use serde_json::ser::{CompactFormatter, Formatter};

/// `s` as a JSON string.
pub fn str(out: &mut Vec<u8>, s: &str) {
    if crate::scan::plain_len(s.as_bytes()).is_none() {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a `Vec` cannot fail.
        _ = serde_json::to_writer(&mut *out, s);
    }
}

/// `x` as serde_json writes an `f64`: `null` when it is not finite.
pub fn f64(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        _ = CompactFormatter.write_f64(out, x);
    } else {
        out.extend_from_slice(b"null");
    }
}

pub fn count(out: &mut Vec<u8>, n: usize) {
    _ = CompactFormatter.write_u64(out, n as u64);
}

/// `[item,...]`, each written by `write`.
pub fn list<T>(out: &mut Vec<u8>, items: impl IntoIterator<Item = T>, mut write: impl FnMut(&mut Vec<u8>, T)) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    proptest! {
        #[test]
        fn strings_and_numbers_are_written_as_serde_json_writes_them(
            s in "(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}é€😀]){0,24}",
            bits in any::<u64>(),
            n in any::<usize>(),
        ) {
            prop_assert_eq!(written(|o| str(o, &s)), serde_json::to_string(&s).unwrap());
            let x = f64::from_bits(bits);
            prop_assert_eq!(written(|o| f64(o, x)), serde_json::to_string(&x).unwrap());
            prop_assert_eq!(written(|o| count(o, n)), serde_json::to_string(&n).unwrap());
            let xs = [x, 0.1, -2.5e-300];
            prop_assert_eq!(written(|o| list(o, xs, f64)), serde_json::to_string(&xs).unwrap());
        }
    }
}
