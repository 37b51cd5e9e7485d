//! Feature values mapped to at most 255 bins (plus one for missing), as
//! scikit-learn's `HistGradientBoosting*` and LightGBM do: with few
//! distinct values, one bin each (thresholds at midpoints); otherwise
//! bins at quantiles of a sample of the training values.

use crate::transform::Matrix;

pub const MAX_BINS: usize = 255;
/// The bin of a missing value.
pub const MISSING_BIN: u8 = 255;
/// Values sampled to find quantile edges (scikit-learn uses 200,000).
const SAMPLE: usize = 200_000;

/// Per feature, the upper edges of its bins but the last: value x falls in
/// the first bin whose edge is ≥ x.
#[derive(Debug, Clone)]
pub struct Binner {
    pub edges: Vec<Vec<f64>>,
}

/// Column-major binned features.
pub struct Binned {
    pub rows: usize,
    pub columns: Vec<Vec<u8>>,
}

fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    let pos = q * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

impl Binner {
    pub fn fit(x: &Matrix, seed: u64) -> Binner {
        Self::fit_rows(x, None, seed)
    }

    /// Fits on the rows listed in `rows` (all rows when `None`).
    pub fn fit_rows(x: &Matrix, rows: Option<&[u32]>, seed: u64) -> Binner {
        let n = rows.map_or(x.rows, <[u32]>::len);
        let at = |k: usize| rows.map_or(k, |r| r[k] as usize);
        let mut state = seed | 1;
        let mut sample: Vec<usize> = if n > SAMPLE {
            (0..SAMPLE)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    at((state % n as u64) as usize)
                })
                .collect()
        } else {
            (0..n).map(at).collect()
        };
        // Sorted, so that the sampled rows are read front to back.
        sample.sort_unstable();
        // The sampled values, column by column, in one pass over the rows.
        let mut values: Vec<Vec<f64>> = (0..x.cols).map(|_| Vec::with_capacity(sample.len())).collect();
        for &i in &sample {
            for (v, col) in x.row(i).iter().zip(values.iter_mut()) {
                if !v.is_nan() {
                    col.push(*v);
                }
            }
        }
        let edges = values
            .into_iter()
            .map(|mut v| {
                v.sort_by(f64::total_cmp);
                let mut distinct = v.clone();
                distinct.dedup();
                if distinct.len() <= MAX_BINS {
                    distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
                } else {
                    let mut e: Vec<f64> =
                        (1..MAX_BINS).map(|k| quantile_sorted(&v, k as f64 / MAX_BINS as f64)).collect();
                    e.dedup();
                    e
                }
            })
            .collect();
        Binner { edges }
    }

    #[inline]
    pub fn bin(&self, j: usize, x: f64) -> u8 {
        if x.is_nan() { MISSING_BIN } else { self.edges[j].partition_point(|e| *e < x) as u8 }
    }

    /// Bins every value, reading the row-major matrix once, front to back.
    pub fn transform(&self, x: &Matrix) -> Binned {
        let mut columns: Vec<Vec<u8>> = (0..x.cols).map(|_| Vec::with_capacity(x.rows)).collect();
        for i in 0..x.rows {
            for (j, (&v, col)) in x.row(i).iter().zip(columns.iter_mut()).enumerate() {
                col.push(self.bin(j, v));
            }
        }
        Binned { rows: x.rows, columns }
    }

    /// Bins of feature `j` (not counting the missing bin).
    pub fn bins(&self, j: usize) -> usize {
        self.edges[j].len() + 1
    }

    /// The raw threshold of "bin ≤ b".
    pub fn threshold(&self, j: usize, b: u8) -> f64 {
        self.edges[j].get(b as usize).copied().unwrap_or(f64::INFINITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_values_get_a_bin_each_and_thresholds_agree_with_bins() {
        let x = Matrix { rows: 6, cols: 1, data: vec![3.0, 1.0, 2.0, f64::NAN, 1.0, 3.0] };
        let b = Binner::fit(&x, 1);
        assert_eq!(b.edges[0], [1.5, 2.5]);
        let binned = b.transform(&x);
        assert_eq!(binned.columns[0], [2, 0, 1, MISSING_BIN, 0, 2]);
        for (i, &bin) in binned.columns[0].iter().enumerate() {
            let v = x.get(i, 0);
            if !v.is_nan() {
                for s in 0..2u8 {
                    assert_eq!(bin <= s, v <= b.threshold(0, s));
                }
            }
        }
    }

    #[test]
    fn many_values_share_255_bins() {
        let x = Matrix { rows: 10_000, cols: 1, data: (0..10_000).map(f64::from).collect() };
        let b = Binner::fit(&x, 1);
        assert_eq!(b.bins(0), MAX_BINS);
        let binned = b.transform(&x);
        assert_eq!(*binned.columns[0].iter().max().unwrap(), 254);
    }
}
