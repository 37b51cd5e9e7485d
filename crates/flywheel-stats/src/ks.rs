//! Two-sample Kolmogorov–Smirnov test.
//!
//! The statistic is exact. The two-sided p-value is exact (the probability
//! that a random lattice path leaves the band |i/m − j/n| < D, as scipy's
//! `method="exact"`) when both samples have at most [`EXACT_MAX_N`] values;
//! above that it uses the limiting Kolmogorov distribution with Stephens'
//! small-sample correction, whose difference from scipy's
//! `ks_2samp(method="asymp")` is bounded in the tests.

/// Largest sample size for which the exact p-value is computed (as scipy's `auto`).
pub const EXACT_MAX_N: usize = 10_000;

/// Walks the distinct values of two **sorted** samples in order, yielding
/// each value x with how many values of each sample are ≤ x: the steps of
/// both empirical CDFs, which the KS statistic and the Wasserstein distance
/// are computed from.
pub fn ecdf_steps<'a>(a: &'a [f64], b: &'a [f64]) -> impl Iterator<Item = (f64, usize, usize)> + 'a {
    let (mut i, mut j) = (0usize, 0usize);
    std::iter::from_fn(move || {
        let x = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => return None,
        };
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        Some((x, i, j))
    })
}

/// [`ecdf_steps`] of two samples given as weighted values in value order:
/// each value x with the summed weights of each sample ≤ x.
pub fn weighted_steps<'a>(a: &'a [(f64, u64)], b: &'a [(f64, u64)]) -> impl Iterator<Item = (f64, u64, u64)> + 'a {
    let (mut i, mut j, mut wa, mut wb) = (0usize, 0usize, 0u64, 0u64);
    std::iter::from_fn(move || {
        let x = match (a.get(i), b.get(j)) {
            (Some(p), Some(q)) => p.0.min(q.0),
            (Some(p), None) => p.0,
            (None, Some(q)) => q.0,
            (None, None) => return None,
        };
        while i < a.len() && a[i].0 == x {
            wa += a[i].1;
            i += 1;
        }
        while j < b.len() && b[j].0 == x {
            wb += b[j].1;
            j += 1;
        }
        Some((x, wa, wb))
    })
}

/// KS statistic of two **sorted** samples, as an integer numerator over
/// `m * n`: max over values of |i·n − j·m|, ties handled by advancing both
/// samples past equal values before comparing.
pub fn statistic_numerator(a: &[f64], b: &[f64]) -> u128 {
    let (m, n) = (a.len() as i128, b.len() as i128);
    ecdf_steps(a, b).map(|(_, i, j)| (i as i128 * n - j as i128 * m).unsigned_abs()).max().unwrap_or(0)
}

/// (statistic D, two-sided p-value) for two sorted samples.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (m, n) = (a.len(), b.len());
    if m == 0 || n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let num = statistic_numerator(a, b);
    let d = num as f64 / (m as f64 * n as f64);
    let p = if m.max(n) <= EXACT_MAX_N { exact_p(m, n, num) } else { asymptotic_p(m, n, d) };
    (d, p.clamp(0.0, 1.0))
}

/// (D, p-value) of two samples given as weighted values in value order
/// (one of them a sketch: D within its rank error). The p-value is that of
/// samples of `m` and `n` values with that D.
pub fn ks_weighted(a: &[(f64, u64)], b: &[(f64, u64)], (m, n): (usize, usize)) -> (f64, f64) {
    // NaN has no place on the line (and would never be stepped past).
    let numbers = |s: &[(f64, u64)]| -> Vec<(f64, u64)> { s.iter().copied().filter(|v| !v.0.is_nan()).collect() };
    let (a, b) = (numbers(a), numbers(b));
    if m == 0 || n == 0 || a.is_empty() || b.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let total = |s: &[(f64, u64)]| s.iter().map(|v| v.1).sum::<u64>().max(1) as f64;
    let (ta, tb) = (total(&a), total(&b));
    let d = weighted_steps(&a, &b).map(|(_, wa, wb)| (wa as f64 / ta - wb as f64 / tb).abs()).fold(0.0, f64::max);
    let num = (d * m as f64 * n as f64).round() as u128;
    let p = if m.max(n) <= EXACT_MAX_N { exact_p(m, n, num) } else { asymptotic_p(m, n, d) };
    (d, p.clamp(0.0, 1.0))
}

