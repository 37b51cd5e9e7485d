//! `flywheel doctor [--repair] [--json]`: renders what the orchestrator's
//! doctor found; exit 0 when healthy (or all repaired), 1 when problems
//! remain, 3 when the home cannot be opened.

use crate::Failure;
use flywheel_orchestrator::Home;
use flywheel_registry::doctor::{Report, examine};
use std::path::Path;

pub fn run(home_dir: &Path, repair: bool, json: bool) -> Result<u8, Failure> {
    let home = Home::open_for_doctor(home_dir, repair)?;
    let rt = crate::runtime()?;
    let report = rt.block_on(examine(&home, repair))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print_human(&report);
    }
    Ok(if report.healthy { 0 } else { 1 })
}

fn print_human(r: &Report) {
    let c = &r.checked;
    println!("home: {}", r.home.display());
    println!(
        "checked: database integrity, {} runs, {} executions, {} artifacts, {} blobs, {} staging files",
        c.runs, c.executions, c.artifacts, c.blobs, c.temp_files
    );
    for f in &r.findings {
        println!("{} {}: {}", f.kind.replace('_', " "), f.subject, f.problem);
        let label = match (f.repaired, f.severity) {
            (true, _) => "done",
            (false, "warning") => "warning",
            (false, _) => "to do",
        };
        println!("  {label}: {}", f.action);
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    let repaired = r.findings.iter().filter(|f| f.repaired).count();
    if r.findings.is_empty() {
        println!("healthy");
    } else if r.healthy && repaired == 0 {
        println!("healthy, with {} warning(s)", r.findings.len());
    } else if r.healthy {
        println!("healthy: {repaired} problem(s) repaired");
    } else if r.repair {
        println!("{} problem(s) remain ({repaired} repaired)", r.remaining);
    } else {
        println!("{} problem(s) found; `flywheel doctor --repair` fixes what is safe", r.remaining);
    }
}
