//! Grows one regression tree on gradients and hessians over binned
//! features, leaf-wise (best gain first) as LightGBM and scikit-learn's
//! histogram boosting do. Each node keeps a histogram per feature (sum of
//! gradients, hessians and rows per bin); a split computes the smaller
//! child's histogram and gets the larger one by subtraction.

use super::binning::{Binned, Binner, MISSING_BIN};
use super::{Node, Tree};
use crate::Stop;
use std::collections::BinaryHeap;

#[derive(Debug, Clone, Copy)]
pub struct GrowParams {
    /// `usize::MAX`: grow until leaves are pure or too small (then nodes
    /// are split depth first, which keeps few histograms alive).
    pub max_leaf_nodes: usize,
    pub max_depth: Option<usize>,
    pub min_samples_leaf: usize,
    pub l2: f64,
    pub shrinkage: f64,
    /// Features drawn at random for each split (random forests); `None`: all.
    pub max_features: Option<usize>,
    pub seed: u64,
    /// Threads for building one histogram (1 when trees grow in parallel).
    pub threads: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    g: f64,
    h: f64,
    n: u32,
}

impl Bin {
    fn minus(self, o: Bin) -> Bin {
        Bin { g: self.g - o.g, h: self.h - o.h, n: self.n - o.n }
    }
}

const BINS: usize = 256;
/// scikit-learn's `min_hessian_to_split`.
const MIN_HESSIAN: f64 = 1e-3;

#[derive(Debug, Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    bin: u8,
    missing_left: bool,
    left: Bin,
}

struct Leaf {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    hist: Vec<Bin>,
    total: Bin,
    split: Option<Split>,
}

struct Candidate {
    gain: f64,
    leaf: usize,
}

