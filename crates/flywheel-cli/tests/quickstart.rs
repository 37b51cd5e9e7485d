//! The README's first command, and the examples, through the real binary.

mod common;
use common::*;

#[test]
fn quickstart_runs_the_bike_example_then_reruns_from_the_cache() {
    let env = Env::new();
    let r = env.run(&["quickstart", "--json", "--no-loop"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = r.json();
    assert_eq!(o["status"], "succeeded");
    let names: Vec<&str> = o["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(names, ["ingest", "statistics", "schema", "validate", "train", "evaluate", "bless", "infra", "push"]);
    assert!(o["steps"].as_array().unwrap().iter().all(|s| s["cache_hit"] == false));
    let metrics = &step(&o, "evaluate")["summary"]["metrics"];
    // Boosted trees on calendar features and weather, evaluated on the last
    // five months: R² well above a constant model.
    assert!(metrics["r2"].as_f64().unwrap() > 0.8, "{metrics}");
    // The first model has no production model to beat: blessed on its bounds.
    let b = &step(&o, "bless")["summary"]["blessing"];
    assert_eq!((b["blessed"].as_bool(), b["baseline"].as_bool()), (Some(true), Some(false)), "{b}");
    assert_eq!(step(&o, "push")["summary"]["alias"], "production");
    // Every eval row went through the real server and came back as predicted.
    let infra = &step(&o, "infra")["summary"]["infra_blessing"];
    assert_eq!(infra["blessed"], true, "{infra}");
    assert_eq!(infra["rows_checked"], metrics["rows"], "{infra}");
    assert_eq!(infra["mismatches"], 0, "{infra}");
    assert_eq!(
        metrics["rows"].as_u64().unwrap() + step(&o, "ingest")["summary"]["rows"]["train"].as_u64().unwrap(),
        17_379
    );
    assert_eq!(step(&o, "push")["summary"]["model_version"], "bike-sharing@1");

    // Everything up to evaluation comes from the cache; `bless` runs again,
    // because now there is a production model to compare with (itself).
    let again = env.run(&["quickstart", "--json", "--no-loop"]).json();
    assert_eq!(again["status"], "succeeded");
    for s in again["steps"].as_array().unwrap() {
        let rerun = s["step"] == "bless" || s["step"] == "push";
        assert_eq!(s["cache_hit"] == true, !rerun, "{s:#}");
    }
    assert_eq!(step(&again, "bless")["summary"]["blessing"]["baseline"], true);
    // A cache hit reports the same results and does not register a new version.
    assert_eq!(step(&again, "evaluate")["summary"], step(&o, "evaluate")["summary"]);
    assert_eq!(step(&again, "push")["summary"]["model_version"], "bike-sharing@1");

    // The baseline is now the same each time: the third run is all cached
    // but `push`, whose effect lives in the registry and is applied anew.
    let third = env.run(&["quickstart", "--json", "--no-loop"]).json();
    for s in third["steps"].as_array().unwrap() {
        assert_eq!(s["cache_hit"] == true, s["step"] != "push", "{s:#}");
    }

    let runs = env.runs();
    assert_eq!(runs.as_array().unwrap().len(), 3);
    assert_eq!(runs[0]["trigger"], "quickstart");

    // Lineage of the model version reaches back to the ingested data and
    // forward to its evaluation and registration.
    let l = env.run(&["lineage", "bike-sharing@1", "--json"]);
    assert_eq!(l.code, 0, "{}", l.stderr);
    let l = l.json();
    let up: Vec<&str> =
        l["upstream"].as_array().unwrap().iter().map(|e| e["execution"]["step"].as_str().unwrap()).collect();
    assert!(up.contains(&"train") && up.contains(&"ingest"), "{up:?}");
    let down: Vec<&str> =
        l["downstream"].as_array().unwrap().iter().map(|e| e["execution"]["step"].as_str().unwrap()).collect();
    assert!(down.contains(&"evaluate") && down.contains(&"push"), "{down:?}");
    assert_eq!(l["model_versions"][0]["version"], 1);

    // Human output of the same commands works too.
    for args in [&["runs", "list"][..], &["runs", "show", "1"], &["lineage", "bike-sharing"], &["models"]] {
        let r = env.run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(!r.stdout.is_empty());
    }
}

/// The README's first command closes the loop: 2011's model serves 2012's
/// traffic, falls behind, a triggered run learns from the served rows, and
/// its model goes out as a canary and is promoted, with no one in between;
/// again when run a second time.
#[test]
fn quickstart_closes_the_loop_and_the_runs_and_registry_tell_it() {
    let env = Env::new();
    for round in 0..2 {
        let r = env.run(&["quickstart", "--json", "--traffic-rows", "3000", "--act-timeout", "240"]);
        assert_eq!(r.code, 0, "round {round}: {}\n{}", r.stdout, r.stderr);
        let o = r.json();
        assert_eq!(o["status"], "promoted", "{o:#}");
        assert_eq!(o["first_version"], 1, "the story starts from the 2011 model: {o:#}");
        assert!(o["production"].as_i64().unwrap() > 1, "{o:#}");
        let story = o["story"].to_string();
        assert!(story.contains("is out as canary"), "{story}");
        assert!(story.contains("promoted to production (was @1)"), "{story}");
    }
    // `runs list` says what started each run; the triggered ones, why.
    let runs = env.runs();
    let triggers: Vec<&str> = runs.as_array().unwrap().iter().map(|r| r["trigger"].as_str().unwrap()).collect();
    assert_eq!(triggers.iter().filter(|t| **t == "quickstart").count(), 2, "{triggers:?}");
    let fired: Vec<&&str> = triggers.iter().filter(|t| **t != "quickstart").collect();
    assert_eq!(fired.len(), 2, "{triggers:?}");
    assert!(fired.iter().all(|t| t.starts_with("performance: rmse") || t.starts_with("drift: ")), "{triggers:?}");
    // The registry's history: the canary pushed by the triggered run, then
    // promoted by `up`, the alias moved by compare-and-set with the reason.
    let h = env.run(&["models", "history", "bike-sharing"]);
    assert_eq!(h.code, 0, "{}", h.stderr);
    assert!(h.stdout.contains("bike-sharing@canary: nothing → 2"), "{}", h.stdout);
    assert!(h.stdout.contains("bike-sharing@production: 1 → 2 — canary promoted: held"), "{}", h.stdout);
    assert!(h.stdout.contains("the story starts again"), "{}", h.stdout);
    // `flywheel status` tells where it stands: no `up` now, the canary promoted.
    let st = env.run(&["status", "--json"]).json();
    assert_eq!(st["up"].as_array().unwrap().len(), 0, "{st:#}");
    let d = &st["deployments"][0];
    assert_eq!((d["name"].as_str(), d["canary"].as_i64()), (Some("bike-sharing"), None), "{st:#}");
    assert_eq!(d["newest_canary"]["outcome"], "promoted", "{st:#}");
    assert!(d["newest_window"]["rows"].as_u64().unwrap() > 0, "{st:#}");
}

#[test]
fn unknown_runs_and_artifacts_are_clear_errors() {
    let env = Env::new();
    let r = env.run(&["runs", "show", "99"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no run 99"), "{}", r.stderr);
    let r = env.run(&["lineage", "nosuchmodel@2"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no model version nosuchmodel@2"), "{}", r.stderr);
    let r = env.run(&["resume", "5"]);
    assert_eq!(r.code, 2);
}

#[test]
fn the_examples_compile() {
    let root = repo_root();
    for example in ["bike-sharing", "adult-income"] {
        let env = Env::new();
        let path = root.join("examples").join(example).join("pipeline.toml");
        let r = env.run(&["check", path.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{example}: {}", r.stderr);
    }
}
