//! Value frequencies: exact counts while a column has at most `cap`
//! distinct values, then a batched Misra–Gries summary: when over `cap`, the
//! count at which half the values would go is subtracted from every value.
//! It keeps every value more frequent than 2n/cap, with counts
//! underestimated by at most [`Frequent::max_error`] (≤ 2n/cap). Merging
//! exact summaries is exact.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A fast, non-cryptographic hasher: these maps see one lookup per value,
/// and their keys are not attacker-chosen in a way that matters for a
/// statistics pass.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, i: u64) {
        // MurmurHash3's 64-bit finalizer: every input bit reaches the low
        // bits hashbrown indexes with (float bits of whole numbers have all
        // their low bits zero, which a plain multiply would keep).
        let mut x = self.0.rotate_left(5) ^ i;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        self.0 = x ^ (x >> 33);
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FastBuild = BuildHasherDefault<FastHasher>;

pub const DEFAULT_CAP: usize = 100_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Frequent<K: Hash + Eq = String> {
    cap: usize,
    counts: HashMap<K, u64, FastBuild>,
    /// False once the summary had to forget values.
    exact: bool,
    /// Largest count subtracted from every value by Misra–Gries decrements.
    error: u64,
}

impl<K: Hash + Eq + Clone + Ord> Default for Frequent<K> {
    fn default() -> Self {
        Self::new(DEFAULT_CAP)
    }
}

impl<K: Hash + Eq + Clone + Ord> Frequent<K> {
    pub fn new(cap: usize) -> Self {
        Self { cap: cap.max(1), counts: HashMap::default(), exact: true, error: 0 }
    }

    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// Upper bound on how much any reported count is below the true count.
    pub fn max_error(&self) -> u64 {
        self.error
    }

    pub fn add(&mut self, v: K) {
        self.add_n(v, 1);
    }

    pub fn add_n(&mut self, v: K, n: u64) {
        *self.counts.entry(v).or_default() += n;
        if self.counts.len() > self.cap {
            self.shrink();
        }
    }

    fn shrink(&mut self) {
        if self.counts.len() <= self.cap {
            return;
        }
        self.exact = false;
        // Subtract the count below which half of the values fall, so that
        // each shrink frees at least half the room (amortized O(1) per add).
        let mut counts: Vec<u64> = self.counts.values().copied().collect();
        let k = counts.len() - self.cap / 2;
        let (_, &mut m, _) = counts.select_nth_unstable(k.saturating_sub(1));
        self.error += m;
        // Rebuild rather than `retain`: removing most entries in place leaves
        // the table full of tombstones, and every later insert pays for them.
        let old = std::mem::take(&mut self.counts);
        self.counts = old.into_iter().filter(|(_, c)| *c > m).map(|(k, c)| (k, c - m)).collect();
    }

    /// Adds one occurrence of a key that is usually already present,
    /// allocating only when it is new.
    pub fn add_ref<Q>(&mut self, v: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(c) = self.counts.get_mut(v) {
            *c += 1;
            return;
        }
        self.add_n(v.to_owned(), 1);
    }

    pub fn merge(&mut self, o: &Frequent<K>) {
        for (v, &c) in &o.counts {
            *self.counts.entry(v.clone()).or_default() += c;
        }
        self.exact &= o.exact;
        self.error += o.error;
        self.shrink();
    }

    pub fn distinct_if_exact(&self) -> Option<usize> {
        self.exact.then_some(self.counts.len())
    }

    /// The `k` most frequent values, ties by value.
    pub fn top(&self, k: usize) -> Vec<(K, u64)> {
        let mut v: Vec<(K, u64)> = self.counts.iter().map(|(s, c)| (s.clone(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(k);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_until_the_cap_then_keeps_heavy_hitters() {
        let mut f = Frequent::new(10);
        for i in 0..1000 {
            f.add(if i % 2 == 0 { "common" } else { "x" }.to_string());
        }
        for i in 0..50 {
            f.add(format!("rare{i}"));
        }
        assert!(!f.is_exact());
        let top = f.top(2);
        assert_eq!(top[0].0, "common");
        assert!(top[0].1 + f.max_error() >= 500 && top[0].1 <= 500);
    }

    #[test]
    fn merge_of_exact_parts_is_exact() {
        let (mut a, mut b) = (Frequent::<String>::default(), Frequent::default());
        a.add("x".into());
        a.add("y".into());
        b.add("x".into());
        a.merge(&b);
        assert_eq!(a.top(5), vec![("x".to_string(), 2), ("y".to_string(), 1)]);
        assert_eq!(a.distinct_if_exact(), Some(2));
    }
}

#[cfg(test)]
mod bound {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn counts_are_never_over_and_at_most_max_error_under(values in proptest::collection::vec(0u32..500, 1..5000), cap in 4usize..64) {
            let mut f = Frequent::new(cap);
            let mut truth: HashMap<u32, u64> = HashMap::new();
            for &v in &values { f.add(v); *truth.entry(v).or_default() += 1; }
            prop_assert!(f.max_error() <= 2 * values.len() as u64 / cap as u64 + 1);
            for (v, c) in f.top(usize::MAX) {
                let t = truth[&v];
                prop_assert!(c <= t && t <= c + f.max_error());
            }
            // Every value more frequent than the error bound is kept.
            for (v, &t) in &truth {
                if t > f.max_error() { prop_assert!(f.counts.contains_key(v)); }
            }
        }
    }
}