impl PartialEq for Candidate {
    fn eq(&self, o: &Self) -> bool {
        self.gain == o.gain && self.leaf == o.leaf
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Candidate {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Highest gain first; ties by creation order, for reproducibility.
        self.gain.total_cmp(&o.gain).then(o.leaf.cmp(&self.leaf))
    }
}

fn score(g: f64, h: f64, l2: f64) -> f64 {
    g * g / (h + l2)
}

/// Adds the rows in `rows` to `hist` (features × 256 bins). Row by row:
/// the features' histograms (20 × 6 KB for 20 features) stay in cache.
/// Each block of rows is first touched by a short loop (their gradients
/// copied, their bins' cache lines loaded) that keeps many cache misses in
/// flight; the counting loop, long per row, would wait on each in turn.
fn fill_histogram(binned: &Binned, rows: &[u32], gh: &[[f64; 2]], hist: &mut [Bin]) {
    const BLOCK: usize = 64;
    let (hist, _) = hist.as_chunks_mut::<BINS>();
    let mut grads = [[0.0; 2]; BLOCK];
    let mut touched = 0u8;
    for block in rows.chunks(BLOCK) {
        for (&r, g) in block.iter().zip(grads.iter_mut()) {
            let r = r as usize;
            *g = gh[r];
            let row = binned.row(r);
            touched ^= row.first().copied().unwrap_or(0) ^ row.last().copied().unwrap_or(0);
        }
        for (&r, &[gi, hi]) in block.iter().zip(&grads) {
            for (slot, &b) in hist.iter_mut().zip(binned.row(r as usize)) {
                let bin = &mut slot[b as usize];
                bin.g += gi;
                bin.h += hi;
                bin.n += 1;
            }
        }
    }
    // Keeps the touching loads from being optimized away.
    std::hint::black_box(touched);
}

/// Fills `hist` from the rows in `rows`. A large node is cut into
/// `HISTOGRAM_SHARES` shares of rows, each filled into its own histogram
/// (on the cores there are, when `threads` > 1) and summed in share order:
/// the same sums, to the last bit, whatever the machine.
fn build_histogram(binned: &Binned, rows: &[u32], gh: &[[f64; 2]], hist: &mut [Bin], threads: usize) {
    hist.fill(Bin::default());
    if rows.len() * binned.cols < 100_000 {
        fill_histogram(binned, rows, gh, hist);
        return;
    }
    let share = |a: usize, b: usize| {
        let mut part = vec![Bin::default(); hist.len()];
        fill_histogram(binned, &rows[a..b], gh, &mut part);
        part
    };
    let parts = crate::par::shares(rows.len(), HISTOGRAM_SHARES, threads > 1, share);
    for part in &parts {
        for (a, b) in hist.iter_mut().zip(part) {
            a.g += b.g;
            a.h += b.h;
            a.n += b.n;
        }
    }
}

/// Shares of a large node's rows, each with its own histogram.
const HISTOGRAM_SHARES: usize = 8;

/// The features a split may use: all, or `k` drawn without replacement.
fn draw_features(features: usize, k: Option<usize>, rng: &mut u64) -> Option<Vec<bool>> {
    let k = k.filter(|&k| k < features)?;
    let mut idx: Vec<usize> = (0..features).collect();
    let mut mask = vec![false; features];
    for i in 0..k {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let j = i + (*rng % (features - i) as u64) as usize;
        idx.swap(i, j);
        mask[idx[i]] = true;
    }
    Some(mask)
}

fn best_split(hist: &[Bin], total: Bin, binner: &Binner, p: &GrowParams, rng: &mut u64) -> Option<Split> {
    let parent = score(total.g, total.h, p.l2);
    let min_n = p.min_samples_leaf as u32;
    let mut best: Option<Split> = None;
    let allowed = draw_features(hist.len() / BINS, p.max_features, rng);
    for (j, fh) in hist.chunks(BINS).enumerate() {
        if allowed.as_ref().is_some_and(|a| !a[j]) {
            continue;
        }
        let nb = binner.bins(j);
        let missing = fh[MISSING_BIN as usize];
        let mut acc = Bin::default();
        for (b, x) in fh.iter().enumerate().take(nb.saturating_sub(1)) {
            acc.g += x.g;
            acc.h += x.h;
            acc.n += x.n;
            // Missing values go right, then left (when there are any).
            for missing_left in [false, true] {
                if missing_left && missing.n == 0 {
                    continue;
                }
                let left = if missing_left {
                    Bin { g: acc.g + missing.g, h: acc.h + missing.h, n: acc.n + missing.n }
                } else {
                    acc
                };
                let right = Bin { g: total.g - left.g, h: total.h - left.h, n: total.n - left.n };
                if left.n < min_n || right.n < min_n || left.h < MIN_HESSIAN || right.h < MIN_HESSIAN {
                    continue;
                }
                let gain = score(left.g, left.h, p.l2) + score(right.g, right.h, p.l2) - parent;
                if gain > 1e-12 && best.is_none_or(|s| gain > s.gain) {
                    // Without missing values in training, unseen missing
                    // values follow the larger side (as scikit-learn).
                    let ml = if missing.n == 0 { left.n >= right.n } else { missing_left };
                    best = Some(Split { gain, feature: j, bin: b as u8, missing_left: ml, left });
                }
            }
        }
    }
    best
}

/// Moves the rows going left to the front of `rows` and returns how many
/// there are. Each side keeps its order (ascending), so that later passes
/// read the binned data front to back. Branch-free: each row is written to
/// both sides and the matching cursor advances (a left/right branch is
/// mispredicted half the time).
fn partition(rows: &mut [u32], scratch: &mut Vec<u32>, goes_left: impl Fn(u32) -> bool) -> usize {
    scratch.clear();
    scratch.resize(rows.len(), 0);
    let (mut l, mut r) = (0usize, 0usize);
    for i in 0..rows.len() {
        let row = rows[i];
        let left = goes_left(row);
        rows[l] = row;
        scratch[r] = row;
        l += usize::from(left);
        r += usize::from(!left);
    }
    rows[l..].copy_from_slice(&scratch[..r]);
    l
}

/// A leaf's value and the range of `rows` that reached it.
pub struct LeafRows {
    pub value: f64,
    pub start: usize,
    pub end: usize,
}

/// Grows a tree on the rows listed in `rows` (reordered in place: each
/// leaf's rows end up contiguous, as the returned ranges say, so that the
/// caller updates its predictions without walking the tree). When `stop`
/// asks, the tree is returned unfinished; the caller then discards it.
pub fn grow(
    binned: &Binned,
    binner: &Binner,
    rows: &mut [u32],
    gh: &[[f64; 2]],
    p: &GrowParams,
    stop: Stop,
) -> (Tree, Vec<LeafRows>) {
    let mut hist = vec![Bin::default(); binned.cols * BINS];
    build_histogram(binned, rows, gh, &mut hist, p.threads);
    let total = hist[..BINS].iter().fold(Bin::default(), |a, b| Bin { g: a.g + b.g, h: a.h + b.h, n: a.n + b.n });
    let mut nodes = vec![Node::leaf(0.0)];
    let mut leaves = vec![Leaf { node: 0, start: 0, end: rows.len(), depth: 0, hist, total, split: None }];
    let splittable = |l: &Leaf| p.max_depth.is_none_or(|d| l.depth < d) && l.total.n >= 2 * p.min_samples_leaf as u32;
    let mut rng = p.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    if splittable(&leaves[0]) {
        leaves[0].split = best_split(&leaves[0].hist, total, binner, p, &mut rng);
    }
    let mut frontier = Frontier::new(p.max_leaf_nodes == usize::MAX);
    if let Some(s) = leaves[0].split {
        frontier.push(s.gain, 0);
    }
    let mut count = 1;
    let mut scratch: Vec<u32> = Vec::new();
    // A deep tree on many rows takes seconds: look for a stop at each split.
    while count < p.max_leaf_nodes && !stop.requested() {
        let Some(li) = frontier.pop() else { break };
        let Some(split) = leaves[li].split else { continue };
        let (start, end, depth, node) = (leaves[li].start, leaves[li].end, leaves[li].depth, leaves[li].node);
        let mid = start + partition_by(&split, binned, &mut rows[start..end], &mut scratch);
        let parent_total = leaves[li].total;
        let left_total = split.left;
        let right_total = parent_total.minus(left_total);
        let parent_hist = std::mem::take(&mut leaves[li].hist);
        let (left_hist, right_hist) = child_histograms(binned, rows, gh, p, parent_hist, [start, mid, end]);
        let (l, r) = split_node(&mut nodes, node, &split, binner);
        for (node, range, hist, total) in
            [(l, start..mid, left_hist, left_total), (r, mid..end, right_hist, right_total)]
        {
            let mut leaf =
                Leaf { node, start: range.start, end: range.end, depth: depth + 1, hist, total, split: None };
            if splittable(&leaf) {
                leaf.split = best_split(&leaf.hist, total, binner, p, &mut rng);
            }
            match leaf.split {
                Some(s) => frontier.push(s.gain, leaves.len()),
                None => leaf.hist = Vec::new(),
            }
            leaves.push(leaf);
        }
        leaves[li].split = None;
        count += 1;
    }
    let ranges = leaf_values(&leaves, &mut nodes, p);
    (Tree { nodes }, ranges)
}

/// Puts the rows that `split` sends left first; returns how many.
fn partition_by(split: &Split, binned: &Binned, rows: &mut [u32], scratch: &mut Vec<u32>) -> usize {
    let col = &binned.columns[split.feature];
    let goes_left = |r: u32| {
        let b = col[r as usize];
        if b == MISSING_BIN { split.missing_left } else { b <= split.bin }
    };
    partition(rows, scratch, goes_left)
}

/// The leaves waiting to be split: best gain first when the leaves are
/// limited, depth first otherwise.
struct Frontier {
    depth_first: bool,
    heap: BinaryHeap<Candidate>,
    stack: Vec<usize>,
}

impl Frontier {
    fn new(depth_first: bool) -> Self {
        Frontier { depth_first, heap: BinaryHeap::new(), stack: Vec::new() }
    }

