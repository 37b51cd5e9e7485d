//! Windows merge into longer ones from what each keeps: the metric of
//! windows merged is the metric of all their labeled rows (exactly, as
//! scikit-learn defines it: sums and confusion counts add up), and their
//! inputs' sketch is the sketch of all their rows.

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use flywheel_data::batch::Table;
use flywheel_deploy::{Bound, Monitoring, Op, Span};
use flywheel_monitor::MetricSums;
use flywheel_monitor::merge::WindowSketch;
use std::sync::Arc;

fn table(columns: Vec<(&str, ArrayRef)>) -> Table {
    let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    Table { schema, batches: vec![batch] }
}

fn nums(v: impl IntoIterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(v.into_iter().collect::<Vec<_>>()))
}

fn texts(v: impl IntoIterator<Item = Option<&'static str>>) -> ArrayRef {
    Arc::new(StringArray::from(v.into_iter().collect::<Vec<_>>()))
}

/// Rows `range` of a regressor's log: input `a`, prediction, and a label on two rows of three.
fn regressor(range: std::ops::Range<usize>) -> Table {
    let a: Vec<f64> = range.clone().map(|i| ((i * 7919) % 1000) as f64 / 10.0).collect();
    let pred: Vec<Option<f64>> = a.iter().map(|x| Some(2.0 * x)).collect();
    let label: Vec<Option<f64>> = range.zip(&a).map(|(i, x)| (i % 3 != 0).then(|| 2.0 * x + (i % 7) as f64)).collect();
    table(vec![("a", nums(a.into_iter().map(Some))), ("prediction", nums(pred)), ("label", nums(label))])
}

/// Rows `range` of a classifier's log; labels from row 30 on include a class it does not know.
fn classifier(range: std::ops::Range<usize>) -> Table {
    let classes = ["no", "yes"];
    let pred: Vec<Option<&str>> = range.clone().map(|i| Some(classes[i % 2])).collect();
    let p_yes: Vec<Option<f64>> =
        range.clone().map(|i| Some(if i % 2 == 1 { 0.6 + (i % 4) as f64 / 10.0 } else { 0.2 })).collect();
    let p_no: Vec<Option<f64>> = p_yes.iter().map(|p| p.map(|p| 1.0 - p)).collect();
    let label: Vec<Option<&str>> = range
        .map(|i| match i % 5 {
            0 => None,
            1 | 2 => Some(classes[i % 2]),
            3 if i >= 30 => Some("maybe"),
            _ => Some(classes[(i + 1) % 2]),
        })
        .collect();
    table(vec![
        ("prediction", texts(pred)),
        ("probability(no)", nums(p_no)),
        ("probability(yes)", nums(p_yes)),
        ("label", texts(label)),
    ])
}

fn concat(a: &Table, b: &Table) -> Table {
    Table { schema: a.schema.clone(), batches: a.batches.iter().chain(&b.batches).cloned().collect() }
}

#[test]
fn the_metric_of_windows_merged_is_the_metric_of_their_rows() {
    for (first, second, metrics) in [
        (regressor(0..120), regressor(120..300), &["rmse", "mae", "mape", "r2"][..]),
        (classifier(0..30), classifier(30..90), &["accuracy", "f1_macro", "log_loss"][..]),
    ] {
        let mut merged = MetricSums::of(&first).unwrap();
        merged.merge(&MetricSums::of(&second).unwrap()).unwrap();
        let whole = concat(&first, &second);
        for &m in metrics {
            let (want, labeled) = flywheel_monitor::metric(&whole, m).unwrap().unwrap();
            let got = merged.value(m).unwrap();
            assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "{m}: merged {got} vs rows {want}");
            assert_eq!(merged.labeled(), labeled);
        }
        // Through JSON, as windows keep them.
        let back: MetricSums = serde_json::from_str(&serde_json::to_string(&merged).unwrap()).unwrap();
        assert_eq!(back, merged);
    }
    let mut regression = MetricSums::of(&regressor(0..10)).unwrap();
    assert!(
        regression.merge(&MetricSums::of(&classifier(0..10)).unwrap()).is_err(),
        "a regressor's and a classifier's"
    );
}

#[test]
fn a_window_sketch_merges_inputs_and_metric_and_keeps_the_last_settings() {
    let monitoring = |value| Monitoring {
        window: Span::Requests(100),
        drift_share: 0.5,
        columns: None,
        performance: Some(Bound { metric: "rmse".into(), op: Op::Le, value }),
        slices: Vec::new(),
    };
    let (first, second) = (regressor(0..100), regressor(100..250));
    let columns = vec!["a".to_string()];
    let mut merged = WindowSketch::of(&first, &columns, &monitoring(1.0));
    merged.merge(&WindowSketch::of(&second, &columns, &monitoring(2.0))).unwrap();
    let whole = WindowSketch::of(&concat(&first, &second), &columns, &monitoring(2.0));
    assert_eq!(merged.inputs.rows, 250);
    assert_eq!(merged.metric.as_ref().map(MetricSums::labeled), Some(166), "two rows of three labeled");
    let value = |s: &WindowSketch| s.metric.as_ref().unwrap().value("rmse").unwrap();
    assert!((value(&merged) - value(&whole)).abs() < 1e-12);
    assert_eq!(
        merged.bound.as_ref().map(|b| (b.op.as_str(), b.value)),
        Some(("<=", 2.0)),
        "judged as the last window was"
    );
    let back: WindowSketch = serde_json::from_str(&merged.to_json()).unwrap();
    assert_eq!(back.inputs.columns.keys().collect::<Vec<_>>(), ["a"]);
}
