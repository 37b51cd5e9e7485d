//! `flywheel stats` against pandas (`flywheel-components/tests/fixtures`),
//! and its handling of bad input.

mod common;
use common::*;
use serde_json::Value;

fn reference() -> Value {
    let p = repo_root().join("crates/flywheel-components/tests/fixtures/statistics.json");
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
