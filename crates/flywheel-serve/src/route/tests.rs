use super::*;
use crate::served::test_served;
use proptest::prelude::*;

fn route(weights: &[u32]) -> Route {
    let split = Split {
        name: "m".into(),
        arms: weights.iter().enumerate().map(|(i, w)| (Selector::Alias(format!("a{i}")), *w)).collect(),
        shadow: None,
    };
    let mut route = Route::empty(split);
    for (i, arm) in route.arms.iter_mut().enumerate() {
        arm.served = Some(Arc::new(test_served(i as i64 + 1, &format!("m@a{i}"))));
    }
    route
}

#[test]
fn a_split_needs_a_weight_and_distinct_references() {
    let sel = |a: &str| Selector::Alias(a.into());
    let split = |arms: Vec<(Selector, u32)>, shadow| Split { name: "m".into(), arms, shadow };
    assert!(split(vec![(sel("p"), 0)], None).problem().unwrap().contains("weight above 0"));
    assert!(split(vec![(sel("p"), 1), (sel("p"), 1)], None).problem().unwrap().contains("`m@p` appears twice"));
    assert!(split(vec![(sel("p"), 1)], Some(sel("p"))).problem().unwrap().contains("twice"));
    assert!(split(vec![(Selector::Latest, 1)], None).problem().unwrap().contains("m@production"));
    let many = (0..=MAX_ARMS).map(|i| (sel(&format!("a{i}")), 1)).collect();
    assert!(split(many, None).problem().unwrap().contains("16 at most"));
    let good = split(vec![(sel("production"), 90), (Selector::Version(3), 10)], Some(sel("challenger")));
    assert_eq!(good.problem(), None);
    assert_eq!(good.to_string(), "m@production:90 m@3:10 m@challenger:shadow");
}

proptest! {
    #[test]
    fn the_same_key_lands_on_the_same_arm(weights in prop::collection::vec(0u32..50, 1..5), key in ".{0,20}", t1: u64, t2: u64) {
        let r = route(&weights);
        let a = r.pick(Some(key.as_bytes()), t1).map(|a| a.reference.clone());
        let b = r.pick(Some(key.as_bytes()), t2).map(|a| a.reference.clone());
        prop_assert_eq!(a.clone(), b);
        prop_assert_eq!(a.is_some(), weights.iter().any(|w| *w > 0));
    }

    #[test]
    fn an_arm_without_weight_or_version_gets_nothing(weights in prop::collection::vec(0u32..5, 1..5), unloaded in 0usize..5, ticket: u64) {
        let mut r = route(&weights);
        if let Some(arm) = r.arms.get_mut(unloaded) { arm.served = None; }
        if let Some(arm) = r.pick(None, ticket) {
            prop_assert!(arm.weight > 0 && arm.served.is_some());
        }
    }
}

#[test]
fn tickets_share_traffic_by_weight() {
    let r = route(&[70, 20, 10]);
    let mut counts = [0usize; 3];
    for t in 0..10_000u64 {
        let v = r.pick(None, t).unwrap().served.as_ref().unwrap().version;
        counts[v as usize - 1] += 1;
    }
    for (got, want) in counts.iter().zip([7000, 2000, 1000]) {
        assert!(got.abs_diff(want) < 300, "{counts:?}");
    }
}
