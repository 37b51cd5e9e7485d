//! Evaluation metrics, defined as scikit-learn defines them (checked against
//! its values in `crates/flywheel-data/tests/fixtures/metrics.json`).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Regression {
    pub rmse: f64,
    pub mae: f64,
    /// Mean of |y − ŷ| / max(|y|, ε), as scikit-learn (a fraction, not %).
    pub mape: f64,
    pub r2: f64,
}

pub fn regression(y: &[f64], pred: &[f64]) -> Regression {
    RegressionSums::of(y, pred).finish()
}

/// What a regression's metrics are made of. Sums add up, so the metrics of
/// windows merged are those of all their rows (monitoring keeps one per
/// window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct RegressionSums {
    pub n: u64,
    /// Squared, absolute and absolute relative errors, summed.
    pub se: f64,
    pub ae: f64,
    pub ape: f64,
    /// Mean of the truths and their squared deviations from it.
    pub mean: f64,
    pub m2: f64,
}

impl RegressionSums {
    pub fn of(y: &[f64], pred: &[f64]) -> RegressionSums {
        let n = y.len() as f64;
        let mean = y.iter().sum::<f64>() / n;
        let mut s = RegressionSums { n: y.len() as u64, mean, ..RegressionSums::default() };
        for (&t, &p) in y.iter().zip(pred) {
            s.se += (t - p) * (t - p);
            s.ae += (t - p).abs();
            s.ape += (t - p).abs() / t.abs().max(f64::EPSILON);
            s.m2 += (t - mean) * (t - mean);
        }
        s
    }

    /// Adds `o`'s rows (Chan et al.'s update for the deviations).
    pub fn merge(&mut self, o: &RegressionSums) {
        if o.n == 0 {
            return;
        }
        let (na, nb) = (self.n as f64, o.n as f64);
        let delta = o.mean - self.mean;
        let n = na + nb;
        self.mean += delta * nb / n;
        self.m2 += o.m2 + delta * delta * na * nb / n;
        self.n += o.n;
        self.se += o.se;
        self.ae += o.ae;
        self.ape += o.ape;
    }

    pub fn finish(&self) -> Regression {
        let n = self.n as f64;
        Regression { rmse: (self.se / n).sqrt(), mae: self.ae / n, mape: self.ape / n, r2: 1.0 - self.se / self.m2 }
    }
}

/// One bin of a reliability curve (scikit-learn's `calibration_curve`,
/// 10 uniform bins; empty bins are left out).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CalibrationBin {
    pub mean_predicted: f64,
    pub fraction_positive: f64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Binary {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub roc_auc: f64,
    /// Average precision (scikit-learn's `average_precision_score`).
    pub pr_auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    /// Rows: true negative, positive; columns: predicted negative, positive.
    pub confusion: [[u64; 2]; 2],
    pub calibration: Vec<CalibrationBin>,
}

/// Binary classification metrics from true labels and positive-class
/// probabilities; the predicted label is `p >= 0.5`.
pub fn binary(y: &[bool], p: &[f64]) -> Binary {
    let n = y.len() as f64;
    let (mut tp, mut fp, mut tn, mut fneg) = (0.0, 0.0, 0.0, 0.0);
    let mut ll = 0.0;
    let eps = f64::EPSILON;
    for (&t, &q) in y.iter().zip(p) {
        match (t, q >= 0.5) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (false, false) => tn += 1.0,
            (true, false) => fneg += 1.0,
        }
        let q = q.clamp(eps, 1.0 - eps);
        ll -= if t { q.ln() } else { (1.0 - q).ln() };
    }
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = if tp + fneg > 0.0 { tp / (tp + fneg) } else { 0.0 };
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    let brier = y.iter().zip(p).map(|(&t, &q)| (q - f64::from(u8::from(t))).powi(2)).sum::<f64>() / n;
    Binary {
        accuracy: (tp + tn) / n,
        precision,
        recall,
        f1,
        roc_auc: roc_auc(y, p),
        pr_auc: average_precision(y, p),
        log_loss: ll / n,
        brier,
        confusion: [[tn as u64, fp as u64], [fneg as u64, tp as u64]],
        calibration: calibration(y, p, 10),
    }
}

