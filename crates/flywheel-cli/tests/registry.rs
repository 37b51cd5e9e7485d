//! The registry as a person uses it, through the real binary: `models
//! show` (every version with its metrics, blessing, approval, aliases,
//! signature and run), approvals with who and why, tags, descriptions,
//! alias moves with a reason, `models history`, and bad references.

mod common;
use common::*;

/// 300 rows; `label` follows `x`.
fn csv() -> String {
    let mut s = String::from("day,x,z,label\n");
    for i in 0..300 {
        let x = ((i * 37) % 101) as f64 / 25.0 - 2.0;
        let z = ((i * 53) % 97) as f64 / 97.0;
        let flip = i % 17 == 0;
        s.push_str(&format!("{i},{x:.4},{z:.4},{}\n", if (x > 0.0) != flip { "yes" } else { "no" }));
    }
    s
}

const PIPELINE: &str = "[pipeline]\nname = \"reg\"\n\
    [steps.ingest]\ncomponent = \"ingest\"\nparams = { path = \"d.csv\", split_key = \"day\" }\n\
    [steps.train]\ncomponent = \"train\"\ninputs = { data = \"ingest.train\" }\nparams = { target = \"label\", model = \"logistic\", features = [\"x\", \"z\"] }\n\
    [steps.evaluate]\ncomponent = \"evaluate\"\ninputs = { model = \"train.model\", data = \"ingest.eval\" }\n\
    [steps.bless]\ncomponent = \"bless\"\ninputs = { model = \"train.model\", data = \"ingest.eval\" }\nparams = { thresholds = { accuracy = \">= 0.5\" } }\n\
    [steps.push]\ncomponent = \"push\"\ninputs = { model = \"train.model\", blessing = \"bless.blessing\" }\nparams = { model_name = \"clf\", alias = \"production\" }\n";

fn registered() -> Env {
    let env = Env::new();
    env.write("d.csv", &csv());
    env.write("p.toml", PIPELINE);
    let r = env.run(&["run", "p.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    env
}

fn ok(env: &Env, args: &[&str]) -> Ran {
    let r = env.run(args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    r
}

#[test]
fn show_lists_each_version_with_what_made_it_and_what_people_decided() {
    let env = registered();
    ok(&env, &["models", "approve", "clf@production", "--reason", "slices checked"]);
    ok(&env, &["models", "tag", "clf@1", "team=forecasting", "data=2011"]);
    ok(&env, &["models", "tag", "clf@1", "--remove", "data"]);
    ok(&env, &["models", "describe", "clf@1", "logistic on x and z"]);
    let card = ok(&env, &["models", "show", "clf", "--json"]).json();
    let v = &card["versions"][0];
    assert_eq!(v["version"], 1);
    assert_eq!(v["run_id"], 1, "the run that made it");
    assert_eq!(v["aliases"], serde_json::json!(["production"]));
    assert_eq!(v["approval"]["state"], "approved");
    assert_eq!(v["approval"]["reason"], "slices checked");
    assert!(v["approval"]["by"].is_string() && v["approval"]["at"].is_string(), "{v:#}");
    assert_eq!(v["tags"], serde_json::json!({ "team": "forecasting" }));
    assert_eq!(v["description"], "logistic on x and z");
    assert_eq!(v["blessing"]["blessed"], true);
    let accuracy = v["metrics"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.5, "{v:#}");
    let inputs: Vec<&str> =
        v["signature"]["inputs"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(inputs, ["x", "z"]);
    // The human view says the same.
    let text = ok(&env, &["models", "show", "clf"]).stdout;
    for want in
        ["@1  [production]", "approved by", "slices checked", "blessed     true", "accuracy", "team=forecasting"]
    {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn history_tells_what_happened_to_one_model_in_order_with_reasons() {
    let env = registered();
    ok(&env, &["models", "reject", "clf@1", "--reason", "drifts on weekends"]);
    ok(&env, &["models", "approve", "clf@1"]);
    ok(&env, &["models", "alias", "clf@1", "staging", "--reason", "for the demo"]);
    let history = ok(&env, &["models", "history", "clf", "--json"]).json();
    let actions: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["register", "set_alias", "reject", "approve", "set_alias"]);
    assert_eq!(history[2]["reason"], "drifts on weekends");
    assert_eq!(history[4]["alias"], "staging");
    assert_eq!(history[4]["reason"], "for the demo");
    let text = ok(&env, &["models", "history", "clf"]).stdout;
    let stable: Vec<String> =
        text.lines().map(|l| l.split_once("  ").map_or(l, |(_, rest)| rest).to_string()).collect();
    let stable = stable.join("\n").replace(&std::env::var("USER").unwrap_or_else(|_| "cli".into()), "USER");
    insta::assert_snapshot!(stable);
}

#[test]
fn decisions_need_a_version_and_name_what_is_wrong() {
    let env = registered();
    let cases: [(&[&str], &str); 6] = [
        (&["models", "approve", "clf"], "name the version to approve"),
        (&["models", "reject", "clf@7"], "clf@7"),
        (&["models", "tag", "clf@1", "team"], "write KEY=VALUE"),
        (&["models", "tag", "clf@1", "a/b=c"], "tag key `a/b`"),
        (&["models", "show", "clg"], "did you mean `clf`?"),
        (&["models", "history", "nope@1"], "no model `nope@1` is registered"),
    ];
    for (args, words) in cases {
        let r = env.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(words), "{args:?}: {}", r.stderr);
    }
    // Nothing of the above reached the audit log.
    let audit = ok(&env, &["models", "audit", "--json"]).json();
    assert_eq!(audit.as_array().unwrap().len(), 1, "only the push's alias move: {audit:#}");
}

#[test]
fn an_alias_moved_by_hand_can_be_compared_and_set() {
    let env = registered();
    // `production` points at 1: a move that expected nothing there is refused.
    let r = env.run(&["models", "alias", "clf@1", "production", "--expect", "none"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("clf@production points at version 1, not no version: nothing moved"), "{}", r.stderr);
    let r = env.run(&["models", "alias", "clf@1", "staging", "--expect", "2"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let shown = ok(&env, &["models", "show", "clf", "--json"]).json();
    assert_eq!(shown["versions"][0]["aliases"], serde_json::json!(["production"]), "nothing moved");
    ok(&env, &["models", "alias", "clf@1", "staging", "--expect", "none", "--reason", "first staging"]);
    let history = ok(&env, &["models", "history", "clf", "--json"]).json();
    assert_eq!(history.as_array().unwrap().len(), 3, "register, production, staging: {history:#}");
}
