//! Publishing is the last act of a sound run, through the real binary: a
//! failed validation or evaluation publishes nothing, `push` is never a
//! cache hit, a refused push is its own outcome (exit 4), concurrent runs
//! move `production` only by compare-and-set against what `bless` compared
//! with, and a model that could not be served is never stored.

mod common;
use common::*;
use serde_json::Value;

/// 600 rows; `label` follows `x`; `group` has two values.
fn csv() -> String {
    let mut s = String::from("day,x,z,group,solo,label\n");
    let mut state: u64 = 11;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f64) / ((1u64 << 31) as f64)
    };
    for i in 0..600 {
        let x = next() * 4.0 - 2.0;
        let z = next();
        let label = if (x > 0.0) != (next() < 0.1) { "yes" } else { "no" };
        s.push_str(&format!("{i},{x:.4},{z:.4},{},s,{label}\n", ["a", "b"][i % 2]));
    }
    s
}

/// ingest → [validate] → train → evaluate → bless → push, with `extra`
/// steps appended and `train` taking `features`.
fn pipeline(features: &str, evaluate: &str, extra: &str) -> String {
    format!(
        "[pipeline]\nname = \"pub\"\n\
         [steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"d.csv\", split_key = \"day\" }}\n\
         [steps.train]\ncomponent = \"train\"\ninputs = {{ data = \"ingest.train\" }}\nparams = {{ target = \"label\", model = \"logistic\", features = [{features}] }}\n\
         [steps.evaluate]\ncomponent = \"evaluate\"\ninputs = {{ model = \"train.model\", data = \"ingest.eval\" }}\nparams = {{ {evaluate} }}\n\
         [steps.bless]\ncomponent = \"bless\"\ninputs = {{ model = \"train.model\", data = \"ingest.eval\", baseline = \"@model:clf@production\" }}\nparams = {{ thresholds = {{ accuracy = \">= 0.3\" }} }}\n\
         [steps.push]\ncomponent = \"push\"\ninputs = {{ model = \"train.model\", blessing = \"bless.blessing\" }}\nparams = {{ model_name = \"clf\", alias = \"production\" }}\n\
         {extra}"
    )
}

fn production(env: &Env) -> Option<i64> {
    let models = env.run(&["models", "--json"]).json();
    models.as_array()?.iter().find(|m| m["aliases"].as_array().is_some_and(|a| a.iter().any(|x| x == "production")))?
        ["version"]
        .as_i64()
}

fn versions(env: &Env) -> usize {
    env.run(&["models", "--json"]).json().as_array().map_or(0, Vec::len)
}

#[test]
fn a_failed_validation_stops_training_and_publishes_nothing() {
    let env = Env::new();
    env.write("d.csv", &csv());
    // The curated schema wants a column the data does not have.
    env.write("schema.toml", "[columns.temperature]\ntype = \"float\"\n");
    let validate = "[steps.statistics]\ncomponent = \"statistics\"\ninputs = { data = \"ingest.train\" }\n\
                    [steps.schema]\ncomponent = \"schema\"\ninputs = { statistics = \"statistics.statistics\" }\nparams = { path = \"schema.toml\" }\n\
                    [steps.validate]\ncomponent = \"validate\"\ninputs = { data = \"ingest.train\", schema = \"schema.schema\" }\n";
    env.write("p.toml", &pipeline("\"x\"", "", validate));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let o = r.json();
    assert_eq!(step(&o, "validate")["status"], "failed");
    for s in ["train", "evaluate", "bless", "push"] {
        assert_eq!(step(&o, s)["status"], "skipped", "{s}: {o:#}");
    }
    let why = step(&o, "train")["error"].as_str().unwrap();
    assert!(why.contains("data validation `validate` did not succeed"), "{why}");
    assert_eq!(versions(&env), 0, "nothing registered");
}

#[test]
fn a_failed_evaluation_publishes_nothing_though_push_does_not_read_it() {
    let env = Env::new();
    env.write("d.csv", &csv());
    env.write("p.toml", &pipeline("\"x\"", "slices = [\"no_such_column\"]", ""));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let o = r.json();
    assert_eq!(step(&o, "evaluate")["status"], "failed");
    assert_eq!(step(&o, "bless")["status"], "succeeded", "independent steps still finish");
    assert_eq!(step(&o, "push")["status"], "skipped");
    let why = step(&o, "push")["error"].as_str().unwrap();
    assert!(why.contains("publishes only when every other step succeeded, and evaluate did not"), "{why}");
    assert_eq!(versions(&env), 0);
}

