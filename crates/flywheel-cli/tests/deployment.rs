//! Deployment files through `flywheel check`: the bike-sharing example's
//! is valid, its model read from the pipeline's `push` (a `${parameter}`
//! taken at its default), and every default filled in; the bad-input
//! corpus (`deploy-*`) holds the refusals.

mod common;

use common::*;

#[test]
fn the_example_deployment_is_valid_with_its_defaults_filled_in() {
    let env = Env::new();
    let file = repo_root().join("examples/bike-sharing/deployment.toml");
    let r = env.run(&["check", file.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = r.json();
    assert_eq!((d["name"].as_str(), d["model"].as_str()), (Some("bike-sharing"), Some("bike-sharing")), "{d}");
    assert_eq!(d["pipeline"]["name"], "bike-sharing");
    assert_eq!(d["serving"]["split"], serde_json::json!({ "production": 100 }));
    assert_eq!((d["serving"]["log_sample"].as_f64(), d["serving"]["shadow"].is_null()), (Some(1.0), true));
    assert_eq!(d["monitoring"]["window"], serde_json::json!({ "requests": 500 }));
    assert_eq!(d["monitoring"]["performance"], serde_json::json!({ "metric": "rmse", "op": "le", "value": 120.0 }));
    let on: Vec<&str> = d["triggers"].as_array().unwrap().iter().map(|t| t["on"].as_str().unwrap()).collect();
    assert_eq!(on, ["drift", "performance", "schedule", "on_demand"]);
    let drift = &d["triggers"][0];
    assert_eq!((drift["windows"].as_u64(), drift["cooldown_seconds"].as_f64()), (Some(3), Some(600.0)));
    assert_eq!((drift["when_busy"].as_str(), d["triggers"][3]["when_busy"].as_str()), (Some("skip"), Some("queue")));
    assert_eq!(d["triggers"][2]["cron"], "0 3 * * 1");
    assert_eq!(d["delivery"]["approval"], "auto");
    assert_eq!(
        (d["delivery"]["canary_percent"].as_u64(), d["delivery"]["hold"]["requests"].as_u64()),
        (Some(10), Some(300))
    );

    let r = env.run(&["check", file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("deployment `bike-sharing` is valid: pipeline `bike-sharing`"), "{}", r.stdout);
}

#[test]
fn a_deployment_with_problems_everywhere_gets_them_all_at_once() {
    let env = Env::new();
    env.write(
        "p.toml",
        "[pipeline]\nname = \"p\"\n[steps.ingest]\ncomponent = \"ingest\"\nparams = { path = \"d.csv\" }\n",
    );
    env.write(
        "d.toml",
        r#"[deployment]
pipeline = "p.toml"
[serving]
split = { production = 0 }
addr = "localhost"
[monitoring]
drift_share = 1.5
[[trigger]]
on = "new_data"
[[trigger]]
on = "drift"
windows = 0
when_busy = "wait"
[delivery]
hold = "0s"
"#,
    );
    let r = env.run(&["check", "d.toml", "--json"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    let errors = r.json()["errors"].as_array().unwrap().clone();
    let got: Vec<String> = errors
        .iter()
        .map(|e| {
            format!("{}:{}:{}: {}", e["file"].as_str().unwrap(), e["line"], e["column"], e["message"].as_str().unwrap())
        })
        .collect();
    let want = [
        "d.toml:1:1: the pipeline pushes no model, so there is nothing to deploy",
        "d.toml:4:9: `split` sends no traffic anywhere: give an alias a weight above 0",
        "d.toml:5:8: `addr` must be HOST:PORT with an IP address, found \"localhost\"",
        "d.toml:7:15: `drift_share` must be a share of columns above 0, at most 1, found 1.5",
        "d.toml:9:6: a `new_data` trigger needs `path`",
        "d.toml:12:11: `windows` must be a number of windows from 1 to 1000, found 0",
        "d.toml:13:13: `when_busy` must be one of \"queue\", \"skip\", found \"wait\"",
        "d.toml:15:8: `hold` must be a number of requests or a duration, found \"0s\"",
    ];
    for w in want {
        assert!(got.iter().any(|g| g == w), "missing {w:?} in {got:#?}");
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
}
