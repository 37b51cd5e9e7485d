//! Linear models, defined as scikit-learn defines them so that results can
//! be checked against it:
//! - least squares (`LinearRegression`: the minimum-norm solution, so
//!   collinear one-hot blocks are fine) and ridge (`Ridge`, penalty
//!   α‖w‖², intercept not penalized);
//! - lasso (`Lasso`: (1/2n)‖y − Xw − b‖² + α‖w‖₁, coordinate descent);
//! - logistic regression (`LogisticRegression(solver="lbfgs")`: mean
//!   weighted log loss + ‖W‖² / (2·C·Σweights), binary or multinomial).

use crate::optimize::{Settings, lbfgs};
use crate::transform::Matrix;
use crate::{MlError, Stop};
use nalgebra::{DMatrix, DVector};

/// Column means, used to center (the intercept is then recovered).
fn column_means(x: &Matrix, w: &[f64]) -> Vec<f64> {
    let total: f64 = w.iter().sum();
    let mut m = vec![0.0; x.cols];
    for (i, wi) in w.iter().enumerate() {
        for (mj, v) in m.iter_mut().zip(x.row(i)) {
            *mj += wi * v;
        }
    }
    m.iter_mut().for_each(|v| *v /= total);
    m
}

fn check_finite(x: &Matrix, names: &[String]) -> Result<(), MlError> {
    for j in 0..x.cols {
        if let Some(i) = (0..x.rows).find(|&i| !x.get(i, j).is_finite()) {
            let name = names.get(j).map(String::as_str).unwrap_or("?");
            return Err(MlError::Data(format!(
                "feature `{name}` is missing or not finite on training row {}; linear models need every value: add `impute(mean)` (or median, or a constant) to its transform",
                i + 1
            )));
        }
    }
    Ok(())
}

/// Least squares with an optional ridge penalty; returns (weights, intercept).
pub fn least_squares(
    x: &Matrix,
    y: &[f64],
    alpha: f64,
    sample_weight: Option<&[f64]>,
    names: &[String],
    stop: Stop,
) -> Result<(Vec<f64>, f64), MlError> {
    check_finite(x, names)?;
    let ones = vec![1.0; x.rows];
    let sw = sample_weight.unwrap_or(&ones);
    let mx = column_means(x, sw);
    let total: f64 = sw.iter().sum();
    let my = y.iter().zip(sw).map(|(v, w)| v * w).sum::<f64>() / total;
    let d = x.cols;
    // Normal equations on centered data: (XᵀWX + αI) w = XᵀW y.
    let mut xtx = DMatrix::<f64>::zeros(d, d);
    let mut xty = DVector::<f64>::zeros(d);
    let mut row = vec![0.0; d];
    for i in 0..x.rows {
        // A pass costs rows × features²: look for a stop every few thousand rows.
        if i % 4096 == 0 {
            stop.check()?;
        }
        for (r, (v, m)) in row.iter_mut().zip(x.row(i).iter().zip(&mx)) {
            *r = v - m;
        }
        let (wi, yi) = (sw[i], y[i] - my);
        for a in 0..d {
            let ra = row[a] * wi;
            if ra == 0.0 {
                continue;
            }
            xty[a] += ra * yi;
            for b in a..d {
                xtx[(a, b)] += ra * row[b];
            }
        }
    }
    let coef = solve_normal(xtx, &xty, alpha, x.rows);
    let w: Vec<f64> = coef.iter().copied().collect();
    let intercept = my - w.iter().zip(&mx).map(|(a, b)| a * b).sum::<f64>();
    if w.iter().any(|v| !v.is_finite()) || !intercept.is_finite() {
        return Err(MlError::Training("least squares produced non-finite weights; check for extreme values".into()));
    }
    Ok((w, intercept))
}

/// Solves (XᵀWX + αI) w = XᵀW y from the upper triangle of XᵀWX, by
/// Cholesky when α > 0 makes that safe, else through the pseudo-inverse.
fn solve_normal(mut xtx: DMatrix<f64>, xty: &DVector<f64>, alpha: f64, rows: usize) -> DVector<f64> {
    let d = xty.len();
    for a in 0..d {
        for b in 0..a {
            xtx[(a, b)] = xtx[(b, a)];
        }
        xtx[(a, a)] += alpha;
    }
    if alpha > 0.0
        && let Some(ch) = xtx.clone().cholesky()
    {
        ch.solve(xty)
    } else {
        // Minimum-norm solution through the pseudo-inverse (eigenvalues
        // below a relative cutoff count as zero), as numpy's lstsq.
        let eig = xtx.symmetric_eigen();
        let max = eig.eigenvalues.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let cutoff = max * (d.max(rows) as f64) * f64::EPSILON;
        let qt_b = eig.eigenvectors.transpose() * xty;
        let scaled = DVector::from_iterator(
            d,
            qt_b.iter().zip(eig.eigenvalues.iter()).map(|(b, l)| if l.abs() > cutoff { b / l } else { 0.0 }),
        );
        &eig.eigenvectors * scaled
    }
}

