//! The harness: an orchestrator over a fresh home in a temporary folder,
//! the test components, pipelines compiled from TOML text, an observer that
//! keeps every event (so a test can wait for one before acting), and
//! "reopen", which does what the next process would on the same home.

use super::components::Parts;
use crate::failpoint::FailPlan;
use crate::{Event, Home, Observer, Orchestrator, Result, RunOptions, RunOutcome};
use flywheel_core::CancelToken;
use flywheel_pipeline::Pipeline;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub struct Harness {
    dir: TempDir,
    pub orch: Orchestrator,
    pub parts: Arc<Parts>,
    pub events: Arc<Recorder>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_failures(FailPlan::default())
    }

    /// A harness whose orchestrator fails where `plan` says.
    pub fn with_failures(plan: FailPlan) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let parts = Arc::new(Parts::new());
        let mut orch = Orchestrator::new(Home::open(&dir.path().join("home")).unwrap(), parts.registry());
        orch.failures = Arc::new(plan);
        Self { dir, orch, parts, events: Arc::new(Recorder::default()) }
    }

    /// Drops this process's hold on the home and opens it again, as the
    /// next `flywheel` command would: the components (and their call
    /// counts) and the event log stay, the planned failures do not.
    pub fn reopen(self) -> Self {
        let Harness { dir, orch, parts, events } = self;
        drop(orch);
        let orch = Orchestrator::new(Home::open(&dir.path().join("home")).unwrap(), parts.registry());
        Self { dir, orch, parts, events }
    }

    pub fn pipeline_path(&self) -> PathBuf {
        self.dir.path().join("pipeline.toml")
    }

    pub fn pipeline(&self, toml: &str) -> Pipeline {
        flywheel_pipeline::compile(toml, &self.pipeline_path(), &self.orch.components).unwrap()
    }

    /// Runs one step at a time, so that execution ids, events and the
    /// snapshot are the same on every machine.
    pub fn options() -> RunOptions {
        RunOptions { jobs: 1, trigger: "test".into(), started_by: "tester".into(), ..RunOptions::default() }
    }

    pub async fn run(&self, pipeline: &Pipeline) -> Result<RunOutcome> {
        self.run_until_cancelled(pipeline, CancelToken::new()).await
    }

    pub async fn run_until_cancelled(&self, pipeline: &Pipeline, cancel: CancelToken) -> Result<RunOutcome> {
        let observer: Arc<dyn Observer> = self.events.clone();
        self.orch.run(pipeline, &Self::options(), observer, cancel).await
    }

    pub async fn resume(&self, run_id: i64) -> Result<RunOutcome> {
        let observer: Arc<dyn Observer> = self.events.clone();
        self.orch.resume(run_id, &Self::options(), observer, CancelToken::new()).await
    }

    /// Whether the artifact store holds `content` (stored under its digest).
    pub async fn stores(&self, content: &str) -> bool {
        let digest = flywheel_core::digest_bytes(content.as_bytes());
        self.orch.home.artifacts.contains(&digest).await.unwrap()
    }

    /// What is left under the home's `work/` folder.
    pub fn work_folders(&self) -> Vec<String> {
        let work = self.orch.home.root.join("work");
        let mut names: Vec<String> = std::fs::read_dir(work)
            .map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Keeps every event the scheduler and launcher report.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Observer for Recorder {
    fn event(&self, event: &Event) {
        self.events.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    pub fn all(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until an event matching `what` was reported (at most 20 s, so
    /// that a scenario that went wrong fails instead of hanging).
    pub async fn wait_for(&self, what: impl Fn(&Event) -> bool) {
        let give_up = Instant::now() + Duration::from_secs(20);
        while !self.events.lock().unwrap().iter().any(&what) {
            assert!(Instant::now() < give_up, "the awaited event never came; events: {:#?}", self.all());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until `step` started its `attempt`.
    pub async fn wait_for_start(&self, step: &str, attempt: u32) {
        self.wait_for(|e| matches!(e, Event::StepStarted { step: s, attempt: a } if s == step && *a == attempt)).await
    }
}
