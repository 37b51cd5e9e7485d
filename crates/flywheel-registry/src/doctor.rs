//! `flywheel doctor`: checks a home and, with `repair`, fixes what is safe.
//!
//! Checked: the database (SQLite's integrity and foreign key checks), runs
//! and executions left `running` by dead processes, every recorded
//! artifact's blob against its digest, blobs no artifact names, staging
//! files and work folders. Repairs never delete a recorded artifact's only
//! good copy: a corrupt blob is removed so that its producer runs again, and
//! unrecorded blobs are removed only while no other process uses the home.

use crate::Result;
use crate::home::{Home, STALE_TEMP_AGE, remove_path};
use flywheel_artifacts::{BlobState, Removal};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `database`, `dead_run`, `stale_execution`, `missing_blob`,
    /// `corrupt_blob`, `orphan_blob`, `temp_file`, `work_folder`,
    /// `missing_segment` or `unindexed_segment` (the prediction log).
    pub kind: &'static str,
    /// What it is about: a digest, a path, `run 3`, `execution 7`.
    pub subject: String,
    pub problem: String,
    /// `problem` (counts against health until repaired) or `warning` (the
    /// store is consistent and heals by itself, e.g. a blob whose producer
    /// runs again on the next run).
    pub severity: &'static str,
    pub repaired: bool,
    /// What was done, or what to do.
    pub action: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Checked {
    pub runs: i64,
    pub executions: i64,
    pub artifacts: usize,
    pub blobs: usize,
    pub temp_files: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub home: PathBuf,
    pub repair: bool,
    pub checked: Checked,
    pub findings: Vec<Finding>,
    /// What was left alone and why (e.g. another process uses the home).
    pub notes: Vec<String>,
    /// Problems not repaired.
    pub remaining: usize,
    pub healthy: bool,
}

struct Doctor<'a> {
    home: &'a Home,
    repair: bool,
    report: Report,
}

/// Examines `home` (opened with [`Home::open_for_doctor`]) and, with
/// `repair`, repairs what is safe.
pub async fn examine(home: &Home, repair: bool) -> Result<Report> {
    let report = Report {
        home: home.root.clone(),
        repair,
        checked: Checked::default(),
        findings: Vec::new(),
        notes: Vec::new(),
        remaining: 0,
        healthy: true,
    };
    let mut d = Doctor { home, repair, report };
    d.database()?;
    d.runs()?;
    d.blobs().await?;
    d.work_folders()?;
    d.prediction_log()?;
    let mut report = d.report;
    report.remaining = report.findings.iter().filter(|f| f.severity == "problem" && !f.repaired).count();
    report.healthy = report.remaining == 0;
    Ok(report)
}

