//! Link functions: from an estimator's raw scores to probabilities. Shared
//! by the model format, gradient boosting and imported tree ensembles, so
//! that each predicts with the same arithmetic.

/// The logistic function, computed without overflow for large |z|.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Probabilities from one row of raw scores, shifted by their maximum so
/// that `exp` cannot overflow.
pub(crate) fn softmax(z: &[f64], out: &mut [f64]) {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for (o, v) in out.iter_mut().zip(z) {
        *o = (v - m).exp();
    }
    let s: f64 = out.iter().sum();
    out.iter_mut().for_each(|v| *v /= s);
}
