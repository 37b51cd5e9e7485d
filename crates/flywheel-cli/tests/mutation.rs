//! Mutation tests: valid pipeline files, CSV, CSV.gz, Parquet, model JSON and
//! ONNX bytes, randomly mutated (bit flips, truncation, insertions of
//! troublesome tokens, deletions, duplications, token swaps), go through the
//! real entry points. Whatever the bytes, Flywheel must not panic and must
//! exit with a documented code (0, 1, 2 or 3).
//!
//! The count is bounded so the suite stays quick; `FLYWHEEL_MUTATION_SCALE=N`
//! multiplies it, `FLYWHEEL_MUTATION_SEED=N` picks another deterministic
//! sequence, and `FLYWHEEL_MUTATION_KEEP_GOING=1` counts panics instead of
//! stopping at the first (`bench/mutation.sh` runs it that way). Every
//! violation is saved under the test's temp folder as a reproducer.

mod common;

use common::{Env, repo_root};
use flywheel_ml::{Column, Frame, Model, Text};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Exit codes the README documents for a command that is not cancelled.
const DOCUMENTED: [i32; 4] = [0, 1, 2, 3];

/// Tokens that break parsers: non-finite numbers, separators, quotes,
/// placeholders, path tricks, huge values.
const TOKENS: &[&str] = &[
    "NaN",
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "",
    "null",
    "1e309",
    "-0",
    "\"",
    "'",
    "\n",
    "\r\n",
    ",",
    ";",
    "\t",
    "{",
    "}",
    "[",
    "]",
    "=",
    "${x}",
    "@model:",
    "..",
    "/",
    "\0",
    "99999999999999999999",
    "é",
    "true",
    "#",
    "\\",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, &'static str),
    InsertBytes(Index, Vec<u8>),
    Delete(Index, usize),
    Duplicate(Index, usize),
    SwapTokens(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        3 => (any::<Index>(), prop::sample::select(TOKENS)).prop_map(|(i, t)| Mutation::Insert(i, t)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Mutation::InsertBytes(i, b)),
        2 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapTokens(a, b)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..5)
}

/// Byte ranges of tokens: runs of letters and digits, or single other bytes.
fn tokens(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.') {
                i += 1;
            }
        } else {
            i += 1;
        }
        out.push((start, i));
    }
    out
}

fn apply(seed: &[u8], ms: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in ms {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
        match m {
            Mutation::Flip(i, x) if !b.is_empty() => {
                let k = i.index(b.len());
                b[k] ^= x | 1;
            }
            Mutation::Truncate(i) => b.truncate(at(i, b.len())),
            Mutation::Insert(i, t) => {
                let k = at(i, b.len());
                b.splice(k..k, t.bytes()).for_each(drop);
            }
            Mutation::InsertBytes(i, x) => {
                let k = at(i, b.len());
                b.splice(k..k, x.iter().copied()).for_each(drop);
            }
            Mutation::Delete(i, n) if !b.is_empty() => {
                let k = i.index(b.len());
                let end = (k + n).min(b.len());
                b.drain(k..end).for_each(drop);
            }
            Mutation::Duplicate(i, n) if !b.is_empty() => {
                let k = i.index(b.len());
                let piece = b[k..(k + n).min(b.len())].to_vec();
                b.splice(k..k, piece).for_each(drop);
            }
            Mutation::SwapTokens(x, y) => {
                let t = tokens(&b);
                if t.len() >= 2 {
                    let (p, q) = (t[x.index(t.len())], t[y.index(t.len())]);
                    let (first, second) = if p.0 <= q.0 { (p, q) } else { (q, p) };
                    if first.1 <= second.0 {
                        let mut out = b[..first.0].to_vec();
                        out.extend_from_slice(&b[second.0..second.1]);
                        out.extend_from_slice(&b[first.1..second.0]);
                        out.extend_from_slice(&b[first.0..first.1]);
                        out.extend_from_slice(&b[second.1..]);
                        b = out;
                    }
                }
            }
            _ => {}
        }
    }
    b
}

fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One kind of input being mutated, with what was seen so far.
struct Fuzz {
    kind: &'static str,
    ext: &'static str,
    seed: Vec<u8>,
    cases: u32,
    tally: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    ran: u64,
    violations: Vec<String>,
    outcomes: BTreeMap<String, u64>,
}

impl Fuzz {
    fn new(kind: &'static str, ext: &'static str, seed: Vec<u8>, base_cases: u32) -> Fuzz {
        let cases = (base_cases as f64 * env_number("FLYWHEEL_MUTATION_SCALE", 1.0)).round().max(1.0) as u32;
        Fuzz { kind, ext, seed, cases, tally: Mutex::new(Tally::default()) }
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves a violating input where the failure message points.
    fn keep(&self, bytes: &[u8], what: &str) -> String {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mutation-findings");
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{}-{}.{}", self.kind, blake(bytes), self.ext));
        let _ = std::fs::write(&file, bytes);
        format!("{what} (input saved as {})", file.display())
    }

    /// Runs `check` on `cases` mutations of the seed. `check` returns an
    /// outcome label for the tally, or what went wrong.
    fn run(&self, check: impl Fn(&[u8]) -> Result<String, String>) {
        self.run_with(mutations(), |ms| apply(&self.seed, ms), check);
    }

    /// Like `run`, with another way to make inputs from generated edits.
    fn run_with<S: Strategy>(
        &self,
        edits: S,
        make: impl Fn(&S::Value) -> Vec<u8>,
        check: impl Fn(&[u8]) -> Result<String, String>,
    ) {
        let seed = env_number("FLYWHEEL_MUTATION_SEED", 11.0) as u64;
        let keep_going = std::env::var("FLYWHEEL_MUTATION_KEEP_GOING").is_ok_and(|v| v == "1");
        let config = Config {
            cases: self.cases,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(seed),
            max_shrink_iters: 32,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let result = runner.run(&edits, |edits| {
            let bytes = make(&edits);
            let outcome = check(&bytes);
            let mut t = self.tally();
            t.ran += 1;
            match outcome {
                Ok(label) => {
                    *t.outcomes.entry(label).or_default() += 1;
                    Ok(())
                }
                Err(what) => {
                    let what = self.keep(&bytes, &what);
                    t.violations.push(what.clone());
                    if keep_going { Ok(()) } else { Err(TestCaseError::fail(what)) }
                }
            }
        });
        let t = self.tally();
        eprintln!(
            "mutation {}: {} inputs, {} panics or undocumented exits; outcomes {:?}",
            self.kind,
            t.ran,
            t.violations.len(),
            t.outcomes
        );
        assert!(t.violations.is_empty(), "{}: {}", self.kind, t.violations.join("\n"));
        if let Err(e) = result {
            panic!("{}: {e}", self.kind);
        }
    }
}

fn blake(bytes: &[u8]) -> String {
    // A short, stable name for a reproducer; not a security hash.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// Runs the real binary on `args` and judges only how it ended.
fn judge(env: &Env, args: &[&str]) -> Result<String, String> {
    let r = env.run(args);
    if r.code == 101 || r.stderr.contains("panicked") {
        return Err(format!("`flywheel {}` panicked (exit {}):\n{}", args.join(" "), r.code, r.stderr));
    }
    if !DOCUMENTED.contains(&r.code) {
        return Err(format!("`flywheel {}` exited {}, not a documented code:\n{}", args.join(" "), r.code, r.stderr));
    }
    Ok(format!("{} exit {}", args[0], r.code))
}

/// In-process: a panic is caught and reported like the binary's exit 101.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    // Nothing the closure touches is used again after a panic but to report it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
        format!("{what} panicked: {}", msg.unwrap_or_default())
    })
}

const CSV: &str = "age,income,city,joined,label\n\
    34,52000.5,Lyon,2024-01-05,yes\n\
    41,,\"Saint-Étienne, Loire\",2023-12-31,no\n\
    29,61000,Paris,2024-02-29,yes\n\
    NA,47000.25,Lyon,,no\n\
    52,88000,\"Nice \"\"Côte\"\"\",2022-06-01,yes\n\
    38,-1,Paris,2024-03-10T08:30:00,no\n";