#[test]
fn push_is_never_a_cache_hit_and_reports_what_is_now_true() {
    let env = Env::new();
    env.write("d.csv", &csv());
    env.write("a.toml", &pipeline("\"z\"", "", ""));
    env.write("b.toml", &pipeline("\"x\"", "", ""));
    assert_eq!(env.run(&["run", "a.toml"]).code, 0);
    assert_eq!(env.run(&["run", "b.toml"]).code, 0);
    assert_eq!(production(&env), Some(2));
    // Someone moves production back by hand; the unchanged pipeline runs again.
    assert_eq!(env.run(&["models", "alias", "clf@1", "production"]).code, 0);
    let r = env.run(&["run", "b.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = r.json();
    assert_eq!(step(&o, "train")["cache_hit"], true);
    // `bless` compares the same candidate with the same version as before.
    assert_eq!(step(&o, "bless")["cache_hit"], true);
    assert_eq!(step(&o, "push")["cache_hit"], false);
    assert_eq!(step(&o, "push")["summary"]["model_version"], "clf@2");
    assert_eq!(production(&env), Some(2), "the summary says what is true");
    // Once more with nothing changed: production is 2, so bless compares
    // anew (with 2), and push finds 2 already published.
    let o = env.run(&["run", "b.toml", "--json"]).json();
    assert_eq!(step(&o, "bless")["cache_hit"], false);
    assert_eq!(step(&o, "push")["cache_hit"], false);
    assert_eq!(step(&o, "push")["summary"]["model_version"], "clf@2");
    assert_eq!(
        env.run(&["models", "audit", "--json"]).json().as_array().unwrap().len(),
        4,
        "moves: 1, 2, back to 1, 2"
    );
}

#[test]
fn a_refused_push_is_its_own_outcome_with_exit_code_4() {
    let env = Env::new();
    env.write("d.csv", &csv());
    let strict = pipeline("\"z\"", "", "").replace(">= 0.3", ">= 0.99");
    env.write("p.toml", &strict);
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let o = r.json();
    assert_eq!(o["status"], "refused");
    assert_eq!(step(&o, "push")["status"], "refused");
    assert!(step(&o, "push")["error"].as_str().unwrap().contains("not blessed"));
    let run = o["run_id"].as_i64().unwrap();
    assert_eq!(env.execution(run, "push")["status"], "refused");
    assert_eq!(env.runs()[0]["status"], "refused");
    let table = env.run(&["run", "p.toml"]);
    assert_eq!(table.code, 4);
    assert!(table.stdout.contains("refused"), "{}", table.stdout);
    let shown = env.run(&["runs", "show", &run.to_string()]).stdout;
    assert!(shown.contains("refused: not blessed"), "{shown}");
    assert_eq!(versions(&env), 0);
    // A refused run is finished: there is nothing to resume.
    assert_eq!(env.run(&["resume", &run.to_string()]).code, 2);
}

/// The blessing `bless` wrote in `run`.
fn blessing(env: &Env, run: i64) -> Value {
    serde_json::from_str(&std::fs::read_to_string(env.step_output(run, "bless")).unwrap()).unwrap()
}

#[test]
fn concurrent_runs_move_production_only_from_the_version_they_compared_with() {
    let env = Env::new();
    env.write("d.csv", &csv());
    let features =
        ["\"x\"", "\"z\"", "\"x\", \"z\"", "\"x\", \"group\"", "\"z\", \"group\"", "\"x\", \"z\", \"group\""];
    for (i, f) in features.iter().enumerate() {
        env.write(&format!("p{i}.toml"), &pipeline(f, "", ""));
    }
    // Start them all at once.
    let procs: Vec<_> = (0..features.len())
        .map(|i| {
            env.cmd(&["run", &format!("p{i}.toml"), "--json", "--no-cache"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut refused_for_moving = 0;
    for p in procs {
        let out = p.wait_with_output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        assert!(
            code == 0 || code == 4,
            "exit {code}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        if code == 4 {
            let o: Value = serde_json::from_slice(&out.stdout).unwrap();
            let why = step(&o, "push")["error"].as_str().unwrap().to_string();
            assert!(why.contains("`production` moved"), "{why}");
            refused_for_moving += 1;
        }
    }
    // Every alias move came from the version its run's blessing compared with.
    let audit = env.run(&["models", "audit", "--json"]).json();
    for mv in audit.as_array().unwrap() {
        let run = mv["run"].as_i64().unwrap();
        let compared = &blessing(&env, run)["baseline_ref"]["version"];
        assert_eq!(
            &mv["from_version"], compared,
            "run {run} moved production from {} having compared with {compared}",
            mv["from_version"]
        );
    }
    assert!(production(&env).is_some());
    eprintln!("{refused_for_moving} of {} concurrent pushes refused because production moved", features.len());
}

/// A CSV whose `x` holds -inf on one row.
fn csv_with_infinity() -> String {
    let lines: Vec<String> =
        csv().lines().map(|l| if l.starts_with("3,") { "3,-inf,0.5,b,s,no".into() } else { l.to_string() }).collect();
    lines.join("\n") + "\n"
}

#[test]
fn an_infinite_value_is_refused_at_training_and_at_prediction_alike() {
    let env = Env::new();
    env.write("d.csv", &csv_with_infinity());
    let p = "[pipeline]\nname = \"inf\"\n[steps.ingest]\ncomponent = \"ingest\"\nparams = { path = \"d.csv\", split_key = \"day\" }\n\
             [steps.train]\ncomponent = \"train\"\ninputs = { data = \"ingest.train\" }\nparams = { target = \"label\", model = \"gbt\", features = [\"x\", \"z\"] }\n";
    env.write("p.toml", p);
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = step(&r.json(), "train")["error"].as_str().unwrap().to_string();
    assert!(e.contains("column `x` holds -inf on data row"), "{e}");
    // A model trained on clean data refuses the same value when predicting.
    env.write("clean.csv", &csv());
    env.write("p.toml", &p.replace("d.csv", "clean.csv"));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let run = r.json()["run_id"].as_i64().unwrap();
    let model = env.step_output(run, "train");
    let r = env.run(&["predict", model.to_str().unwrap(), "d.csv", "-o", "out.parquet"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("column `x` holds -inf on data row 4"), "{}", r.stderr);
    assert!(!env.path().join("out.parquet").exists(), "nothing half written");
}

#[test]
fn a_model_file_with_a_null_number_is_bad_input_that_says_why() {
    let env = Env::new();
    env.write("clean.csv", &csv());
    let p = "[pipeline]\nname = \"m\"\n[steps.ingest]\ncomponent = \"ingest\"\nparams = { path = \"clean.csv\", split_key = \"day\" }\n\
             [steps.train]\ncomponent = \"train\"\ninputs = { data = \"ingest.train\" }\nparams = { target = \"label\", model = \"tree\", features = [\"x\"] }\n";
    env.write("p.toml", p);
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let run = r.json()["run_id"].as_i64().unwrap();
    let text = std::fs::read_to_string(env.step_output(run, "train")).unwrap();
    let at = text.find("\"threshold\": ").expect("a tree has thresholds") + "\"threshold\": ".len();
    let end = at + text[at..].find([',', '\n']).unwrap();
    let broken = format!("{}null{}", &text[..at], &text[end..]);
    env.write("broken.json", &broken);
    for args in
        [vec!["models", "inspect", "broken.json"], vec!["predict", "broken.json", "clean.csv", "-o", "o.parquet"]]
    {
        let r = env.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("non-finite value"), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("broken.json"), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn dropped_rows_and_undefined_slice_metrics_are_warnings_people_see() {
    let env = Env::new();
    // Ten rows lose their label.
    let data: String = csv()
        .lines()
        .enumerate()
        .map(|(i, l)| if (1..=10).contains(&i) { format!("{},", l.rsplit_once(',').unwrap().0) } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n");
    env.write("d.csv", &data);
    // Each `label` slice holds one class: ROC AUC is undefined there.
    env.write("p.toml", &pipeline("\"x\"", "slices = [\"label\", \"group\"]", ""));
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = r.json();
    let w = step(&o, "train")["summary"]["warnings"].to_string();
    // Ten rows lost their label; the split decides how many are training rows.
    assert!(w.contains("training rows with a missing `label`"), "{w}");
    let table = env.run(&["runs", "show", &o["run_id"].to_string()]).stdout;
    assert!(table.contains("training rows with a missing `label`"), "{table}");
    let e = step(&o, "evaluate")["summary"]["warnings"].to_string();
    assert!(e.contains("evaluation rows without a `label` value"), "{e}");
    assert!(table.contains("warning: roc_auc undefined on slice label=yes of \"label\""), "{table}");
}
