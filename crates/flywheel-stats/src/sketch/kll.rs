//! KLL quantile sketch (Karnin, Lang & Liberty, 2016).
//!
//! Items live in levels; an item at level h stands for 2^h inputs. When the
//! sketch is over capacity, the lowest full level is sorted and every other
//! item (from a random offset) is promoted one level up. Level capacities
//! shrink geometrically (factor 2/3) below the top level, so memory is
//! O(k) whatever the input size. While nothing has been compacted, the
//! sketch is exact.
//!
//! Stated error: with k = 200 (the default), the rank of a returned
//! quantile is within ±1.65% of the requested rank with 99% confidence
//! (the bound Apache DataSketches documents for its KLL with k = 200); the
//! tests check this on adversarial and random inputs. Randomness comes from
//! a seeded generator, so results are reproducible.

use serde::{Deserialize, Serialize};

pub const DEFAULT_K: usize = 200;
/// Normalized rank error at 99% confidence for `DEFAULT_K`.
pub const DEFAULT_RANK_ERROR: f64 = 0.0165;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kll {
    k: usize,
    levels: Vec<Vec<f64>>,
    n: u64,
    rng: u64,
    /// Items held; compaction runs when it reaches `limit` (the total
    /// capacity, recomputed only when the number of levels changes).
    #[serde(skip)]
    held: usize,
    #[serde(skip)]
    limit: usize,
}

impl Default for Kll {
    fn default() -> Self {
        Self::new(DEFAULT_K)
    }
}

impl Kll {
    pub fn new(k: usize) -> Self {
        let mut s = Self { k: k.max(8), levels: vec![Vec::new()], n: 0, rng: 0x9e37_79b9_7f4a_7c15, held: 0, limit: 0 };
        s.limit = s.total_capacity();
        s
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// Whether every input is still held with weight one (quantiles are exact).
    pub fn is_exact(&self) -> bool {
        self.levels.len() == 1
    }

    fn capacity(&self, level: usize) -> usize {
        let depth = self.levels.len() - 1 - level;
        ((self.k as f64) * (2.0f64 / 3.0).powi(depth as i32)).ceil().max(2.0) as usize
    }

    fn total_capacity(&self) -> usize {
        (0..self.levels.len()).map(|h| self.capacity(h)).sum()
    }

    fn size(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    pub fn add(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        self.n += 1;
        self.levels[0].push(x);
        self.held += 1;
        if self.held >= self.limit {
            self.compress();
        }
    }

    /// Adds many values at once: one compaction pass instead of one per
    /// few values (a large level-0 compaction only lowers the error).
    pub fn extend(&mut self, xs: &[f64]) {
        let before = self.levels[0].len();
        self.levels[0].extend(xs.iter().copied().filter(|x| !x.is_nan()));
        let added = self.levels[0].len() - before;
        self.n += added as u64;
        self.held += added;
        if self.held >= self.limit {
            self.compress();
        }
    }

    fn coin(&mut self) -> usize {
        // xorshift64*: deterministic, good enough for choosing offsets.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 63) as usize
    }

    fn compress(&mut self) {
        while self.size() >= self.total_capacity() {
            let Some(h) = (0..self.levels.len()).find(|&h| self.levels[h].len() >= self.capacity(h)) else { break };
            if h + 1 == self.levels.len() {
                self.levels.push(Vec::new());
            }
            let mut items = std::mem::take(&mut self.levels[h]);
            items.sort_unstable_by(f64::total_cmp);
            // An odd item stays behind so that weights are conserved.
            if items.len() % 2 == 1 {
                let keep = items.pop().unwrap_or_default();
                self.levels[h].push(keep);
            }
            let offset = self.coin();
            let promoted: Vec<f64> = items.iter().skip(offset).step_by(2).copied().collect();
            self.levels[h + 1].extend(promoted);
        }
        self.held = self.size();
        self.limit = self.total_capacity();
    }

    pub fn merge(&mut self, other: &Kll) {
        if other.n == 0 {
            return;
        }
        while self.levels.len() < other.levels.len() {
            self.levels.push(Vec::new());
        }
        for (h, items) in other.levels.iter().enumerate() {
            self.levels[h].extend_from_slice(items);
        }
        self.n += other.n;
        self.rng ^= other.rng.rotate_left(17);
        self.compress();
    }

    /// The value at normalized rank `q` (0 = min, 1 = max), as the smallest
    /// item whose cumulative weight reaches q·n; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.quantiles(&[q]).into_iter().next().flatten()
    }

    pub fn quantiles(&self, qs: &[f64]) -> Vec<Option<f64>> {
        if self.n == 0 {
            return vec![None; qs.len()];
        }
        let mut weighted: Vec<(f64, u64)> =
            self.levels.iter().enumerate().flat_map(|(h, items)| items.iter().map(move |&x| (x, 1u64 << h))).collect();
        weighted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: u64 = weighted.iter().map(|w| w.1).sum();
        if self.is_exact() {
            // Exact: linear interpolation between order statistics, as numpy.
            let v: Vec<f64> = weighted.iter().map(|w| w.0).collect();
            return qs.iter().map(|&q| Some(interpolate(&v, q))).collect();
        }
        qs.iter()
            .map(|&q| {
                let target = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
                let mut acc = 0;
                for &(x, w) in &weighted {
                    acc += w;
                    if acc >= target {
                        return Some(x);
                    }
                }
                weighted.last().map(|w| w.0)
            })
            .collect()
    }

    /// Estimated share of inputs ≤ x.
    pub fn cdf(&self, x: f64) -> f64 {
        let total: u64 = self.levels.iter().enumerate().map(|(h, i)| (i.len() as u64) << h).sum();
        if total == 0 {
            return f64::NAN;
        }
        let below: u64 = self
            .levels
            .iter()
            .enumerate()
            .map(|(h, items)| (items.iter().filter(|&&v| v <= x).count() as u64) << h)
            .sum();
        below as f64 / total as f64
    }
}

fn interpolate(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Normalized rank of `x` in sorted data (midpoint of its tie range).
    fn rank(sorted: &[f64], x: f64) -> (f64, f64) {
        let lo = sorted.partition_point(|v| *v < x) as f64;
        let hi = sorted.partition_point(|v| *v <= x) as f64;
        (lo / sorted.len() as f64, hi / sorted.len() as f64)
    }

    fn check(values: &[f64], sketch: &Kll, eps: f64) -> Result<(), String> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        for q in [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99] {
            let x = sketch.quantile(q).ok_or("empty")?;
            let (lo, hi) = rank(&sorted, x);
            if q < lo - eps || q > hi + eps {
                return Err(format!("q = {q}: returned {x} with rank [{lo}, {hi}]"));
            }
        }
        Ok(())
    }

