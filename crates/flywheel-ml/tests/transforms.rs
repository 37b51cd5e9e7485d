//! Fitted transforms against scikit-learn's preprocessing on columns of the
//! real datasets (`tests/fixtures/transforms.json`, made by
//! `tests/fixtures/make_transforms.py`): fitted on one part, applied to
//! another, as training and serving do.

use flywheel_ml::transform::{LINEAR_DEFAULTS, fit};
use flywheel_ml::{Column, Frame, Text};
use serde_json::Value;
use std::collections::BTreeMap;

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/transforms.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

fn texts(v: &Value) -> Vec<Option<String>> {
    v.as_array().unwrap().iter().map(|x| x.as_str().map(str::to_string)).collect()
}

/// Fits `declared` on the training values of one column and applies it to the serving values.
fn apply_numeric(train: Vec<f64>, serve: Vec<f64>, declared: &str) -> Vec<f64> {
    let mut tr = Frame::new();
    tr.push("c", Column::Num(train)).unwrap();
    let t =
        fit(&tr, &["c".into()], &BTreeMap::from([("c".to_string(), declared.to_string())]), LINEAR_DEFAULTS).unwrap();
    let mut sv = Frame::new();
    sv.push("c", Column::Num(serve)).unwrap();
    t.apply(&sv).unwrap().column(0)
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-9 * (1.0 + w.abs()), "{what}[{i}]: {g} vs scikit-learn {w}");
    }
}

#[test]
fn numeric_transforms_match_scikit_learn() {
    let f = fixture();
    let (tw, sw) = (numbers(&f["windspeed"]["train"]), numbers(&f["windspeed"]["serve"]));
    assert_close(&apply_numeric(tw.clone(), sw.clone(), "standardize"), &numbers(&f["standardize"]), "StandardScaler");
    assert_close(&apply_numeric(tw.clone(), sw.clone(), "minmax"), &numbers(&f["minmax"]), "MinMaxScaler");
    assert_close(&apply_numeric(tw, sw, "bucketize(5)"), &numbers(&f["bucketize"]), "KBinsDiscretizer(quantile)");
    let (th, sh) = (numbers(&f["hours"]["train"]), numbers(&f["hours"]["serve"]));
    assert!(th.iter().any(|x| x.is_nan()) && sh.iter().any(|x| x.is_nan()));
    assert_close(
        &apply_numeric(th.clone(), sh.clone(), "impute(median)"),
        &numbers(&f["impute_median"]),
        "SimpleImputer(median)",
    );
    assert_close(
        &apply_numeric(th, sh, "impute(mean) | standardize"),
        &numbers(&f["impute_mean_standardize"]),
        "SimpleImputer + StandardScaler",
    );
}

#[test]
fn onehot_agrees_with_scikit_learn_on_every_seen_value_and_flags_the_rest() {
    let f = fixture();
    let (train, serve) = (texts(&f["workclass"]["train"]), texts(&f["workclass"]["serve"]));
    let mut tr = Frame::new();
    tr.push("w", Column::Text(Text::encode(train.iter().map(|v| v.as_deref())))).unwrap();
    let t =
        fit(&tr, &["w".into()], &BTreeMap::from([("w".to_string(), "onehot(top = 100)".to_string())]), LINEAR_DEFAULTS)
            .unwrap();
    let names = t.feature_names();
    let mut sv = Frame::new();
    sv.push("w", Column::Text(Text::encode(serve.iter().map(|v| v.as_deref())))).unwrap();
    let m = t.apply(&sv).unwrap();
    let cats: Vec<String> = serde_json::from_value(f["onehot_categories"].clone()).unwrap();
    let want: Vec<Vec<f64>> = serde_json::from_value(f["onehot"].clone()).unwrap();
    for (i, value) in serve.iter().enumerate() {
        let Some(v) = value else {
            assert_eq!(m.get(i, names.len() - 1), 1.0, "missing goes to <other>");
            continue;
        };
        match cats.iter().position(|c| c == v) {
            Some(k) => {
                let j = names.iter().position(|n| *n == format!("w={v}")).unwrap();
                assert_eq!((m.get(i, j), want[i][k]), (1.0, 1.0), "row {i} `{v}`");
                assert_eq!(m.row(i).iter().sum::<f64>(), 1.0);
            }
            None => {
                assert!(want[i].iter().all(|x| *x == 0.0), "scikit-learn ignores unseen `{v}`");
                assert_eq!(m.get(i, names.len() - 1), 1.0, "Flywheel flags unseen `{v}` as <other>");
            }
        }
    }
}
