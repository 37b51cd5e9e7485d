//! A window scored against training data, the window before, and its
//! labels: drift found where a column moved and only there, the metric
//! computed over labeled rows alone (a classifier's against scikit-learn's
//! values in `fixtures/metrics.json`, made by `fixtures/make_metrics.py`),
//! alerts raised exactly when a bound is crossed.

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use flywheel_data::batch::Table;
use flywheel_data::dataset_drift::DatasetReference;
use flywheel_deploy::{Bound, Monitoring, Op, Span};
use flywheel_monitor::{Alert, score};
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

fn texts(v: impl IntoIterator<Item = Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(v.into_iter().collect::<Vec<_>>()))
}

/// A deterministic spread of values in [0, 1).
fn spread(n: usize, seed: usize) -> Vec<f64> {
    (0..n).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f64 / 1000.0).collect()
}

fn monitoring(performance: Option<Bound>) -> Monitoring {
    Monitoring { window: Span::Requests(500), drift_share: 0.5, columns: None, performance, slices: Vec::new() }
}

fn inputs() -> Vec<String> {
    vec!["a".into(), "b".into()]
}

/// Columns a and b, `shift` added to a; prediction and labels (every other row labeled).
fn window(n: usize, seed: usize, shift: f64) -> Table {
    let a: Vec<f64> = spread(n, seed).iter().map(|x| x + shift).collect();
    let b = spread(n, seed + 1);
    let pred: Vec<f64> = a.iter().map(|x| 2.0 * x).collect();
    let label: Vec<Option<f64>> = (0..n).map(|i| (i % 2 == 0).then(|| 2.0 * a[i] + 0.5)).collect();
    table(vec![
        ("a", nums(a.into_iter().map(Some))),
        ("b", nums(b.into_iter().map(Some))),
        ("prediction", nums(pred.into_iter().map(Some))),
        ("label", nums(label)),
    ])
}

#[test]
fn a_window_like_the_training_data_does_not_drift_and_a_moved_column_does() {
    let training = DatasetReference::of_table(&window(2000, 1, 0.0));
    let same = score(&window(500, 2, 0.0), None, Some(&training), &inputs(), &monitoring(None)).unwrap();
    let s = same.from_training.unwrap();
    assert_eq!((s.compared, s.drifted, s.drift), (2, 0, false), "{s:?}");
    assert!(same.alerts.is_empty() && same.from_previous.is_none());

    let moved = window(500, 3, 0.6);
    let scored = score(&moved, Some(&window(500, 2, 0.0)), Some(&training), &inputs(), &monitoring(None)).unwrap();
    let s = scored.from_training.clone().unwrap();
    assert_eq!((s.drifted, s.columns.clone(), s.drift), (1, vec!["a".to_string()], true), "{s:?}");
    assert_eq!(scored.from_previous.as_ref().map(|p| p.columns.clone()), Some(vec!["a".to_string()]));
    assert_eq!(scored.alerts, [Alert::Drift { drifted: 1, compared: 2, columns: vec!["a".into()] }]);

    let only_b = Monitoring { columns: Some(vec!["b".into()]), ..monitoring(None) };
    let scored = score(&moved, None, Some(&training), &inputs(), &only_b).unwrap();
    assert_eq!(scored.from_training.map(|s| (s.compared, s.drifted)), Some((1, 0)), "only the columns named");
}

#[test]
fn the_metric_is_computed_over_labeled_rows_and_alerts_past_its_bound() {
    let w = window(400, 5, 0.0);
    let rmse_bound = |value| Some(Bound { metric: "rmse".into(), op: Op::Le, value });
    let scored = score(&w, None, None, &inputs(), &monitoring(rmse_bound(1.0))).unwrap();
    // Every labeled row is off by exactly 0.5.
    let (metric, value) = scored.metric.clone().unwrap();
    assert_eq!((metric.as_str(), scored.labeled), ("rmse", 200));
    assert!((value - 0.5).abs() < 1e-12, "{value}");
    assert!(scored.alerts.is_empty());
    let scored = score(&w, None, None, &inputs(), &monitoring(rmse_bound(0.4))).unwrap();
    assert_eq!(
        scored.alerts,
        [Alert::Performance { metric: "rmse".into(), value, bound: "<= 0.4".into(), labeled: 200 }]
    );
    let r2 = Some(Bound { metric: "accuracy".into(), op: Op::Ge, value: 0.5 });
    let e = score(&w, None, None, &inputs(), &monitoring(r2)).unwrap_err().to_string();
    assert!(e.contains("`accuracy` is not a metric of a regressor"), "{e}");
}

