//! Histogram gradient boosting, with scikit-learn's
//! `HistGradientBoosting{Classifier,Regressor}` defaults: learning rate
//! 0.1, 100 iterations, 31 leaves, 20 rows per leaf, no L2, 255 bins,
//! early stopping on a 10% validation split when there are more than
//! 10,000 rows (stop when the validation loss has not improved by 1e-7 for
//! 10 iterations). Losses: half squared error, binary log loss, and
//! multinomial log loss (one tree per class per iteration).

use super::Tree;
use super::binning::{Binned, Binner};
use super::grow::{GrowParams, LeafRows, grow};
use crate::link::{sigmoid, softmax};
use crate::transform::Matrix;
use crate::{MlError, Stop};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    SquaredError,
    /// Binary log loss; targets 0/1.
    Binary,
    /// Multinomial log loss over this many classes; targets 0..k.
    Multinomial(usize),
}

impl Loss {
    /// Raw scores per row.
    fn outputs(self) -> usize {
        match self {
            Loss::Multinomial(k) => k,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EarlyStopping {
    /// On when there are more than 10,000 training rows.
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Params {
    pub learning_rate: f64,
    pub max_iterations: usize,
    pub max_leaf_nodes: usize,
    pub max_depth: Option<usize>,
    pub min_samples_leaf: usize,
    pub l2: f64,
    pub early_stopping: EarlyStopping,
    pub validation_fraction: f64,
    pub n_iter_no_change: usize,
    pub tol: f64,
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            learning_rate: 0.1,
            max_iterations: 100,
            max_leaf_nodes: 31,
            max_depth: None,
            min_samples_leaf: 20,
            l2: 0.0,
            early_stopping: EarlyStopping::Auto,
            validation_fraction: 0.1,
            n_iter_no_change: 10,
            tol: 1e-7,
            seed: 0,
        }
    }
}

impl Params {
    pub fn check(&self) -> Result<(), MlError> {
        let bad = |m: String| Err(MlError::Setting(m));
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(format!("learning_rate must be positive, not {}", self.learning_rate));
        }
        if self.max_iterations == 0 {
            return bad("max_iterations must be at least 1".into());
        }
        if self.max_leaf_nodes < 2 {
            return bad(format!("max_leaf_nodes must be at least 2, not {}", self.max_leaf_nodes));
        }
        if self.min_samples_leaf == 0 {
            return bad("min_samples_leaf must be at least 1".into());
        }
        if self.l2.is_nan() || self.l2 < 0.0 {
            return bad(format!("l2_regularization must be ≥ 0, not {}", self.l2));
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return bad(format!("validation_fraction must be between 0 and 1, not {}", self.validation_fraction));
        }
        Ok(())
    }
}

/// A fitted ensemble: raw score = baseline + Σ trees (per output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbt {
    pub loss: Loss,
    pub baseline: Vec<f64>,
    /// Per iteration, one tree per output.
    pub trees: Vec<Vec<Tree>>,
}

/// What happened while fitting.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub iterations: usize,
    pub early_stopped: bool,
    pub validation_rows: usize,
    /// Mean loss on the training rows at the end.
    pub train_loss: f64,
    /// Mean loss on the validation rows, before the first tree and after each iteration.
    pub validation_loss: Vec<f64>,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, (self.next() % (i as u64 + 1)) as usize);
        }
    }
}

/// Mean (weighted) loss on `rows` of raw scores `raw`: k per row, in
/// the order of `rows`.
fn loss_of(loss: Loss, raw: &[f64], y: &[f64], w: &[f64], rows: &[u32]) -> f64 {
    let k = loss.outputs();
    let (mut total, mut wsum) = (0.0, 0.0);
    for (i, &r) in rows.iter().enumerate() {
        let r = r as usize;
        let s = &raw[i * k..(i + 1) * k];
        let l = match loss {
            Loss::SquaredError => 0.5 * (s[0] - y[r]).powi(2),
            Loss::Binary => {
                let z = s[0];
                let lse = if z > 0.0 { z + (-z).exp().ln_1p() } else { z.exp().ln_1p() };
                lse - y[r] * z
            }
            Loss::Multinomial(_) => {
                let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + s.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                lse - s[y[r] as usize]
            }
        };
        total += w[r] * l;
        wsum += w[r];
    }
    total / wsum
}

