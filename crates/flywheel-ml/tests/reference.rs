//! The linear trainers against scikit-learn fits on samples of the real
//! datasets (`tests/fixtures/linear.json`, made by
//! `tests/fixtures/make_reference.py`).

use flywheel_ml::optimize::Settings;
use flywheel_ml::transform::Matrix;
use flywheel_ml::{Stop, linear};
use serde_json::Value;

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/linear.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn matrix(v: &Value) -> Matrix {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
    Matrix { rows: rows.len(), cols: rows[0].len(), data: rows.concat() }
}

fn floats(v: &Value) -> Vec<f64> {
    serde_json::from_value(v.clone()).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: {g} vs scikit-learn {w}");
    }
}

#[test]
fn least_squares_ridge_and_lasso_match_scikit_learn() {
    let f = fixture();
    let x = matrix(&f["regression"]["x"]);
    let y = floats(&f["regression"]["y"]);
    for (name, alpha) in [("linear", 0.0), ("ridge", 10.0)] {
        let (w, b) = linear::least_squares(&x, &y, alpha, None, &[], Stop::NEVER).unwrap();
        assert_close(&w, &floats(&f["fits"][name]["coef"][0]), 1e-8, name);
        assert_close(&[b], &floats(&f["fits"][name]["intercept"]), 1e-8, name);
    }
    let (w, b, _) = linear::lasso(&x, &y, 5.0, 100_000, 1e-10, &[], Stop::NEVER).unwrap();
    assert_close(&w, &floats(&f["fits"]["lasso"]["coef"][0]), 1e-5, "lasso");
    assert_close(&[b], &floats(&f["fits"]["lasso"]["intercept"]), 1e-5, "lasso");
}

fn labels(v: &Value) -> (Vec<usize>, usize) {
    let raw: Vec<i64> = serde_json::from_value(v.clone()).unwrap();
    let mut classes = raw.clone();
    classes.sort();
    classes.dedup();
    (raw.iter().map(|c| classes.binary_search(c).unwrap()).collect(), classes.len())
}

#[test]
fn logistic_regression_matches_scikit_learn_binary_balanced_and_multinomial() {
    let f = fixture();
    let tight = Settings { max_iterations: 1000, gtol: 1e-9, ftol: 0.0, memory: 10 };
    for (case, data, c, balanced) in [
        ("logistic_binary", "binary", 0.5, false),
        ("logistic_balanced", "binary", 1.0, true),
        ("logistic_multinomial", "multiclass", 2.0, false),
    ] {
        let x = matrix(&f[data]["x"]);
        let (y, k) = labels(&f[data]["y"]);
        let mut counts = vec![0.0; k];
        y.iter().for_each(|&c| counts[c] += 1.0);
        let sw: Vec<f64> =
            y.iter().map(|&c| if balanced { y.len() as f64 / (k as f64 * counts[c]) } else { 1.0 }).collect();
        let fit = linear::logistic(&x, &y, k, c, &sw, tight, &[], Stop::NEVER).unwrap();
        assert!(fit.converged, "{case}");
        let want = &f["fits"][case];
        for (r, row) in fit.coef.iter().enumerate() {
            assert_close(row, &floats(&want["coef"][r]), 1e-5, case);
        }
        assert_close(&fit.intercept, &floats(&want["intercept"]), 1e-5, case);
        // Probabilities through the model format's prediction path.
        let classes: Vec<String> = serde_json::from_value(want["classes"].clone()).unwrap();
        let mut frame = flywheel_ml::Frame::new();
        let names: Vec<String> = (0..x.cols).map(|j| format!("x{j}")).collect();
        for (j, n) in names.iter().enumerate() {
            frame.push(n.clone(), flywheel_ml::Column::Num(x.column(j))).unwrap();
        }
        let identity: std::collections::BTreeMap<String, String> =
            names.iter().map(|n| (n.clone(), "clip(-1e300, 1e300)".to_string())).collect();
        let t =
            flywheel_ml::transform::fit(&frame, &names, &identity, flywheel_ml::transform::LINEAR_DEFAULTS).unwrap();
        let model = flywheel_ml::Model::new(
            flywheel_ml::Task::Classification,
            "y".into(),
            classes,
            t,
            flywheel_ml::Estimator::Logistic { coef: fit.coef.clone(), intercept: fit.intercept.clone() },
            Value::Null,
        )
        .unwrap();
        let flywheel_ml::Prediction::Classes { probabilities, .. } = model.predict(&frame).unwrap() else {
            panic!("{case}: not a classification")
        };
        let want_p: Vec<Vec<f64>> = serde_json::from_value(want["proba"].clone()).unwrap();
        assert_close(&probabilities.data, &want_p.concat(), 1e-6, case);
    }
}
