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

/// Windows keep small references that merge: merged, they are the
/// reference of all their values (exact counts while few are distinct, a
/// sketch past that, its count and moments exact); drift from a merged
/// reference is what the values give, within the sketch's rank error.
#[test]
fn windows_merge_into_the_reference_of_their_values() {
    use flywheel_stats::reference::{Limits, WINDOW_LIMITS};
    let limits = Limits { counts: 50, k: 128 };
    let of = |v: &[f64]| ColumnReference::of_numbers(v, limits);
    let json = |r: &ColumnReference| serde_json::to_string(r).unwrap();

    // Few distinct values: the merge is the counts of the whole, exactly.
    let (a, b) = (spread(3000, 20, 0.0), spread(2000, 25, 0.0));
    let whole: Vec<f64> = a.iter().chain(&b).copied().collect();
    let mut merged = of(&a);
    merged.merge(&of(&b), limits).unwrap();
    assert!(matches!(merged, ColumnReference::Counts { .. }));
    assert_eq!(json(&merged), json(&of(&whole)));
    let training = ColumnReference::from_profile(&profile(ValueType::Float, &spread(5000, 30, 0.2)));
    let kept = training.drift_from(&merged, None, None).unwrap();
    let rows = training.drift(Sample::Numeric(whole), None, None).unwrap();
    assert_eq!((kept.score, kept.drift, kept.current_count), (rows.score, rows.drift, 5000), "counts: exact");

    // Past the limit: a sketch, with the count, mean and deviation of the whole.
    let (a, b) = (spread(3000, 40, 0.0), spread(2000, 45, 0.05));
    let whole: Vec<f64> = a.iter().chain(&b).copied().collect();
    let mut merged = of(&a);
    merged.merge(&of(&b), limits).unwrap();
    let ColumnReference::Sketch { count, mean, std_pop, .. } = &merged else { panic!("85 distinct > 50") };
    let m = whole.iter().sum::<f64>() / 5000.0;
    let s = (whole.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 5000.0).sqrt();
    assert_eq!(*count, 5000);
    assert!((mean - m).abs() < 1e-12 && (std_pop - s).abs() < 1e-12, "{mean} {std_pop} vs {m} {s}");

    // Ten windows of continuous values, sketched and merged, against a
    // sketched training reference: the values' drift within 0.03.
    let uniform = |n: usize, step: f64, shift: f64| -> Vec<f64> {
        (0..n).map(|i| ((i as f64) * step).fract() * 10.0 + shift).collect()
    };
    let training = ColumnReference::from_profile(&profile(ValueType::Float, &uniform(200_000, 0.618_033_988_75, 0.0)));
    for shift in [0.0, 1.0, 3.0] {
        let values = uniform(20_000, 0.414_213_562, shift);
        let mut merged: Option<ColumnReference> = None;
        for w in values.chunks(2000) {
            let r = ColumnReference::of_numbers(w, WINDOW_LIMITS);
            assert!(json(&r).len() < 12_000, "a window's sketch is small: {}", json(&r).len());
            match &mut merged {
                Some(m) => m.merge(&r, WINDOW_LIMITS).unwrap(),
                None => merged = Some(r),
            }
        }
        let merged = merged.unwrap();
        let kept = training.drift_from(&merged, None, None).unwrap();
        let rows = training.drift(Sample::Numeric(values), None, None).unwrap();
        assert_eq!((kept.method, kept.current_count), (Method::Wasserstein, 20_000));
        assert!((kept.score - rows.score).abs() < 0.03, "shift {shift}: {} vs {}", kept.score, rows.score);
        assert_eq!(kept.drift, rows.drift, "shift {shift}");
    }

    // A small reference (800 values) takes Kolmogorov–Smirnov: D from the
    // merged sketch within its rank error, the verdict the values give.
    let small = ColumnReference::from_profile(&profile(ValueType::Float, &uniform(800, 0.618_033_988_75, 0.0)));
    for shift in [0.0, 2.0] {
        let values = uniform(6000, 0.414_213_562, shift);
        let mut merged = ColumnReference::of_numbers(&values[..3000], WINDOW_LIMITS);
        merged.merge(&ColumnReference::of_numbers(&values[3000..], WINDOW_LIMITS), WINDOW_LIMITS).unwrap();
        let kept = small.drift_from(&merged, None, None).unwrap();
        let rows = small.drift(Sample::Numeric(values), None, None).unwrap();
        assert_eq!((kept.method, rows.method), (Method::Ks, Method::Ks));
        let (d, want) = (kept.statistic.unwrap(), rows.statistic.unwrap());
        assert!((d - want).abs() < 0.03, "shift {shift}: D {d} vs {want}");
        assert_eq!(kept.drift, rows.drift, "shift {shift}: p {} vs {}", kept.score, rows.score);
    }

    // Texts add up; texts and numbers do not.
    let mut texts = ColumnReference::of_texts(["a", "b", "a"]);
    texts.merge(&ColumnReference::of_texts(["b", "c"]), limits).unwrap();
    assert_eq!(json(&texts), json(&ColumnReference::of_texts(["a", "b", "a", "b", "c"])));
    assert!(texts.merge(&of(&[1.0]), limits).is_err());
}
