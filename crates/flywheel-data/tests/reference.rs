//! Statistics and metrics against independent reference values (pandas,
//! scikit-learn), recorded by `fixtures/make_reference.py`.

use flywheel_data::profiling::profile_file;
use flywheel_data::table::{ReadOptions, read_table};
use flywheel_ml::metrics;
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
    let ours =
        profile_file(&path, &ReadOptions { missing_values: missing, ..Default::default() }, 2).unwrap().to_json(50);
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
    let mut markers: Vec<String> = flywheel_data::table::DEFAULT_MISSING.iter().map(|s| s.to_string()).collect();
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
    close(b.pr_auc, m["pr_auc"].as_f64().unwrap(), 1e-12, "pr_auc");
    close(b.brier, m["brier"].as_f64().unwrap(), 1e-12, "brier");
    let confusion: Vec<Vec<u64>> = serde_json::from_value(m["confusion"].clone()).unwrap();
    assert_eq!(b.confusion.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), confusion);
    let curve: Vec<[f64; 2]> = serde_json::from_value(m["calibration"].clone()).unwrap();
    assert_eq!(b.calibration.len(), curve.len());
    for (got, [pred, frac]) in b.calibration.iter().zip(curve) {
        close(got.mean_predicted, pred, 1e-12, "calibration mean predicted");
        close(got.fraction_positive, frac, 1e-12, "calibration fraction positive");
    }
}

#[test]
fn multiclass_metrics_match_scikit_learn() {
    let m = &fixture("metrics.json")["multiclass"];
    let y: Vec<usize> = serde_json::from_value(m["y"].clone()).unwrap();
    let p: Vec<Vec<f64>> = serde_json::from_value(m["p"].clone()).unwrap();
    let k = p[0].len();
    let pred: Vec<usize> = p.iter().map(|r| (0..k).fold(0, |b, c| if r[c] > r[b] { c } else { b })).collect();
    let mc = metrics::multiclass(&y, &pred, &p.concat(), k);
    for (got, key) in [
        (mc.accuracy, "accuracy"),
        (mc.precision_macro, "precision_macro"),
        (mc.recall_macro, "recall_macro"),
        (mc.f1_macro, "f1_macro"),
        (mc.log_loss, "log_loss"),
    ] {
        close(got, m[key].as_f64().unwrap(), 1e-9, key);
    }
    let confusion: Vec<Vec<u64>> = serde_json::from_value(m["confusion"].clone()).unwrap();
    assert_eq!(mc.confusion, confusion);
}

#[test]
fn regression_metrics_match_scikit_learn() {
    let m = &fixture("metrics.json")["regression"];
    let y: Vec<f64> = m["y"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let pred: Vec<f64> = m["pred"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let r = metrics::regression(&y, &pred);
    close(r.rmse, m["rmse"].as_f64().unwrap(), 1e-10, "rmse");
    close(r.mae, m["mae"].as_f64().unwrap(), 1e-10, "mae");
    close(r.r2, m["r2"].as_f64().unwrap(), 1e-10, "r2");
    close(r.mape, m["mape"].as_f64().unwrap(), 1e-10, "mape");
}

/// Forces the quantile sketch (exact only up to 1,000 values) and checks
/// every quantile's rank in the real data against the sketch's stated error,
/// for one worker and for two (whose partial sketches are merged).
#[test]
fn sketched_quantiles_stay_within_the_stated_rank_error() {
    use flywheel_data::profiling::profile_file_with;
    use flywheel_stats::sketch::kll::DEFAULT_RANK_ERROR;
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bike-sharing/data/bike_sharing_hourly.csv.gz");
    let t = read_table(&path, &ReadOptions::default()).unwrap();
    for threads in [1, 2] {
        let p = profile_file_with(&path, &ReadOptions::default(), threads, 1_000, &Default::default()).unwrap();
        let stats = p.to_json(5);
        assert_eq!(stats["rows"], 17_379);
        for col in ["cnt", "temp", "hum", "instant", "casual"] {
            let c = &stats["columns"][col];
            assert_eq!(c["quantiles_exact"], false);
            let mut data: Vec<f64> = t.f64_column(t.column_index(col).unwrap()).into_iter().flatten().collect();
            data.sort_by(f64::total_cmp);
            let n = data.len() as f64;
            for (q, v) in c["quantiles"].as_object().unwrap() {
                let q: f64 = q.parse().unwrap();
                let x = v.as_f64().unwrap();
                let lo = data.partition_point(|d| *d < x) as f64 / n;
                let hi = data.partition_point(|d| *d <= x) as f64 / n;
                assert!(
                    q >= lo - DEFAULT_RANK_ERROR && q <= hi + DEFAULT_RANK_ERROR,
                    "{col} q{q} = {x}: rank [{lo}, {hi}] with {threads} thread(s)"
                );
            }
            // Everything else stays exact in sketch mode.
            let exact = profile_file_with(&path, &ReadOptions::default(), 1, usize::MAX, &Default::default())
                .unwrap()
                .to_json(5);
            for key in ["count", "missing", "distinct", "min", "max", "zeros"] {
                assert_eq!(c[key], exact["columns"][col][key], "{col}.{key}");
            }
        }
    }
}
