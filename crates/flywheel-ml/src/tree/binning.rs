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

/// Binned features, twice. Row-major for histograms: a row's bins share a
/// cache line or two, so a pass over a node's scattered rows reads one
/// place per row instead of one per feature. Column-major for partitions,
/// which read one feature of many rows, mostly close together.
pub struct Binned {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<u8>,
    pub columns: Vec<Vec<u8>>,
}

impl Binned {
    #[inline]
    pub fn row(&self, i: usize) -> &[u8] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    #[inline]
    pub fn get(&self, i: usize, j: usize) -> u8 {
        self.data[i * self.cols + j]
    }
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

    /// Bins every value, in row blocks on all cores.
    pub fn transform(&self, x: &Matrix) -> Binned {
        let mut data = vec![0u8; x.rows * x.cols];
        let binned: Result<(), std::convert::Infallible> =
            crate::par::rows_mut(&mut data, x.cols, x.rows >= 50_000, |first, out| {
                for (i, row) in out.chunks_mut(x.cols.max(1)).enumerate() {
                    for (j, (b, &v)) in row.iter_mut().zip(x.row(first + i)).enumerate() {
                        *b = self.bin(j, v);
                    }
                }
                Ok(())
            });
        let Ok(()) = binned;
        let columns = (0..x.cols).map(|j| data.iter().skip(j).step_by(x.cols).copied().collect()).collect();
        Binned { rows: x.rows, cols: x.cols, data, columns }
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
        assert_eq!(binned.data, [2, 0, 1, MISSING_BIN, 0, 2]);
        for (i, &bin) in binned.data.iter().enumerate() {
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
        assert_eq!(*binned.data.iter().max().unwrap(), 254);
    }

    #[test]
    fn threaded_binning_agrees_with_binning_each_value() {
        let (rows, cols) = (60_000, 3);
        let mut state = 7u64;
        let data = (0..rows * cols)
            .map(|k| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if k % 97 == 0 { f64::NAN } else { (state % 1000) as f64 / 7.0 }
            })
            .collect();
        let x = Matrix { rows, cols, data };
        let b = Binner::fit(&x, 3);
        let binned = b.transform(&x);
        for i in 0..rows {
            for j in 0..cols {
                assert_eq!(binned.get(i, j), b.bin(j, x.get(i, j)), "row {i}, column {j}");
                assert_eq!(binned.columns[j][i], binned.get(i, j));
            }
        }
    }
}
