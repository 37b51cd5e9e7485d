//! `flywheel stats` against pandas (`flywheel-data/tests/fixtures`),
//! and its handling of bad input.

mod common;
use common::*;
use serde_json::Value;

fn reference() -> Value {
    let p = repo_root().join("crates/flywheel-data/tests/fixtures/statistics.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{what}: flywheel {a} vs pandas {b}");
}

fn check(env: &Env, name: &str, file: &str, extra: &[&str]) {
    let path = repo_root().join("examples").join(file);
    let mut args = vec!["stats", path.to_str().unwrap(), "--json", "--top", "5"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ours = out.json();
    let want = &reference()[name];
    assert_eq!(ours["rows"], want["rows"]);
    for (col, w) in want["columns"].as_object().unwrap() {
        let g = &ours["columns"][col];
        let what = format!("{name}.{col}");
        for key in ["count", "missing", "distinct"] {
            assert_eq!(g[key], w[key], "{what}.{key}");
        }
        // Rows reconcile: every row is counted as present or missing.
        assert_eq!(g["count"].as_u64().unwrap() + g["missing"].as_u64().unwrap(), want["rows"].as_u64().unwrap());
        if w.get("mean").is_some() {
            for key in ["mean", "std", "min", "max"] {
                close(g[key].as_f64().unwrap(), w[key].as_f64().unwrap(), &format!("{what}.{key}"));
            }
            assert_eq!(g["zeros"], w["zeros"], "{what}.zeros");
            assert_eq!(g["quantiles_exact"], true);
            for (q, v) in w["quantiles"].as_object().unwrap() {
                close(g["quantiles"][q].as_f64().unwrap(), v.as_f64().unwrap(), &format!("{what}.q{q}"));
            }
        } else {
            let counts =
                |v: &Value| v.as_array().unwrap().iter().map(|x| x["count"].as_u64().unwrap()).collect::<Vec<_>>();
            assert_eq!(counts(&g["top"]), counts(&w["top"]), "{what}.top");
        }
    }
}

#[test]
fn statistics_match_pandas_on_bike_sharing() {
    check(&Env::new(), "bike", "bike-sharing/data/bike_sharing_hourly.csv.gz", &[]);
}

#[test]
fn statistics_match_pandas_on_adult_with_one_or_two_threads() {
    let env = Env::new();
    let markers = ",NA,N/A,NaN,nan,null,NULL,None,?";
    check(
        &env,
        "adult",
        "adult-income/data/adult_census_income.csv.gz",
        &["--missing-values", markers, "--threads", "1"],
    );
    check(
        &env,
        "adult",
        "adult-income/data/adult_census_income.csv.gz",
        &["--missing-values", markers, "--threads", "2"],
    );
}

#[test]
fn parquet_gives_the_same_statistics_as_csv() {
    // Ingest writes Parquet: profile the train split both ways.
    let env = Env::new();
    let mut csv = String::from("a,b,c\n");
    for i in 0..2000 {
        csv.push_str(&format!("{},{},{}\n", i % 97, (i as f64 * 0.37).sin(), ["x", "y", "z"][i % 3]));
    }
    env.write("d.csv", &csv);
    env.write(
        "p.toml",
        &format!("{PIPELINE_HEADER}[steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"d.csv\" }}\n"),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let show = env.run(&["runs", "show", "1", "--json"]).json();
    let train = show["executions"][0]["outputs"][0]["artifact"]["uri"]
        .as_str()
        .unwrap()
        .trim_start_matches("file://")
        .to_string();
    let from_parquet = env.run(&["stats", &train, "--json"]).json();
    let rows = from_parquet["rows"].as_u64().unwrap();
    assert!(rows > 1000 && rows < 2000, "{rows}");
    assert_eq!(from_parquet["columns"]["c"]["type"], "string");
    assert_eq!(from_parquet["columns"]["a"]["type"], "int");
}

#[test]
fn bad_input_is_a_clear_error() {
    let env = Env::new();
    env.write("empty.csv", "");
    env.write("header.csv", "a,b\n");
    env.write("fields.csv", "a,b\n1,2\n3\n");
    let mut mixed = String::from("a\n");
    for i in 0..10_005 {
        mixed.push_str(&format!("{i}\n"));
    }
    mixed.push_str("oops\n");
    env.write("mixed.csv", &mixed);
    std::fs::write(env.path().join("latin1.csv"), b"name,n\ncaf\xe9,1\nb,2\n").unwrap();
    let cases = [
        ("nope.csv", "nope.csv: cannot open"),
        ("empty.csv", "empty.csv: the file is empty"),
        ("header.csv", "header.csv: the file has a header but no rows"),
        ("fields.csv", "fields.csv:3: this row has 1 fields but the header has 2"),
        ("mixed.csv", "mixed.csv:10007: column `a`: value 'oops' is not int"),
        ("latin1.csv", "latin1.csv:2: this row is not valid UTF-8"),
    ];
    for (file, message) in cases {
        let out = env.run(&["stats", file, "--json"]);
        assert_eq!(out.code, 2, "{file}: {}", out.stdout);
        assert!(out.stderr.contains(message), "{file}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{file}: partial output {}", out.stdout);
    }
}

#[test]
fn a_column_that_is_entirely_missing_is_reported() {
    let env = Env::new();
    env.write("m.csv", "a,b\n1,\n2,NA\n3,\n");
    let out = env.run(&["stats", "m.csv", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let b = &out.json()["columns"]["b"];
    assert_eq!(b["count"], 0);
    assert_eq!(b["missing"], 3);
    assert_eq!(b["distinct"], 0);
}

#[test]
fn schema_infer_then_validate_finds_schema_skew() {
    let env = Env::new();
    let mut train = String::from("hour,weather,count\n");
    let mut serve = String::from("hour,weather,count\n");
    for i in 0..500 {
        train.push_str(&format!("{},{},{}\n", i % 24, ["clear", "rain"][i % 2], 100 + i % 50));
        serve.push_str(&format!("{},{},{}\n", i % 24, ["clear", "rain", "snow", "clear"][i % 4], 100 + i % 80));
    }
    env.write("train.csv", &train);
    env.write("serve.csv", &serve);
    let r = env.run(&["schema", "infer", "train.csv", "-o", "schema.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let schema = std::fs::read_to_string(env.path().join("schema.toml")).unwrap();
    assert!(
        schema.contains("[columns.weather]\ntype = \"string\"\nmin_presence = 1.0\ndomain = [\"clear\", \"rain\"]"),
        "{schema}"
    );

    // The data the schema came from has no anomalies.
    let r = env.run(&["validate", "train.csv", "--schema", "schema.toml"]);
    assert_eq!(r.code, 0, "{}", r.stdout);

    let r = env.run(&["validate", "serve.csv", "--schema", "schema.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = r.json();
    let found: Vec<(String, String, u64)> = v["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["column"].as_str().unwrap().to_string(),
                a["kind"].as_str().unwrap().to_string(),
                a["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("weather".to_string(), "unexpected_category".to_string(), 125),
            ("count".to_string(), "out_of_range".to_string(), 180)
        ]
    );
    assert_eq!(v["anomalies"][0]["example"], "snow");
    assert_eq!(v["errors"], 2);

    // Curating the schema (allowing snow, widening the range) clears them.
    let curated = schema
        .replace("domain = [\"clear\", \"rain\"]", "domain = [\"clear\", \"rain\", \"snow\"]")
        .replace("max = 149.0", "max = 200.0");
    env.write("schema.toml", &curated);
    let r = env.run(&["validate", "serve.csv", "--schema", "schema.toml"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn environments_let_the_label_be_absent_in_serving() {
    let env = Env::new();
    env.write("serve.csv", "x,label\n1,a\n2,b\n");
    env.write("nolabel.csv", "x\n1\n2\n");
    env.write(
        "schema.toml",
        "[dataset]\nenvironments = [\"TRAINING\", \"SERVING\"]\n[columns.x]\ntype = \"int\"\n[columns.label]\ntype = \"string\"\nenvironments = [\"TRAINING\"]\n",
    );
    let r = env.run(&["validate", "nolabel.csv", "--schema", "schema.toml", "--environment", "SERVING"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let r = env.run(&["validate", "nolabel.csv", "--schema", "schema.toml", "--environment", "TRAINING"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("column `label`: missing_column"), "{}", r.stdout);
    let r = env.run(&["validate", "serve.csv", "--schema", "schema.toml", "--environment", "SERVING"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("warning: column `label`: unexpected_in_environment"), "{}", r.stdout);
    let r = env.run(&["validate", "serve.csv", "--schema", "schema.toml", "--environment", "SERVNG"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean `SERVING`?"), "{}", r.stderr);
}

#[test]
fn a_schema_with_a_typo_is_reported_with_its_place() {
    let env = Env::new();
    env.write("d.csv", "x\n1\n");
    env.write("schema.toml", "[columns.x]\ntype = \"int\"\nmn = 0\n");
    let r = env.run(&["validate", "d.csv", "--schema", "schema.toml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("schema.toml:3:1: error: unknown key `mn` in column `x`"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `min`?"), "{}", r.stderr);
    let r = env.run(&["validate", "d.csv", "--schema", "missing.toml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read schema missing.toml"), "{}", r.stderr);
}

#[test]
fn the_anomaly_catalogue_is_documented() {
    let doc = std::fs::read_to_string(repo_root().join("docs/anomalies.md")).unwrap();
    assert!(flywheel_stats::schema::KINDS.len() >= 15);
    for (kind, severity, _) in flywheel_stats::schema::KINDS {
        let sev = format!("{severity:?}").to_lowercase();
        assert!(doc.contains(&format!("| `{kind}` | {sev} |")), "docs/anomalies.md lacks `{kind}` ({sev})");
    }
}
