//! The store and the event log as stable text for `insta`: runs, their
//! executions (step, component, status, attempts, cache hit, error), the
//! artifacts each read and wrote (type, digest, size, properties) and the
//! events the observer saw. No timestamps, durations, pids, hosts or paths:
//! what is left is the same on every run of the test. Digests are content
//! hashes of what the test components wrote, so they are stable too.

use super::harness::Harness;
use crate::Event;
use flywheel_metadata::{ArtifactRecord, ExecutionRecord, NamedArtifact};
use std::collections::BTreeMap;
use std::fmt::Write;

pub fn snapshot(h: &Harness) -> String {
    let meta = &h.orch.home.metadata;
    let mut out = String::from("## events\n");
    for e in h.events.all() {
        writeln!(out, "{}", event(&e)).unwrap();
    }
    out.push_str("\n## runs\n");
    let mut artifacts = BTreeMap::new();
    let mut runs = meta.list_runs(100).unwrap();
    runs.reverse();
    for run in runs {
        let error = run.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        writeln!(out, "run #{} `{}` {}{error}", run.id, run.pipeline, run.status).unwrap();
        for e in meta.executions(run.id).unwrap() {
            execution(&mut out, &e);
            for a in e.inputs.iter().chain(&e.outputs) {
                artifacts.insert(a.artifact.id, a.artifact.clone());
            }
        }
    }
    out.push_str("\n## artifacts\n");
    for a in artifacts.values() {
        writeln!(out, "{}", artifact(a)).unwrap();
    }
    out
}

fn execution(out: &mut String, e: &ExecutionRecord) {
    let cache = if e.cache_hit { ", cache hit" } else { "" };
    let error = e.error.as_deref().map(|e| format!("\n      error: {e}")).unwrap_or_default();
    writeln!(
        out,
        "  exec #{} {} [{} {}] {}, attempts {}{cache}{error}",
        e.id, e.step, e.component, e.component_version, e.status, e.attempts
    )
    .unwrap();
    let event = |out: &mut String, dir: &str, a: &NamedArtifact| {
        writeln!(out, "    {dir} {} = artifact #{}", a.name, a.artifact.id).unwrap();
    };
    for a in &e.inputs {
        event(out, "in ", a);
    }
    for a in &e.outputs {
        event(out, "out", a);
    }
}

fn artifact(a: &ArtifactRecord) -> String {
    let digest = a.digest.get(..12).unwrap_or(&a.digest);
    format!("#{} {} {digest} ({} bytes) {}", a.id, a.ty, a.size, a.properties)
}

fn event(e: &Event) -> String {
    match e {
        Event::RunStarted { run_id, steps, resumed, .. } => {
            let mut resumed = resumed.clone();
            // The scheduler lists kept steps in no particular order.
            resumed.sort();
            let kept = if resumed.is_empty() { String::new() } else { format!(" (kept: {})", resumed.join(", ")) };
            format!("run #{run_id} started: {}{kept}", steps.join(", "))
        }
        Event::StepStarted { step, attempt } => format!("{step} started, attempt {attempt}"),
        Event::StepRetrying { step, attempt, error, .. } => format!("{step} retrying after attempt {attempt}: {error}"),
        Event::StepFinished(o) => {
            let cache = if o.cache_hit { ", cache hit" } else { "" };
            let kept = if o.resumed { ", kept" } else { "" };
            let error = o.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
            format!("{} {}, attempts {}{cache}{kept}{error}", o.step, o.status, o.attempts)
        }
        Event::Cancelling => "cancelling".into(),
    }
}