/// Lasso by cyclic coordinate descent, stopped as scikit-learn does (the
/// duality gap below `tol` times ‖y‖²/n); returns (weights, intercept).
pub fn lasso(
    x: &Matrix,
    y: &[f64],
    alpha: f64,
    max_iterations: usize,
    tol: f64,
    names: &[String],
    stop: Stop,
) -> Result<(Vec<f64>, f64, usize), MlError> {
    check_finite(x, names)?;
    let (n, d) = (x.rows, x.cols);
    let ones = vec![1.0; n];
    let mx = column_means(x, &ones);
    let my = y.iter().sum::<f64>() / n as f64;
    // Column-major centered copy: coordinate descent walks columns.
    let cols: Vec<Vec<f64>> = (0..d).map(|j| (0..n).map(|i| x.get(i, j) - mx[j]).collect()).collect();
    let norms: Vec<f64> = cols.iter().map(|c| c.iter().map(|v| v * v).sum()).collect();
    let mut r: Vec<f64> = y.iter().map(|v| v - my).collect();
    let y_norm2: f64 = r.iter().map(|v| v * v).sum();
    let mut w = vec![0.0; d];
    let nf = n as f64;
    let mut iterations = max_iterations;
    for it in 0..max_iterations {
        stop.check()?;
        let mut max_change: f64 = 0.0;
        let mut max_w: f64 = 0.0;
        for j in 0..d {
            if norms[j] == 0.0 {
                continue;
            }
            let old = w[j];
            let rho: f64 = cols[j].iter().zip(&r).map(|(c, ri)| c * ri).sum::<f64>() + norms[j] * old;
            let new = rho.signum() * (rho.abs() - alpha * nf).max(0.0) / norms[j];
            if new != old {
                let delta = new - old;
                r.iter_mut().zip(&cols[j]).for_each(|(ri, c)| *ri -= delta * c);
                w[j] = new;
            }
            max_change = max_change.max((new - old).abs());
            max_w = max_w.max(new.abs());
        }
        if max_w == 0.0 || max_change / max_w < tol || it + 1 == max_iterations {
            // Duality gap, as scikit-learn's check.
            let xtr: Vec<f64> = cols.iter().map(|c| c.iter().zip(&r).map(|(a, b)| a * b).sum()).collect();
            let dual_norm = xtr.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let r2: f64 = r.iter().map(|v| v * v).sum();
            let l1: f64 = w.iter().map(|v| v.abs()).sum();
            let a = alpha * nf;
            let (const_, gap_r) = if dual_norm > a { (a / dual_norm, r2 * (a / dual_norm).powi(2)) } else { (1.0, r2) };
            let ry: f64 = r.iter().zip(y.iter().map(|v| v - my)).map(|(a, b)| a * b).sum();
            let gap = 0.5 * (r2 + gap_r) + a * l1 - const_ * ry;
            if gap < tol * y_norm2 {
                iterations = it + 1;
                break;
            }
        }
    }
    let intercept = my - w.iter().zip(&mx).map(|(a, b)| a * b).sum::<f64>();
    Ok((w, intercept, iterations))
}

/// A fitted logistic regression: `coef` is classes × features for the
/// multinomial case, or one row (the positive class) for binary.
#[derive(Debug, Clone)]
pub struct Logistic {
    pub coef: Vec<Vec<f64>>,
    pub intercept: Vec<f64>,
    pub iterations: usize,
    pub converged: bool,
}

/// Splits rows into `ROW_SHARES` for one pass; `f(start, end)` returns a
/// partial result, summed by `add` in share order: the same sums whatever
/// the cores (`par::shares`).
fn par_rows<T: Send>(rows: usize, work: usize, f: impl Fn(usize, usize) -> T + Sync, add: impl Fn(T, T) -> T) -> T {
    if work < 400_000 {
        return f(0, rows);
    }
    let parts = crate::par::shares(rows, ROW_SHARES, true, f);
    parts.into_iter().reduce(add).expect("at least one share")
}

const ROW_SHARES: usize = 16;

/// Fits logistic regression. `y[i]` is the class index in `0..classes`;
/// `sample_weight` carries class weights.
#[allow(clippy::too_many_arguments)] // the fit's inputs, its settings and its stop
pub fn logistic(
    x: &Matrix,
    y: &[usize],
    classes: usize,
    c: f64,
    sample_weight: &[f64],
    settings: Settings,
    names: &[String],
    stop: Stop,
) -> Result<Logistic, MlError> {
    check_finite(x, names)?;
    if classes < 2 {
        return Err(MlError::Data("logistic regression needs at least two classes in the training data".into()));
    }
    if !(c > 0.0 && c.is_finite()) {
        return Err(MlError::Setting(format!("C must be a positive number, not {c}")));
    }
    let d = x.cols;
    let total: f64 = sample_weight.iter().sum();
    let lambda = 1.0 / (c * total);
    let k = if classes == 2 { 1 } else { classes };
    let stride = d + 1;
    let loss = LogisticLoss { x, y, sample_weight, k, total, lambda };
    let objective = |p: &[f64], g: &mut [f64]| -> f64 { loss.value(p, g) };
    let out = lbfgs(objective, vec![0.0; k * stride], settings, stop)?;
    if out.x.iter().any(|v| !v.is_finite()) {
        return Err(MlError::Training(
            "logistic regression diverged (non-finite weights); check for extreme values or raise the penalty (lower C)".into(),
        ));
    }
    let coef = (0..k).map(|cls| out.x[cls * stride..cls * stride + d].to_vec()).collect();
    let intercept = (0..k).map(|cls| out.x[cls * stride + d]).collect();
    Ok(Logistic { coef, intercept, iterations: out.iterations, converged: out.converged })
}

