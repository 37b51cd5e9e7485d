//! The bad-input corpus: how Flywheel treats bad input, one case per folder
//! under `tests/corpus/`, each run through the real binary.
//!
//! A case is a folder with a `case.toml` and the files it needs:
//!
//! ```toml
//! about = "what the case guards"
//! args = ["check", "{case}/pipeline.toml"]   # {case}: the case's folder, {home}: its store, {repo}: the repository
//! exit = 2
//! stderr_contains = ["pipeline.toml:3:", "did you mean"]
//! stdout_contains = []                       # optional
//! absent = ["out.parquet"]                   # optional: files (in the case folder) that must not exist afterwards
//! setup = [["run", "{case}/train.toml"]]     # optional: commands that must exit 0 first
//! pending = "why today's behaviour differs"  # optional: skipped, but must not pass yet
//! ```
//!
//! Each case runs in a fresh copy of its folder with a fresh home. A panic
//! (exit 101, or "panicked" on stderr) fails the case unless it is pending. Every failing
//! case is reported at once. `FLYWHEEL_CORPUS=word` runs only the cases whose
//! name contains `word`.

mod common;

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The corpus is the project's record; shrinking it below this is a mistake.
const MIN_CASES: usize = 60;
/// A case that takes longer than this has hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct CaseSpec {
    about: String,
    args: Vec<String>,
    exit: i32,
    #[serde(default)]
    stderr_contains: Vec<String>,
    #[serde(default)]
    stdout_contains: Vec<String>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    setup: Vec<Vec<String>>,
    pending: Option<String>,
}

struct Case {
    name: String,
    dir: PathBuf,
    spec: CaseSpec,
}

