//! Statistics and metrics against independent reference values (pandas,
//! scikit-learn), recorded by `fixtures/make_reference.py`.

use flywheel_components::table::{ReadOptions, read_table};
use flywheel_components::{metrics, statistics};
use serde_json::Value;
use std::path::Path;

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn close(a: f64, b: f64, rel: f64, what: &str) {
    let tol = rel * b.abs().max(1e-12);
    assert!((a - b).abs() <= tol, "{what}: flywheel {a} vs reference {b}");
}

fn check_dataset(name: &str, file: &str, missing: Option<Vec<String>>) {
    let reference = &fixture("statistics.json")[name];
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(file);
    let t = read_table(&path, &ReadOptions { columns: Default::default(), missing_values: missing }).unwrap();
    let ours = statistics::describe(&t, 50);
    assert_eq!(ours["rows"], reference["rows"]);
    for (col, want) in reference["columns"].as_object().unwrap() {
        let got = &ours["columns"][col];
        for key in ["count", "missing", "distinct"] {
            assert_eq!(got[key], want[key], "{name}.{col}.{key}");
        }
        if want.get("mean").is_some() {
            for key in ["mean", "std", "min", "max"] {
                close(got[key].as_f64().unwrap(), want[key].as_f64().unwrap(), 1e-9, &format!("{name}.{col}.{key}"));
            }
            assert_eq!(got["zeros"], want["zeros"], "{name}.{col}.zeros");
            for (q, v) in want["quantiles"].as_object().unwrap() {
                close(got["quantiles"][q].as_f64().unwrap(), v.as_f64().unwrap(), 1e-9, &format!("{name}.{col}.q{q}"));
            }
        } else {
            // Ties may be listed in any order: compare the counts, and the
            // leading value where it is unique.
            let want_top = want["top"].as_array().unwrap();
            let got_top = got["top"].as_array().unwrap();
            let counts =
                |v: &[Value]| v.iter().take(want_top.len()).map(|x| x["count"].as_u64().unwrap()).collect::<Vec<_>>();
            assert_eq!(counts(got_top), counts(want_top), "{name}.{col}.top counts");
            if want_top.len() > 1 && want_top[0]["count"] != want_top[1]["count"] {
                assert_eq!(got_top[0]["value"], want_top[0]["value"], "{name}.{col}.top value");
            }
        }
    }
}

#[test]
fn statistics_match_pandas_on_bike_sharing() {
    check_dataset("bike", "bike-sharing/data/bike_sharing_hourly.csv.gz", None);
}

#[test]
fn statistics_match_pandas_on_adult_with_missing_values() {
    let mut markers: Vec<String> = flywheel_components::table::DEFAULT_MISSING.iter().map(|s| s.to_string()).collect();
    markers.push("?".into());
    check_dataset("adult", "adult-income/data/adult_census_income.csv.gz", Some(markers));
}

#[test]
fn binary_metrics_match_scikit_learn() {
    let m = &fixture("metrics.json")["binary"];
    let y: Vec<bool> = m["y"].as_array().unwrap().iter().map(|v| v.as_i64() == Some(1)).collect();
    let p: Vec<f64> = m["p"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let b = metrics::binary(&y, &p);
    close(b.accuracy, m["accuracy"].as_f64().unwrap(), 1e-12, "accuracy");
    close(b.precision, m["precision"].as_f64().unwrap(), 1e-12, "precision");
    close(b.recall, m["recall"].as_f64().unwrap(), 1e-12, "recall");
    close(b.f1, m["f1"].as_f64().unwrap(), 1e-12, "f1");
    close(b.roc_auc, m["roc_auc"].as_f64().unwrap(), 1e-12, "roc_auc");
    close(b.log_loss, m["log_loss"].as_f64().unwrap(), 1e-9, "log_loss");
}

#[test]
fn regression_metrics_match_scikit_learn() {
    let m = &fixture("metrics.json")["regression"];
    let y: Vec<f64> = m["y"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let pred: Vec<f64> = m["pred"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let (rmse, mae, r2) = metrics::regression(&y, &pred);
    close(rmse, m["rmse"].as_f64().unwrap(), 1e-10, "rmse");
    close(mae, m["mae"].as_f64().unwrap(), 1e-10, "mae");
    close(r2, m["r2"].as_f64().unwrap(), 1e-10, "r2");
}