/// Writes `f(r)` (gradient and hessian) into `gh[r]` for every training
/// row, on two threads for large sets (rows are ascending, so each thread
/// owns a contiguous part of `gh`).
fn fill_gradients(train: &[u32], gh: &mut [[f64; 2]], f: impl Fn(usize) -> [f64; 2] + Sync) {
    let one = |rows: &[u32], gh: &mut [[f64; 2]], offset: usize| {
        for &r in rows {
            let [g, h] = f(r as usize);
            gh[r as usize - offset] = [g, h];
        }
    };
    if train.len() < 50_000 || crate::par::cores() < 2 {
        one(train, gh, 0);
        return;
    }
    let mid = train.len() / 2;
    let boundary = train[mid] as usize;
    let (gh1, gh2) = gh.split_at_mut(boundary);
    std::thread::scope(|s| {
        s.spawn(|| one(&train[..mid], gh1, 0));
        one(&train[mid..], gh2, boundary);
    });
}

/// Fits boosted trees. `y` holds values (regression) or class ids;
/// `sample_weight` carries class weights. `Err(Cancelled)` when `stop` asks.
pub fn fit(
    x: &Matrix,
    y: &[f64],
    loss: Loss,
    sample_weight: &[f64],
    p: &Params,
    stop: Stop,
) -> Result<(Gbt, FitReport), MlError> {
    p.check()?;
    let n = x.rows;
    if n < 2 {
        return Err(MlError::Data("boosting needs at least two training rows".into()));
    }
    let early = match p.early_stopping {
        EarlyStopping::Auto => n > 10_000,
        EarlyStopping::On => true,
        EarlyStopping::Off => false,
    };
    let (train, val) = validation_split(n, y, loss, p, early);
    if train.len() < 2 {
        return Err(MlError::Data("too few training rows left after the validation split".into()));
    }
    let baseline = baseline(loss, y, sample_weight, &train);
    let mut b = Boosting::new(x, y, sample_weight, loss, p, early, train, val, &baseline, stop);
    let mut trees: Vec<Vec<Tree>> = Vec::new();
    let mut report = FitReport {
        iterations: 0,
        early_stopped: false,
        validation_rows: b.val.len(),
        train_loss: f64::NAN,
        validation_loss: Vec::new(),
    };
    if early {
        report.validation_loss.push(loss_of(loss, &b.val_raw, y, sample_weight, &b.val));
    }
    for _ in 0..p.max_iterations {
        stop.check()?;
        let (round, val_loss) = b.round()?;
        trees.push(round);
        report.iterations += 1;
        if let Some(l) = val_loss {
            report.validation_loss.push(l);
            if no_recent_improvement(&report.validation_loss, p) {
                report.early_stopped = true;
                break;
            }
        }
    }
    report.train_loss = b.train_loss();
    Ok((Gbt { loss, baseline, trees }, report))
}

