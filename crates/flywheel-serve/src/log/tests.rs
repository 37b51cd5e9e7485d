//! The writer: segments by model version and hour, each indexed with its
//! requests; the drop counter when the queue is full; close writes out
//! what is queued; the reader joins feedback by request id and row.

use super::read::{Window, read_log};
use super::*;
use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use flywheel_metadata::Label;
use flywheel_ml::transform::{LINEAR_DEFAULTS, fit};
use flywheel_ml::{Column, Estimator, Frame, Model, Task, Text};

const HOUR_US: i64 = 3_600_000_000;
/// 2026-11-30T08:00:00Z.
const T0: i64 = 1_796_025_600_000_000;

fn frame(n: usize) -> Frame {
    let mut f = Frame::new();
    let x: Vec<f64> = (0..n).map(|i| if i == 1 { f64::NAN } else { i as f64 - 1.5 }).collect();
    f.push("x", Column::Num(x)).unwrap();
    f.push("c", Column::Text(Text::encode((0..n).map(|i| [Some("a"), None, Some("b")][i % 3])))).unwrap();
    f
}

fn served(version: i64) -> Arc<Served> {
    let t = fit(&frame(9), &["x".into(), "c".into()], &BTreeMap::new(), LINEAR_DEFAULTS).unwrap();
    let w: Vec<f64> = (0..t.width()).map(|j| j as f64 * 0.5 - 0.4).collect();
    let est = Estimator::Logistic { coef: vec![w], intercept: vec![0.1] };
    let model =
        Model::new(Task::Classification, "y".into(), vec!["no".into(), "yes".into()], t, est, serde_json::json!({}))
            .unwrap();
    Arc::new(Served::new("m".into(), version, format!("m@{version}"), model))
}

/// Logs a request of `rows` rows predicted by `served`.
fn record(log: &PredictionLog, served: &Arc<Served>, id: &str, at_us: i64, rows: usize) {
    let frame = frame(rows);
    let prediction = served.model.predict(&frame).unwrap();
    let batch = Batch::Frame(frame);
    let arm: ModelRef = format!("{}@production", served.name).parse().unwrap();
    log.record(&Entry {
        request_id: id,
        arm: &arm,
        shadow: false,
        at_us,
        served,
        batch: &batch,
        prediction: &prediction,
        latency_us: 42,
    });
}

fn home() -> (tempfile::TempDir, Arc<MetadataStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MetadataStore::open(&dir.path().join("metadata.db")).unwrap());
    (dir, store)
}

fn options(queue_rows: usize) -> LogOptions {
    LogOptions { queue_rows, flush_every: Duration::from_secs(3600), ..LogOptions::default() }
}

/// A log whose writer is not started, so the queue only fills.
fn paused(root: PathBuf, metadata: Arc<MetadataStore>, options: LogOptions) -> (PredictionLog, Receiver) {
    let (tx, rx) = std::sync::mpsc::sync_channel(CONTROL);
    let shared = Arc::new(Shared::new(root, metadata));
    let log = PredictionLog { running: Some(Running { tx, shared, options, thread: Mutex::new(None) }) };
    (log, rx)
}

type Receiver = std::sync::mpsc::Receiver<Msg>;

fn resume(log: &PredictionLog, rx: Receiver) {
    let r = log.running.as_ref().unwrap();
    let thread = writer::spawn(rx, r.shared.clone(), r.options.clone()).unwrap();
    *r.thread.lock().unwrap() = Some(thread);
}

#[test]
fn a_flush_writes_one_segment_per_version_and_hour_each_indexed_with_its_requests() {
    let (dir, store) = home();
    let log = PredictionLog::start(dir.path().to_path_buf(), store.clone(), options(1 << 20)).unwrap();
    let (v1, v2) = (served(1), served(2));
    record(&log, &v1, "a", T0 + 10, 3);
    record(&log, &v1, "b", T0 + HOUR_US + 5, 2);
    record(&log, &v2, "c", T0 + 20, 1);
    record(&log, &v1, "d", T0 + 30, 1);
    log.close();
    let segments = store.segments("m", None, None).unwrap();
    let seen: Vec<(i64, &str, i64)> = segments.iter().map(|s| (s.version, s.hour.as_str(), s.rows)).collect();
    assert_eq!(seen, [(1, "2026-11-30T08", 4), (2, "2026-11-30T08", 1), (1, "2026-11-30T09", 2)]);
    for s in &segments {
        assert!(s.path.starts_with(&format!("predictions/m/{}/v{}-", s.hour, s.version)), "{}", s.path);
        assert!(dir.path().join(&s.path).is_file());
    }
    assert_eq!(store.logged_request("d").unwrap().unwrap().rows, 1);
    assert_eq!(store.logged_request("b").unwrap().unwrap().at_us, T0 + HOUR_US + 5);
    assert_eq!(log.dropped(), 0);
}

