//! Count, min, max, mean and variance, merged with Chan et al.'s pairwise
//! update so that partial results combine without losing precision.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Moments {
    pub count: u64,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Self { count: 0, mean: 0.0, m2: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl Moments {
    pub fn add(&mut self, x: f64) {
        self.count += 1;
        let d = x - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// Adds a block of values: mean and squared deviations by two passes over
    /// the block (in independent lanes, which the compiler vectorizes), then
    /// one pairwise merge. As precise as adding one by one, and several
    /// times faster.
    pub fn add_slice(&mut self, xs: &[f64]) {
        const LANES: usize = 8;
        if xs.is_empty() {
            return;
        }
        let (mut sum, mut lo, mut hi) = ([0.0; LANES], [f64::INFINITY; LANES], [f64::NEG_INFINITY; LANES]);
        let chunks = xs.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for i in 0..LANES {
                sum[i] += c[i];
                lo[i] = lo[i].min(c[i]);
                hi[i] = hi[i].max(c[i]);
            }
        }
        let mut total: f64 = sum.iter().sum();
        let (mut min, mut max) =
            (lo.iter().copied().fold(f64::INFINITY, f64::min), hi.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        for &x in rest {
            total += x;
            min = min.min(x);
            max = max.max(x);
        }
        let mean = total / xs.len() as f64;
        // Second pass: squared deviations, and the deviations themselves,
        // whose sum is the mean's rounding error; subtracting its square
        // (the corrected two-pass algorithm) keeps m2 exact far from zero.
        let (mut sq, mut dev) = ([0.0; LANES], [0.0; LANES]);
        for c in xs.chunks_exact(LANES) {
            for i in 0..LANES {
                let d = c[i] - mean;
                sq[i] += d * d;
                dev[i] += d;
            }
        }
        let (mut m2, mut err): (f64, f64) = (sq.iter().sum(), dev.iter().sum());
        for &x in rest {
            let d = x - mean;
            m2 += d * d;
            err += d;
        }
        m2 -= err * err / xs.len() as f64;
        self.merge(&Moments { count: xs.len() as u64, mean, m2: m2.max(0.0), min, max });
    }

    pub fn merge(&mut self, o: &Moments) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = o.clone();
            return;
        }
        let n = self.count + o.count;
        let d = o.mean - self.mean;
        let (na, nb, nn) = (self.count as f64, o.count as f64, n as f64);
        self.mean += d * nb / nn;
        self.m2 += o.m2 + d * d * na * nb / nn;
        self.count = n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// Sample standard deviation (ddof = 1, as pandas).
    pub fn std(&self) -> Option<f64> {
        (self.count > 1).then(|| (self.m2 / (self.count - 1) as f64).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn merging_parts_equals_one_pass(v in proptest::collection::vec(-1e6f64..1e6, 1..300), cut in 0usize..300) {
            let cut = cut.min(v.len());
            let mut whole = Moments::default();
            v.iter().for_each(|&x| whole.add(x));
            let (mut a, mut b) = (Moments::default(), Moments::default());
            v[..cut].iter().for_each(|&x| a.add(x));
            v[cut..].iter().for_each(|&x| b.add(x));
            a.merge(&b);
            prop_assert_eq!(a.count, whole.count);
            prop_assert_eq!(a.min, whole.min);
            prop_assert_eq!(a.max, whole.max);
            prop_assert!((a.mean - whole.mean).abs() <= 1e-9 * (1.0 + whole.mean.abs()));
            prop_assert!((a.m2 - whole.m2).abs() <= 1e-9 * (1.0 + whole.m2.abs()));
        }
    }

    proptest! {
        #[test]
        fn a_block_equals_one_by_one(v in proptest::collection::vec(-1e6f64..1e6, 0..100), offset in -1e9f64..1e9) {
            let v: Vec<f64> = v.iter().map(|x| x + offset).collect();
            let mut one = Moments::default();
            v.iter().for_each(|&x| one.add(x));
            let mut block = Moments::default();
            block.add_slice(&v);
            prop_assert_eq!(block.count, one.count);
            prop_assert_eq!(block.min, one.min);
            prop_assert_eq!(block.max, one.max);
            prop_assert!((block.mean - one.mean).abs() <= 1e-12 * (1.0 + one.mean.abs()));
            prop_assert!((block.m2 - one.m2).abs() <= 1e-9 * (1.0 + one.m2.abs()));
        }
    }

    #[test]
    fn large_offsets_keep_precision() {
        // Naive sum-of-squares loses everything here; Welford/Chan do not.
        let mut m = Moments::default();
        let xs = [1e9 + 4.0, 1e9 + 7.0, 1e9 + 13.0, 1e9 + 16.0];
        for x in xs {
            m.add(x);
        }
        assert!((m.std().unwrap() - 30f64.sqrt()).abs() < 1e-9);
        let mut block = Moments::default();
        block.add_slice(&xs);
        assert!((block.std().unwrap() - 30f64.sqrt()).abs() < 1e-9);
    }
}
