//! A reference kept without its rows gives the drift the rows give: exactly
//! for categories and for numbers with few distinct values, within the KLL
//! sketch's rank error for the rest; the weighted Wasserstein distance
//! against scipy's (`fixtures/weighted_wasserstein.json`, made by
//! `fixtures/make_weighted.py`).

use flywheel_stats::profile::{ColumnProfile, ValueType};
use flywheel_stats::reference::{ColumnReference, weighted_wasserstein};
use flywheel_stats::{Method, Sample, column_drift};
use serde_json::Value;

fn profile(ty: ValueType, values: &[f64]) -> ColumnProfile {
    let mut p = ColumnProfile::new(ty);
    p.add_f64s(values);
    p
}

/// A deterministic spread: `n` values, `distinct` of them at most.
fn spread(n: usize, distinct: usize, shift: f64) -> Vec<f64> {
    (0..n).map(|i| ((i * 7919) % distinct) as f64 / 10.0 + shift).collect()
}

#[test]
fn weighted_wasserstein_is_scipys() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/weighted_wasserstein.json")).unwrap();
    for case in fixture["cases"].as_array().unwrap() {
        let floats =
            |k: &str| -> Vec<f64> { case[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
        let weights: Vec<u64> = case["u_weights"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        let mut u: Vec<(f64, u64)> = floats("u").into_iter().zip(weights).collect();
        u.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut v: Vec<(f64, u64)> = floats("v").into_iter().map(|x| (x, 1)).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let want = case["distance"].as_f64().unwrap();
        let got = weighted_wasserstein(&u, &v);
        assert!((got - want).abs() <= 1e-12 * want.max(1.0), "{got} vs scipy's {want}");

        // As a reference of counts (more than 1,000 values): normed by its deviation.
        let n: u64 = u.iter().map(|x| x.1).sum();
        if n > 1000 {
            let r = ColumnReference::Counts { values: u.clone() };
            let d = r.drift(Sample::Numeric(floats("v")), None, None).unwrap();
            let normed = case["normed"].as_f64().unwrap();
            assert_eq!(d.method, Method::Wasserstein);
            assert!((d.score - normed).abs() <= 1e-9 * normed.max(1.0), "{} vs {normed}", d.score);
        }
    }
}

#[test]
fn counts_give_what_the_values_give() {
    for (n, distinct, shift) in [(800, 40, 0.3), (5000, 40, 0.3), (5000, 3, 0.0), (5000, 3, 0.1), (3000, 900, 2.0)] {
        let reference = spread(n, distinct, 0.0);
        let current = spread(700, distinct, shift);
        let r = ColumnReference::from_profile(&profile(ValueType::Float, &reference));
        assert!(matches!(r, ColumnReference::Counts { .. }), "{n} values, {distinct} distinct");
        assert_eq!(r.count(), n);
        let kept = r.drift(Sample::Numeric(current.clone()), None, None).unwrap();
        let whole =
            column_drift(Sample::Numeric(reference.clone()), Sample::Numeric(current.clone()), None, None).unwrap();
        assert_eq!((kept.kind, kept.method, kept.drift), (whole.kind, whole.method, whole.drift), "{n}/{distinct}");
        assert!((kept.score - whole.score).abs() <= 1e-9, "{n}/{distinct}: {} vs {}", kept.score, whole.score);
        // A chosen method: the values again.
        let psi = r.drift(Sample::Numeric(current.clone()), Some(Method::Psi), None).unwrap();
        let psi_whole =
            column_drift(Sample::Numeric(reference), Sample::Numeric(current), Some(Method::Psi), None).unwrap();
        assert_eq!(psi.score, psi_whole.score);
    }
}

#[test]
fn a_sketch_gives_wasserstein_within_its_rank_error() {
    let reference: Vec<f64> = (0..200_000).map(|i| ((i as f64) * 0.618_033_988_75).fract() * 10.0).collect();
    let r = ColumnReference::from_profile(&profile(ValueType::Float, &reference));
    let ColumnReference::Sketch { count, .. } = &r else { panic!("200,000 distinct values are sketched") };
    assert_eq!(*count, 200_000);
    assert!(serde_json::to_string(&r).unwrap().len() < 100_000, "a sketch is small");
    for shift in [0.0, 0.3, 1.0, 3.0] {
        let current: Vec<f64> = (0..5000).map(|i| ((i as f64) * 0.414_213_562).fract() * 10.0 + shift).collect();
        let kept = r.drift(Sample::Numeric(current.clone()), None, None).unwrap();
        let whole = column_drift(Sample::Numeric(reference.clone()), Sample::Numeric(current), None, None).unwrap();
        assert_eq!(kept.method, Method::Wasserstein);
        // The deviation of uniform values on [0, 10) is 2.89: a rank error of
        // 1.65% moves the normed distance by at most about 0.06.
        assert!((kept.score - whole.score).abs() < 0.02, "shift {shift}: {} vs {}", kept.score, whole.score);
        assert_eq!(kept.drift, whole.drift, "shift {shift}");
    }
    let refused = r.drift(Sample::Numeric(vec![1.0]), Some(Method::Ks), None).unwrap_err();
    assert!(refused.to_string().contains("needs the reference's values"), "{refused}");
}

#[test]
fn categories_give_what_the_values_give_and_survive_json() {
    let mut p = ColumnProfile::new(ValueType::String);
    let texts: Vec<String> = (0..3000).map(|i| ["a", "b", "c", "d"][i % 4].to_string()).collect();
    p.add_strs(texts.iter().map(String::as_str));
    let r = ColumnReference::from_profile(&p);
    let r: ColumnReference = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    let current = Sample::categories((0..500).map(|i| ["a", "a", "b", "e"][i % 4]));
    let kept = r.drift(current.clone(), None, None).unwrap();
    let whole = column_drift(Sample::categories(&texts), current, None, None).unwrap();
    assert_eq!((kept.method, kept.score, kept.drift), (whole.method, whole.score, whole.drift));
}