/// Training and validation rows, ascending. With early stopping a
/// `validation_fraction` of the rows (of each class, for classification),
/// drawn with the seed, validate; without, every row trains.
fn validation_split(n: usize, y: &[f64], loss: Loss, p: &Params, early: bool) -> (Vec<u32>, Vec<u32>) {
    let mut rng = Rng(p.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut is_val = vec![false; n];
    if early {
        let groups: Vec<Vec<u32>> = match loss {
            Loss::SquaredError => vec![(0..n as u32).collect()],
            _ => {
                let classes = y.iter().fold(0usize, |m, v| m.max(*v as usize)) + 1;
                let mut g = vec![Vec::new(); classes];
                (0..n).for_each(|i| g[y[i] as usize].push(i as u32));
                g
            }
        };
        for mut g in groups {
            rng.shuffle(&mut g);
            let take = (g.len() as f64 * p.validation_fraction).round() as usize;
            g[..take].iter().for_each(|&i| is_val[i as usize] = true);
        }
    }
    let train: Vec<u32> = (0..n as u32).filter(|&i| !is_val[i as usize]).collect();
    let val: Vec<u32> = (0..n as u32).filter(|&i| is_val[i as usize]).collect();
    (train, val)
}

/// The raw score before the first tree: the weighted mean (regression),
/// the log-odds of the positive class, or the log class priors.
fn baseline(loss: Loss, y: &[f64], sample_weight: &[f64], train: &[u32]) -> Vec<f64> {
    let wsum: f64 = train.iter().map(|&i| sample_weight[i as usize]).sum();
    match loss {
        Loss::SquaredError => {
            vec![train.iter().map(|&i| sample_weight[i as usize] * y[i as usize]).sum::<f64>() / wsum]
        }
        Loss::Binary => {
            let pos = train.iter().map(|&i| sample_weight[i as usize] * y[i as usize]).sum::<f64>() / wsum;
            let pos = pos.clamp(f64::EPSILON, 1.0 - f64::EPSILON);
            vec![(pos / (1.0 - pos)).ln()]
        }
        Loss::Multinomial(k) => {
            let mut prior = vec![0.0; k];
            train.iter().for_each(|&i| prior[y[i as usize] as usize] += sample_weight[i as usize]);
            prior.iter().map(|c| (c / wsum).clamp(f64::EPSILON, 1.0).ln()).collect()
        }
    }
}

/// Whether none of the last `n_iter_no_change` validation losses beat the
/// one before them by `tol`.
fn no_recent_improvement(losses: &[f64], p: &Params) -> bool {
    if losses.len() <= p.n_iter_no_change {
        return false;
    }
    let reference = losses[losses.len() - 1 - p.n_iter_no_change];
    losses[losses.len() - p.n_iter_no_change..].iter().all(|&v| v > reference - p.tol)
}

/// The state of a fit between rounds: binned rows, the raw scores of
/// every row and of the validation rows, and buffers reused every tree.
struct Boosting<'a> {
    loss: Loss,
    k: usize,
    y: &'a [f64],
    w: &'a [f64],
    early: bool,
    train: Vec<u32>,
    val: Vec<u32>,
    binner: Binner,
    binned: Binned,
    /// The validation rows side by side, for predicting them tree by tree.
    val_x: Matrix,
    grow_params: GrowParams,
    /// Raw scores of every row (those of validation rows are not used).
    raw: Vec<f64>,
    /// Raw scores of the validation rows, in `val` order.
    val_raw: Vec<f64>,
    gh: Vec<[f64; 2]>,
    rows: Vec<u32>,
    probs: Vec<f64>,
    stop: Stop<'a>,
}

