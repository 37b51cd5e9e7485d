//! What each step waits for beyond the steps it reads from: the ordering
//! that makes data validation stop training and publishing the last act of
//! a sound run.
//!
//! - A **gate** (data validation) is waited for by every step outside the
//!   validation phase — the gates and everything they read from, directly
//!   or not. Nothing inside that phase waits for a gate, so two validations
//!   on separate branches cannot wait for each other.
//! - A **publisher** waits for every step that is not a publisher, and runs
//!   only if all of them succeeded.
//!
//! Steps that read from a publisher (directly or not) come after
//! publication: no publisher or gate waits for them, and they wait for no
//! gate, which keeps the waits acyclic by construction (a property test
//! checks it on random pipelines).

use flywheel_core::Role;

/// Why a step waits for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// It reads the other's output.
    Reads,
    /// The other is a data validation gate.
    Gate,
    /// It publishes, and the other is part of the run it publishes.
    Publish,
}

/// For each step (in topological order, `deps[i]` the steps it reads
/// from, `roles[i]` its component's role): the steps it waits for, and why.
pub fn waits(deps: &[Vec<usize>], roles: &[Role]) -> Vec<Vec<(usize, Wait)>> {
    let n = deps.len();
    let in_validation_phase = validation_phase(deps, roles);
    let after_publishing = after_publishing(deps, roles);
    (0..n)
        .map(|i| {
            let mut w: Vec<(usize, Wait)> = deps[i].iter().map(|&d| (d, Wait::Reads)).collect();
            let mut add = |j: usize, why: Wait| {
                if j != i && !w.iter().any(|(k, _)| *k == j) {
                    w.push((j, why));
                }
            };
            if roles[i] == Role::Publisher {
                (0..n).filter(|&j| !after_publishing[j]).for_each(|j| add(j, Wait::Publish));
            } else if !in_validation_phase[i] && !after_publishing[i] {
                (0..n).filter(|&j| roles[j] == Role::Gate && !after_publishing[j]).for_each(|j| add(j, Wait::Gate));
            }
            w
        })
        .collect()
}

/// Publishers and every step that reads from one, transitively.
fn after_publishing(deps: &[Vec<usize>], roles: &[Role]) -> Vec<bool> {
    let mut after = vec![false; deps.len()];
    for i in 0..deps.len() {
        after[i] = roles[i] == Role::Publisher || deps[i].iter().any(|&d| after[d]);
    }
    after
}

/// Gates and every step they read from, transitively.
fn validation_phase(deps: &[Vec<usize>], roles: &[Role]) -> Vec<bool> {
    let mut inside: Vec<bool> = roles.iter().map(|r| *r == Role::Gate).collect();
    // Steps are in topological order, so walking backwards visits a step
    // after everything that depends on it.
    for i in (0..deps.len()).rev() {
        if inside[i] {
            for &d in &deps[i] {
                inside[d] = true;
            }
        }
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::{Gate as G, Ordinary as O, Publisher as P};
    use proptest::prelude::*;

    fn waited(w: &[(usize, Wait)]) -> Vec<usize> {
        let mut v: Vec<usize> = w.iter().map(|(j, _)| *j).collect();
        v.sort();
        v
    }

    #[test]
    fn training_waits_for_validation_and_push_for_everything() {
        // 0 ingest, 1 stats(0), 2 schema(1), 3 validate(0,2), 4 train(0), 5 bless(4,0), 6 push(4,5)
        let deps = vec![vec![], vec![0], vec![1], vec![0, 2], vec![0], vec![4, 0], vec![4, 5]];
        let roles = [O, O, O, G, O, O, P];
        let w = waits(&deps, &roles);
        assert_eq!(waited(&w[1]), vec![0], "statistics feeds validation and does not wait for it");
        assert_eq!(waited(&w[4]), vec![0, 3], "train waits for validate");
        assert_eq!(waited(&w[5]), vec![0, 3, 4]);
        assert_eq!(waited(&w[6]), vec![0, 1, 2, 3, 4, 5]);
        assert!(w[4].contains(&(3, Wait::Gate)));
        assert!(w[6].contains(&(2, Wait::Publish)));
    }

    #[test]
    fn validations_on_separate_branches_do_not_wait_for_each_other() {
        // 0 a, 1 validate(0), 2 b, 3 validate(2), 4 train(0, 2)
        let deps = vec![vec![], vec![0], vec![], vec![2], vec![0, 2]];
        let w = waits(&deps, &[O, G, O, G, O]);
        assert!(w[0].is_empty() && w[2].is_empty());
        assert_eq!(waited(&w[4]), vec![0, 1, 2, 3]);
    }

    /// Random DAGs in topological order: edges only point backwards.
    fn dag() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<Role>)> {
        (1usize..12).prop_flat_map(|n| {
            let deps = (0..n)
                .map(|i| proptest::collection::vec(0..i.max(1), 0..3.min(i + 1)))
                .collect::<Vec<_>>()
                .prop_map(move |mut d| {
                    for (i, ds) in d.iter_mut().enumerate() {
                        ds.retain(|&x| x < i);
                        ds.sort();
                        ds.dedup();
                    }
                    d
                });
            let roles = proptest::collection::vec(prop_oneof![4 => Just(O), 1 => Just(G), 1 => Just(P)], n);
            (deps, roles)
        })
    }

    proptest! {
        #[test]
        fn waits_never_form_a_cycle_and_publishers_come_last((deps, roles) in dag()) {
            let w = waits(&deps, &roles);
            let plain: Vec<Vec<usize>> = w.iter().map(|v| v.iter().map(|(j, _)| *j).collect()).collect();
            prop_assert!(crate_topo(&plain), "the waits must stay acyclic");
            let after = after_publishing(&deps, &roles);
            for (i, r) in roles.iter().enumerate() {
                if *r == P {
                    for j in (0..roles.len()).filter(|&j| !after[j]) {
                        prop_assert!(plain[i].contains(&j), "publisher {i} must wait for {j}");
                    }
                }
            }
        }
    }

    fn crate_topo(deps: &[Vec<usize>]) -> bool {
        let n = deps.len();
        let mut state = vec![0u8; n];
        fn visit(i: usize, deps: &[Vec<usize>], state: &mut [u8]) -> bool {
            match state[i] {
                1 => return false,
                2 => return true,
                _ => {}
            }
            state[i] = 1;
            for &d in &deps[i] {
                if !visit(d, deps, state) {
                    return false;
                }
            }
            state[i] = 2;
            true
        }
        (0..n).all(|i| visit(i, deps, &mut state))
    }
}