impl Doctor<'_> {
    fn add(&mut self, kind: &'static str, subject: String, problem: String, outcome: (bool, String)) {
        let (repaired, action) = outcome;
        let severity = if kind == "missing_blob" { "warning" } else { "problem" };
        self.report.findings.push(Finding { kind, subject, problem, severity, repaired, action });
    }

    /// `(true, done)` when repairing, else `(false, todo)`.
    fn fix(&self, done: &str, todo: &str) -> (bool, String) {
        if self.repair { (true, done.to_string()) } else { (false, todo.to_string()) }
    }

    fn database(&mut self) -> Result<()> {
        let meta = &self.home.metadata;
        (self.report.checked.runs, self.report.checked.executions) = meta.counts()?;
        for p in meta.integrity_problems()? {
            let action = "not repairable here: restore metadata.db from a backup (`flywheel runs list` shows what is still readable)";
            self.add("database", p.check.to_string(), p.message, (false, action.to_string()));
        }
        Ok(())
    }

    fn runs(&mut self) -> Result<()> {
        let meta = self.home.metadata.clone();
        for run in meta.dead_runs()? {
            let problem = format!(
                "run {} is recorded `running` by process {} on {}, which no longer exists",
                run.id, run.pid, run.host
            );
            let fix = self.fix(
                &format!("marked interrupted; `flywheel resume {}` finishes it", run.id),
                "`flywheel doctor --repair` (or any command that opens the home) marks it interrupted",
            );
            self.add("dead_run", format!("run {}", run.id), problem, fix);
        }
        if self.repair {
            meta.reap_dead_runs()?;
        }
        for e in meta.stale_executions()? {
            let problem = format!(
                "execution {} (step `{}` of run {}) is still `running` although its run is {}",
                e.id, e.step, e.run_id, e.run_status
            );
            let fix = self.fix(
                "closed as interrupted",
                "`flywheel doctor --repair` (or any command that opens the home) closes it",
            );
            self.add("stale_execution", format!("execution {}", e.id), problem, fix);
        }
        if self.repair {
            meta.close_stale_executions()?;
        }
        Ok(())
    }

    async fn blobs(&mut self) -> Result<()> {
        let mut recorded: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, ty, digest) in self.home.metadata.artifact_digests()? {
            recorded.entry(digest).or_default().push(format!("artifact {id} ({ty})"));
        }
        self.report.checked.artifacts = recorded.values().map(Vec::len).sum();
        for (digest, names) in &recorded {
            self.recorded_blob(digest, &names.join(", ")).await?;
        }
        let listing = self.home.artifacts.list()?;
        self.report.checked.blobs = listing.blobs.len();
        self.report.checked.temp_files = listing.temp.len();
        let sole = self.home.sole();
        // While another process uses the home, a blob it stored a moment ago
        // may be about to be recorded: only old ones count as orphans then.
        let young = |age: std::time::Duration| !sole && age <= STALE_TEMP_AGE;
        let orphans: Vec<_> = listing.blobs.iter().filter(|b| !recorded.contains_key(&b.digest)).collect();
        let young_orphans = orphans.iter().filter(|b| young(b.age())).count();
        let young_temp = listing.temp.iter().filter(|t| young(t.age())).count();
        if young_orphans + young_temp > 0 {
            self.report.notes.push(format!(
                "another flywheel process is using this home: {young_orphans} recent blob(s) no artifact names yet and {young_temp} recent staging file(s) were left alone (it may be writing or recording them)"
            ));
        }
        for b in orphans.into_iter().filter(|b| !young(b.age())) {
            let problem = format!("blob at {} ({} bytes) is named by no artifact", b.path.display(), b.size);
            let fix = if !sole {
                (false, "kept: another flywheel process is using this home; run `flywheel doctor --repair` when no other flywheel command runs".to_string())
            } else if self.repair {
                self.home.artifacts.remove_orphan(b)?;
                (true, "removed".to_string())
            } else {
                (false, "`flywheel doctor --repair` removes it".to_string())
            };
            self.add("orphan_blob", b.digest.clone(), problem, fix);
        }
        for t in listing.temp.iter().filter(|t| !young(t.age())) {
            let fix = self.fix("removed", "`flywheel doctor --repair` removes it");
            if self.repair {
                self.home.artifacts.remove_temp(t)?;
            }
            let problem = format!("staging file of a write that never finished ({} bytes)", t.size);
            self.add("temp_file", t.path.display().to_string(), problem, fix);
        }
        Ok(())
    }

    async fn recorded_blob(&mut self, digest: &str, names: &str) -> Result<()> {
        let path = self.home.artifacts.blob_path(digest);
        match self.home.artifacts.state(digest).await? {
            BlobState::Intact => {}
            BlobState::Missing => {
                let problem = format!("the blob of {names} is missing (expected at {})", path.display());
                let action = "none needed for runs: the step that produced it runs again on its next run (its cache entry misses); until then a model version naming it cannot be exported or served";
                self.add("missing_blob", digest.to_string(), problem, (false, action.to_string()));
            }
            BlobState::Corrupt { actual, size } => {
                let problem = format!(
                    "the blob of {names} at {} is corrupted: its {size} bytes hash to {actual}",
                    path.display()
                );
                let outcome = if self.repair {
                    match self.home.artifacts.remove_if_corrupt(digest)? {
                        Removal::Removed => (
                            true,
                            "removed: the step that produced it runs again on the next run (its cache entry misses)"
                                .to_string(),
                        ),
                        Removal::Kept => (true, "rewritten meanwhile by another process; intact now".to_string()),
                        Removal::Missing => {
                            (false, "it disappeared meanwhile; re-run the pipeline that produced it".to_string())
                        }
                    }
                } else {
                    (
                        false,
                        "`flywheel doctor --repair` removes it, or re-running the step that produced it rewrites it"
                            .to_string(),
                    )
                };
                self.add("corrupt_blob", digest.to_string(), problem, outcome);
            }
        }
        Ok(())
    }

    fn work_folders(&mut self) -> Result<()> {
        for l in self.home.leftovers()? {
            let fix = self.fix("removed", "`flywheel doctor --repair` (or any command that opens the home) removes it");
            if self.repair {
                remove_path(&l.path)?;
            }
            let problem = format!("{} left by a process that stopped", l.what);
            self.add("work_folder", l.path.display().to_string(), problem, fix);
        }
        Ok(())
    }

    /// The prediction log (`predictions/`, written by `flywheel serve`):
    /// indexed segments whose file is gone, and files no index row names
    /// (a server stopped between writing and indexing, or its temporary
    /// files). Files younger than an hour are left alone while another
    /// process uses the home: a server may be about to index them.
    fn prediction_log(&mut self) -> Result<()> {
        let meta = self.home.metadata.clone();
        let indexed = meta.all_segments()?;
        for seg in &indexed {
            if self.home.root.join(&seg.path).is_file() {
                continue;
            }
            let problem = format!(
                "segment of {}@{} ({} rows) is in the index but its file is gone",
                seg.model_name, seg.version, seg.rows
            );
            let fix = self.fix("dropped from the index", "`flywheel doctor --repair` drops it from the index");
            if self.repair {
                meta.forget_segment(seg.id)?;
            }
            self.add("missing_segment", seg.path.clone(), problem, fix);
        }
        let known: std::collections::HashSet<PathBuf> = indexed.iter().map(|s| self.home.root.join(&s.path)).collect();
        let sole = self.home.sole();
        for file in files_under(&self.home.root.join("predictions")) {
            let age = std::fs::metadata(&file).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            if known.contains(&file) || (!sole && age.is_none_or(|a| a <= STALE_TEMP_AGE)) {
                continue;
            }
            let fix = self.fix("removed", "`flywheel doctor --repair` removes it");
            if self.repair {
                remove_path(&file)?;
            }
            let problem = "prediction log file no index row names (a write or index that never finished)".to_string();
            self.add("unindexed_segment", file.display().to_string(), problem, fix);
        }
        Ok(())
    }
}

/// Files two levels below `dir` (`<model>/<hour>/<file>`).
fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let list = |d: &std::path::Path| -> Vec<PathBuf> {
        std::fs::read_dir(d).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default()
    };
    let mut out = Vec::new();
    for model in list(dir).into_iter().filter(|p| p.is_dir()) {
        for hour in list(&model).into_iter().filter(|p| p.is_dir()) {
            out.extend(list(&hour).into_iter().filter(|p| p.is_file()));
        }
    }
    out.sort();
    out
}
