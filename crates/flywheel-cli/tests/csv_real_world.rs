//! CSV files as they come: integer columns whose first decimal is late,
//! values that change a column's type, delimiters other than commas, dates
//! and times compared as instants, declared types, and serving data read
//! with the types the model was trained on. Every fixture is generated here.

mod common;
use common::*;

/// 10,050 rows of `id,x,y`; `x` is an integer on every row but
/// `odd_row` (a data row, 1-based), which holds `odd_value`.
fn late_csv(odd_row: usize, odd_value: &str) -> String {
    let mut s = String::from("id,x,y\n");
    for i in 1..=10_050 {
        let x = if i == odd_row { odd_value.to_string() } else { (i % 97).to_string() };
        let y = 2.0 * ((i % 97) as f64) + 1.0;
        s.push_str(&format!("{i},{x},{y}\n"));
    }
    s
}

fn ingest_and_train(env: &Env, file: &str, ingest_extra: &str, train_extra: &str) -> serde_json::Value {
    env.write(
        "p.toml",
        &format!(
            "{PIPELINE_HEADER}[steps.ingest]\ncomponent = \"ingest\"\nparams = {{ path = \"{file}\"{ingest_extra} }}\n\
             [steps.train]\ncomponent = \"train\"\ninputs = {{ data = \"ingest.train\" }}\nparams = {{ {train_extra} }}\n"
        ),
    );
    let r = env.run(&["run", "p.toml", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    r.json()
}

#[test]
fn an_int_column_whose_first_decimal_comes_after_inference_widens_to_float() {
    let env = Env::new();
    // Data line 10,040 is file line 10,041, far past the 10,000 rows sampled.
    env.write("late.csv", &late_csv(10_040, "12.66666667"));

    let stats = env.run(&["stats", "late.csv", "--json"]);
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    let s = stats.json();
    assert_eq!(s["rows"], 10_050);
    assert_eq!(s["columns"]["x"]["type"], "float");
    assert_eq!(s["columns"]["id"]["type"], "int");
    assert!(s["columns"]["x"]["top"].as_array().is_some());

    let infer = env.run(&["schema", "infer", "late.csv", "-o", "schema.toml"]);
    assert_eq!(infer.code, 0, "{}", infer.stderr);
    let schema = std::fs::read_to_string(env.path().join("schema.toml")).unwrap();
    assert!(schema.contains("[columns.x]\ntype = \"float\""), "{schema}");
    let validate = env.run(&["validate", "late.csv", "--schema", "schema.toml"]);
    assert_eq!(validate.code, 0, "{}{}", validate.stdout, validate.stderr);

    let drift = env.run(&["drift", "late.csv", "late.csv", "--json"]);
    assert_eq!(drift.code, 0, "{}", drift.stderr);
    assert_eq!(drift.json()["columns"]["x"]["kind"], "numeric");

    let o = ingest_and_train(&env, "late.csv", ", split_key = \"id\"", "target = \"y\", model = \"linear\"");
    assert_eq!(step(&o, "ingest")["status"], "succeeded");
    let run = o["run_id"].as_i64().unwrap();
    let props = env.execution(run, "ingest");
    assert!(props.to_string().contains("\"x\":\"float\""), "{props}");

    let model = env.step_output(run, "train");
    let predict = env.run(&["predict", model.to_str().unwrap(), "late.csv", "-o", "out.csv", "--json"]);
    assert_eq!(predict.code, 0, "{}", predict.stderr);
    assert_eq!(predict.json()["rows"], 10_050);
}

#[test]
fn a_value_that_is_not_a_number_is_a_type_change_named_with_its_line_and_the_type_that_fits() {
    let env = Env::new();
    env.write("t.csv", &late_csv(10_040, "n/a-sensor"));
    for args in [vec!["stats", "t.csv"], vec!["schema", "infer", "t.csv"], vec!["drift", "t.csv", "t.csv"]] {
        let r = env.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stdout);
        let e = &r.stderr;
        assert!(e.contains("t.csv:10041: column `x`: value 'n/a-sensor' is not int"), "{args:?}: {e}");
        assert!(e.contains("its values fit `string`"), "{e}");
        assert!(e.contains("--columns x=string"), "{e}");
        assert!(r.stdout.is_empty(), "partial output: {}", r.stdout);
    }
    // Declaring the type that fits, as the message says, reads the file.
    let r = env.run(&["stats", "t.csv", "--columns", "x=string", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["columns"]["x"]["type"], "string");
}

#[test]
fn a_declared_type_that_a_value_breaks_suggests_the_type_that_fits() {
    let env = Env::new();
    env.write("d.csv", "a,b\n1,x\n2.5,y\n");
    let r = env.run(&["stats", "d.csv", "--columns", "a=int"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("d.csv:3: column `a`: value '2.5' is not int, the type `columns` declares"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("declare the column `float`"), "{}", r.stderr);

    let r = env.run(&["stats", "d.csv", "--columns", "a=decimal"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--columns a=decimal: unknown type `decimal`"), "{}", r.stderr);
    let r = env.run(&["stats", "d.csv", "--columns", "a"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("write it as NAME=TYPE"), "{}", r.stderr);
}

#[test]
fn semicolon_tab_and_pipe_files_are_split_into_their_columns() {
    let env = Env::new();
    // Decimal commas inside a semicolon file stay one field.
    env.write("semi.csv", "city;temp;note\nLyon;12,5;a\nNantes;9,0;b\n");
    env.write("tab.tsv", "city\ttemp\tn\nLyon\t12.5\t1\nNantes\t9.0\t2\n");
    env.write("pipe.txt", "city|temp|n\nLyon|12.5|1\nNantes|9.0|2\n");
    for file in ["semi.csv", "tab.tsv", "pipe.txt"] {
        let r = env.run(&["stats", file, "--json"]);
        assert_eq!(r.code, 0, "{file}: {}", r.stderr);
        let cols = r.json()["columns"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(cols.len(), 3, "{file}: {cols:?}");
        assert!(cols.contains(&"city".to_string()), "{file}: {cols:?}");
    }
    let tab = env.run(&["stats", "tab.tsv", "--json"]).json();
    assert_eq!(tab["columns"]["temp"]["type"], "float");

    // A given delimiter is used as given: commas split the decimals.
    let r = env.run(&["stats", "semi.csv", "--delimiter", ","]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("semi.csv:2: this row has 2 fields but the header has 1"), "{}", r.stderr);
    let r = env.run(&["stats", "pipe.txt", "--delimiter", "pipe", "--json"]);
    assert_eq!(r.json()["columns"].as_object().unwrap().len(), 3);
    let r = env.run(&["stats", "semi.csv", "--delimiter", "semi"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--delimiter: delimiter `semi` is not one character"), "{}", r.stderr);

    // ingest detects it too, or takes a `delimiter` parameter.
    let mut big = String::from("id;x;y\n");
    for i in 0..200 {
        big.push_str(&format!("{i};{};{}\n", i % 7, i % 5));
    }
    env.write("big.csv", &big);
    for extra in ["", ", delimiter = \";\""] {
        let o = ingest_and_train(&env, "big.csv", extra, "target = \"y\", model = \"linear\"");
        let props = env.execution(o["run_id"].as_i64().unwrap(), "ingest").to_string();
        assert!(props.contains("\"columns\":3"), "{props}");
    }
}

#[test]
fn a_time_split_compares_instants_not_text() {
    let env = Env::new();
    // As text, "2024-1-5" sorts after "2024-01-08" and the +02:00 row (an
    // instant on Jan 7) sorts after it too: a string cutoff would put both
    // in eval.
    let rows = [
        ("2024-1-5", 1.0),
        ("2024-1-6", 2.0),
        ("2024-01-08T01:00:00+02:00", 3.0),
        ("2024-01-07 12:00", 4.0),
        ("2024-01-09", 5.0),
        ("2024-01-10T00:00:00Z", 6.0),
        ("2024-1-11", 7.0),
    ];
    let mut text = String::from("when,x,y\n");
    for (i, (when, y)) in rows.iter().enumerate() {
        text.push_str(&format!("{when},{i},{y}\n"));
    }
    env.write("t.csv", &text);
    let o = ingest_and_train(
        &env,
        "t.csv",
        ", split = \"time\", time_column = \"when\", cutoff = \"2024-01-08\"",
        "target = \"y\", model = \"linear\", drop = [\"when\"]",
    );
    assert_eq!(step(&o, "ingest")["summary"]["rows"]["train"], 4, "{o:#}");
    assert_eq!(step(&o, "ingest")["summary"]["rows"]["eval"], 3, "{o:#}");

    let s = env.run(&["stats", "t.csv", "--json"]).json();
    assert_eq!(s["columns"]["when"]["type"], "timestamp");
    assert_eq!(s["columns"]["when"]["min_time"], "2024-01-05");
    assert_eq!(s["columns"]["when"]["max_time"], "2024-01-11");
}

#[test]
fn timestamps_are_profiled_inferred_and_validated_as_times() {
    let env = Env::new();
    let mut text = String::from("at,v\n");
    for i in 0..48 {
        text.push_str(&format!("2024-03-{:02} {:02}:30:00,{i}\n", 1 + i / 24, i % 24));
    }
    env.write("t.csv", &text);
    let r = env.run(&["schema", "infer", "t.csv", "-o", "s.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let schema = std::fs::read_to_string(env.path().join("s.toml")).unwrap();
    assert!(schema.contains("[columns.at]\ntype = \"timestamp\""), "{schema}");
    let r = env.run(&["validate", "t.csv", "--schema", "s.toml"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Later times are not out of a range: times have none.
    env.write("later.csv", "at,v\n2025-01-01 00:00:00,3\n");
    let r = env.run(&["validate", "later.csv", "--schema", "s.toml"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // A schema written before times were inferred (`string`) still accepts them.
    std::fs::write(env.path().join("old.toml"), schema.replace("type = \"timestamp\"", "type = \"string\"")).unwrap();
    let r = env.run(&["validate", "t.csv", "--schema", "old.toml"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    let text_stats = env.run(&["stats", "t.csv"]);
    assert!(text_stats.stdout.contains("min 2024-03-01 00:30:00"), "{}", text_stats.stdout);
}

#[test]
fn predict_reads_serving_data_with_the_types_of_the_models_signature() {
    let env = Env::new();
    // `zone` is a code: declared text in training, digits only in the file.
    let mut text = String::from("zone,day,x,y\n");
    for i in 0..300 {
        let zone = ["01", "02", "03"][i % 3];
        text.push_str(&format!(
            "{zone},2024-02-{:02} {:02}:00,{},{}\n",
            1 + i % 28,
            i % 24,
            i % 11,
            (i % 3) * 10 + i % 11
        ));
    }
    env.write("d.csv", &text);
    ingest_and_train(
        &env,
        "d.csv",
        ", split_key = \"x\", columns = { zone = \"string\" }",
        "target = \"y\", model = \"linear\", transform = { day = \"datetime(hour)\" }",
    );
    let model = env.step_output(1, "train");
    // Serving data: the zone codes read as numbers, the times unpadded.
    env.write("serve.csv", "zone,day,x\n1,2024-2-3 7:00,4\n2,2024-02-04 08:00,5\n");
    let r = env.run(&["predict", model.to_str().unwrap(), "serve.csv", "-o", "p.csv", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["rows"], 2);
    // A value the signature's type cannot take is named.
    env.write("bad.csv", "zone,day,x\n1,2024-02-03 07:00,four\n");
    let r = env.run(&["predict", model.to_str().unwrap(), "bad.csv"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("bad.csv:2: column `x`: value 'four' is not float"), "{}", r.stderr);
    assert!(r.stderr.contains("signature"), "{}", r.stderr);
}