const SCHEMA: &str = "[columns.age]\ntype = \"int\"\nmin = 0\nmax = 120\n\
    [columns.city]\ntype = \"string\"\ndomain = [\"Lyon\", \"Paris\"]\n";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = gz.write_all(bytes);
    gz.finish().unwrap_or_default()
}

/// A valid Parquet file and model file, made by the binary itself: ingest
/// writes Parquet, train writes a model.
fn made_by_flywheel(env: &Env) -> (Vec<u8>, Vec<u8>) {
    let mut data = String::from("x,y,color,label\n");
    for i in 0..120 {
        data += &format!("{i},{},{},{}\n", (i * 7) % 13, ["red", "blue", "green"][i % 3], ["yes", "no"][(i / 7) % 2]);
    }
    env.write("seed.csv", &data);
    env.write(
        "seed.toml",
        "[pipeline]\nname = \"seed\"\n[steps.ingest]\ncomponent = \"ingest\"\nparams = { path = \"seed.csv\" }\n\
         [steps.train]\ncomponent = \"train\"\ninputs = { data = \"ingest.train\" }\n\
         params = { target = \"label\", model = \"gbt\", max_iterations = 5, \
         transform = { x = \"impute(mean) | standardize\", color = \"onehot(top = 2)\" } }\n",
    );
    let r = env.run(&["run", "seed.toml"]);
    assert_eq!(r.code, 0, "the seed pipeline failed: {}", r.stderr);
    let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (read(env.step_output(1, "ingest")), read(env.step_output(1, "train")))
}

/// Numbers and text, some missing, for the columns a model reads.
fn frame_for(model: &Model) -> Option<Frame> {
    let mut f = Frame::new();
    for input in &model.signature.inputs {
        let col = match input.kind {
            flywheel_ml::ColumnKind::Text => {
                Column::Text(Text::encode([Some("red"), None, Some("green"), Some(""), Some("blue")]))
            }
            _ => Column::Num(vec![0.0, f64::NAN, -3.5, 1e12, 42.0]),
        };
        f.push(input.name.clone(), col).ok()?;
    }
    Some(f)
}

fn predict_in_process(model: &Model) -> &'static str {
    match frame_for(model) {
        Some(frame) => match (model.predict(&frame), model.predict_parallel(&frame, 2)) {
            (Ok(_), Ok(_)) => "predicted",
            _ => "refused to predict",
        },
        None => "no frame",
    }
}

#[test]
fn mutated_pipeline_files_never_panic_check() {
    let seed = std::fs::read(repo_root().join("examples/adult-income/pipeline.toml")).expect("example pipeline");
    let env = Env::new();
    Fuzz::new("pipeline", "toml", seed, 75).run(|bytes| {
        std::fs::write(env.path().join("p.toml"), bytes).map_err(|e| e.to_string())?;
        judge(&env, &["check", "p.toml"])
    });
}

#[test]
fn mutated_pipeline_files_never_panic_the_compiler() {
    let seed = std::fs::read(repo_root().join("examples/adult-income/pipeline.toml")).expect("example pipeline");
    let dir = tempfile::tempdir().expect("tempdir");
    let components = flywheel_components::builtins();
    Fuzz::new("pipeline-in-process", "toml", seed, 1000).run(|bytes| {
        let path = dir.path().join("p.toml");
        std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
        let compiled = no_panic("compile_file", || flywheel_pipeline::compile_file(&path, &components).is_ok())?;
        Ok(if compiled { "valid" } else { "refused" }.to_string())
    });
}

#[test]
fn mutated_csv_files_never_panic_stats_validate_or_drift() {
    let env = Env::new();
    env.write("schema.toml", SCHEMA);
    env.write("reference.csv", CSV);
    Fuzz::new("csv", "csv", CSV.as_bytes().to_vec(), 60).run(|bytes| {
        std::fs::write(env.path().join("d.csv"), bytes).map_err(|e| e.to_string())?;
        judge(&env, &["stats", "d.csv", "--json"])?;
        judge(&env, &["validate", "d.csv", "--schema", "schema.toml"])?;
        judge(&env, &["drift", "reference.csv", "d.csv"])
    });
}

