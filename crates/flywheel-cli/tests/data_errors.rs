//! Bad data files: each gets a message naming the file (and line and
//! column where there is one), the run fails, and no output is recorded.

mod common;
use common::*;

fn ingest_pipeline(env: &Env, file: &str, extra: &str) {
    env.write(
        "p.toml",
        &format!("{PIPELINE_HEADER}[steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"{file}\"{extra} }}\n"),
    );
}

/// Runs the ingest pipeline, expects failure, returns the step's error.
fn ingest_error(env: &Env) -> String {
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let o = r.json();
    assert_eq!(o["status"], "failed");
    let s = step(&o, "ingest");
    assert_eq!(s["status"], "failed");
    // Nothing half-written was recorded as an output.
    let show = env.run(&["runs", "show", &o["run_id"].to_string(), "--json"]).json();
    assert!(show["executions"][0]["outputs"].as_array().unwrap().is_empty());
    s["error"].as_str().unwrap().to_string()
}

#[test]
fn a_missing_data_file() {
    let env = Env::new();
    ingest_pipeline(&env, "nope.csv", "");
    let e = ingest_error(&env);
    assert!(e.contains("nope.csv: cannot open"), "{e}");
}

#[test]
fn an_empty_file() {
    let env = Env::new();
    env.write("empty.csv", "");
    ingest_pipeline(&env, "empty.csv", "");
    let e = ingest_error(&env);
    assert!(e.contains("empty.csv: the file is empty"), "{e}");
}

#[test]
fn a_header_without_rows() {
    let env = Env::new();
    env.write("h.csv", "a,b\n");
    ingest_pipeline(&env, "h.csv", "");
    assert!(ingest_error(&env).contains("h.csv: the file has a header but no rows"));
}

#[test]
fn a_row_with_the_wrong_number_of_fields_names_its_line() {
    let env = Env::new();
    env.write("f.csv", "a,b,c\n1,2,3\n4,5,6\n7,8\n");
    ingest_pipeline(&env, "f.csv", "");
    let e = ingest_error(&env);
    assert!(e.contains("f.csv:4: this row has 2 fields but the header has 3"), "{e}");
}

#[test]
fn a_bad_row_past_type_inference_names_its_line() {
    let env = Env::new();
    let mut text = String::from("a,b\n");
    for i in 0..10_005 {
        text.push_str(&format!("{i},x\n"));
    }
    text.push_str("5\n");
    env.write("f.csv", &text);
    ingest_pipeline(&env, "f.csv", "");
    let e = ingest_error(&env);
    assert!(e.contains("f.csv:10007: this row has 1 fields but the header has 2"), "{e}");
}

