//! L-BFGS (Nocedal & Wright, algorithm 7.4) with a backtracking line
//! search on the Armijo condition; curvature pairs that fail sᵀy > 0 are
//! skipped, which keeps the inverse-Hessian estimate positive definite.
//! Stops as scipy's L-BFGS-B does for scikit-learn: when the largest
//! gradient component is at most `gtol`, or when the objective's relative
//! decrease falls below `ftol`.

use crate::{MlError, Stop};

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub max_iterations: usize,
    pub gtol: f64,
    pub ftol: f64,
    pub memory: usize,
}

impl Default for Settings {
    fn default() -> Self {
        // scipy's defaults as scikit-learn calls them (factr = 1e7).
        Self { max_iterations: 100, gtol: 1e-4, ftol: 1e7 * f64::EPSILON, memory: 10 }
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub x: Vec<f64>,
    pub value: f64,
    pub iterations: usize,
    pub converged: bool,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Curvature pairs (s, y, 1 / sᵀy), oldest first.
type History = std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)>;

fn max_abs(g: &[f64]) -> f64 {
    g.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// Minimizes `f`, which returns the value and writes the gradient;
/// `Err(Cancelled)` when `stop` asks before an evaluation of `f`.
pub fn lbfgs(
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    x0: Vec<f64>,
    s: Settings,
    stop: Stop,
) -> Result<Outcome, MlError> {
    let n = x0.len();
    let mut x = x0;
    let mut g = vec![0.0; n];
    stop.check()?;
    let mut fx = f(&x, &mut g);
    let mut hist = History::new();
    let mut xn = vec![0.0; n];
    let mut gn = vec![0.0; n];
    for it in 0..s.max_iterations {
        if max_abs(&g) <= s.gtol {
            return Ok(Outcome { x, value: fx, iterations: it, converged: true });
        }
        let mut d = direction(&hist, &g);
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction (numerical trouble): restart on the gradient.
            hist.clear();
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        let fn_ = line_search(&mut f, [&x, &d], fx, slope, [&mut xn, &mut gn], stop)?;
        if !fn_.is_finite() || fn_ > fx {
            return Ok(Outcome { x, value: fx, iterations: it, converged: false });
        }
        remember(&mut hist, [&x, &xn], [&g, &gn], s.memory);
        let decrease = (fx - fn_) / fx.abs().max(fn_.abs()).max(1.0);
        std::mem::swap(&mut x, &mut xn);
        std::mem::swap(&mut g, &mut gn);
        fx = fn_;
        if decrease <= s.ftol {
            return Ok(Outcome { x, value: fx, iterations: it + 1, converged: true });
        }
    }
    let converged = max_abs(&g) <= s.gtol;
    Ok(Outcome { x, value: fx, iterations: s.max_iterations, converged })
}

/// Two-loop recursion: d = -H g.
fn direction(hist: &History, g: &[f64]) -> Vec<f64> {
    let mut q = g.to_vec();
    let mut alphas = Vec::with_capacity(hist.len());
    for (sv, yv, rho) in hist.iter().rev() {
        let a = rho * dot(sv, &q);
        q.iter_mut().zip(yv).for_each(|(qi, yi)| *qi -= a * yi);
        alphas.push(a);
    }
    let gamma = hist.back().map_or_else(|| 1.0 / max_abs(g).max(1.0), |(sv, yv, _)| dot(sv, yv) / dot(yv, yv));
    q.iter_mut().for_each(|v| *v *= gamma);
    for ((sv, yv, rho), a) in hist.iter().zip(alphas.into_iter().rev()) {
        let b = rho * dot(yv, &q);
        q.iter_mut().zip(sv).for_each(|(qi, si)| *qi += (a - b) * si);
    }
    q.into_iter().map(|v| -v).collect()
}

/// Backtracks from a full step along `d` until the Armijo condition holds
/// (at most 40 halvings); leaves the last point tried and its gradient in
/// `xn` and `gn`, and returns its value.
fn line_search(
    f: &mut impl FnMut(&[f64], &mut [f64]) -> f64,
    [x, d]: [&[f64]; 2],
    fx: f64,
    slope: f64,
    [xn, gn]: [&mut [f64]; 2],
    stop: Stop,
) -> Result<f64, MlError> {
    let mut step = 1.0;
    let mut fn_ = f64::INFINITY;
    for _ in 0..40 {
        stop.check()?;
        xn.iter_mut().zip(x).zip(d).for_each(|((o, xi), di)| *o = xi + step * di);
        fn_ = f(xn, gn);
        if fn_.is_finite() && fn_ <= fx + 1e-4 * step * slope {
            break;
        }
        step *= 0.5;
    }
    Ok(fn_)
}

/// Keeps the step's curvature pair when sᵀy is clearly positive, dropping
/// the oldest beyond `memory`.
fn remember(hist: &mut History, [x, xn]: [&[f64]; 2], [g, gn]: [&[f64]; 2], memory: usize) {
    let sv: Vec<f64> = xn.iter().zip(x).map(|(a, b)| a - b).collect();
    let yv: Vec<f64> = gn.iter().zip(g).map(|(a, b)| a - b).collect();
    let sy = dot(&sv, &yv);
    if sy > 1e-10 * dot(&yv, &yv).sqrt() * dot(&sv, &sv).sqrt() {
        if hist.len() == memory {
            hist.pop_front();
        }
        hist.push_back((sv, yv, 1.0 / sy));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimizes_the_rosenbrock_function() {
        let out = lbfgs(
            |x, g| {
                let (a, b) = (x[0], x[1]);
                g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
                g[1] = 200.0 * (b - a * a);
                (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
            },
            vec![-1.2, 1.0],
            Settings { max_iterations: 500, gtol: 1e-8, ftol: 0.0, memory: 10 },
            Stop::NEVER,
        )
        .unwrap();
        assert!(out.converged);
        assert!((out.x[0] - 1.0).abs() < 1e-6 && (out.x[1] - 1.0).abs() < 1e-6, "{:?}", out.x);
    }
}