/// Logistic regression's objective: the mean weighted log loss plus the
/// L2 penalty on the weights (not the intercepts). Parameters are `k`
/// blocks of `cols` weights and one intercept.
struct LogisticLoss<'a> {
    x: &'a Matrix,
    y: &'a [usize],
    sample_weight: &'a [f64],
    /// 1 for two classes (the second class's log-odds), else one per class.
    k: usize,
    total: f64,
    lambda: f64,
}

impl LogisticLoss<'_> {
    /// The objective at `p`; its gradient goes into `g`.
    fn value(&self, p: &[f64], g: &mut [f64]) -> f64 {
        let (x, k) = (self.x, self.k);
        let (d, stride) = (x.cols, x.cols + 1);
        let (loss, mut grad) = par_rows(
            x.rows,
            x.rows * d * k,
            |start, end| self.rows(p, start, end),
            |(l1, mut g1), (l2, g2)| {
                g1.iter_mut().zip(g2).for_each(|(a, b)| *a += b);
                (l1 + l2, g1)
            },
        );
        let mut value = loss / self.total;
        grad.iter_mut().for_each(|v| *v /= self.total);
        for cls in 0..k {
            for j in 0..d {
                let w = p[cls * stride + j];
                value += 0.5 * self.lambda * w * w;
                grad[cls * stride + j] += self.lambda * w;
            }
        }
        g.copy_from_slice(&grad);
        value
    }

    /// The summed weighted loss and gradient over rows `start..end`.
    fn rows(&self, p: &[f64], start: usize, end: usize) -> (f64, Vec<f64>) {
        let (x, y, k) = (self.x, self.y, self.k);
        let (d, stride) = (x.cols, x.cols + 1);
        let mut grad = vec![0.0; k * stride];
        let mut loss = 0.0;
        let mut z = vec![0.0; k];
        for i in start..end {
            let row = x.row(i);
            for (cls, zc) in z.iter_mut().enumerate() {
                let w = &p[cls * stride..cls * stride + d];
                *zc = row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() + p[cls * stride + d];
            }
            let sw = self.sample_weight[i];
            if k == 1 {
                // log(1 + e^z) − y z, computed stably.
                let zi = z[0];
                let yi = if y[i] == 1 { 1.0 } else { 0.0 };
                // One exponential for both: e = e^(−|z|).
                let e = (-zi.abs()).exp();
                let lse = zi.max(0.0) + e.ln_1p();
                loss += sw * (lse - yi * zi);
                let q = if zi >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
                let r = sw * (q - yi);
                for (gj, v) in grad[..d].iter_mut().zip(row) {
                    *gj += r * v;
                }
                grad[d] += r;
            } else {
                let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
                let lse = m + s.ln();
                loss += sw * (lse - z[y[i]]);
                for cls in 0..k {
                    let r = sw * ((z[cls] - lse).exp() - if cls == y[i] { 1.0 } else { 0.0 });
                    let gc = &mut grad[cls * stride..(cls + 1) * stride];
                    for (gj, v) in gc[..d].iter_mut().zip(row) {
                        *gj += r * v;
                    }
                    gc[d] += r;
                }
            }
        }
        (loss, grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: &[&[f64]]) -> Matrix {
        Matrix { rows: rows.len(), cols: rows[0].len(), data: rows.iter().flat_map(|r| r.iter().copied()).collect() }
    }

    #[test]
    fn least_squares_recovers_an_exact_plane_even_with_a_duplicated_column() {
        let x = matrix(&[&[1.0, 1.0, 2.0], &[2.0, 2.0, 0.0], &[3.0, 3.0, 1.0], &[4.0, 4.0, 5.0]]);
        let y: Vec<f64> = (0..4).map(|i| 3.0 + 2.0 * x.get(i, 0) - x.get(i, 2)).collect();
        let (w, b) = least_squares(&x, &y, 0.0, None, &[], Stop::NEVER).unwrap();
        // The minimum-norm split of 2 over two equal columns is 1 + 1.
        assert!((w[0] - 1.0).abs() < 1e-9 && (w[1] - 1.0).abs() < 1e-9 && (w[2] + 1.0).abs() < 1e-9, "{w:?}");
        assert!((b - 3.0).abs() < 1e-9);
    }

    #[test]
    fn missing_features_are_refused_with_the_fix() {
        let x = matrix(&[&[1.0], &[f64::NAN]]);
        let e = least_squares(&x, &[1.0, 2.0], 0.0, None, &["age".into()], Stop::NEVER).unwrap_err().to_string();
        assert!(e.contains("`age`") && e.contains("impute"), "{e}");
    }
}
