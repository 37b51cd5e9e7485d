//! `flywheel drift REFERENCE CURRENT`.

use crate::cli::DriftArgs;
use crate::{Failure, fail};
use flywheel_data::dataset_drift::{DriftOptions, DriftReport, dataset_drift};
use flywheel_data::table::read_table;
use flywheel_stats::Method;
use std::collections::BTreeMap;

fn pairs(flag: &str, items: &[String]) -> Result<Vec<(String, String)>, Failure> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(fail(2, format!("{flag} {s}: write it as COLUMN=VALUE"))),
        })
        .collect()
}

fn method(flag: &str, s: &str) -> Result<Method, Failure> {
    Method::parse(s).map_err(|e| fail(2, format!("{flag}: {e}")))
}

/// A drift threshold is a finite number, not below 0 (a score or a
/// p-value is compared with it; NaN would never and -1 always drift).
fn threshold(flag: &str, t: f64) -> Result<f64, Failure> {
    if t.is_finite() && t >= 0.0 {
        return Ok(t);
    }
    Err(fail(2, format!("{flag}: a drift threshold must be a number of at least 0")))
}

pub fn run(args: &DriftArgs) -> Result<u8, Failure> {
    let mut methods = BTreeMap::new();
    for (c, m) in pairs("--method", &args.methods)? {
        methods.insert(c, method("--method", &m)?);
    }
    let mut thresholds = BTreeMap::new();
    for (c, v) in pairs("--threshold", &args.thresholds)? {
        let x: f64 = v.parse().map_err(|_| fail(2, format!("--threshold {c}={v}: `{v}` is not a number")))?;
        thresholds.insert(c.clone(), threshold(&format!("--threshold {c}={v}"), x)?);
    }
    if let Some(t) = args.stattest_threshold {
        threshold(&format!("--stattest-threshold {t}"), t)?;
    }
    if let Some(share) = args.drift_share
        && !(0.0..=1.0).contains(&share)
    {
        return Err(fail(2, format!("--drift-share {share}: must be between 0 and 1")));
    }
    let opts = DriftOptions {
        methods,
        thresholds,
        method: args.stattest.as_deref().map(|m| method("--stattest", m)).transpose()?,
        threshold: args.stattest_threshold,
        columns: args.columns.iter().filter(|c| !c.contains('=')).cloned().collect(),
        drift_share: args.drift_share,
        threads: None,
    };
    let types: Vec<String> = args.columns.iter().filter(|c| c.contains('=')).cloned().collect();
    let read = crate::cli::read_options(&types, args.delimiter.as_deref(), args.missing_values.clone())?;
    let reference = read_table(&args.reference, &read).map_err(|e| fail(2, e.to_string()))?;
    let current = read_table(&args.current, &read).map_err(|e| fail(2, e.to_string()))?;
    let report = dataset_drift(&reference, &current, &opts).map_err(|e| fail(2, e.to_string()))?;
    if let Some(path) = &args.html {
        let page = flywheel_data::report::drift_report(
            &report,
            &args.reference.display().to_string(),
            &args.current.display().to_string(),
        );
        flywheel_data::write_atomic(path, &page)
            .map_err(|e| fail(2, format!("cannot write the report {}: {e}", path.display())))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| fail(3, e.to_string()))?);
    } else {
        print_table(&report);
    }
    Ok(if args.fail_on_drift && report.dataset_drift { 1 } else { 0 })
}

fn fmt(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x != 0.0 && x.abs() < 1e-4 {
        format!("{x:.2e}")
    } else {
        format!("{x:.4}")
    }
}

fn print_table(r: &DriftReport) {
    let width = r.columns.keys().map(|k| k.len()).max().unwrap_or(6).max(6);
    println!("{:<width$}  {:<11}  {:<13}  {:>10}  {:>9}  DRIFT", "COLUMN", "KIND", "METHOD", "SCORE", "THRESHOLD");
    for (name, c) in &r.columns {
        let d = &c.drift;
        let kind = match d.kind {
            flywheel_stats::Kind::Numeric => "numeric",
            flywheel_stats::Kind::Categorical => "categorical",
        };
        println!(
            "{name:<width$}  {kind:<11}  {:<13}  {:>10}  {:>9}  {}",
            d.method.as_str(),
            fmt(d.score),
            fmt(d.threshold),
            if d.drift { "yes" } else { "no" }
        );
    }
    println!(
        "\ndrift in {} of {} columns ({:.0}%); dataset drift: {} (when ≥ {:.0}% of columns drift)",
        r.drifted_columns,
        r.compared_columns,
        100.0 * r.drift_share,
        if r.dataset_drift { "yes" } else { "no" },
        100.0 * r.drift_share_threshold
    );
    println!("reference: {} rows; current: {} rows", r.reference_rows, r.current_rows);
    if !r.only_in_reference.is_empty() {
        println!("only in reference: {}", r.only_in_reference.join(", "));
    }
    if !r.only_in_current.is_empty() {
        println!("only in current: {}", r.only_in_current.join(", "));
    }
}
