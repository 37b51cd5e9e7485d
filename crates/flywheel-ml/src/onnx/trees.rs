//! ONNX-ML `TreeEnsembleClassifier` and `TreeEnsembleRegressor` (opset 1
//! and 3), evaluated on Flywheel's own `tree::Tree`.
//!
//! Every branch mode becomes a `x <= threshold` split (`<` and `>=` move
//! the threshold to the next representable value below, `>` and `>=` swap
//! the children), so the traversal is the one native models use. Results
//! follow onnxruntime, the reference users compare against: with `float`
//! inputs, thresholds, leaf weights and sums are `f32`; the binary
//! classifier rules (one class's weights, base values, which score decides
//! the label) are onnxruntime's.

use crate::tree::{Node, Tree};
use std::collections::HashMap;

/// Rows taken through the trees together (see `Ensemble::accumulate`).
const BLOCK: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Post {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    pub fn len(&self) -> usize {
        match self {
            Labels::Ints(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn as_text(&self) -> Vec<String> {
        match self {
            Labels::Ints(v) => v.iter().map(|x| x.to_string()).collect(),
            Labels::Strings(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Classifier {
        labels: Labels,
        /// All leaf weights are for one class id (onnxruntime's binary case).
        one_class: bool,
        all_positive: bool,
    },
    Regressor {
        targets: usize,
        aggregate: Aggregate,
    },
}

/// The attributes of a tree-ensemble node, read from the file.
pub struct Attributes {
    pub tree_ids: Vec<i64>,
    pub node_ids: Vec<i64>,
    pub features: Vec<i64>,
    pub thresholds: Vec<f64>,
    pub modes: Vec<String>,
    pub true_ids: Vec<i64>,
    pub false_ids: Vec<i64>,
    pub missing_true: Vec<i64>,
    /// Leaf weights: tree id, node id, class or target id, weight.
    pub leaf_tree_ids: Vec<i64>,
    pub leaf_node_ids: Vec<i64>,
    pub leaf_targets: Vec<i64>,
    pub leaf_weights: Vec<f64>,
    pub base: Vec<f64>,
    pub post: Post,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    pub kind: Kind,
    trees: Vec<Tree>,
    /// Per tree, per node: the range of `weights` its leaf adds.
    leaf_ranges: Vec<Vec<(u32, u32)>>,
    weights: Vec<(u32, f64)>,
    base: Vec<f64>,
    post: Post,
    /// Thresholds, weights and sums in `f32`, as onnxruntime does for
    /// `float` inputs.
    single: bool,
    width: usize,
}

fn below(t: f64, single: bool) -> f64 {
    if single { (t as f32).next_down() as f64 } else { t.next_down() }
}

fn round(v: f64, single: bool) -> f64 {
    if single { v as f32 as f64 } else { v }
}

/// Checks that the attribute lists agree in length; returns the number of
/// outputs (class labels or targets).
fn check_lengths(a: &Attributes) -> Result<usize, String> {
    let n = a.node_ids.len();
    for (name, len) in [
        ("nodes_treeids", a.tree_ids.len()),
        ("nodes_featureids", a.features.len()),
        ("nodes_values", a.thresholds.len()),
        ("nodes_modes", a.modes.len()),
        ("nodes_truenodeids", a.true_ids.len()),
        ("nodes_falsenodeids", a.false_ids.len()),
    ] {
        if len != n {
            return Err(format!("{name} has {len} entries for {n} nodes"));
        }
    }
    if !a.missing_true.is_empty() && a.missing_true.len() != n {
        return Err(format!("nodes_missing_value_tracks_true has {} entries for {n} nodes", a.missing_true.len()));
    }
    let m = a.leaf_node_ids.len();
    if a.leaf_tree_ids.len() != m || a.leaf_targets.len() != m || a.leaf_weights.len() != m {
        return Err("the leaf weight lists (tree ids, node ids, ids, weights) differ in length".into());
    }
    let outputs = match &a.kind {
        Kind::Classifier { labels, .. } => labels.len(),
        Kind::Regressor { targets, .. } => *targets,
    };
    if outputs == 0 {
        return Err("no class labels or targets".into());
    }
    if !a.base.is_empty() && a.base.len() != outputs && !(outputs == 2 && a.base.len() == 1) {
        return Err(format!("{} base values for {outputs} outputs", a.base.len()));
    }
    Ok(outputs)
}

/// Where things are in the attribute lists: trees in order of first
/// appearance, each tree's nodes, nodes by (tree, id), leaf weights by
/// (tree, node id).
struct Index {
    order: Vec<i64>,
    members: HashMap<i64, Vec<usize>>,
    at: HashMap<(i64, i64), usize>,
    leaf_of: HashMap<(i64, i64), Vec<usize>>,
}

impl Index {
    fn new(a: &Attributes, outputs: usize) -> Result<Index, String> {
        let n = a.node_ids.len();
        let mut order: Vec<i64> = Vec::new();
        let mut members: HashMap<i64, Vec<usize>> = HashMap::new();
        let mut at: HashMap<(i64, i64), usize> = HashMap::with_capacity(n);
        for k in 0..n {
            members
                .entry(a.tree_ids[k])
                .or_insert_with(|| {
                    order.push(a.tree_ids[k]);
                    Vec::new()
                })
                .push(k);
            if at.insert((a.tree_ids[k], a.node_ids[k]), k).is_some() {
                return Err(format!("tree {} has two nodes with id {}", a.tree_ids[k], a.node_ids[k]));
            }
        }
        let mut leaf_of: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
        for j in 0..a.leaf_node_ids.len() {
            leaf_of.entry((a.leaf_tree_ids[j], a.leaf_node_ids[j])).or_default().push(j);
            if a.leaf_targets[j] < 0 || a.leaf_targets[j] as usize >= outputs {
                return Err(format!("a leaf weight for id {} of {outputs} outputs", a.leaf_targets[j]));
            }
        }
        Ok(Index { order, members, at, leaf_of })
    }
}

/// Builds the trees one after another, gathering every leaf's weights into
/// one list and the number of features read.
struct Build<'a> {
    a: &'a Attributes,
    index: Index,
    single: bool,
    weights: Vec<(u32, f64)>,
    width: usize,
}

impl Build<'_> {
    /// Tree `tid` in pre-order (children always come after their parent),
    /// with the range of `weights` each of its nodes adds.
    fn tree(&mut self, tid: i64) -> Result<(Tree, Vec<(u32, u32)>), String> {
        let (a, count) = (self.a, self.index.members[&tid].len());
        let root = self.root(tid)?;
        let mut nodes: Vec<Node> = Vec::with_capacity(count);
        let mut ranges: Vec<(u32, u32)> = Vec::with_capacity(count);
        let mut seen = std::collections::HashSet::new();
        // (attribute index, (parent slot, is left child))
        let mut stack: Vec<(usize, Option<(usize, bool)>)> = vec![(root, None)];
        while let Some((k, parent)) = stack.pop() {
            if !seen.insert(k) {
                return Err(format!("node {} of tree {tid} is reached twice (a cycle?)", a.node_ids[k]));
            }
            let slot = nodes.len();
            if let Some((p, is_left)) = parent {
                if is_left {
                    nodes[p].left = slot as u32;
                } else {
                    nodes[p].right = slot as u32;
                }
            }
            let start = self.weights.len() as u32;
            if a.modes[k] == "LEAF" {
                for &j in self.index.leaf_of.get(&(tid, a.node_ids[k])).map(|v| v.as_slice()).unwrap_or(&[]) {
                    self.weights.push((a.leaf_targets[j] as u32, round(a.leaf_weights[j], self.single)));
                }
                nodes.push(Node::leaf(0.0));
                ranges.push((start, self.weights.len() as u32));
                continue;
            }
            let (node, left, right) = self.split(tid, k)?;
            nodes.push(node);
            ranges.push((start, start));
            // Right first so the left child is numbered next (locality).
            stack.push((right, Some((slot, false))));
            stack.push((left, Some((slot, true))));
        }
        let tree = Tree { nodes };
        tree.check(usize::MAX).map_err(|e| format!("tree {tid}: {e}"))?;
        Ok((tree, ranges))
    }

    /// The one node of tree `tid` no other node points to.
    fn root(&self, tid: i64) -> Result<usize, String> {
        let (a, ids) = (self.a, &self.index.members[&tid]);
        let children: std::collections::HashSet<i64> =
            ids.iter().filter(|&&k| a.modes[k] != "LEAF").flat_map(|&k| [a.true_ids[k], a.false_ids[k]]).collect();
        let roots: Vec<usize> = ids.iter().copied().filter(|&k| !children.contains(&a.node_ids[k])).collect();
        let [root] = roots.as_slice() else {
            return Err(format!("tree {tid} has {} roots (nodes no other node points to)", roots.len()));
        };
        Ok(*root)
    }

    /// Branch node `k` of tree `tid` as a `x <= threshold` split, with the
    /// attribute indices of its left and right children.
    fn split(&mut self, tid: i64, k: usize) -> Result<(Node, usize, usize), String> {
        let (a, single) = (self.a, self.single);
        let feature = usize::try_from(a.features[k])
            .map_err(|_| format!("node {} of tree {tid} splits on feature {}", a.node_ids[k], a.features[k]))?;
        self.width = self.width.max(feature + 1);
        let t = round(a.thresholds[k], single);
        let tracks = a.missing_true.get(k).is_some_and(|&v| v != 0);
        // (threshold, true branch goes left)
        let (threshold, true_left) = match a.modes[k].as_str() {
            "BRANCH_LEQ" => (t, true),
            "BRANCH_LT" => (below(t, single), true),
            "BRANCH_GT" => (t, false),
            "BRANCH_GTE" => (below(t, single), false),
            other => {
                return Err(format!(
                    "node {} of tree {tid} has mode {other}; Flywheel evaluates BRANCH_LEQ, BRANCH_LT, \
                     BRANCH_GT, BRANCH_GTE and LEAF",
                    a.node_ids[k]
                ));
            }
        };
        let find = |id: i64| {
            self.index
                .at
                .get(&(tid, id))
                .copied()
                .ok_or_else(|| format!("node {} of tree {tid} points to missing node {id}", a.node_ids[k]))
        };
        let (t_node, f_node) = (find(a.true_ids[k])?, find(a.false_ids[k])?);
        let (left, right) = if true_left { (t_node, f_node) } else { (f_node, t_node) };
        let missing_left = if true_left { tracks } else { !tracks };
        Ok((Node { feature: feature as u32, threshold, left: 0, right: 0, missing_left, value: 0.0 }, left, right))
    }
}

impl Ensemble {
    /// Builds the ensemble; `single` is true for `float` inputs.
    pub fn new(a: Attributes, single: bool) -> Result<Ensemble, String> {
        let outputs = check_lengths(&a)?;
        let mut build = Build {
            index: Index::new(&a, outputs)?,
            a: &a,
            single,
            weights: Vec::with_capacity(a.leaf_node_ids.len()),
            width: 0,
        };
        let mut trees = Vec::with_capacity(build.index.order.len());
        let mut leaf_ranges = Vec::with_capacity(build.index.order.len());
        for tid in build.index.order.clone() {
            let (tree, ranges) = build.tree(tid)?;
            trees.push(tree);
            leaf_ranges.push(ranges);
        }
        let Build { weights, width, .. } = build;
        if trees.is_empty() {
            return Err("the ensemble has no trees".into());
        }
        if let (Kind::Regressor { .. }, p) = (&a.kind, a.post)
            && p != Post::None
        {
            return Err("post_transform on a regressor is not supported (Flywheel evaluates NONE)".into());
        }
        let kind = match a.kind {
            Kind::Classifier { labels, .. } => {
                let mut used: Vec<u32> = weights.iter().map(|(c, _)| *c).collect();
                used.sort_unstable();
                used.dedup();
                Kind::Classifier {
                    one_class: labels.len() == 2 && used.len() == 1,
                    all_positive: weights.iter().all(|(_, w)| *w >= 0.0),
                    labels,
                }
            }
            k => k,
        };
        Ok(Ensemble {
            kind,
            trees,
            leaf_ranges,
            weights,
            base: a.base.into_iter().map(|v| round(v, single)).collect(),
            post: a.post,
            single,
            width,
        })
    }

    /// Features the trees read (the input needs at least this many columns).
    pub fn width(&self) -> usize {
        self.width
    }

    pub fn trees(&self) -> usize {
        self.trees.len()
    }

    /// Outputs per row: classes, or regression targets.
    pub fn outputs(&self) -> usize {
        match &self.kind {
            Kind::Classifier { labels, .. } => labels.len(),
            Kind::Regressor { targets, .. } => *targets,
        }
    }

    #[inline]
    fn add(&self, a: f64, b: f64) -> f64 {
        if self.single { (a as f32 + b as f32) as f64 } else { a + b }
    }

    /// Sums every tree's leaf weights for each of the rows `first..first + n`
    /// into `scores` and `has` (n × outputs). Tree by tree over the rows,
    /// so that one tree's nodes stay in cache; each row still adds its
    /// trees in order.
    fn accumulate(&self, x: &[f64], cols: usize, first: usize, scores: &mut [f64], has: &mut [bool]) {
        let k = self.outputs();
        scores.iter_mut().for_each(|s| *s = 0.0);
        has.iter_mut().for_each(|h| *h = false);
        let minmax = match &self.kind {
            Kind::Regressor { aggregate: Aggregate::Min, .. } => Some(false),
            Kind::Regressor { aggregate: Aggregate::Max, .. } => Some(true),
            _ => None,
        };
        for (tree, ranges) in self.trees.iter().zip(&self.leaf_ranges) {
            for (j, (scores, has)) in scores.chunks_exact_mut(k).zip(has.chunks_exact_mut(k)).enumerate() {
                let row = &x[(first + j) * cols..(first + j + 1) * cols];
                let (a, b) = ranges[tree.leaf(row)];
                for &(t, w) in &self.weights[a as usize..b as usize] {
                    let t = t as usize;
                    scores[t] = match minmax {
                        Some(max) if has[t] => {
                            if max {
                                scores[t].max(w)
                            } else {
                                scores[t].min(w)
                            }
                        }
                        Some(_) => w,
                        None => self.add(scores[t], w),
                    };
                    has[t] = true;
                }
            }
        }
    }

    /// Regression: `rows × targets` values.
    pub fn regress(&self, x: &[f64], rows: usize, cols: usize, out: &mut [f64]) {
        let Kind::Regressor { targets, aggregate } = &self.kind else { return };
        let mut has = vec![false; BLOCK * targets];
        let n_trees = self.trees.len() as f64;
        for first in (0..rows).step_by(BLOCK) {
            let n = BLOCK.min(rows - first);
            let block = &mut out[first * targets..(first + n) * targets];
            self.accumulate(x, cols, first, block, &mut has[..n * targets]);
            for (t, s) in block.iter_mut().enumerate() {
                let t = t % targets;
                if *aggregate == Aggregate::Average {
                    *s = if self.single { (*s as f32 / n_trees as f32) as f64 } else { *s / n_trees };
                }
                if let Some(b) = self.base.get(t) {
                    *s = self.add(*s, *b);
                }
            }
        }
    }

    /// Classification: the label index per row and `rows × classes`
    /// scores after the post transform.
    pub fn classify(&self, x: &[f64], rows: usize, cols: usize, labels: &mut [usize], out: &mut [f64]) {
        let Kind::Classifier { labels: names, one_class, all_positive } = &self.kind else { return };
        let k = names.len();
        let mut block_scores = vec![0.0; BLOCK * k];
        let mut block_has = vec![false; BLOCK * k];
        for i in 0..rows {
            let j = i % BLOCK;
            if j == 0 {
                let n = BLOCK.min(rows - i);
                self.accumulate(x, cols, i, &mut block_scores[..n * k], &mut block_has[..n * k]);
            }
            let scores = &mut block_scores[j * k..(j + 1) * k];
            let has = &mut block_has[j * k..(j + 1) * k];
            let probs = &mut out[i * k..(i + 1) * k];
            labels[i] = if k > 2 {
                self.classify_many(scores, has, probs)
            } else {
                self.classify_two(scores, has, probs, *one_class, *all_positive)
            };
        }
    }

    /// One row of more than two classes: adds the base values, writes the
    /// scores and returns the label index.
    #[inline]
    fn classify_many(&self, scores: &mut [f64], has: &mut [bool], probs: &mut [f64]) -> usize {
        for (c, b) in self.base.iter().enumerate() {
            scores[c] = if has[c] { self.add(scores[c], *b) } else { *b };
            has[c] = true;
        }
        // The first largest score among classes that got one.
        let mut best: Option<usize> = None;
        for c in 0..scores.len() {
            if has[c] && best.is_none_or(|b| scores[c] > scores[b]) {
                best = Some(c);
            }
        }
        self.transform_all(scores, probs);
        best.unwrap_or(0)
    }

    /// One row of two classes, by onnxruntime's rules; returns the label index.
    #[inline]
    fn classify_two(
        &self,
        scores: &mut [f64],
        has: &mut [bool],
        probs: &mut [f64],
        one_class: bool,
        all_positive: bool,
    ) -> usize {
        let mut write = -1;
        let mut len = 2;
        match self.base.len() {
            2 => {
                if has[1] {
                    scores[1] = self.add(self.base[1], scores[0]);
                    scores[0] = -scores[1];
                } else {
                    scores[1] = self.add(scores[1], self.base[1]);
                    scores[0] = self.add(scores[0], self.base[0]);
                }
                has[1] = true;
            }
            1 => {
                scores[0] = self.add(scores[0], self.base[0]);
                if !has[1] {
                    len = 1;
                }
            }
            _ => {
                write = 3;
                if !has[1] {
                    len = 1;
                }
            }
        }
        let positive = if len == 2 && has[1] {
            scores[1]
        } else if has[0] {
            scores[0]
        } else {
            0.0
        };
        let threshold = if one_class && all_positive { 0.5 } else { 0.0 };
        let label = usize::from(positive > threshold);
        if one_class {
            let (hi, lo) = if all_positive { (0, 1) } else { (2, 3) };
            write = if label == 1 { hi } else { lo };
        }
        if len == 2 {
            self.transform_all(scores, probs);
        } else {
            self.write_one_score(scores[0], write, probs);
        }
        label
    }

    /// Both probabilities from the one score a two-class row kept.
    #[inline]
    fn write_one_score(&self, s: f64, write: i32, probs: &mut [f64]) {
        match write {
            0 | 1 => {
                probs[0] = if self.single { (1.0 - s as f32) as f64 } else { 1.0 - s };
                probs[1] = s;
            }
            _ if self.post == Post::Logistic => {
                probs[0] = self.logistic(-s);
                probs[1] = self.logistic(s);
            }
            _ => {
                probs[0] = -s;
                probs[1] = s;
            }
        }
    }

    fn logistic(&self, v: f64) -> f64 {
        if self.single {
            let e = 1.0 / (1.0 + (-(v as f32).abs()).exp());
            (if v < 0.0 { 1.0 - e } else { e }) as f64
        } else {
            crate::link::sigmoid(v)
        }
    }

    fn transform_all(&self, scores: &[f64], out: &mut [f64]) {
        match self.post {
            Post::None => out.copy_from_slice(scores),
            Post::Logistic => out.iter_mut().zip(scores).for_each(|(o, s)| *o = self.logistic(*s)),
            Post::Softmax | Post::SoftmaxZero => {
                let zero = self.post == Post::SoftmaxZero;
                let m = scores.iter().copied().filter(|s| !zero || *s != 0.0).fold(f64::NEG_INFINITY, f64::max);
                for (o, s) in out.iter_mut().zip(scores) {
                    *o = if zero && *s == 0.0 { 0.0 } else { (s - m).exp() };
                }
                let sum: f64 = out.iter().sum();
                if sum > 0.0 {
                    out.iter_mut().for_each(|o| *o /= sum);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One stump: x0 <= 0.5 → leaf A else leaf B, in the given mode.
    fn stump(mode: &str, threshold: f64, tracks: i64) -> Ensemble {
        Ensemble::new(
            Attributes {
                tree_ids: vec![0, 0, 0],
                node_ids: vec![0, 1, 2],
                features: vec![0, 0, 0],
                thresholds: vec![threshold, 0.0, 0.0],
                modes: vec![mode.into(), "LEAF".into(), "LEAF".into()],
                true_ids: vec![1, 0, 0],
                false_ids: vec![2, 0, 0],
                missing_true: vec![tracks, 0, 0],
                leaf_tree_ids: vec![0, 0],
                leaf_node_ids: vec![1, 2],
                leaf_targets: vec![0, 0],
                leaf_weights: vec![10.0, 20.0],
                base: vec![],
                post: Post::None,
                kind: Kind::Regressor { targets: 1, aggregate: Aggregate::Sum },
            },
            true,
        )
        .unwrap()
    }

    fn run(e: &Ensemble, xs: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; xs.len()];
        e.regress(xs, xs.len(), 1, &mut out);
        out
    }

    #[test]
    fn every_branch_mode_follows_its_comparison_in_f32() {
        let t = 0.1f32 as f64;
        let just_below = (0.1f32).next_down() as f64;
        let xs = [just_below, t, (0.1f32).next_up() as f64, f64::NAN];
        assert_eq!(run(&stump("BRANCH_LEQ", t, 0), &xs), [10.0, 10.0, 20.0, 20.0]);
        assert_eq!(run(&stump("BRANCH_LT", t, 0), &xs), [10.0, 20.0, 20.0, 20.0]);
        assert_eq!(run(&stump("BRANCH_GT", t, 0), &xs), [20.0, 20.0, 10.0, 20.0]);
        assert_eq!(run(&stump("BRANCH_GTE", t, 0), &xs), [20.0, 10.0, 10.0, 20.0]);
        assert_eq!(run(&stump("BRANCH_LEQ", t, 1), &xs)[3], 10.0, "missing follows the true branch");
        assert_eq!(run(&stump("BRANCH_GT", t, 1), &xs)[3], 10.0);
    }

    /// Split nodes only (no leaves): for structure errors.
    fn splits(node_ids: Vec<i64>, mode: &str, true_ids: Vec<i64>, false_ids: Vec<i64>) -> Attributes {
        let n = node_ids.len();
        Attributes {
            tree_ids: vec![0; n],
            node_ids,
            features: vec![0; n],
            thresholds: vec![0.0; n],
            modes: vec![mode.into(); n],
            true_ids,
            false_ids,
            missing_true: vec![],
            leaf_tree_ids: vec![],
            leaf_node_ids: vec![],
            leaf_targets: vec![],
            leaf_weights: vec![],
            base: vec![],
            post: Post::None,
            kind: Kind::Regressor { targets: 1, aggregate: Aggregate::Sum },
        }
    }

    #[test]
    fn broken_trees_are_refused() {
        let e = Ensemble::new(splits(vec![0, 1], "BRANCH_LEQ", vec![1, 0], vec![1, 0]), true).unwrap_err();
        assert!(e.contains("roots"), "{e}");
        let e = Ensemble::new(splits(vec![0], "BRANCH_EQ", vec![0], vec![0]), true).unwrap_err();
        assert!(e.contains("roots") || e.contains("BRANCH_EQ"), "{e}");
    }
}