    fn push(&mut self, gain: f64, leaf: usize) {
        if self.depth_first {
            self.stack.push(leaf);
        } else {
            self.heap.push(Candidate { gain, leaf });
        }
    }

    fn pop(&mut self) -> Option<usize> {
        if self.depth_first { self.stack.pop() } else { self.heap.pop().map(|c| c.leaf) }
    }
}

/// The children's histograms after rows `start..end` were partitioned at
/// `mid`: the smaller child's is built, the larger is the parent's minus it.
fn child_histograms(
    binned: &Binned,
    rows: &[u32],
    gh: &[[f64; 2]],
    p: &GrowParams,
    mut large: Vec<Bin>,
    [start, mid, end]: [usize; 3],
) -> (Vec<Bin>, Vec<Bin>) {
    let (small_range, left_is_small) = if mid - start <= end - mid { (start..mid, true) } else { (mid..end, false) };
    let mut small = vec![Bin::default(); binned.cols * BINS];
    build_histogram(binned, &rows[small_range], gh, &mut small, p.threads);
    for (a, b) in large.iter_mut().zip(&small) {
        a.g -= b.g;
        a.h -= b.h;
        a.n -= b.n;
    }
    if left_is_small { (small, large) } else { (large, small) }
}

/// Turns leaf `node` into a split with two new leaves; returns their indices.
fn split_node(nodes: &mut Vec<Node>, node: usize, split: &Split, binner: &Binner) -> (usize, usize) {
    let (l, r) = (nodes.len(), nodes.len() + 1);
    nodes.push(Node::leaf(0.0));
    nodes.push(Node::leaf(0.0));
    nodes[node] = Node {
        feature: split.feature as u32,
        threshold: binner.threshold(split.feature, split.bin),
        left: l as u32,
        right: r as u32,
        missing_left: split.missing_left,
        value: 0.0,
    };
    (l, r)
}

/// Sets each final leaf's value (a shrunk Newton step) and lists its rows.
fn leaf_values(leaves: &[Leaf], nodes: &mut [Node], p: &GrowParams) -> Vec<LeafRows> {
    let mut ranges = Vec::new();
    for leaf in leaves {
        let n = &mut nodes[leaf.node];
        if n.is_leaf() {
            n.value = -p.shrinkage * leaf.total.g / (leaf.total.h + p.l2);
            ranges.push(LeafRows { value: n.value, start: leaf.start, end: leaf.end });
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Matrix;

    #[test]
    fn partition_puts_left_rows_first_and_keeps_both_sides_in_order() {
        let mut rows: Vec<u32> = (0..50).collect();
        let mut scratch = Vec::new();
        let mid = partition(&mut rows, &mut scratch, |r| r % 3 == 0);
        assert_eq!(mid, 17);
        assert_eq!(rows[..mid], (0..50).filter(|r| r % 3 == 0).collect::<Vec<_>>()[..]);
        assert_eq!(rows[mid..], (0..50).filter(|r| r % 3 != 0).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn histograms_built_on_several_threads_equal_one_built_on_one() {
        let (n, cols) = (30_000, 4);
        let data = (0..n * cols).map(|k| ((k * 7919) % 613) as f64).collect();
        let x = Matrix { rows: n, cols, data };
        let binner = Binner::fit(&x, 1);
        let binned = binner.transform(&x);
        // Every other row, as a node's rows would be.
        let rows: Vec<u32> = (0..n as u32).step_by(2).collect();
        let gh: Vec<[f64; 2]> = (0..n).map(|i| [(i % 11) as f64 - 5.0, 1.0 + (i % 3) as f64]).collect();
        let mut one = vec![Bin::default(); cols * BINS];
        let mut many = vec![Bin::default(); cols * BINS];
        build_histogram(&binned, &rows, &gh, &mut one, 1);
        build_histogram(&binned, &rows, &gh, &mut many, 3);
        for (k, (a, b)) in one.iter().zip(&many).enumerate() {
            // Bit for bit: the sums do not depend on the threads.
            assert_eq!((a.n, a.g.to_bits(), a.h.to_bits()), (b.n, b.g.to_bits(), b.h.to_bits()), "bin {k}");
        }
        let counted: u32 = one[..BINS].iter().map(|b| b.n).sum();
        assert_eq!(counted as usize, rows.len());
        // Bin sums agree with a direct count of feature 0.
        for (b, bin) in one[..BINS].iter().enumerate() {
            let direct: f64 =
                rows.iter().filter(|&&r| binned.get(r as usize, 0) as usize == b).map(|&r| gh[r as usize][0]).sum();
            assert!((bin.g - direct).abs() < 1e-9, "bin {b}");
        }
    }
}
