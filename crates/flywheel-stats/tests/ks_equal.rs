//! The two-sample KS test on samples of equal size (monitoring compares
//! windows of the same number of rows) against scipy's
//! `ks_2samp(method="exact")` (`fixtures/ks_equal.json`, made by
//! `fixtures/make_ks_equal.py`).

use flywheel_stats::ks::ks_2samp;
use serde_json::Value;

#[test]
fn equal_sizes_give_scipys_exact_p_value() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/ks_equal.json")).unwrap();
    for case in fixture["cases"].as_array().unwrap() {
        let sorted = |k: &str| {
            let mut v: Vec<f64> = case[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let (d, p) = ks_2samp(&sorted("a"), &sorted("b"));
        let (want_d, want_p) = (case["statistic"].as_f64().unwrap(), case["pvalue"].as_f64().unwrap());
        let n = &case["n"];
        assert!((d - want_d).abs() < 1e-12, "n {n}: D {d} vs scipy's {want_d}");
        assert!((p - want_p).abs() <= 1e-9 * want_p.max(1e-300), "n {n}: p {p} vs scipy's {want_p}");
    }
}