enum Verdict {
    Passed,
    Failed(String),
    /// A pending case that still fails, with what it got.
    StillPending(String),
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn load_cases() -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let entries = std::fs::read_dir(corpus_dir()).map_err(|e| format!("cannot list the corpus: {e}"))?;
    for entry in entries {
        let dir = entry.map_err(|e| e.to_string())?.path();
        let file = dir.join("case.toml");
        if !file.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let spec: CaseSpec = toml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        cases.push(Case { name, dir, spec });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cases)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

struct Places {
    case: PathBuf,
    home: PathBuf,
}

impl Places {
    fn fill(&self, s: &str) -> String {
        s.replace("{case}", &self.case.display().to_string())
            .replace("{home}", &self.home.display().to_string())
            .replace("{repo}", &common::repo_root().display().to_string())
    }
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with a deadline, so one hung case cannot hang the corpus.
fn run(places: &Places, args: &[String]) -> Result<Ran, String> {
    let args: Vec<String> = args.iter().map(|a| places.fill(a)).collect();
    let out_path = places.case.join(".stdout");
    let err_path = places.case.join(".stderr");
    let out = std::fs::File::create(&out_path).map_err(|e| e.to_string())?;
    let err = std::fs::File::create(&err_path).map_err(|e| e.to_string())?;
    let mut child = Command::new(common::bin())
        .args(&args)
        .current_dir(&places.case)
        .env("FLYWHEEL_HOME", &places.home)
        .env_remove("FLYWHEEL_LOG")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start flywheel: {e}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > CASE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`flywheel {}` did not finish in {CASE_TIMEOUT:?}", args.join(" ")));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let ran = Ran { code: status.code().unwrap_or(-1), stdout: read(&out_path), stderr: read(&err_path) };
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    Ok(ran)
}

fn panicked(r: &Ran) -> bool {
    r.code == 101 || r.stderr.contains("panicked")
}

/// What is wrong with the outcome, or nothing.
fn problems(case: &Case, places: &Places, r: &Ran) -> Vec<String> {
    let mut p = Vec::new();
    if r.code != case.spec.exit {
        p.push(format!("exit {} (expected {})", r.code, case.spec.exit));
    }
    for (stream, text, wanted) in
        [("stderr", &r.stderr, &case.spec.stderr_contains), ("stdout", &r.stdout, &case.spec.stdout_contains)]
    {
        for w in wanted {
            let w = places.fill(w);
            if !text.contains(&w) {
                p.push(format!("{stream} lacks {w:?}"));
            }
        }
    }
    for a in &case.spec.absent {
        if places.case.join(places.fill(a)).exists() {
            p.push(format!("{a} exists but must not"));
        }
    }
    p
}

fn judge(case: &Case) -> Verdict {
    let tmp = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => return Verdict::Failed(format!("no temp folder: {e}")),
    };
    let places = Places { case: tmp.path().join("case"), home: tmp.path().join("home") };
    if let Err(e) = copy_dir(&case.dir, &places.case) {
        return Verdict::Failed(format!("cannot copy the case: {e}"));
    }
    for step in &case.spec.setup {
        match run(&places, step) {
            Ok(r) if r.code == 0 => {}
            Ok(r) => return Verdict::Failed(format!("setup `{}` exited {}:\n{}", step.join(" "), r.code, r.stderr)),
            Err(e) => return Verdict::Failed(e),
        }
    }
    let r = match run(&places, &case.spec.args) {
        Ok(r) => r,
        Err(e) => return Verdict::Failed(e),
    };
    if panicked(&r) {
        let what = format!("PANIC (exit {}):\n{}", r.code, r.stderr);
        // A panic found but not yet fixed is recorded as pending, loudly.
        return if case.spec.pending.is_some() { Verdict::StillPending(what) } else { Verdict::Failed(what) };
    }
    let p = problems(case, &places, &r);
    let got = format!("exit {}; stderr: {}", r.code, r.stderr.trim());
    match (&case.spec.pending, p.is_empty()) {
        (None, true) => Verdict::Passed,
        (None, false) => Verdict::Failed(format!("{}\n  {got}\n  stdout: {}", p.join("; "), r.stdout.trim())),
        (Some(why), true) => Verdict::Failed(format!("pending ({why}) but passes now: remove `pending`")),
        (Some(_), false) => Verdict::StillPending(format!("{}; {got}", p.join("; "))),
    }
}

/// Two cases at a time: the binary is mostly waiting on the disk.
fn judge_all(cases: &[Case]) -> Vec<(usize, Verdict)> {
    let next = AtomicUsize::new(0);
    let verdicts = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let v = judge(case);
                    verdicts.lock().unwrap_or_else(|e| e.into_inner()).push((i, v));
                }
            });
        }
    });
    let mut v = verdicts.into_inner().unwrap_or_else(|e| e.into_inner());
    v.sort_by_key(|(i, _)| *i);
    v
}

#[test]
fn every_case_of_the_bad_input_corpus_gets_its_exit_code_and_message() {
    let all = load_cases().unwrap_or_else(|e| panic!("{e}"));
    assert!(all.len() >= MIN_CASES, "the corpus has {} cases, fewer than {MIN_CASES}", all.len());
    let only = std::env::var("FLYWHEEL_CORPUS").unwrap_or_default();
    let cases: Vec<Case> = all.into_iter().filter(|c| c.name.contains(&only)).collect();
    let mut failed = Vec::new();
    let mut pending = 0;
    for (i, verdict) in judge_all(&cases) {
        let case = &cases[i];
        match verdict {
            Verdict::Passed => {}
            Verdict::Failed(why) => failed.push(format!("{} ({}): {why}", case.name, case.spec.about)),
            Verdict::StillPending(got) => {
                pending += 1;
                let why = case.spec.pending.as_deref().unwrap_or_default();
                eprintln!("pending {}: {why}\n    now: {got}", case.name);
            }
        }
    }
    eprintln!(
        "bad-input corpus: {} cases, {} passed, {pending} pending, {} failed",
        cases.len(),
        cases.len() - pending - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{} corpus cases failed:\n\n{}", failed.len(), failed.join("\n\n"));
}
