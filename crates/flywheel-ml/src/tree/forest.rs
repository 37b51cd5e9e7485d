//! Decision trees and random forests on the same histogram grower as the
//! boosting: a regression tree is grown on gradients −y with unit
//! hessians, so that each split maximizes the variance reduction (for a
//! 0/1 target, the Gini decrease) and each leaf holds the (weighted) mean
//! of its rows: the value, or P(positive class). A forest averages
//! fully grown trees on bootstrap samples with √features (classification)
//! or all features (regression) drawn at each split, as scikit-learn's
//! defaults. A multiclass target is learned one class against the rest
//! (one forest per class on 0/1 targets); the class scores are then
//! normalized into probabilities.

use super::Tree;
use super::binning::Binner;
use super::grow::{GrowParams, grow};
use crate::transform::Matrix;
use crate::{MlError, Stop};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Params {
    pub trees: usize,
    pub bootstrap: bool,
    pub max_depth: Option<usize>,
    pub min_samples_leaf: usize,
    /// Features drawn per split; `None`: √features for classification,
    /// all for regression.
    pub max_features: Option<usize>,
    pub seed: u64,
}

impl Params {
    /// scikit-learn's `RandomForest*` defaults.
    pub fn forest() -> Self {
        Params { trees: 100, bootstrap: true, max_depth: None, min_samples_leaf: 1, max_features: None, seed: 0 }
    }
    /// One tree on all rows and features (`DecisionTree*`).
    pub fn tree() -> Self {
        Params { trees: 1, bootstrap: false, max_features: Some(usize::MAX), ..Self::forest() }
    }
}

/// Averaged trees; leaves hold values (regression) or P(class 1). With
/// `classes` > 0 (multiclass, one class against the rest), the trees of
/// class c are `trees[c * n .. (c + 1) * n]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    pub trees: Vec<Tree>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub classes: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Forest {
    /// Values, or P(class 1): the mean over the trees.
    pub fn predict(&self, x: &Matrix) -> Vec<f64> {
        let n = self.trees.len() as f64;
        (0..x.rows).map(|i| self.trees.iter().map(|t| t.predict_row(x.row(i))).sum::<f64>() / n).collect()
    }

    /// Multiclass probabilities, rows × classes: each class's mean score,
    /// normalized per row (uniform when every score is 0).
    pub fn predict_proba(&self, x: &Matrix) -> Vec<f64> {
        let k = self.classes.max(1);
        let per = self.trees.len() / k;
        let mut out = vec![0.0; x.rows * k];
        for i in 0..x.rows {
            let row = x.row(i);
            let o = &mut out[i * k..(i + 1) * k];
            for (c, trees) in self.trees.chunks(per).enumerate() {
                o[c] = trees.iter().map(|t| t.predict_row(row)).sum::<f64>() / per as f64;
            }
            let s: f64 = o.iter().sum();
            o.iter_mut().for_each(|v| *v = if s > 0.0 { *v / s } else { 1.0 / k as f64 });
        }
        out
    }

    pub fn check(&self, width: usize) -> Result<(), String> {
        if self.trees.is_empty() {
            return Err("a forest without trees".into());
        }
        if self.classes > 0 && !self.trees.len().is_multiple_of(self.classes) {
            return Err(format!("{} trees do not split evenly over {} classes", self.trees.len(), self.classes));
        }
        self.trees.iter().try_for_each(|t| t.check(width))
    }
}

/// One forest per class, each on "this class or not"; `y` holds class ids.
pub fn fit_multiclass(
    x: &Matrix,
    y: &[usize],
    classes: usize,
    sample_weight: &[f64],
    p: &Params,
    stop: Stop,
) -> Result<Forest, MlError> {
    let mut trees = Vec::new();
    for c in 0..classes {
        let yc: Vec<f64> = y.iter().map(|&v| f64::from(u8::from(v == c))).collect();
        let f = fit(x, &yc, true, sample_weight, &Params { seed: p.seed.wrapping_add(c as u64 * 7919), ..*p }, stop)?;
        trees.extend(f.trees);
    }
    Ok(Forest { trees, classes })
}

/// Fits a forest (or a single tree). `y` holds values, or 0/1 for binary
/// classification (`classification = true`). `Err(Cancelled)` when `stop` asks.
pub fn fit(
    x: &Matrix,
    y: &[f64],
    classification: bool,
    sample_weight: &[f64],
    p: &Params,
    stop: Stop,
) -> Result<Forest, MlError> {
    if p.trees == 0 {
        return Err(MlError::Setting("a forest needs at least one tree (n_estimators ≥ 1)".into()));
    }
    if p.min_samples_leaf == 0 {
        return Err(MlError::Setting("min_samples_leaf must be at least 1".into()));
    }
    if x.rows < 2 {
        return Err(MlError::Data("a tree needs at least two training rows".into()));
    }
    let binner = Binner::fit(x, p.seed);
    let binned = binner.transform(x);
    let features = match p.max_features {
        Some(k) => k.clamp(1, x.cols),
        None if classification => ((x.cols as f64).sqrt() as usize).max(1),
        None => x.cols,
    };
    let gh: Vec<[f64; 2]> = y.iter().zip(sample_weight).map(|(v, w)| [-v * w, *w]).collect();
    let cores = crate::par::cores();
    let threads = cores.min(p.trees);
    let grow_one = |t: usize| -> Tree {
        let seed = p.seed.wrapping_add(t as u64).wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
        let mut rows = sample_rows(x.rows, p.bootstrap, seed);
        let gp = GrowParams {
            max_leaf_nodes: usize::MAX,
            max_depth: p.max_depth,
            min_samples_leaf: p.min_samples_leaf,
            l2: 0.0,
            shrinkage: 1.0,
            max_features: (features < x.cols).then_some(features),
            seed,
            // Trees grow in parallel; a single tree uses every core per histogram.
            threads: if threads <= 1 { cores } else { 1 },
        };
        grow(&binned, &binner, &mut rows, &gh, &gp, stop).0
    };
    let trees = grow_all(p.trees, threads, grow_one, stop);
    stop.check()?;
    Ok(Forest { trees, classes: 0 })
}

