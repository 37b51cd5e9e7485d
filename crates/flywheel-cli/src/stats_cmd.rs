//! `flywheel stats DATA`.

use crate::cli::StatsArgs;
use crate::{Failure, fail};
use flywheel_data::profiling::profile_file;
use serde_json::Value as Json;

pub fn run(args: &StatsArgs) -> Result<u8, Failure> {
    let opts = args.read.options()?;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let profile = profile_file(&args.data, &opts, threads).map_err(|e| fail(2, e.to_string()))?;
    if profile.rows == 0 {
        return Err(fail(2, format!("{}: the file has a header but no rows", args.data.display())));
    }
    let stats = profile.to_json(args.top);
    if let Some(path) = &args.html {
        let page = flywheel_data::report::stats_report(&stats, &args.data.display().to_string());
        flywheel_data::write_atomic(path, &page)
            .map_err(|e| fail(2, format!("cannot write the report {}: {e}", path.display())))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats).map_err(|e| fail(3, e.to_string()))?);
    } else {
        print_table(&stats);
    }
    Ok(0)
}

fn cell(v: &Json) -> String {
    match v {
        Json::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x != 0.0 && (x.abs() >= 1e6 || x.abs() < 1e-3) { format!("{x:.3e}") } else { format!("{x:.4}") }
        }
        Json::Null => "-".into(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_table(stats: &Json) {
    let empty = serde_json::Map::new();
    let columns = stats["columns"].as_object().unwrap_or(&empty);
    let width = columns.keys().map(|k| k.len()).max().unwrap_or(6).max(6);
    println!(
        "{:<width$}  {:<6}  {:>8}  {:>8}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>8}",
        "COLUMN", "TYPE", "COUNT", "MISSING", "MEAN", "STD", "MIN", "MEDIAN", "MAX", "DISTINCT"
    );
    for (name, c) in columns {
        let approx = if c["distinct_exact"] == false { "~" } else { "" };
        if c["type"] == "timestamp" {
            // Times read as times; their mean and spread in seconds say little.
            let time = |v: &Json| v.as_f64().map_or_else(|| "-".into(), flywheel_stats::time::format_seconds);
            println!(
                "{name:<width$}  {:<6}  {:>8}  {:>8}  {:>10}  {:>10}  min {}  median {}  max {}  {:>8}",
                cell(&c["type"]),
                cell(&c["count"]),
                cell(&c["missing"]),
                "-",
                "-",
                time(&c["min"]),
                time(&c["quantiles"]["0.5"]),
                time(&c["max"]),
                format!("{approx}{}", cell(&c["distinct"])),
            );
            continue;
        }
        println!(
            "{name:<width$}  {:<6}  {:>8}  {:>8}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>8}",
            cell(&c["type"]),
            cell(&c["count"]),
            cell(&c["missing"]),
            cell(&c["mean"]),
            cell(&c["std"]),
            cell(&c["min"]),
            cell(&c["quantiles"]["0.5"]),
            cell(&c["max"]),
            format!("{approx}{}", cell(&c["distinct"])),
        );
    }
    println!("\n{} rows", stats["rows"]);
}