    #[test]
    fn exact_while_small() {
        let mut s = Kll::default();
        for x in [5.0, 1.0, 3.0, 2.0, 4.0] {
            s.add(x);
        }
        assert!(s.is_exact());
        assert_eq!(s.quantile(0.5), Some(3.0));
        assert_eq!(s.quantile(0.25), Some(2.0));
        assert_eq!(s.quantile(0.1), Some(1.4));
    }

    #[test]
    fn sorted_reversed_and_repeated_inputs_stay_within_the_stated_error() {
        let n = 200_000;
        let ascending: Vec<f64> = (0..n).map(f64::from).collect();
        let descending: Vec<f64> = ascending.iter().rev().copied().collect();
        let repeated: Vec<f64> = (0..n).map(|i| f64::from(i % 7)).collect();
        for data in [&ascending, &descending, &repeated] {
            let mut s = Kll::default();
            data.iter().for_each(|&x| s.add(x));
            assert!(!s.is_exact());
            check(data, &s, DEFAULT_RANK_ERROR).unwrap();
            assert!(s.levels.iter().map(Vec::len).sum::<usize>() < 3 * DEFAULT_K + 64);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn merged_parts_stay_within_the_stated_error(seed in any::<u64>(), parts in 1usize..8, n in 1_000usize..40_000) {
            let mut state = seed | 1;
            let values: Vec<f64> = (0..n).map(|_| {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                // a skewed distribution
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                (-u.max(1e-12).ln()).powi(2)
            }).collect();
            let mut sketches: Vec<Kll> = (0..parts).map(|_| Kll::default()).collect();
            for (i, &x) in values.iter().enumerate() { sketches[i % parts].add(x); }
            let mut merged = Kll::default();
            for s in &sketches { merged.merge(s); }
            prop_assert_eq!(merged.count(), n as u64);
            check(&values, &merged, DEFAULT_RANK_ERROR).map_err(TestCaseError::fail)?;
        }
    }
}