impl<'a> Boosting<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        x: &Matrix,
        y: &'a [f64],
        w: &'a [f64],
        loss: Loss,
        p: &Params,
        early: bool,
        train: Vec<u32>,
        val: Vec<u32>,
        baseline: &[f64],
        stop: Stop<'a>,
    ) -> Self {
        let (n, k) = (x.rows, loss.outputs());
        // Bins from the training part only.
        let binner = Binner::fit_rows(x, if early { Some(&train) } else { None }, p.seed);
        let binned = binner.transform(x);
        let val_x = Matrix {
            rows: val.len(),
            cols: x.cols,
            data: val.iter().flat_map(|&i| x.row(i as usize).iter().copied()).collect(),
        };
        let grow_params = GrowParams {
            max_leaf_nodes: p.max_leaf_nodes,
            max_depth: p.max_depth,
            min_samples_leaf: p.min_samples_leaf,
            l2: p.l2,
            shrinkage: p.learning_rate,
            max_features: None,
            seed: p.seed,
            threads: crate::par::cores(),
        };
        Boosting {
            raw: (0..n).flat_map(|_| baseline.iter().copied()).collect(),
            val_raw: (0..val.len()).flat_map(|_| baseline.iter().copied()).collect(),
            gh: vec![[0.0f64; 2]; n],
            rows: Vec::with_capacity(train.len()),
            probs: vec![0.0; if k > 1 { n * k } else { 0 }],
            loss,
            k,
            y,
            w,
            early,
            train,
            val,
            binner,
            binned,
            val_x,
            grow_params,
            stop,
        }
    }

    /// One iteration: a tree per output, and the validation loss after it
    /// when stopping early.
    fn round(&mut self) -> Result<(Vec<Tree>, Option<f64>), MlError> {
        let k = self.k;
        if k > 1 {
            for &r in &self.train {
                let r = r as usize;
                softmax(&self.raw[r * k..(r + 1) * k], &mut self.probs[r * k..(r + 1) * k]);
            }
        }
        let mut round = Vec::with_capacity(k);
        let mut val_loss = None;
        for c in 0..k {
            self.gradients(c);
            // Each tree starts from the rows in order (sequential reads at the root).
            self.rows.clear();
            self.rows.extend_from_slice(&self.train);
            let (tree, leaves) =
                grow(&self.binned, &self.binner, &mut self.rows, &self.gh, &self.grow_params, self.stop);
            self.stop.check()?;
            val_loss = self.add_tree(c, &tree, &leaves);
            round.push(tree);
        }
        Ok((round, val_loss))
    }

    /// Gradients and hessians of output `c` at the current raw scores.
    fn gradients(&mut self, c: usize) {
        let (k, y, w, raw, probs) = (self.k, self.y, self.w, &self.raw, &self.probs);
        // One loop per loss, without a per-row `match`.
        match self.loss {
            Loss::SquaredError => fill_gradients(&self.train, &mut self.gh, |r| [w[r] * (raw[r] - y[r]), w[r]]),
            Loss::Binary => fill_gradients(&self.train, &mut self.gh, |r| {
                let q = sigmoid(raw[r]);
                [w[r] * (q - y[r]), w[r] * q * (1.0 - q)]
            }),
            Loss::Multinomial(_) => fill_gradients(&self.train, &mut self.gh, |r| {
                let q = probs[r * k + c];
                [w[r] * (q - f64::from(u8::from(y[r] as usize == c))), w[r] * q * (1.0 - q)]
            }),
        }
    }

    /// Adds output `c`'s new tree to the raw scores. Training rows take
    /// their leaf's value while another thread predicts the validation
    /// rows (and, after the round's last tree, returns their loss).
    fn add_tree(&mut self, c: usize, tree: &Tree, leaves: &[LeafRows]) -> Option<f64> {
        let (k, loss, y, w, early) = (self.k, self.loss, self.y, self.w, self.early);
        let last = c + 1 == k;
        let (val_raw, val_x, val) = (&mut self.val_raw, &self.val_x, &self.val);
        let (raw, rows) = (&mut self.raw, &self.rows);
        std::thread::scope(|s| {
            let validate = s.spawn(|| {
                for (v, o) in val_raw.chunks_exact_mut(k).enumerate() {
                    o[c] += tree.predict_row(val_x.row(v));
                }
                (early && last).then(|| loss_of(loss, val_raw, y, w, val))
            });
            for leaf in leaves {
                for &r in &rows[leaf.start..leaf.end] {
                    raw[r as usize * k + c] += leaf.value;
                }
            }
            validate.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Mean loss on the training rows.
    fn train_loss(&self) -> f64 {
        let k = self.k;
        let train_raw: Vec<f64> =
            self.train.iter().flat_map(|&r| self.raw[r as usize * k..(r as usize + 1) * k].iter().copied()).collect();
        loss_of(self.loss, &train_raw, self.y, self.w, &self.train)
    }
}

impl Gbt {
    /// Raw scores, rows × outputs.
    pub fn raw(&self, x: &Matrix) -> Vec<f64> {
        let k = self.baseline.len();
        let mut out: Vec<f64> = (0..x.rows).flat_map(|_| self.baseline.iter().copied()).collect();
        // A block of rows through one tree at a time: the tree's nodes stay
        // in the L1 cache for the whole block.
        const BLOCK: usize = 128;
        for (b, block) in out.chunks_mut(BLOCK * k).enumerate() {
            for round in &self.trees {
                for (c, t) in round.iter().enumerate() {
                    for (i, o) in block.chunks_exact_mut(k).enumerate() {
                        o[c] += t.predict_row(x.row(b * BLOCK + i));
                    }
                }
            }
        }
        out
    }

    pub fn check(&self, width: usize) -> Result<(), String> {
        let k = self.loss.outputs();
        if self.baseline.len() != k {
            return Err(format!("{} baseline scores for {k} outputs", self.baseline.len()));
        }
        for (i, round) in self.trees.iter().enumerate() {
            if round.len() != k {
                return Err(format!("iteration {i} has {} trees for {k} outputs", round.len()));
            }
            for t in round {
                t.check(width)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> (Matrix, Vec<f64>, Vec<f64>) {
        let mut rng = Rng(seed | 1);
        let mut u = || (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let mut x = Vec::with_capacity(n * 3);
        let (mut reg, mut cls) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (a, b, c) = (u() * 4.0 - 2.0, u() * 4.0 - 2.0, u());
            // A missing value now and then.
            x.extend([a, if c < 0.05 { f64::NAN } else { b }, c]);
            reg.push(a * a + if b > 0.0 { 1.0 } else { -1.0 } + 0.1 * (u() - 0.5));
            cls.push(if a * b > 0.0 { 1.0 } else { 0.0 });
        }
        (Matrix { rows: n, cols: 3, data: x }, reg, cls)
    }

    #[test]
    fn learns_a_nonlinear_regression_and_an_interaction() {
        let (x, reg, cls) = data(3000, 7);
        let w = vec![1.0; x.rows];
        let (m, rep) = fit(&x, &reg, Loss::SquaredError, &w, &Params::default(), Stop::NEVER).unwrap();
        assert_eq!(rep.iterations, 100);
        let raw = m.raw(&x);
        let mse = raw.iter().zip(&reg).map(|(p, y)| (p - y).powi(2)).sum::<f64>() / x.rows as f64;
        assert!(mse < 0.05, "mse {mse}");
        // XOR-like: no linear model gets this; trees do.
        let (m, _) = fit(&x, &cls, Loss::Binary, &w, &Params::default(), Stop::NEVER).unwrap();
        let acc =
            m.raw(&x).iter().zip(&cls).filter(|(z, y)| (**z > 0.0) == (**y == 1.0)).count() as f64 / x.rows as f64;
        assert!(acc > 0.95, "accuracy {acc}");
        m.check(3).unwrap();
    }

    #[test]
    fn the_same_seed_gives_the_same_model_and_early_stopping_stops() {
        let (x, _, cls) = data(12_000, 3);
        let w = vec![1.0; x.rows];
        let p = Params { max_iterations: 500, seed: 5, ..Default::default() };
        let (a, rep) = fit(&x, &cls, Loss::Binary, &w, &p, Stop::NEVER).unwrap();
        let (b, _) = fit(&x, &cls, Loss::Binary, &w, &p, Stop::NEVER).unwrap();
        assert_eq!(a, b);
        assert_eq!(rep.validation_rows, 1200);
        assert!(rep.early_stopped && rep.iterations < 500, "{} iterations", rep.iterations);
    }

    #[test]
    fn multinomial_probabilities_follow_the_classes() {
        let (x, reg, _) = data(2000, 11);
        let y: Vec<f64> = reg
            .iter()
            .map(|v| {
                if *v < 0.0 {
                    0.0
                } else if *v < 2.0 {
                    1.0
                } else {
                    2.0
                }
            })
            .collect();
        let (m, _) = fit(&x, &y, Loss::Multinomial(3), &vec![1.0; x.rows], &Params::default(), Stop::NEVER).unwrap();
        let raw = m.raw(&x);
        let acc = (0..x.rows)
            .filter(|&i| {
                let s = &raw[i * 3..i * 3 + 3];
                let best = (0..3).fold(0, |b, c| if s[c] > s[b] { c } else { b });
                best as f64 == y[i]
            })
            .count() as f64
            / x.rows as f64;
        assert!(acc > 0.9, "accuracy {acc}");
    }

    #[test]
    fn bad_settings_are_refused() {
        let (x, reg, _) = data(100, 1);
        let p = Params { learning_rate: 0.0, ..Default::default() };
        assert!(
            fit(&x, &reg, Loss::SquaredError, &vec![1.0; 100], &p, Stop::NEVER)
                .unwrap_err()
                .to_string()
                .contains("learning_rate")
        );
    }
}
