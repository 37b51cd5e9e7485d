//! `flywheel schema infer` and `flywheel validate`.

use crate::cli::{DataArgs, ValidateArgs};
use crate::{Failure, fail};
use flywheel_data::profiling::profile_file_with;
use flywheel_stats::profile::EXACT_QUANTILE_LIMIT;
use flywheel_stats::schema::{Schema, Severity, check, checks_for};
use std::collections::BTreeMap;
use std::path::Path;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

pub fn infer(data: &Path, output: Option<&Path>, max_categories: usize, read: &DataArgs) -> Result<u8, Failure> {
    let opts = read.options()?;
    let profile = profile_file_with(data, &opts, threads(), EXACT_QUANTILE_LIMIT, &BTreeMap::new())
        .map_err(|e| fail(2, e.to_string()))?;
    if profile.rows == 0 {
        return Err(fail(2, format!("{}: the file has a header but no rows", data.display())));
    }
    let schema = Schema::infer(profile.rows, &profile.columns, max_categories);
    let name = data.file_name().map_or_else(|| data.display().to_string(), |n| n.to_string_lossy().into_owned());
    let text =
        schema.to_toml(&format!("Schema inferred by `flywheel schema infer` from {name} ({} rows).", profile.rows));
    match output {
        Some(path) => {
            flywheel_data::write_atomic(path, &text)
                .map_err(|e| fail(2, format!("cannot write {}: {e}", path.display())))?;
            eprintln!("wrote {} ({} columns)", path.display(), schema.columns.len());
        }
        None => print!("{text}"),
    }
    Ok(0)
}

pub fn validate(args: &ValidateArgs) -> Result<u8, Failure> {
    let source = std::fs::read_to_string(&args.schema)
        .map_err(|e| fail(2, format!("cannot read schema {}: {e}", args.schema.display())))?;
    let schema = Schema::parse(&source, &args.schema.display().to_string()).map_err(|e| Failure {
        code: 2,
        message: e.to_string(),
        located: true,
    })?;
    let environment = args.environment.clone().or_else(|| schema.dataset.default_environment.clone());
    if let Some(e) = &environment
        && !schema.dataset.environments.contains(e)
    {
        let declared = &schema.dataset.environments;
        let hint = flywheel_core::closest(e, declared.iter().map(String::as_str))
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_else(|| {
                format!(
                    "; the schema declares: {}",
                    if declared.is_empty() { "none".into() } else { declared.join(", ") }
                )
            });
        return Err(fail(2, format!("--environment {e}: not declared in {}{hint}", args.schema.display())));
    }
    let checks: BTreeMap<_, _> = schema.columns.iter().map(|(n, r)| (n.clone(), checks_for(r))).collect();
    let opts = args.read.options()?;
    let profile = profile_file_with(&args.data, &opts, threads(), EXACT_QUANTILE_LIMIT, &checks)
        .map_err(|e| fail(2, e.to_string()))?;
    let anomalies = check(&schema, profile.rows, &profile.columns, environment.as_deref());
    let errors = anomalies.iter().filter(|a| a.severity == Severity::Error).count();
    if args.json {
        let v = serde_json::json!({
            "rows": profile.rows,
            "errors": errors,
            "warnings": anomalies.len() - errors,
            "anomalies": anomalies,
        });
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| fail(3, e.to_string()))?);
    } else {
        for a in &anomalies {
            let sev = if a.severity == Severity::Error { "error" } else { "warning" };
            let col = a.column.as_deref().map_or_else(String::new, |c| format!("column `{c}`: "));
            println!("{sev}: {col}{}: {}", a.kind, a.message);
        }
        println!(
            "\n{}: {} rows, {errors} error(s), {} warning(s)",
            args.data.display(),
            profile.rows,
            anomalies.len() - errors
        );
    }
    Ok(if errors > 0 { 1 } else { 0 })
}