#[test]
fn mutated_gzip_files_never_panic_stats() {
    let env = Env::new();
    Fuzz::new("csv.gz", "csv.gz", gzip(CSV.as_bytes()), 40).run(|bytes| {
        std::fs::write(env.path().join("d.csv.gz"), bytes).map_err(|e| e.to_string())?;
        judge(&env, &["stats", "d.csv.gz"])
    });
}

#[test]
fn mutated_csv_inside_gzip_never_panics_stats() {
    let env = Env::new();
    let fuzz = Fuzz::new("csv-in-gzip", "csv.gz", CSV.as_bytes().to_vec(), 40);
    fuzz.run_with(
        mutations(),
        |ms| gzip(&apply(CSV.as_bytes(), ms)),
        |bytes| {
            std::fs::write(env.path().join("d.csv.gz"), bytes).map_err(|e| e.to_string())?;
            judge(&env, &["stats", "d.csv.gz"])
        },
    );
}

#[test]
fn mutated_schemas_never_panic_validate() {
    let env = Env::new();
    env.write("d.csv", CSV);
    Fuzz::new("schema", "toml", SCHEMA.as_bytes().to_vec(), 30).run(|bytes| {
        std::fs::write(env.path().join("s.toml"), bytes).map_err(|e| e.to_string())?;
        judge(&env, &["validate", "d.csv", "--schema", "s.toml"])
    });
}

#[test]
fn mutated_parquet_and_models_never_panic_stats_predict_or_inspect() {
    let env = Env::new();
    let (parquet, model) = made_by_flywheel(&env);
    env.write("d.csv", CSV);
    Fuzz::new("parquet", "parquet", parquet.clone(), 60).run(|bytes| {
        std::fs::write(env.path().join("d.parquet"), bytes).map_err(|e| e.to_string())?;
        judge(&env, &["stats", "d.parquet"])
    });
    std::fs::write(env.path().join("seed.parquet"), &parquet).expect("write");
    Fuzz::new("model", "json", model, 40).run(|bytes| {
        std::fs::write(env.path().join("m.json"), bytes).map_err(|e| e.to_string())?;
        judge(&env, &["models", "inspect", "m.json"])?;
        judge(&env, &["predict", "m.json", "seed.parquet", "-o", "out.parquet"])
    });
}

/// Values that a model's numbers must be checked against: out of range
/// indices, non-finite stand-ins, wrong types.
const MODEL_VALUES: &[&str] =
    &["-1", "0", "1", "2", "7", "4294967295", "1e308", "-1e308", "0.5", "null", "\"x\"", "[]", "{}", "true"];

/// Replaces the `at`-th leaf (number, string, bool or null) of `v`.
fn replace_leaf(v: &mut serde_json::Value, at: &mut usize, with: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match v {
        J::Array(items) => items.iter_mut().any(|x| replace_leaf(x, at, with)),
        J::Object(map) => map.values_mut().any(|x| replace_leaf(x, at, with)),
        leaf => {
            if *at == 0 {
                *leaf = with.clone();
                return true;
            }
            *at -= 1;
            false
        }
    }
}

fn count_leaves(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(items) => items.iter().map(count_leaves).sum(),
        serde_json::Value::Object(map) => map.values().map(count_leaves).sum(),
        _ => 1,
    }
}