/// Σ (Rₙ − Rₙ₋₁) Pₙ over distinct score thresholds, highest first.
pub fn average_precision(y: &[bool], score: &[f64]) -> f64 {
    let positives = y.iter().filter(|&&t| t).count() as f64;
    if positives == 0.0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let (mut tp, mut fp, mut prev_recall, mut ap) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let s = score[idx[i]];
        while i < idx.len() && score[idx[i]] == s {
            if y[idx[i]] {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        let recall = tp / positives;
        ap += (recall - prev_recall) * tp / (tp + fp);
        prev_recall = recall;
    }
    ap
}

/// A reliability curve over `bins` equal-width bins of [0, 1]; a
/// probability on an inner edge belongs to the lower bin, as numpy's
/// `searchsorted` puts it.
pub fn calibration(y: &[bool], p: &[f64], bins: usize) -> Vec<CalibrationBin> {
    let mut sum = vec![0.0; bins];
    let mut pos = vec![0.0; bins];
    let mut count = vec![0u64; bins];
    for (&t, &q) in y.iter().zip(p) {
        let edges_below = (1..bins).filter(|&k| (k as f64 / bins as f64) < q).count();
        sum[edges_below] += q;
        pos[edges_below] += f64::from(u8::from(t));
        count[edges_below] += 1;
    }
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| CalibrationBin {
            mean_predicted: sum[b] / count[b] as f64,
            fraction_positive: pos[b] / count[b] as f64,
            count: count[b],
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Multiclass {
    pub accuracy: f64,
    pub precision_macro: f64,
    pub recall_macro: f64,
    pub f1_macro: f64,
    pub log_loss: f64,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
}

/// Multiclass metrics from true and predicted class ids and row-major
/// probabilities (rows × k). Macro averages count classes absent from both
/// truth and prediction as 0, as scikit-learn does with `labels` given
/// (only classes seen in either are averaged here, as its default).
pub fn multiclass(y: &[usize], pred: &[usize], proba: &[f64], k: usize) -> Multiclass {
    let mut ll = 0.0;
    let mut confusion = vec![vec![0u64; k]; k];
    for (i, (&t, &p)) in y.iter().zip(pred).enumerate() {
        confusion[t][p] += 1;
        ll += row_log_loss(&proba[i * k..(i + 1) * k], t);
    }
    multiclass_from(confusion, ll)
}

/// One row's log loss: scikit-learn renormalizes each row after clipping
/// to [eps, 1 - eps].
pub fn row_log_loss(row: &[f64], truth: usize) -> f64 {
    let clipped = |q: f64| q.clamp(f64::EPSILON, 1.0 - f64::EPSILON);
    let s: f64 = row.iter().map(|&q| clipped(q)).sum();
    -(clipped(row[truth]) / s).ln()
}

/// The metrics of a confusion matrix (`confusion[true][predicted]`) and the
/// rows' summed log loss: what windows merged add up to.
pub fn multiclass_from(confusion: Vec<Vec<u64>>, log_loss_sum: f64) -> Multiclass {
    let k = confusion.len();
    let tp: Vec<f64> = (0..k).map(|c| confusion[c][c] as f64).collect();
    let true_count: Vec<f64> = confusion.iter().map(|r| r.iter().sum::<u64>() as f64).collect();
    let pred_count: Vec<f64> = (0..k).map(|c| confusion.iter().map(|r| r[c]).sum::<u64>() as f64).collect();
    let n: f64 = true_count.iter().sum();
    let seen: Vec<usize> = (0..k).filter(|&c| true_count[c] > 0.0 || pred_count[c] > 0.0).collect();
    let m = seen.len() as f64;
    let (mut ps, mut rs, mut fs) = (0.0, 0.0, 0.0);
    for &c in &seen {
        let p = if pred_count[c] > 0.0 { tp[c] / pred_count[c] } else { 0.0 };
        let r = if true_count[c] > 0.0 { tp[c] / true_count[c] } else { 0.0 };
        ps += p;
        rs += r;
        fs += if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
    }
    Multiclass {
        accuracy: tp.iter().sum::<f64>() / n,
        precision_macro: ps / m,
        recall_macro: rs / m,
        f1_macro: fs / m,
        log_loss: log_loss_sum / n,
        confusion,
    }
}

/// Area under the ROC curve via the Mann–Whitney U statistic, ties
/// counted as half (average ranks). NaN when only one class is present.
pub fn roc_auc(y: &[bool], score: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && score[idx[j + 1]] == score[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if y[k] {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    let n_pos = y.iter().filter(|&&t| t).count() as f64;
    let n_neg = y.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(roc_auc(&[false, true], &[0.5, 0.5]), 0.5);
        assert_eq!(roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]), 0.75);
        assert!(roc_auc(&[true, true], &[0.1, 0.2]).is_nan());
    }
}
