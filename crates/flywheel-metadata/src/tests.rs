//! Tests across concerns: a run recorded end to end and read back by
//! lineage, references, cache and signals; migrations; unknown ids.

use super::*;
use flywheel_core::Selector;
use serde_json::json;

const LATEST: Selector = Selector::Latest;

pub(crate) fn store() -> (tempfile::TempDir, MetadataStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = MetadataStore::open(&dir.path().join("metadata.db")).unwrap();
    (dir, s)
}

pub(crate) fn artifact(digest: &str, ty: &str) -> NewArtifact {
    NewArtifact {
        ty: ty.into(),
        uri: format!("file:///{digest}"),
        digest: digest.into(),
        size: 3,
        properties: json!({"rows": 3}),
    }
}

pub(crate) fn done(outputs: Vec<(String, NewArtifact)>) -> ExecutionResult {
    ExecutionResult {
        children: Vec::new(),
        status: ExecStatus::Succeeded,
        cache_hit: false,
        attempts: 1,
        duration_ms: 5,
        error: None,
        summary: json!({}),
        outputs,
        signals: vec![NewSignal { kind: "test".into(), message: "noticed".into(), details: json!({}) }],
    }
}

#[test]
fn migrations_apply_once_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let s = MetadataStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), 14);
    drop(s);
    let s = MetadataStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), 14);
}