#[test]
fn rows_past_the_queue_are_dropped_and_counted_and_close_writes_what_was_queued() {
    let (dir, store) = home();
    let (log, rx) = paused(dir.path().to_path_buf(), store.clone(), options(6));
    let v1 = served(1);
    record(&log, &v1, "a", T0, 3);
    record(&log, &v1, "b", T0, 2);
    assert_eq!(log.dropped(), 0);
    record(&log, &v1, "c", T0, 4); // six rows wait at most
    assert_eq!(log.dropped(), 4);
    assert!(log.lookup("a").unwrap().is_some(), "a queued request is known before it is written");
    assert!(log.lookup("c").unwrap().is_none(), "a dropped one is not");
    resume(&log, rx);
    log.flush();
    record(&log, &v1, "d", T0, 11); // more rows than wait at all
    assert_eq!(log.dropped(), 15);
    record(&log, &v1, "e", T0, 1);
    log.close();
    let rows: i64 = store.segments("m", None, None).unwrap().iter().map(|s| s.rows).sum();
    assert_eq!(rows, 3 + 2 + 1);
    record(&log, &v1, "f", T0, 1);
    assert_eq!(log.dropped(), 16, "after close, rows are dropped and counted");
}

#[test]
fn the_reader_gives_typed_inputs_predictions_and_labels_in_a_window() {
    let (dir, store) = home();
    let log = PredictionLog::start(dir.path().to_path_buf(), store.clone(), options(1 << 20)).unwrap();
    let v1 = served(1);
    record(&log, &v1, "a", T0, 3);
    record(&log, &v1, "b", T0 + 2 * HOUR_US, 1);
    log.close();
    let fb = |id: &str, row, label: &str| flywheel_metadata::Feedback {
        request_id: id.into(),
        row,
        model_name: "m".into(),
        label: Label::Text(label.into()),
        at_us: T0 + 99,
        request_at_us: if id == "a" { T0 } else { T0 + 2 * HOUR_US },
    };
    store.record_feedback(&[fb("a", 2, "yes"), fb("b", 0, "no")]).unwrap();
    let table =
        read_log(dir.path(), &store, "m", Window { since_us: None, until_us: Some(T0 + HOUR_US), version: None })
            .unwrap();
    let names: Vec<&str> = table.schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "request_id",
            "row",
            "time",
            "model",
            "version",
            "arm",
            "shadow",
            "latency_us",
            "x",
            "c",
            "prediction",
            "probability(no)",
            "probability(yes)",
            "label"
        ]
    );
    let b = arrow_select::concat::concat_batches(&table.schema, &table.batches).unwrap();
    assert_eq!(b.num_rows(), 3, "request b is outside the window");
    let x = b.column_by_name("x").unwrap().as_primitive::<Float64Type>();
    assert_eq!((x.value(0), x.is_null(1), x.value(2)), (-1.5, true, 0.5));
    let c = b.column_by_name("c").unwrap().as_string::<i32>();
    assert_eq!((c.value(0), c.is_null(1), c.value(2)), ("a", true, "b"));
    let expected = v1.model.predict(&frame(3)).unwrap();
    let Prediction::Classes { labels, .. } = expected else { panic!("a classifier") };
    let pred = b.column_by_name("prediction").unwrap().as_string::<i32>();
    for (i, l) in labels.iter().enumerate() {
        assert_eq!(pred.value(i), v1.model.classes[*l]);
    }
    let label = b.column_by_name("label").unwrap().as_string::<i32>();
    assert_eq!((label.is_null(0), label.is_null(1), label.value(2)), (true, true, "yes"));
    assert_eq!(b.column_by_name("row").unwrap().as_primitive::<Int64Type>().values().to_vec(), [0, 1, 2]);
    let e = read_log(dir.path(), &store, "other", Window::default()).unwrap_err().to_string();
    assert!(e.contains("`other`") && e.contains("models with logs: m"), "{e}");
}

