//! DAG logic: topological order and cycle detection over step indices.

/// Orders nodes so that every node comes after all of its dependencies.
/// `deps[i]` lists the nodes `i` depends on. Ties keep index order, so the
/// result is deterministic. On a cycle, returns one cycle as a path of nodes
/// whose last element depends on the first.
pub fn topo_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = deps.len();
    let mut indegree = vec![0usize; n];
    let mut dependents = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            indegree[i] += 1;
            dependents[d].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &j in &dependents[i] {
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.insert(j);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    Err(find_cycle(deps, &indegree))
}

/// Walks dependencies among the nodes left over by Kahn's algorithm until a
/// node repeats; every leftover node has a leftover dependency, so it must.
fn find_cycle(deps: &[Vec<usize>], indegree: &[usize]) -> Vec<usize> {
    let stuck = |i: usize| indegree[i] > 0;
    let Some(start) = (0..deps.len()).find(|&i| stuck(i)) else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut seen = vec![usize::MAX; deps.len()];
    seen[start] = 0;
    let mut cur = start;
    loop {
        let Some(&next) = deps[cur].iter().filter(|&&d| stuck(d)).min() else {
            return path;
        };
        if seen[next] != usize::MAX {
            let mut cycle = path[seen[next]..].to_vec();
            // Present it in the direction data flows (producer before
            // consumer), starting from the earliest node.
            cycle.reverse();
            if let Some(first) = cycle.iter().enumerate().min_by_key(|(_, n)| **n).map(|(i, _)| i) {
                cycle.rotate_left(first);
            }
            return cycle;
        }
        seen[next] = path.len();
        path.push(next);
        cur = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn orders_a_diamond() {
        let deps = vec![vec![], vec![0], vec![0], vec![1, 2]];
        assert_eq!(topo_order(&deps).unwrap(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn reports_a_cycle() {
        // 0 <- 1 <- 2 <- 1 : 1 and 2 form a cycle.
        let deps = vec![vec![], vec![0, 2], vec![1]];
        let mut cycle = topo_order(&deps).unwrap_err();
        cycle.sort();
        assert_eq!(cycle, vec![1, 2]);
    }

    #[test]
    fn self_loop_is_a_cycle() {
        assert_eq!(topo_order(&[vec![0]]).unwrap_err(), vec![0]);
    }

    fn arb_graph() -> impl Strategy<Value = Vec<Vec<usize>>> {
        (1usize..20).prop_flat_map(|n| proptest::collection::vec(proptest::collection::vec(0..n, 0..4), n))
    }

    proptest! {
        #[test]
        fn order_respects_every_edge_or_cycle_is_real(deps in arb_graph()) {
            match topo_order(&deps) {
                Ok(order) => {
                    prop_assert_eq!(order.len(), deps.len());
                    let mut pos = vec![0; deps.len()];
                    for (p, &i) in order.iter().enumerate() { pos[i] = p; }
                    for (i, ds) in deps.iter().enumerate() {
                        for &d in ds { prop_assert!(pos[d] < pos[i]); }
                    }
                }
                Err(cycle) => {
                    prop_assert!(!cycle.is_empty());
                    // consecutive elements: each depends on the one before it
                    for w in 0..cycle.len() {
                        let a = cycle[w];
                        let b = cycle[(w + 1) % cycle.len()];
                        prop_assert!(deps[b].contains(&a), "{b} should depend on {a}: {cycle:?}");
                    }
                }
            }
        }

        #[test]
        fn acyclic_graphs_always_order(n in 1usize..30, seed in any::<u64>()) {
            // edges only from lower to higher index: never a cycle
            let mut s = seed;
            let deps: Vec<Vec<usize>> = (0..n).map(|i| {
                (0..i).filter(|_| { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); s >> 62 == 0 }).collect()
            }).collect();
            prop_assert!(topo_order(&deps).is_ok());
        }
    }
}