/// A model whose JSON stays well-formed but whose values are replaced: this
/// reaches the consistency checks and prediction, not only the parser.
fn edit_values(seed: &serde_json::Value, edits: &[(Index, &'static str)]) -> Vec<u8> {
    let mut v = seed.clone();
    let leaves = count_leaves(&v).max(1);
    for (i, with) in edits {
        let with = serde_json::from_str(with).unwrap_or(serde_json::Value::Null);
        replace_leaf(&mut v, &mut i.index(leaves), &with);
    }
    serde_json::to_vec_pretty(&v).unwrap_or_default()
}

#[test]
fn models_with_edited_values_never_panic_loading_or_prediction() {
    let env = Env::new();
    let (_, model) = made_by_flywheel(&env);
    let seed: serde_json::Value = serde_json::from_slice(&model).expect("model JSON");
    let fuzz = Fuzz::new("model-values-in-process", "json", model, 2000);
    let edits = prop::collection::vec((any::<Index>(), prop::sample::select(MODEL_VALUES)), 1..4);
    fuzz.run_with(
        edits,
        |e| edit_values(&seed, e),
        |bytes| {
            let bytes = bytes.to_vec();
            no_panic("load and predict", move || match Model::from_json(&bytes) {
                Ok(m) => predict_in_process(&m).to_string(),
                Err(_) => "refused".to_string(),
            })
        },
    );
}

#[test]
fn mutated_models_never_panic_loading_or_prediction() {
    let env = Env::new();
    let (_, model) = made_by_flywheel(&env);
    Fuzz::new("model-in-process", "json", model, 1000).run(|bytes| {
        let bytes = bytes.to_vec();
        no_panic("load and predict", move || match Model::from_json(&bytes) {
            Ok(m) => predict_in_process(&m).to_string(),
            Err(_) => "refused".to_string(),
        })
    });
}

fn onnx_fixture(name: &str) -> (Vec<u8>, String) {
    let dir = repo_root().join("crates/flywheel-ml/tests/fixtures/onnx");
    let bytes = std::fs::read(dir.join(format!("{name}.onnx"))).expect("onnx fixture");
    let want: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).expect("fixture json"))
            .expect("fixture json");
    let signature = serde_json::json!({ "inputs": want["columns"], "target": "label" }).to_string();
    (bytes, signature)
}

#[test]
fn mutated_onnx_files_never_panic_import_or_prediction() {
    for (name, base) in [("forest_binary", 300), ("logistic_binary", 300), ("mlp_regression", 200)] {
        let (seed, signature) = onnx_fixture(name);
        let sig = flywheel_ml::model::onnx_estimator::OnnxSignature::from_json(signature.as_bytes(), "sig.json")
            .expect("fixture signature");
        let kind: &'static str = Box::leak(format!("onnx-in-process-{name}").into_boxed_str());
        Fuzz::new(kind, "onnx", seed, base).run(|bytes| {
            let (bytes, sig) = (bytes.to_vec(), sig.clone());
            no_panic("import and predict", move || {
                match flywheel_ml::model::onnx_estimator::import(bytes, Some(sig), "m.onnx") {
                    Ok(m) => predict_in_process(&m).to_string(),
                    Err(_) => "refused".to_string(),
                }
            })
        });
    }
}

#[test]
fn mutated_onnx_files_never_panic_models_import() {
    let env = Env::new();
    let (seed, signature) = onnx_fixture("logistic_binary");
    env.write("sig.json", &signature);
    env.write("d.csv", "age,fnlwgt,education_num,capital_gain,capital_loss,hours_per_week\n30,1000,9,0,0,40\n");
    Fuzz::new("onnx", "onnx", seed, 30).run(|bytes| {
        std::fs::write(env.path().join("m.onnx"), bytes).map_err(|e| e.to_string())?;
        judge(&env, &["models", "import", "m", "m.onnx", "--signature", "sig.json"])?;
        judge(&env, &["predict", "m.onnx", "d.csv"])
    });
}

#[test]
fn the_mutator_changes_inputs_and_keeps_them_bounded() {
    // Guards the test itself: mutations must actually alter the seed.
    let seed = CSV.as_bytes();
    let mut runner = TestRunner::new(Config { rng_seed: RngSeed::Fixed(3), ..Config::default() });
    let mut changed = 0;
    for _ in 0..200 {
        let ms = mutations().new_tree(&mut runner).expect("strategy").current();
        let out = apply(seed, &ms);
        assert!(out.len() <= seed.len() * 2 + 64 * 4 + 64, "{}", out.len());
        if out != seed {
            changed += 1;
        }
    }
    assert!(changed > 150, "only {changed} of 200 mutations changed the input");
}

#[test]
fn a_panic_in_process_is_caught_and_reported() {
    // Guards the test itself: a panicking entry point must be a violation.
    let r = no_panic("entry point", || -> u8 { panic!("boom") });
    assert_eq!(r, Err("entry point panicked: boom".to_string()));
    assert_eq!(no_panic("entry point", || 7), Ok(7));
}