/// The rows a tree is grown on: all of them, or as many drawn with
/// replacement (xorshift from `seed`), sorted.
fn sample_rows(n: usize, bootstrap: bool, seed: u64) -> Vec<u32> {
    if !bootstrap {
        return (0..n as u32).collect();
    }
    let mut state = seed;
    let mut r: Vec<u32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as u32
        })
        .collect();
    r.sort_unstable();
    r
}

/// Grows trees `0..count` on `threads` threads, returned in order. Once a
/// stop is asked, the trees left are not started.
fn grow_all(count: usize, threads: usize, grow_one: impl Fn(usize) -> Tree + Sync, stop: Stop) -> Vec<Tree> {
    let go_on = |_: &usize| !stop.requested();
    if threads <= 1 {
        return (0..count).take_while(go_on).map(grow_one).collect();
    }
    // Trees t, t + threads, …, on each thread; then back in order.
    let mut parts: Vec<Vec<(usize, Tree)>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|k| {
                let grow_one = &grow_one;
                s.spawn(move || (k..count).step_by(threads).take_while(go_on).map(|t| (t, grow_one(t))).collect())
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("tree worker panicked")).collect()
    });
    let mut all: Vec<(usize, Tree)> = parts.drain(..).flatten().collect();
    all.sort_by_key(|(t, _)| *t);
    all.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xor(n: usize) -> (Matrix, Vec<f64>) {
        let mut state = 99u64;
        let mut u = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut data = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let (a, b, noise) = (u() * 2.0 - 1.0, u() * 2.0 - 1.0, u());
            data.extend([a, b, noise]);
            y.push(if (a > 0.0) == (b > 0.0) { 1.0 } else { 0.0 });
        }
        (Matrix { rows: n, cols: 3, data }, y)
    }

    #[test]
    fn a_tree_fits_its_training_data_and_a_forest_generalizes() {
        let (x, y) = xor(2000);
        let w = vec![1.0; x.rows];
        let tree = fit(&x, &y, true, &w, &Params::tree(), Stop::NEVER).unwrap();
        assert_eq!(tree.trees.len(), 1);
        let p = tree.predict(&x);
        let train_acc = p.iter().zip(&y).filter(|(p, y)| (**p >= 0.5) == (**y == 1.0)).count() as f64 / 2000.0;
        assert!(train_acc > 0.99, "{train_acc}");
        let forest = fit(&x, &y, true, &w, &Params { trees: 20, seed: 4, ..Params::forest() }, Stop::NEVER).unwrap();
        let (tx, ty) = xor(1000);
        let p = forest.predict(&tx);
        let acc = p.iter().zip(&ty).filter(|(p, y)| (**p >= 0.5) == (**y == 1.0)).count() as f64 / 1000.0;
        assert!(acc > 0.95, "{acc}");
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        // Same seed, same forest, whatever the thread interleaving.
        assert_eq!(
            forest,
            fit(&x, &y, true, &w, &Params { trees: 20, seed: 4, ..Params::forest() }, Stop::NEVER).unwrap()
        );
        forest.check(3).unwrap();
    }

    #[test]
    fn multiclass_one_against_the_rest_gives_normalized_probabilities() {
        let (x, y) = xor(1500);
        // Three classes: the quadrant pair, split by the sign of the first feature.
        let yc: Vec<usize> = (0..x.rows)
            .map(|i| {
                if y[i] == 1.0 {
                    0
                } else if x.get(i, 0) > 0.0 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let f = fit_multiclass(
            &x,
            &yc,
            3,
            &vec![1.0; x.rows],
            &Params { trees: 15, seed: 1, ..Params::forest() },
            Stop::NEVER,
        )
        .unwrap();
        assert_eq!((f.classes, f.trees.len()), (3, 45));
        let p = f.predict_proba(&x);
        let mut right = 0;
        for i in 0..x.rows {
            let r = &p[i * 3..i * 3 + 3];
            assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let best = (0..3).fold(0, |b, c| if r[c] > r[b] { c } else { b });
            right += usize::from(best == yc[i]);
        }
        assert!(right as f64 / x.rows as f64 > 0.97, "{right}");
        f.check(3).unwrap();
    }

    #[test]
    fn regression_leaves_are_means() {
        let x = Matrix { rows: 6, cols: 1, data: vec![1.0, 2.0, 3.0, 10.0, 11.0, 12.0] };
        let y = [1.0, 2.0, 3.0, 10.0, 20.0, 30.0];
        let p = Params { min_samples_leaf: 3, ..Params::tree() };
        let t = fit(&x, &y, false, &[1.0; 6], &p, Stop::NEVER).unwrap();
        assert_eq!(t.predict(&x), [2.0, 2.0, 2.0, 20.0, 20.0, 20.0]);
    }
}
