//! Decision trees as flat arrays of nodes, and their prediction: the same
//! code evaluates Flywheel's own boosted trees and forests and the tree
//! ensembles read from ONNX files (`crate::onnx::trees`).

pub mod binning;
pub mod forest;
pub mod gbt;
mod grow;

use serde::{Deserialize, Serialize};

/// One node: a split (`feature`, `threshold`) or, when `left == 0`, a
/// leaf with `value`. Rows with `x[feature] <= threshold` go left; a
/// missing value (NaN) goes left when `missing_left`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub feature: u32,
    pub threshold: f64,
    pub left: u32,
    pub right: u32,
    pub missing_left: bool,
    pub value: f64,
}

impl Node {
    pub fn leaf(value: f64) -> Self {
        Node { feature: 0, threshold: 0.0, left: 0, right: 0, missing_left: false, value }
    }
    pub fn is_leaf(&self) -> bool {
        self.left == 0
    }
}

/// A tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    #[inline]
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        self.nodes[self.leaf(row)].value
    }

    /// The index of the leaf `row` reaches.
    #[inline]
    pub fn leaf(&self, row: &[f64]) -> usize {
        let mut i = 0usize;
        loop {
            let n = &self.nodes[i];
            if n.is_leaf() {
                return i;
            }
            let x = row[n.feature as usize];
            let left = if x.is_nan() { n.missing_left } else { x <= n.threshold };
            i = if left { n.left } else { n.right } as usize;
        }
    }

    pub fn leaves(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_leaf()).count()
    }

    /// Checks that children point inside the tree, forward (no cycles),
    /// and features inside `width`: a corrupted file fails here, not in a loop.
    pub fn check(&self, width: usize) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("a tree without nodes".into());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.is_leaf() {
                continue;
            }
            let (l, r) = (n.left as usize, n.right as usize);
            if l <= i || r <= i || l >= self.nodes.len() || r >= self.nodes.len() {
                return Err(format!("node {i} points to nodes {l} and {r}, outside the tree or backwards"));
            }
            if n.feature as usize >= width {
                return Err(format!("node {i} splits on feature {} of {width}", n.feature));
            }
        }
        Ok(())
    }
}
