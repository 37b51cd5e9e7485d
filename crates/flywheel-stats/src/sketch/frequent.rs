//! Value frequencies: exact counts while a column has at most `cap`
//! distinct values, then a batched Misra–Gries summary: when over `cap`, the
//! count at which half the values would go is subtracted from every value.
//! It keeps every value more frequent than 2n/cap, with counts
//! underestimated by at most [`Frequent::max_error`] (≤ 2n/cap). Merging
//! exact summaries is exact.

use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

/// A key with the 64-bit hash the HyperLogLog also uses (xxh3 of its
/// bytes), so a value is hashed once for both.
pub trait Key: Eq + Clone + Ord {
    fn key_hash(&self) -> u64;
}

/// Numbers are keyed by their bits (after -0.0 → 0.0).
impl Key for u64 {
    fn key_hash(&self) -> u64 {
        super::hll::hash_u64(*self)
    }
}

impl Key for String {
    fn key_hash(&self) -> u64 {
        super::hll::hash_bytes(self.as_bytes())
    }
}

pub const DEFAULT_CAP: usize = 100_000;

/// One table slot: the key, its count, and its hash (kept so that growing
/// and rebuilding the table never hash again).
#[derive(Debug, Clone)]
struct Slot<K> {
    key: K,
    count: u64,
    hash: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    from = "Stored<K>",
    into = "Stored<K>",
    bound(serialize = "K: Key + Serialize", deserialize = "K: Key + Deserialize<'de>")
)]
pub struct Frequent<K: Key = String> {
    cap: usize,
    table: HashTable<Slot<K>>,
    /// False once the summary had to forget values.
    exact: bool,
    /// Largest count subtracted from every value by Misra–Gries decrements.
    error: u64,
}

/// The serialized form: counts as a list, hashes recomputed on load.
#[derive(Serialize, Deserialize)]
struct Stored<K> {
    cap: usize,
    counts: Vec<(K, u64)>,
    exact: bool,
    error: u64,
}

impl<K: Key> From<Frequent<K>> for Stored<K> {
    fn from(f: Frequent<K>) -> Self {
        Stored {
            cap: f.cap,
            counts: f.table.into_iter().map(|s| (s.key, s.count)).collect(),
            exact: f.exact,
            error: f.error,
        }
    }
}

impl<K: Key> From<Stored<K>> for Frequent<K> {
    fn from(s: Stored<K>) -> Self {
        let mut f = Frequent {
            cap: s.cap.max(1),
            table: HashTable::with_capacity(s.counts.len()),
            exact: s.exact,
            error: s.error,
        };
        for (key, count) in s.counts {
            f.add_n_hashed(key.key_hash(), &key, count);
        }
        f
    }
}

impl<K: Key> Default for Frequent<K> {
    fn default() -> Self {
        Self::new(DEFAULT_CAP)
    }
}

impl<K: Key> Frequent<K> {
    pub fn new(cap: usize) -> Self {
        Self { cap: cap.max(1), table: HashTable::new(), exact: true, error: 0 }
    }

    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// Upper bound on how much any reported count is below the true count.
    pub fn max_error(&self) -> u64 {
        self.error
    }

    pub fn add(&mut self, v: K) {
        self.add_n_hashed(v.key_hash(), &v, 1);
    }

    /// Adds one occurrence of `v`, whose [`Key::key_hash`] is `hash`;
    /// allocates only when the value is new.
    pub fn add_hashed<Q>(&mut self, hash: u64, v: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.add_n_hashed(hash, v, 1);
    }

    fn add_n_hashed<Q>(&mut self, hash: u64, v: &Q, n: u64)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(slot) = self.table.find_mut(hash, |s| s.key.borrow() == v) {
            slot.count += n;
            return;
        }
        self.table.insert_unique(hash, Slot { key: v.to_owned(), count: n, hash }, |s| s.hash);
        if self.table.len() > self.cap {
            self.shrink();
        }
    }

    fn shrink(&mut self) {
        if self.table.len() <= self.cap {
            return;
        }
        self.exact = false;
        // Subtract the count below which half of the values fall, so that
        // each shrink frees at least half the room (amortized O(1) per add).
        let mut counts: Vec<u64> = self.table.iter().map(|s| s.count).collect();
        let k = counts.len() - self.cap / 2;
        let (_, &mut m, _) = counts.select_nth_unstable(k.saturating_sub(1));
        self.error += m;
        // Rebuild rather than remove in place: removing most entries leaves
        // the table full of tombstones, and every later insert pays for them.
        let old = std::mem::take(&mut self.table);
        self.table = HashTable::with_capacity(self.cap);
        for mut s in old.into_iter().filter(|s| s.count > m) {
            s.count -= m;
            self.table.insert_unique(s.hash, s, |s| s.hash);
        }
    }

    pub fn merge(&mut self, o: &Frequent<K>) {
        for s in &o.table {
            if let Some(mine) = self.table.find_mut(s.hash, |m| m.key == s.key) {
                mine.count += s.count;
            } else {
                self.table.insert_unique(s.hash, s.clone(), |s| s.hash);
            }
        }
        self.exact &= o.exact;
        self.error += o.error;
        self.shrink();
    }

    pub fn distinct_if_exact(&self) -> Option<usize> {
        self.exact.then_some(self.table.len())
    }

    /// The `k` most frequent values, ties by value.
    pub fn top(&self, k: usize) -> Vec<(K, u64)> {
        let mut v: Vec<(K, u64)> = self.table.iter().map(|s| (s.key.clone(), s.count)).collect();
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

    #[test]
    fn survives_a_serde_round_trip() {
        let mut f = Frequent::<u64>::new(4);
        for v in [1, 1, 2, 3, 3, 3, 4, 5, 6, 6] {
            f.add(v);
        }
        let back: Frequent<u64> = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back.top(10), f.top(10));
        assert_eq!((back.is_exact(), back.max_error()), (f.is_exact(), f.max_error()));
    }
}

#[cfg(test)]
mod bound {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn counts_are_never_over_and_at_most_max_error_under(values in proptest::collection::vec(0u64..500, 1..5000), cap in 4usize..64) {
            let mut f = Frequent::new(cap);
            let mut truth: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
            for &v in &values { f.add(v); *truth.entry(v).or_default() += 1; }
            prop_assert!(f.max_error() <= 2 * values.len() as u64 / cap as u64 + 1);
            for (v, c) in f.top(usize::MAX) {
                let t = truth[&v];
                prop_assert!(c <= t && t <= c + f.max_error());
            }
            // Every value more frequent than the error bound is kept.
            for (v, &t) in &truth {
                if t > f.max_error() { prop_assert!(f.table.find(v.key_hash(), |s| s.key == *v).is_some()); }
            }
        }
    }
}