/// P(D ≥ d) for continuous data: the share of monotone lattice paths from
/// (0,0) to (m,n) that touch a point with |i·n − j·m| ≥ `num`. Computed as
/// the probability of having left the band, which keeps small p-values
/// accurate (1 − P(inside) would cancel).
pub fn exact_p(m: usize, n: usize, num: u128) -> f64 {
    if num == 0 {
        return 1.0;
    }
    if m == n {
        return outside_square(n, num);
    }
    walk_p(m, n, num)
}

/// [`exact_p`] by the lattice walk, O(m·n).
fn walk_p(m: usize, n: usize, num: u128) -> f64 {
    let outside = |i: usize, j: usize| (i as i128 * n as i128 - j as i128 * m as i128).unsigned_abs() >= num;
    // left[j] holds B(i, j): the probability that a uniformly random path to
    // (i, j) has already left the band; B(i,j) = (i·B(i−1,j) + j·B(i,j−1)) / (i+j).
    let mut row = vec![0.0f64; n + 1];
    for j in 0..=n {
        row[j] = if outside(0, j) {
            1.0
        } else if j == 0 {
            0.0
        } else {
            row[j - 1]
        };
    }
    for i in 1..=m {
        let fi = i as f64;
        row[0] = if outside(i, 0) { 1.0 } else { row[0] };
        for j in 1..=n {
            row[j] = if outside(i, j) {
                1.0
            } else {
                let fj = j as f64;
                (fi * row[j] + fj * row[j - 1]) / (fi + fj)
            };
        }
    }
    row[n]
}

/// [`exact_p`] for two samples of `n` values each, in O(n) rather than
/// the walk's O(n²) (scipy's `_compute_prob_outside_square`): with D =
/// h/n (`num` = h·n), the share of paths that cross either diagonal line
/// |i − j| = h, by reflection (an alternating sum over the number of
/// crossings, each term a product of h ratios).
fn outside_square(n: usize, num: u128) -> f64 {
    // num = |i·n − j·n| = h·n at the walk's farthest point (rounded: a
    // sketch's D is not a whole multiple).
    let h = usize::try_from((num + n as u128 / 2) / n as u128).unwrap_or(usize::MAX);
    if h == 0 {
        return 1.0;
    }
    if h > n {
        return 0.0;
    }
    let mut p = 0.0;
    for k in (0..=n / h).rev() {
        let mut term = 1.0;
        for j in 0..h {
            // Reaches 0 (and stays there) once k·h + j passes n.
            term = (n as f64 - (k * h + j) as f64) * term / (n + k * h + j + 1) as f64;
        }
        p = term * (1.0 - p);
    }
    (2.0 * p).min(1.0)
}

/// Kolmogorov's limiting distribution Q(λ) = 2 Σ (−1)^(k−1) e^(−2k²λ²), at
/// λ = (√e + 0.12 + 0.11/√e)·D with e = m·n/(m+n) (Stephens, 1970).
pub fn asymptotic_p(m: usize, n: usize, d: f64) -> f64 {
    let en = (m as f64 * n as f64) / (m as f64 + n as f64);
    let s = en.sqrt();
    kolmogorov_q((s + 0.12 + 0.11 / s) * d)
}

pub fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=200 {
        let kf = k as f64;
        let term = sign * (-2.0 * kf * kf * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-16 * sum.abs().max(1e-300) {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistic_handles_ties_and_identical_samples() {
        assert_eq!(statistic_numerator(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0);
        // F_a jumps to 1 at 1; F_b at 2: D = 1.
        let (d, p) = ks_2samp(&[1.0, 1.0], &[2.0, 2.0, 2.0]);
        assert_eq!(d, 1.0);
        // Of the C(5,2) = 10 orderings only aabbb and bbbaa reach D = 1.
        assert!((p - 0.2).abs() < 1e-12, "{p}");
    }

    #[test]
    fn exact_p_small_cases_by_enumeration() {
        // m = n = 2, D = 1: orderings aabb and bbaa out of 6.
        assert!((exact_p(2, 2, 4) - 2.0 / 6.0).abs() < 1e-12);
        // num = 2: the band is i == j, which every path leaves at its first step.
        assert!((exact_p(2, 2, 2) - 1.0).abs() < 1e-12);
    }

    /// Samples of equal size: the closed sum gives what the lattice walk gives.
    #[test]
    fn equal_sizes_give_what_the_walk_gives() {
        for n in [1usize, 2, 3, 10, 37, 200] {
            for h in 1..=n {
                let num = (h * n) as u128;
                let walk = walk_p(n, n, num);
                let sum = outside_square(n, num);
                assert!((walk - sum).abs() <= 1e-12 * walk.max(1e-300) + 1e-15, "n {n}, h {h}: {walk} vs {sum}");
            }
        }
    }
}
