//! The scenarios: cache, retries, timeout, skip-on-failure, cancel, the
//! publisher's rule, and a failure at each named point followed by what
//! the next process and `resume` make of it.

use super::components::HALF_DONE;
use super::harness::Harness;
use super::snapshot::snapshot;
use crate::Event;
use crate::failpoint::{FailPlan, FailPoint};
use flywheel_core::CancelToken;
use flywheel_metadata::{ExecStatus, RunStatus};

/// Compares the snapshot of `h` with `src/snapshots/<name>.snap`.
fn assert_store(h: &Harness, name: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, snapshot(h)));
}

fn last_run_id(h: &Harness) -> i64 {
    h.orch.home.metadata.list_runs(1).unwrap()[0].id
}

/// `a` writes, `b` reads it, `c` reads `b`.
const CHAIN: &str = r#"
[pipeline]
name = "chain"
[steps.a]
component = "write"
params = { text = "hello\n" }
[steps.b]
component = "upper"
inputs = { in = "a.out" }
[steps.c]
component = "flaky"
params = { failures = 0 }
inputs = { in = "b.out" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_run_is_served_from_the_cache_but_the_publisher_runs_again() {
    let h = Harness::new();
    let p = h.pipeline(
        r#"
[pipeline]
name = "cached"
[steps.a]
component = "write"
params = { text = "hello\n" }
[steps.b]
component = "upper"
inputs = { in = "a.out" }
[steps.p]
component = "publish"
inputs = { in = "b.out" }
"#,
    );
    let first = h.run(&p).await.unwrap();
    let second = h.run(&p).await.unwrap();
    assert_eq!((first.status, second.status), (RunStatus::Succeeded, RunStatus::Succeeded));
    let hits: Vec<bool> = second.steps.iter().map(|s| s.cache_hit).collect();
    assert_eq!(hits, [true, true, false]);
    assert_eq!((h.parts.calls("a"), h.parts.calls("b"), h.parts.calls("p")), (1, 1, 2));
    assert_store(&h, "cache_hit_on_the_second_run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_is_retried_until_it_succeeds_or_its_retries_are_spent() {
    let h = Harness::new();
    let p = h.pipeline(
        r#"
[pipeline]
name = "retries"
[steps.recovers]
component = "flaky"
params = { failures = 2 }
retries = 2
retry_backoff = "10ms"
[steps.gives_up]
component = "flaky"
params = { failures = 5 }
retries = 1
retry_backoff = "10ms"
"#,
    );
    let run = h.run(&p).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!((h.parts.calls("recovers"), h.parts.calls("gives_up")), (3, 2));
    assert_store(&h, "retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_past_its_timeout_fails_and_stores_nothing() {
    let h = Harness::new();
    let p = h.pipeline(
        r#"
[pipeline]
name = "timeout"
[steps.slow]
component = "sleepy"
timeout = "200ms"
[steps.after]
component = "upper"
inputs = { in = "slow.out" }
"#,
    );
    let run = h.run(&p).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(!h.stores(HALF_DONE).await, "a timed-out step's output must not be stored");
    assert!(h.work_folders().is_empty(), "left in work/: {:?}", h.work_folders());
    assert_store(&h, "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_skips_its_dependents_while_an_independent_branch_finishes() {
    let h = Harness::new();
    let p = h.pipeline(
        r#"
[pipeline]
name = "branches"
[steps.a]
component = "write"
params = { text = "left\n" }
[steps.b]
component = "broken"
params = { message = "boom" }
inputs = { in = "a.out" }
[steps.c]
component = "upper"
inputs = { in = "b.out" }
[steps.d]
component = "write"
params = { text = "right\n" }
[steps.e]
component = "upper"
inputs = { in = "d.out" }
"#,
    );
    let run = h.run(&p).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!((h.parts.calls("c"), h.parts.calls("e")), (0, 1));
    assert_store(&h, "skip_on_failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_during_a_step_cancels_the_run_and_stores_nothing_of_that_step() {
    let h = Harness::new();
    let p = h.pipeline(
        r#"
[pipeline]
name = "cancel"
[steps.a]
component = "write"
params = { text = "hello\n" }
[steps.slow]
component = "sleepy"
inputs = { in = "a.out" }
[steps.after]
component = "upper"
inputs = { in = "slow.out" }
"#,
    );
    let cancel = CancelToken::new();
    // The step stops only once the scheduler has said it is cancelling, so
    // that the events come in one order.
    h.parts.hold("sleepy");
    let (run, ()) = tokio::join!(h.run_until_cancelled(&p, cancel.clone()), async {
        h.events.wait_for_start("slow", 1).await;
        cancel.cancel();
        h.events.wait_for(|e| matches!(e, Event::Cancelling)).await;
        h.parts.release("sleepy");
    });
    let run = run.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    let slow = run.steps.iter().find(|s| s.step == "slow").unwrap();
    assert_eq!(slow.status, ExecStatus::Cancelled);
    assert!(run.steps.iter().all(|s| s.step != "after"), "nothing starts after a cancel");
    assert!(!h.stores(HALF_DONE).await, "a cancelled step's output must not be stored");
    assert!(h.work_folders().is_empty(), "left in work/: {:?}", h.work_folders());
    assert_store(&h, "cancel_during_a_step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_does_not_run_when_another_step_failed() {
    let h = Harness::new();
    let p = h.pipeline(
        r#"
[pipeline]
name = "publish"
[steps.a]
component = "write"
params = { text = "model\n" }
[steps.check]
component = "broken"
params = { message = "not good enough" }
[steps.push]
component = "publish"
inputs = { in = "a.out" }
"#,
    );
    let run = h.run(&p).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(h.parts.calls("push"), 0);
    assert_store(&h, "publisher_after_a_failure");
}

/// The outputs of `b` are in the store, its execution is not finished: the
/// run fails, the next process closes the execution, `resume` keeps `a`
/// and runs `b` again (its blob stored again, the same) and then `c`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_between_storing_outputs_and_finishing_then_resume() {
    let h = Harness::with_failures(FailPlan::default().at(FailPoint::OutputsStored, 2));
    let p = h.pipeline(CHAIN);
    let err = h.run(&p).await.unwrap_err();
    assert_eq!(err.to_string(), "planned failure at OutputsStored (hit 2)");
    assert!(h.stores("HELLO\n").await, "b's blob was stored before the failure");
    assert_store(&h, "outputs_stored_then_failure");

    let h = h.reopen();
    let run = h.resume(last_run_id(&h)).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!((h.parts.calls("a"), h.parts.calls("b"), h.parts.calls("c")), (1, 2, 1));
    assert_store(&h, "outputs_stored_then_failure_resumed");
}

/// Nothing of `b` is recorded when the orchestrator fails before its
/// execution starts; `resume` runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_inputs_are_resolved_records_nothing_of_the_step() {
    let h = Harness::with_failures(FailPlan::default().at(FailPoint::InputsResolved, 2));
    let p = h.pipeline(CHAIN);
    assert!(h.run(&p).await.is_err());
    assert_store(&h, "inputs_resolved_then_failure");
    let run = h.resume(last_run_id(&h)).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!((h.parts.calls("a"), h.parts.calls("b")), (1, 1));
    assert_store(&h, "inputs_resolved_then_failure_resumed");
}

/// The executor returned; its outputs are only in the work folder. The next
/// process closes the execution and removes the folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_before_outputs_are_stored_leaves_the_work_folder_to_the_next_process() {
    let h = Harness::with_failures(FailPlan::default().at(FailPoint::ExecutorReturned, 1));
    let p = h.pipeline(CHAIN);
    assert!(h.run(&p).await.is_err());
    assert_eq!(h.work_folders(), ["exec-1-1"]);
    assert!(!h.stores("hello\n").await);
    let h = h.reopen();
    assert!(h.work_folders().is_empty(), "left in work/: {:?}", h.work_folders());
    assert_store(&h, "executor_returned_then_failure");
}

/// A run whose steps all ended but that was never finished looks like one
/// still running: `resume` refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_before_the_run_is_finished_leaves_it_running() {
    let h = Harness::with_failures(FailPlan::default().at(FailPoint::BeforeRunFinished, 1));
    let p = h.pipeline(CHAIN);
    assert!(h.run(&p).await.is_err());
    let err = h.resume(last_run_id(&h)).await.unwrap_err();
    assert!(err.to_string().contains("is still running"), "{err}");
    assert_store(&h, "before_run_finished_then_failure");
}