#[test]
fn records_a_run_with_lineage_both_ways() {
    let (_d, s) = store();
    let p = s.upsert_pipeline("demo", "abc", "p.toml", "[pipeline]").unwrap();
    assert_eq!(s.upsert_pipeline("demo", "abc", "p.toml", "[pipeline]").unwrap(), p);
    let run = s.create_run(p, &json!({"a": 1}), &json!({}), "manual", "tester").unwrap();

    let e1 = s.start_execution(run, "ingest", "ingest", "1", &json!({}), Some("k1"), "log", &[]).unwrap();
    let out = s.finish_execution(e1, &done(vec![("train".into(), artifact("d1", "dataset"))])).unwrap();
    let data_id = out[0].1.id;
    let e2 = s
        .start_execution(run, "train", "train", "1", &json!({}), Some("k2"), "log", &[("data".into(), data_id)])
        .unwrap();
    let out = s.finish_execution(e2, &done(vec![("model".into(), artifact("m1", "model"))])).unwrap();
    let model_id = out[0].1.id;
    let (mv, created) = s.register_model_version("bikes", model_id, Some(run)).unwrap();
    assert!(created);
    assert_eq!(mv.version, 1);
    let (again, created) = s.register_model_version("bikes", model_id, Some(run)).unwrap();
    assert!(!created);
    assert_eq!(again.version, 1);
    s.finish_run(run, RunStatus::Succeeded, 10, None).unwrap();

    let up = s.lineage(model_id).unwrap();
    assert_eq!(up.upstream.iter().map(|e| e.execution.step.as_str()).collect::<Vec<_>>(), ["train", "ingest"]);
    assert_eq!(up.model_versions.len(), 1);
    let down = s.lineage(data_id).unwrap();
    assert_eq!(down.downstream.len(), 1);
    assert_eq!(down.downstream[0].execution.outputs[0].artifact.id, model_id);

    // The model's training data, found from the registered version.
    let (prod, pinned) = (Selector::Alias("production".into()), Selector::Version(1));
    assert_eq!(s.resolve_model_ref("bikes", &LATEST, Some("data"), run + 1).unwrap().unwrap().0.id, data_id);
    // The run that registered it does not see it as its baseline.
    assert!(s.resolve_model_ref("bikes", &LATEST, Some("data"), run).unwrap().is_none());
    assert!(s.resolve_model_ref("bikes", &LATEST, Some("nope"), run + 1).unwrap().is_none());
    assert!(s.resolve_model_ref("other", &LATEST, Some("data"), run + 1).unwrap().is_none());
    assert_eq!(s.resolve_model_ref("bikes", &LATEST, None, run + 1).unwrap().unwrap().0.id, model_id);
    // Through an alias: none yet, then the version it points at (whatever the run).
    assert!(s.resolve_model_ref("bikes", &prod, None, run).unwrap().is_none());
    assert_eq!(
        s.set_alias("bikes", "production", 1, Some(run), Change { caller: "test", reason: None }).unwrap(),
        None
    );
    assert_eq!(s.resolve_model_ref("bikes", &prod, None, run).unwrap().unwrap().0.id, model_id);
    assert_eq!(s.resolve_model_ref("bikes", &prod, Some("data"), run).unwrap().unwrap().0.id, data_id);
    assert_eq!(s.model_version("bikes", Some(1)).unwrap().aliases, ["production"]);
    // A version named: whatever the run, and none that does not exist.
    let (found, version) = s.resolve_model_ref("bikes", &pinned, Some("data"), run).unwrap().unwrap();
    assert_eq!((found.id, version), (data_id, 1));
    assert!(s.resolve_model_ref("bikes", &Selector::Version(2), None, run + 1).unwrap().is_none());
    assert!(matches!(
        s.set_alias("bikes", "production", 9, None, Change { caller: "test", reason: None }),
        Err(MetadataError::NoModelVersion(_))
    ));
    assert_eq!(s.registry_audit(10).unwrap().len(), 1);
    let signals = s.signals(Some(run), 10).unwrap();
    assert_eq!(signals.len(), 2);
    assert_eq!(signals[0].message, "noticed");

    let cached = s.find_cached("k2").unwrap().unwrap();
    assert_eq!(cached.0, e2);
    assert_eq!(cached.1[0].1.digest, "m1");
    assert!(s.find_cached("nope").unwrap().is_none());

    let runs = s.list_runs(10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert_eq!(s.executions(run).unwrap().len(), 2);
}

#[test]
fn unknown_ids_are_clear_errors() {
    let (_d, s) = store();
    assert_eq!(s.run(42).unwrap_err().to_string(), "no run 42; `flywheel runs list` shows the runs");
    assert!(matches!(s.artifact(7), Err(MetadataError::NoArtifact(_))));
    assert!(matches!(s.model_version("m", Some(1)), Err(MetadataError::NoModelVersion(_))));
}

#[test]
fn monitor_windows_are_kept_in_order_per_model() {
    let dir = tempfile::tempdir().unwrap();
    let s = MetadataStore::open(&dir.path().join("m.db")).unwrap();
    let w = |model: &str, first_us: i64| NewWindow {
        model_name: model.into(),
        version: 1,
        first_us,
        last_us: first_us + 10,
        rows: 500,
        labeled: 250,
        alerts: 1,
        scores: serde_json::json!({ "metric": ["rmse", 3.5] }),
        at_us: first_us + 20,
    };
    for (m, t) in [("a", 0), ("b", 5), ("a", 100)] {
        s.record_window(&w(m, t), None).unwrap();
    }
    let a = s.windows(Some("a"), 10).unwrap();
    assert_eq!(a.iter().map(|x| x.window.first_us).collect::<Vec<_>>(), [100, 0], "newest first");
    assert_eq!(a[0].window, w("a", 100), "stored as given");
    assert_eq!(s.windows(None, 2).unwrap().len(), 2);
    let id = s.record_window(&w("c", 0), Some("{\"rows\":500}")).unwrap();
    assert_eq!(
        s.window_sketches(&[id, a[0].id]).unwrap().into_iter().collect::<Vec<_>>(),
        [(id, "{\"rows\":500}".into())]
    );
    s.rescore_window(id, (300, 0), &serde_json::json!({}), Some("{\"rows\":1}")).unwrap();
    assert_eq!(s.window_sketches(&[id]).unwrap()[&id], "{\"rows\":1}", "a window scored again keeps its new sums");
}

#[test]
fn deployments_and_trigger_states_are_kept_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let s = MetadataStore::open(&dir.path().join("m.db")).unwrap();
    let d = |digest: &str| DeploymentRecord {
        name: "bikes".into(),
        path: "d.toml".into(),
        digest: digest.into(),
        model_name: "bikes".into(),
        recorded_us: 1,
    };
    s.record_deployment(&d("a")).unwrap();
    s.record_deployment(&d("b")).unwrap();
    assert_eq!(s.deployments().unwrap(), [d("b")]);
    let renamed = DeploymentRecord { name: "bikes-v2".into(), ..d("c") };
    s.record_deployment(&renamed).unwrap();
    assert_eq!(s.deployments().unwrap(), [renamed], "the same file renamed is one deployment");
    assert_eq!(s.trigger_state("bikes", "drift windows=3").unwrap(), None);
    let t = TriggerRecord { fired_us: Some(5), used_window: 7, looked_us: None, since_us: 3 };
    s.save_trigger_state("bikes", "drift windows=3", &t).unwrap();
    assert_eq!(s.trigger_state("bikes", "drift windows=3").unwrap(), Some(t.clone()));
    assert_eq!(s.trigger_state("bikes", "drift windows=2").unwrap(), None, "a trigger changed starts afresh");
}

#[test]
fn a_queued_firing_stands_for_all_and_gathers_their_new_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = MetadataStore::open(&dir.path().join("m.db")).unwrap();
    assert_eq!(s.take_queued_firing("bikes").unwrap(), None);
    s.queue_firing("bikes", "new_data: 1 new file(s): b.csv", &["in/b.csv".into()], 1).unwrap();
    s.queue_firing("bikes", "drift: 5 of 8 columns", &[], 2).unwrap();
    s.queue_firing("bikes", "new_data: 2 new file(s): a.csv, b.csv", &["in/a.csv".into(), "in/b.csv".into()], 3)
        .unwrap();
    let (reason, files) = s.take_queued_firing("bikes").unwrap().unwrap();
    assert_eq!(reason, "new_data: 1 new file(s): b.csv", "the first to fire");
    assert_eq!(files, ["in/a.csv", "in/b.csv"]);
    assert_eq!(s.take_queued_firing("bikes").unwrap(), None, "taken once");
}