#[test]
fn a_column_that_changes_type_mid_file() {
    let env = Env::new();
    let mut text = String::from("a,b\n");
    for i in 0..10_005 {
        text.push_str(&format!("{i},x\n"));
    }
    text.push_str("oops,y\n");
    env.write("t.csv", &text);
    ingest_pipeline(&env, "t.csv", "");
    let e = ingest_error(&env);
    assert!(e.contains("t.csv:10007: column `a`: value 'oops' is not int"), "{e}");
    assert!(e.contains("columns = { a = \"string\" }"), "{e}");

    // Declaring the type, as the message says, fixes it.
    ingest_pipeline(&env, "t.csv", ", columns = { a = \"string\" }");
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn a_declared_type_that_the_data_breaks() {
    let env = Env::new();
    env.write("d.csv", "a,b\n1,x\noops,y\n");
    ingest_pipeline(&env, "d.csv", ", columns = { a = \"int\" }");
    let e = ingest_error(&env);
    assert!(e.contains("d.csv:3: column `a`: value 'oops' is not int, the type `columns` declares"), "{e}");
}

#[test]
fn a_declared_column_that_does_not_exist() {
    let env = Env::new();
    env.write("d.csv", "price,b\n1,x\n2,y\n");
    ingest_pipeline(&env, "d.csv", ", columns = { prise = \"int\" }");
    let e = ingest_error(&env);
    assert!(e.contains("declares `prise`, which is not in the header; did you mean `price`?"), "{e}");
}

#[test]
fn gzip_and_parquet_inputs_read_like_csv() {
    use std::io::Write;
    let env = Env::new();
    let mut text = String::from("k,v\n");
    for i in 0..100 {
        text.push_str(&format!("{i},{}\n", i * 2));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    std::fs::write(env.path().join("d.csv.gz"), gz.finish().unwrap()).unwrap();
    ingest_pipeline(&env, "d.csv.gz", ", split_key = \"k\"");
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = step(&r.json(), "ingest")["summary"]["rows"].clone();
    assert_eq!(rows["train"].as_u64().unwrap() + rows["eval"].as_u64().unwrap(), 100);
    let first_train = rows["train"].as_u64().unwrap();

    // The train split it wrote is Parquet: ingest it again.
    let show = env.run(&["runs", "show", "1", "--json"]).json();
    let uri = show["executions"][0]["outputs"][0]["artifact"]["uri"]
        .as_str()
        .unwrap()
        .trim_start_matches("file://")
        .to_string();
    std::fs::copy(uri, env.path().join("train.parquet")).unwrap();
    // (The same key and fraction would put every row back in train.)
    ingest_pipeline(&env, "train.parquet", ", split_key = \"k\", eval_fraction = 0.9");
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = step(&r.json(), "ingest")["summary"]["rows"].clone();
    assert_eq!(rows["train"].as_u64().unwrap() + rows["eval"].as_u64().unwrap(), first_train);
}

#[test]
fn validation_failure_names_column_and_counts() {
    let env = Env::new();
    let mut train = String::from("color,size\n");
    let mut serve = String::from("color,size\n");
    for i in 0..200 {
        train.push_str(&format!("{},{}\n", ["red", "blue"][i % 2], i % 10));
        serve.push_str(&format!("{},{}\n", ["red", "green", "blue", "green"][i % 4], i % 10));
    }
    env.write("train.csv", &train);
    env.write("serve.csv", &serve);
    env.write(
        "p.toml",
        &format!(
            "{PIPELINE_HEADER}[steps.a]\ncomponent = \"ingest\"\nparams = {{ path = \"train.csv\" }}\n\
             [steps.b]\ncomponent = \"ingest\"\nparams = {{ path = \"serve.csv\" }}\n\
             [steps.stats]\ncomponent = \"statistics\"\ninputs = {{ data = \"a.train\" }}\n\
             [steps.schema]\ncomponent = \"schema\"\ninputs = {{ statistics = \"stats.statistics\" }}\n\
             [steps.check]\ncomponent = \"validate\"\ninputs = {{ data = \"b.train\", schema = \"schema.schema\" }}\n"
        ),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let s = step(&r.json(), "check").clone();
    let e = s["error"].as_str().unwrap();
    assert!(e.contains("column `color`: unexpected_category"), "{e}");
    assert!(e.contains("80 of 160 values (50.00%) not in the domain: `green`"), "{e}");
    // The size check is a separate error only when it is one: `size` stays in range.
    assert!(!e.contains("column `size`"), "{e}");
}

#[test]
fn a_pipeline_can_validate_against_a_curated_schema() {
    let env = Env::new();
    let mut data = String::from("color,size\n");
    for i in 0..200 {
        data.push_str(&format!("{},{}\n", ["red", "blue", "green"][i % 3], i % 10));
    }
    env.write("d.csv", &data);
    env.write("schema.toml", "[columns.color]\ntype = \"string\"\ndomain = [\"red\", \"blue\"]\n[columns.size]\ntype = \"int\"\nmin = 0\nmax = 9\n");
    env.write(
        "p.toml",
        &format!(
            "{PIPELINE_HEADER}[steps.a]\ncomponent = \"ingest\"\nparams = {{ path = \"d.csv\" }}\n\
             [steps.stats]\ncomponent = \"statistics\"\ninputs = {{ data = \"a.train\" }}\n\
             [steps.schema]\ncomponent = \"schema\"\ninputs = {{ statistics = \"stats.statistics\" }}\nparams = {{ path = \"schema.toml\" }}\n\
             [steps.check]\ncomponent = \"validate\"\ninputs = {{ data = \"a.eval\", schema = \"schema.schema\" }}\n"
        ),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = step(&r.json(), "check")["error"].as_str().unwrap().to_string();
    assert!(e.contains("column `color`: unexpected_category"), "{e}");

    // Curating the file is a new schema: the cache sees the change.
    env.write("schema.toml", "[columns.color]\ntype = \"string\"\ndomain = [\"red\", \"blue\", \"green\"]\n[columns.size]\ntype = \"int\"\nmin = 0\nmax = 9\n");
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(step(&r.json(), "schema")["cache_hit"], false);

    // A typo in the curated file fails the step with its place.
    env.write("schema.toml", "[columns.color]\ntpye = \"string\"\n");
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 1);
    let e = step(&r.json(), "schema")["error"].as_str().unwrap().to_string();
    assert!(e.contains("schema.toml:2:1: error: unknown key `tpye`"), "{e}");
}
