//! The ids a prediction server makes for requests that come without one,
//! and how the log index keeps them: by blocks of consecutive numbers, one
//! row per block and segment, not one per request. A row per request was
//! half of what the log's writer spent (a B-tree insert each), at tens of
//! thousands of requests a second.
//!
//! A made id reads `<start, µs, 14 hex>-<pid, 8 hex>-<n, 12 hex>`: of fixed
//! width, sortable, unique per process start. Any id of that form is kept
//! by block, whoever wrote it, so that a client sending one back is indexed
//! as it would be otherwise: the latest logging of an id is the one found.

use std::sync::atomic::{AtomicU64, Ordering};

/// Ids per block: a block is found by `n >> BLOCK_BITS`.
pub(crate) const BLOCK_BITS: u32 = 12;

const PREFIX_LEN: usize = 14 + 1 + 8;
const ID_LEN: usize = PREFIX_LEN + 1 + 12;

/// A process's request ids, in the order they are made.
pub struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    /// The ids of a process started at `start_us` (µs since 1970) as `pid`.
    pub fn new(start_us: i64, pid: u32) -> Self {
        let start = u64::try_from(start_us).unwrap_or(0) & ((1 << 56) - 1);
        RequestIds { prefix: format!("{start:014x}-{pid:08x}"), next: AtomicU64::new(0) }
    }

    /// The next id.
    pub fn make(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed) & ((1 << 48) - 1);
        // What `format!("{prefix}-{n:012x}")` writes, without its machinery.
        let mut id = String::with_capacity(ID_LEN);
        id.push_str(&self.prefix);
        id.push('-');
        id.extend((0..12).rev().map(|k| char::from(b"0123456789abcdef"[((n >> (4 * k)) & 0xf) as usize])));
        id
    }
}

/// The prefix and number of an id of the made form (lowercase hex). One
/// pass, a table lookup a byte, no branch but at the end: the log's writer
/// reads every logged request's id.
pub(crate) fn parse(id: &str) -> Option<(&str, u64)> {
    // A fixed-size array: the loops below have constant bounds, so they
    // are unrolled with no bounds checks.
    let b: &[u8; ID_LEN] = id.as_bytes().try_into().ok()?;
    if b[14] != b'-' || b[PREFIX_LEN] != b'-' {
        return None;
    }
    // Any byte that is not a lowercase hex digit sets a high bit.
    let mut seen = 0u8;
    for &c in &b[..14] {
        seen |= HEX[usize::from(c)];
    }
    for &c in &b[15..PREFIX_LEN] {
        seen |= HEX[usize::from(c)];
    }
    let mut n = 0u64;
    for &c in &b[PREFIX_LEN + 1..] {
        let v = HEX[usize::from(c)];
        seen |= v;
        n = n << 4 | u64::from(v & 0xf);
    }
    (seen < 0x10).then(|| (&id[..PREFIX_LEN], n))
}

/// A byte's value as a lowercase hex digit, or `0xff`.
static HEX: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// One block being built: its requests as `(n, rows, at_us)` varints.
#[derive(Default)]
pub(crate) struct Block {
    pub first_n: u64,
    pub last_n: u64,
    pub bytes: Vec<u8>,
    last_at: i64,
}

impl Block {
    pub fn push(&mut self, n: u64, rows: i64, at_us: i64) {
        if self.bytes.is_empty() {
            (self.first_n, self.last_n) = (n, n);
        }
        self.first_n = self.first_n.min(n);
        self.last_n = self.last_n.max(n);
        varint(&mut self.bytes, n & ((1 << BLOCK_BITS) - 1));
        varint(&mut self.bytes, zigzag(rows));
        varint(&mut self.bytes, zigzag(at_us.wrapping_sub(self.last_at)));
        self.last_at = at_us;
    }
}

/// The rows and time of request `n` in a block's bytes, the last of its
/// entries when it has several; `None` when absent or the bytes are bad.
pub(crate) fn find(bytes: &[u8], n: u64) -> Option<(i64, i64)> {
    let (mut at, mut last_at, mut found) = (0, 0i64, None);
    let low = n & ((1 << BLOCK_BITS) - 1);
    while at < bytes.len() {
        let m = read_varint(bytes, &mut at)?;
        let rows = unzigzag(read_varint(bytes, &mut at)?);
        last_at = last_at.wrapping_add(unzigzag(read_varint(bytes, &mut at)?));
        if m == low {
            found = Some((rows, last_at));
        }
    }
    found
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_ids_are_of_fixed_width_sort_in_the_order_they_were_made_and_parse_back() {
        let ids = RequestIds::new(1_764_000_000_000_000, 4242);
        let made: Vec<String> = (0..20).map(|_| ids.make()).collect();
        assert!(made.iter().all(|id| id.len() == ID_LEN), "{made:?}");
        assert!(made.windows(2).all(|w| w[0] < w[1]), "{made:?}");
        assert_eq!(parse(&made[7]), Some((&made[7][..PREFIX_LEN], 7)));
        assert_eq!(&made[0][..PREFIX_LEN], format!("{:014x}-{:08x}", 1_764_000_000_000_000u64, 4242));
    }

    #[test]
    fn ids_of_another_form_are_not_taken_for_made_ones() {
        for id in [
            "r1",
            "",
            "0000000000000a-00000001-00000000000G",
            "0000000000000A-00000001-000000000001",
            "0000000000000a_00000001-000000000001",
            "0000000000000a-00000001-0000000000001",
        ] {
            assert_eq!(parse(id), None, "{id}");
        }
    }

    proptest::proptest! {
        #[test]
        fn an_id_is_taken_when_every_digit_is_lowercase_hex_as_the_grammar_says(
            start in 0u64..(1 << 56), pid: u32, n in 0u64..(1 << 48), at in 0usize..ID_LEN, c: u8,
        ) {
            let id = format!("{start:014x}-{pid:08x}-{n:012x}");
            proptest::prop_assert_eq!(parse(&id), Some((&id[..PREFIX_LEN], n)));
            let mut bytes = id.clone().into_bytes();
            bytes[at] = c;
            if let Ok(changed) = String::from_utf8(bytes) {
                let digit = at != 14 && at != PREFIX_LEN;
                let kept = if digit { c.is_ascii_digit() || (b'a'..=b'f').contains(&c) } else { c == b'-' };
                let parsed = parse(&changed);
                proptest::prop_assert_eq!(parsed.is_some(), kept, "{}", changed);
                if kept {
                    let value = u64::from_str_radix(&changed[PREFIX_LEN + 1..], 16).ok();
                    proptest::prop_assert_eq!(parsed.map(|p| p.1), value);
                }
            }
        }
    }

    #[test]
    fn a_block_gives_back_each_request_and_the_last_of_a_repeated_one() {
        let mut b = Block::default();
        let t0 = 1_764_000_000_000_000;
        for (n, rows, at) in [(4100, 1, t0), (4097, 3, t0 - 50), (4200, 1, t0 + 9), (4097, 2, t0 + 70)] {
            b.push(n, rows, at);
        }
        assert_eq!((b.first_n, b.last_n), (4097, 4200));
        assert_eq!(find(&b.bytes, 4100), Some((1, t0)));
        assert_eq!(find(&b.bytes, 4200), Some((1, t0 + 9)));
        assert_eq!(find(&b.bytes, 4097), Some((2, t0 + 70)), "the latest wins");
        assert_eq!(find(&b.bytes, 4101), None);
        assert_eq!(find(&b.bytes[..b.bytes.len() - 1], 4097), None, "cut short");
    }
}