#[test]
fn a_classifier_is_scored_from_its_classes_and_probabilities() {
    let s = |v: &[Option<&str>]| texts(v.iter().map(|x| x.map(str::to_string)));
    let w = table(vec![
        ("a", nums([Some(1.0), Some(2.0), Some(3.0), Some(4.0), Some(5.0)])),
        ("prediction", s(&[Some("no"), Some("yes"), Some("yes"), Some("no"), Some("yes")])),
        ("probability(no)", nums([Some(0.8), Some(0.3), Some(0.4), Some(0.9), Some(0.1)])),
        ("probability(yes)", nums([Some(0.2), Some(0.7), Some(0.6), Some(0.1), Some(0.9)])),
        // Row 3's label is a class the model has never seen; row 4 has none.
        ("label", s(&[Some("no"), Some("no"), Some("yes"), Some("maybe"), None])),
    ]);
    let value = |metric: &str| flywheel_monitor::metric(&w, metric).unwrap().unwrap().0;
    let bound = Monitoring {
        performance: Some(Bound { metric: "accuracy".into(), op: Op::Ge, value: 0.0 }),
        ..monitoring(None)
    };
    let scored = score(&w, None, None, &["a".into()], &bound).unwrap();
    assert_eq!(scored.metric, None, "4 labels are fewer than a window's metric needs");
    let want: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/metrics.json")).expect("fixtures/metrics.json");
    for metric in ["accuracy", "f1_macro", "log_loss"] {
        let (got, want) = (value(metric), want[metric].as_f64().unwrap());
        assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{metric}: {got} vs scikit-learn's {want}");
    }
}

/// The metric per slice: rows grouped by a column's value or by bins of a
/// number, each slice's rmse that of its own labeled rows (a slice with
/// fewer than `MIN_LABELS` labels left out); a spec the window cannot be
/// cut by is said, and the window still scored.
#[test]
fn the_metric_is_computed_per_slice() {
    let n = 60;
    let group: Vec<Option<String>> = (0..n).map(|i| Some(["x", "y", "z"][i % 3].to_string())).collect();
    let a: Vec<f64> = (0..n).map(|i| i as f64).collect();
    // Slice x is predicted exactly, y one off, z two off; z has 4 labels.
    let pred: Vec<f64> = (0..n).map(|i| a[i] + (i % 3) as f64).collect();
    let label: Vec<Option<f64>> = (0..n).map(|i| (i % 3 != 2 || i < 12).then_some(a[i])).collect();
    let w = table(vec![
        ("a", nums(a.iter().copied().map(Some))),
        ("g", texts(group)),
        ("prediction", nums(pred.into_iter().map(Some))),
        ("label", nums(label)),
    ]);
    let spec = |s: &str| flywheel_core::slice::SliceSpec::parse(s).unwrap();
    let m = Monitoring {
        performance: Some(Bound { metric: "rmse".into(), op: Op::Le, value: 10.0 }),
        slices: vec![spec("g"), spec("a:30"), spec("nope")],
        ..monitoring(None)
    };
    let s = score(&w, None, None, &["a".into(), "g".into()], &m).unwrap();
    let by_g: Vec<(&str, usize, f64)> =
        s.slices[0].slices.iter().map(|x| (x.slice.as_str(), x.labeled, x.value)).collect();
    assert_eq!(by_g, [("g=x", 20, 0.0), ("g=y", 20, 1.0)], "z has 4 labels");
    // a < 30: 10 exact, 10 one off, 4 two off of 24 labeled; a ≥ 30: 10 and 10.
    let bins: Vec<(&str, usize)> = s.slices[1].slices.iter().map(|x| (x.slice.as_str(), x.labeled)).collect();
    assert_eq!(bins, [("a<30", 24), ("a≥30", 20)]);
    let low = s.slices[1].slices[0].value;
    assert!((low - ((10.0 + 16.0) / 24.0f64).sqrt()).abs() < 1e-12, "{low}");
    assert!(s.slices[2].problem.as_deref().unwrap().contains("`nope` is not a column"), "{:?}", s.slices[2]);
    assert!(s.metric.is_some());
}

/// A boolean input: the training data holds it as a boolean, the log as
/// the numbers 0 and 1 (as the server reads it). Kept or not, it is
/// compared as those numbers: the same share does not drift, another does.
#[test]
fn a_boolean_column_is_compared_as_zeros_and_ones() {
    let n = 3000;
    let flags: Vec<Option<bool>> = (0..n).map(|i| Some(i % 3 == 0)).collect();
    let training = table(vec![("f", Arc::new(arrow_array::BooleanArray::from(flags)) as ArrayRef)]);
    let kept = DatasetReference::of_table(&training);
    let logged = |share: usize| table(vec![("f", nums((0..600).map(|i| Some(f64::from(u8::from(i % share == 0))))))]);
    let inputs = vec!["f".to_string()];
    let same = score(&logged(3), None, Some(&kept), &inputs, &monitoring(None)).unwrap();
    assert_eq!(same.from_training.map(|s| (s.compared, s.drifted)), Some((1, 0)));
    let moved = score(&logged(2), None, Some(&kept), &inputs, &monitoring(None)).unwrap();
    assert_eq!(moved.from_training.map(|s| (s.compared, s.drifted)), Some((1, 1)));
}