#[test]
fn sampling_reads_rates_per_model_and_refuses_what_is_not_a_rate() {
    let s = Sampling::parse(&["0.25".into(), "clf=0".into(), "reg=1".into()]).unwrap();
    assert_eq!((s.rate("x"), s.rate("clf"), s.rate("reg")), (0.25, 0.0, 1.0));
    assert!(!s.sampled("clf", "any") && s.sampled("reg", "any"));
    let taken = (0..4000).filter(|i| s.sampled("x", &format!("req-{i}"))).count();
    assert!((800..1200).contains(&taken), "{taken} of 4000 at 0.25");
    assert_eq!(s.sampled("x", "req-7"), s.sampled("x", "req-7"), "a request decides the same way every time");
    for bad in ["2", "-0.1", "often", "=0.5", "clf=1.5"] {
        let e = Sampling::parse(&[bad.into()]).unwrap_err().to_string();
        assert!(e.contains("--log-sample") && e.contains(bad), "{e}");
    }
    let twice = Sampling::parse(&["clf=0.5".into(), "clf=0.7".into()]).unwrap_err().to_string();
    assert!(twice.contains("`clf` has a rate already"), "{twice}");
    assert!(s.check_models(&["clf".into(), "reg".into()]).is_ok());
    let typo = s.check_models(&["clf".into()]).unwrap_err().to_string();
    assert!(typo.contains("no model `reg` is served; served: clf"), "{typo}");
}

#[test]
fn hours_are_utc() {
    assert_eq!(hour_of(T0), "2026-11-30T08");
    assert_eq!(hour_of(T0 + HOUR_US - 1), "2026-11-30T08");
    assert_eq!(hour_of(0), "1970-01-01T00");
}

#[test]
fn a_row_is_logged_as_the_same_row_of_a_frame() {
    let (dir, store) = home();
    let log = PredictionLog::start(dir.path().to_path_buf(), store.clone(), options(1 << 20)).unwrap();
    let mut f = Frame::new();
    f.push("x", Column::Num((0..5).map(f64::from).collect())).unwrap();
    f.push("y", Column::Num((0..5).map(|i| f64::from(i) * 0.5).collect())).unwrap();
    let t = fit(&f, &["x".into(), "y".into()], &BTreeMap::new(), LINEAR_DEFAULTS).unwrap();
    let est = Estimator::Linear { algorithm: "ridge".into(), weights: vec![0.5; t.width()], intercept: 1.0 };
    let model = Model::new(Task::Regression, "y".into(), vec![], t, est, serde_json::json!({})).unwrap();
    let served = Arc::new(Served::new("n".into(), 1, "n@1".into(), model));
    let arm: ModelRef = "n@production".parse().unwrap();
    let row = Batch::Row(vec![f64::NAN, 2.5]);
    let frame = Batch::Frame(row.to_frame(&served));
    for (id, batch) in [("row", &row), ("frame", &frame)] {
        let prediction = served.model.predict(&batch.to_frame(&served)).unwrap();
        let (at_us, latency_us) = (T0, 7);
        log.record(&Entry {
            request_id: id,
            arm: &arm,
            shadow: false,
            at_us,
            served: &served,
            batch,
            prediction: &prediction,
            latency_us,
        });
    }
    log.close();
    let table = read_log(dir.path(), &store, "n", Window::default()).unwrap();
    let b = arrow_select::concat::concat_batches(&table.schema, &table.batches).unwrap();
    assert_eq!(b.num_rows(), 2);
    for column in ["x", "y", "prediction"] {
        let v = b.column_by_name(column).unwrap().as_primitive::<Float64Type>();
        let cell = |i: usize| v.is_valid(i).then(|| v.value(i).to_bits());
        assert_eq!(cell(0), cell(1), "{column}");
    }
    let x = b.column_by_name("x").unwrap().as_primitive::<Float64Type>();
    assert!(x.is_null(0), "a missing value is logged as null");
}

#[test]
fn a_segment_is_written_in_row_groups_of_at_most_row_group_rows() {
    let (dir, store) = home();
    let log = PredictionLog::start(dir.path().to_path_buf(), store.clone(), options(1 << 20)).unwrap();
    let v1 = served(1);
    let rows = 2 * segment::ROW_GROUP_ROWS + 5;
    record(&log, &v1, "a", T0, rows);
    log.close();
    let segments = store.segments("m", None, None).unwrap();
    assert_eq!(segments.len(), 1);
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(dir.path().join(&segments[0].path)).unwrap();
    let reader = SerializedFileReader::new(file).unwrap();
    let groups: Vec<i64> = reader.metadata().row_groups().iter().map(|g| g.num_rows()).collect();
    let full = segment::ROW_GROUP_ROWS as i64;
    assert_eq!(groups, [full, full, 5], "a writer holds one group's pages at a time");
}
