//! The scheduler: which steps run when. A run is driven by [`Drive`]:
//! start every ready step (up to `jobs`), skip those whose upstream did not
//! succeed, take in each step as it ends, stop starting steps on
//! cancellation or an error of the orchestrator itself, then finish the run.

use crate::launcher::{StepJob, StepOutputs, run_step};
use crate::ordering::{self, Wait};
use crate::outcome::{RunOutcome, StepOutcome};
use crate::{Event, Observer, OrchestratorError, Result};
use flywheel_core::{CancelToken, Component, ComponentRegistry, Role};
use flywheel_metadata::{ExecStatus, RunStatus};
use flywheel_pipeline::{Pipeline, Step};
use flywheel_registry::Home;
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub jobs: usize,
    pub no_cache: bool,
    pub overrides: Vec<(String, String)>,
    pub trigger: String,
    pub started_by: String,
    /// The alias this run's publishers move, instead of the one their step
    /// declares: a deployment with a canary sends new models to `canary`.
    pub publish_alias: Option<String>,
    /// The deployment whose trigger started this run, recorded with it.
    pub deployment: Option<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            no_cache: false,
            overrides: Vec::new(),
            trigger: "manual".into(),
            started_by: default_user(),
            publish_alias: None,
            deployment: None,
        }
    }
}

pub fn default_user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into())
}

pub struct Orchestrator {
    pub home: Home,
    pub components: ComponentRegistry,
    /// Failures a test planned (see `failpoint`).
    #[cfg(test)]
    pub(crate) failures: Arc<crate::failpoint::FailPlan>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    Pending,
    Running,
    Done,
    /// Ran and declined its effect (an unblessed model not pushed).
    Refused,
    /// Failed, cancelled or skipped.
    Failed,
}

/// Why a pending step can never run, if one of the steps it waits for did
/// not succeed.
fn blocked_by(waits: &[(usize, Wait)], state: &[State], pipeline: &Pipeline) -> Option<String> {
    let not_ok = |&&(d, _): &&(usize, Wait)| matches!(state[d], State::Failed | State::Refused);
    let (d, why) = *waits.iter().find(not_ok)?;
    let names = |kind: Wait| -> String {
        let v: Vec<&str> = waits
            .iter()
            .filter(not_ok)
            .filter(|(_, w)| *w == kind)
            .map(|(d, _)| pipeline.steps[*d].name.as_str())
            .collect();
        v.join(", ")
    };
    Some(match why {
        Wait::Reads => format!("not run: upstream step {} did not succeed", names(Wait::Reads)),
        Wait::Gate => format!(
            "not run: data validation `{}` did not succeed, and a failed validation stops the pipeline",
            pipeline.steps[d].name
        ),
        Wait::Publish => format!(
            "not run: a run publishes only when every other step succeeded, and {} did not",
            names(Wait::Publish)
        ),
    })
}

impl Orchestrator {
    pub fn new(home: Home, components: ComponentRegistry) -> Self {
        Self {
            home,
            components,
            #[cfg(test)]
            failures: Arc::default(),
        }
    }

    /// Records a step that will not run, and why.
    fn skip(&self, run_id: i64, step: &flywheel_pipeline::Step, reason: String) -> Result<StepOutcome> {
        let id =
            self.home.metadata.record_skipped(run_id, &step.name, &step.component, &step.component_version, &reason)?;
        Ok(StepOutcome {
            step: step.name.clone(),
            execution_id: Some(id),
            status: ExecStatus::Skipped,
            cache_hit: false,
            attempts: 0,
            duration_ms: 0,
            error: Some(reason),
            summary: Json::Null,
            resumed: false,
        })
    }

    /// Starts a new run of `pipeline`.
    pub async fn run(
        &self,
        pipeline: &Pipeline,
        opts: &RunOptions,
        observer: Arc<dyn Observer>,
        cancel: CancelToken,
    ) -> Result<RunOutcome> {
        let values = pipeline.resolve_parameters(&opts.overrides)?;
        let meta = &self.home.metadata;
        let pipeline_id = meta.upsert_pipeline(
            &pipeline.name,
            &pipeline.digest,
            &pipeline.path.display().to_string(),
            &pipeline.source,
        )?;
        let params = json!(values);
        let mut options = json!({ "jobs": opts.jobs, "no_cache": opts.no_cache });
        if let Some(alias) = &opts.publish_alias {
            options["publish_alias"] = json!(alias);
        }
        if let Some(d) = &opts.deployment {
            options["deployment"] = json!(d);
        }
        let run_id = meta.create_run(pipeline_id, &params, &options, &opts.trigger, &opts.started_by)?;
        self.drive(pipeline, run_id, values, opts, HashMap::new(), observer, cancel).await
    }

    /// Finishes an unfinished run: steps that succeeded in it keep their
    /// outputs; everything else runs again.
    pub async fn resume(
        &self,
        run_id: i64,
        opts: &RunOptions,
        observer: Arc<dyn Observer>,
        cancel: CancelToken,
    ) -> Result<RunOutcome> {
        let meta = &self.home.metadata;
        let run = meta.run(run_id)?;
        match run.status {
            RunStatus::Succeeded => {
                return Err(OrchestratorError::NotResumable {
                    run: run_id,
                    reason: "already succeeded; nothing to resume".into(),
                });
            }
            RunStatus::Refused => {
                return Err(OrchestratorError::NotResumable {
                    run: run_id,
                    reason: "ran to the end and refused to publish; start a new run with `flywheel run`".into(),
                });
            }
            RunStatus::Running => {
                return Err(OrchestratorError::NotResumable {
                    run: run_id,
                    reason: format!("is still running (process {} on {})", run.pid, run.host),
                });
            }
            _ => {}
        }
        let (source, path) = meta.run_pipeline_source(run_id)?;
        let pipeline = flywheel_pipeline::compile(&source, std::path::Path::new(&path), &self.components)?;
        let values: BTreeMap<String, Json> =
            run.parameters.as_object().map(|m| m.clone().into_iter().collect()).unwrap_or_default();
        let done = self.reusable_steps(run_id, &pipeline).await?;
        meta.reopen_run(run_id)?;
        // A resumed run publishes where it was started to.
        let mut opts = opts.clone();
        if let Some(alias) = run.options["publish_alias"].as_str() {
            opts.publish_alias = Some(alias.to_string());
        }
        self.drive(&pipeline, run_id, values, &opts, done, observer, cancel).await
    }

    /// The steps of `run_id` that succeeded and can keep their outputs: every
    /// output blob still in the store, intact, and every step they read from
    /// kept too (a step whose input is re-made runs again). Publishers always
    /// run again: their effect is checked at the moment it is applied.
    async fn reusable_steps(&self, run_id: i64, pipeline: &Pipeline) -> Result<HashMap<usize, StepOutputs>> {
        let mut succeeded: HashMap<usize, StepOutputs> = HashMap::new();
        for e in self.home.metadata.executions(run_id)? {
            if e.status == ExecStatus::Succeeded
                && let Some(i) = pipeline.steps.iter().position(|s| s.name == e.step)
            {
                succeeded.insert(i, e.outputs.into_iter().map(|o| (o.name, o.artifact)).collect());
            }
        }
        let mut done = HashMap::new();
        for (i, step) in pipeline.steps.iter().enumerate() {
            let publishes = self.components.get(&step.component).is_some_and(|c| c.role() == Role::Publisher);
            let Some(outs) = succeeded.remove(&i) else { continue };
            if publishes || !step.deps.iter().all(|d| done.contains_key(d)) {
                continue;
            }
            let mut intact = true;
            for a in outs.values() {
                intact &= self.home.artifacts.contains(&a.digest).await?;
            }
            if intact {
                done.insert(i, outs);
            }
        }
        Ok(done)
    }

    #[allow(clippy::too_many_arguments)]
    async fn drive(
        &self,
        pipeline: &Pipeline,
        run_id: i64,
        values: BTreeMap<String, Json>,
        opts: &RunOptions,
        done: HashMap<usize, StepOutputs>,
        observer: Arc<dyn Observer>,
        cancel: CancelToken,
    ) -> Result<RunOutcome> {
        let started = Instant::now();
        let mut drive = Drive::new(self, pipeline, run_id, values, opts, observer, cancel);
        drive.start(done);
        drive.run_to_end().await?;
        drive.finish(started.elapsed().as_millis() as i64)
    }
}

type StepResult = Result<(StepOutcome, StepOutputs)>;

/// One run under way: where every step is, what the run has met so far.
struct Drive<'a> {
    orch: &'a Orchestrator,
    pipeline: &'a Pipeline,
    run_id: i64,
    values: BTreeMap<String, Json>,
    opts: &'a RunOptions,
    observer: Arc<dyn Observer>,
    cancel: CancelToken,
    /// For each step, the steps it waits for and why (`ordering`).
    waits: Vec<Vec<(usize, Wait)>>,
    state: Vec<State>,
    outputs: HashMap<usize, StepOutputs>,
    outcomes: Vec<Option<StepOutcome>>,
    tasks: tokio::task::JoinSet<(usize, StepResult)>,
    running: usize,
    first_error: Option<String>,
    /// An error of the orchestrator itself (not of a step): no step starts
    /// after it, and the run ends `failed` with it.
    infra_error: Option<OrchestratorError>,
    cancelling: bool,
}

impl<'a> Drive<'a> {
    fn new(
        orch: &'a Orchestrator,
        pipeline: &'a Pipeline,
        run_id: i64,
        values: BTreeMap<String, Json>,
        opts: &'a RunOptions,
        observer: Arc<dyn Observer>,
        cancel: CancelToken,
    ) -> Self {
        let roles: Vec<Role> = pipeline
            .steps
            .iter()
            .map(|s| orch.components.get(&s.component).map_or(Role::Ordinary, |c| c.role()))
            .collect();
        let deps: Vec<Vec<usize>> = pipeline.steps.iter().map(|s| s.deps.clone()).collect();
        let n = pipeline.steps.len();
        Self {
            orch,
            pipeline,
            run_id,
            values,
            opts,
            observer,
            cancel,
            waits: ordering::waits(&deps, &roles),
            state: vec![State::Pending; n],
            outputs: HashMap::new(),
            outcomes: vec![None; n],
            tasks: tokio::task::JoinSet::new(),
            running: 0,
            first_error: None,
            infra_error: None,
            cancelling: false,
        }
    }

    /// Takes the steps a resumed run keeps as done, and announces the run.
    fn start(&mut self, done: HashMap<usize, StepOutputs>) {
        let steps = &self.pipeline.steps;
        let resumed: Vec<String> = done.keys().map(|&i| steps[i].name.clone()).collect();
        for (i, o) in done {
            self.state[i] = State::Done;
            self.outcomes[i] = Some(StepOutcome {
                step: steps[i].name.clone(),
                execution_id: None,
                status: ExecStatus::Succeeded,
                cache_hit: false,
                attempts: 0,
                duration_ms: 0,
                error: None,
                summary: Json::Null,
                resumed: true,
            });
            self.outputs.insert(i, o);
        }
        self.observer.event(&Event::RunStarted {
            run_id: self.run_id,
            pipeline: self.pipeline.name.clone(),
            steps: steps.iter().map(|s| s.name.clone()).collect(),
            resumed,
        });
    }

    /// Starts steps as they become ready until none runs and none can start.
    async fn run_to_end(&mut self) -> Result<()> {
        loop {
            if self.cancel.is_cancelled() && !self.cancelling {
                self.cancelling = true;
                self.observer.event(&Event::Cancelling);
            }
            if !self.cancelling && self.infra_error.is_none() {
                self.start_ready()?;
            }
            if self.running == 0 {
                return Ok(());
            }
            tokio::select! {
                joined = self.tasks.join_next() => {
                    let Some(joined) = joined else { return Ok(()) };
                    self.running -= 1;
                    self.collect(joined);
                }
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// Skips the pending steps that can never run and launches the ready
    /// ones, up to `jobs` running at a time.
    fn start_ready(&mut self) -> Result<()> {
        let pipeline = self.pipeline;
        let jobs = self.opts.jobs.max(1);
        for (i, step) in pipeline.steps.iter().enumerate() {
            if self.running >= jobs {
                break;
            }
            if self.state[i] != State::Pending {
                continue;
            }
            if let Some(reason) = blocked_by(&self.waits[i], &self.state, pipeline) {
                self.state[i] = State::Failed;
                let o = self.orch.skip(self.run_id, step, reason)?;
                self.observer.event(&Event::StepFinished(o.clone()));
                self.outcomes[i] = Some(o);
                continue;
            }
            if !self.waits[i].iter().all(|&(d, _)| self.state[d] == State::Done) {
                continue;
            }
            let Some(component) = self.orch.components.get(&step.component).cloned() else {
                continue;
            };
            let job = self.job_for(step, component);
            self.state[i] = State::Running;
            self.running += 1;
            let home = self.orch.home.clone();
            let obs = self.observer.clone();
            self.tasks.spawn(async move { (i, run_step(&home, job, obs.as_ref()).await) });
        }
        Ok(())
    }

    /// What the launcher needs to run `step` in this run: its parameters
    /// with the run's values, its inputs from the steps it reads.
    fn job_for(&self, step: &Step, component: Arc<dyn Component>) -> StepJob {
        let inputs = step
            .inputs
            .iter()
            .filter_map(|(port, r)| {
                self.outputs.get(&r.step_index).and_then(|o| o.get(&r.output)).map(|a| (port.clone(), a.clone()))
            })
            .collect();
        let mut params = step.resolve_params(&self.values);
        if let Some(alias) = &self.opts.publish_alias
            && component.role() == Role::Publisher
            && params.contains_key("alias")
        {
            params.insert("alias".into(), Json::String(alias.clone()));
        }
        StepJob {
            run_id: self.run_id,
            step: step.for_run(&self.values),
            component,
            params,
            inputs,
            base_dir: self.pipeline.base_dir.clone(),
            use_cache: !self.opts.no_cache,
            cancel: self.cancel.clone(),
            #[cfg(test)]
            failures: self.orch.failures.clone(),
        }
    }

    /// Takes in a step that ended (or whose task failed).
    fn collect(&mut self, joined: std::result::Result<(usize, StepResult), tokio::task::JoinError>) {
        let (i, result) = match joined {
            Ok(r) => r,
            Err(e) => {
                let panicked = std::io::Error::other(format!("a step task panicked: {e}"));
                self.infra_error.get_or_insert(OrchestratorError::Io(panicked));
                return;
            }
        };
        match result {
            Ok((outcome, outs)) => self.record(i, outcome, outs),
            Err(e) => {
                self.state[i] = State::Failed;
                self.infra_error.get_or_insert(e);
            }
        }
    }

    fn record(&mut self, i: usize, outcome: StepOutcome, outs: StepOutputs) {
        self.state[i] = match outcome.status {
            ExecStatus::Succeeded => State::Done,
            ExecStatus::Refused => State::Refused,
            _ => State::Failed,
        };
        if self.state[i] == State::Done {
            self.outputs.insert(i, outs);
        }
        if outcome.status == ExecStatus::Failed && self.first_error.is_none() {
            let error = outcome.error.clone().unwrap_or_default();
            self.first_error = Some(format!("step `{}` failed: {error}", outcome.step));
        }
        self.observer.event(&Event::StepFinished(outcome.clone()));
        self.outcomes[i] = Some(outcome);
    }

    /// Records how the run ended; the orchestrator's own error, if it met one.
    fn finish(mut self, duration_ms: i64) -> Result<RunOutcome> {
        fail_point!(self.orch.failures, BeforeRunFinished);
        let meta = &self.orch.home.metadata;
        if let Some(e) = self.infra_error.take() {
            let msg = e.to_string();
            let _ = meta.finish_run(self.run_id, RunStatus::Failed, duration_ms, Some(&msg));
            return Err(e);
        }
        let (status, error) = self.status();
        meta.finish_run(self.run_id, status, duration_ms, error.as_deref())?;
        Ok(RunOutcome {
            run_id: self.run_id,
            pipeline: self.pipeline.name.clone(),
            status,
            duration_ms,
            steps: self.outcomes.into_iter().flatten().collect(),
            error,
        })
    }

    /// How the run ended, and why if not well.
    fn status(&mut self) -> (RunStatus, Option<String>) {
        let all_done = self.state.iter().all(|s| *s == State::Done);
        let refusals: Vec<String> = self
            .outcomes
            .iter()
            .flatten()
            .filter(|o| o.status == ExecStatus::Refused)
            .map(|o| format!("`{}` refused: {}", o.step, o.error.as_deref().unwrap_or_default()))
            .collect();
        let only_refused = self.state.iter().all(|s| matches!(s, State::Done | State::Refused)) && !refusals.is_empty();
        if self.cancelling || self.cancel.is_cancelled() && !all_done {
            (RunStatus::Cancelled, Some("cancelled by the user".to_string()))
        } else if all_done {
            (RunStatus::Succeeded, None)
        } else if only_refused {
            (RunStatus::Refused, Some(refusals.join("; ")))
        } else {
            (RunStatus::Failed, self.first_error.take().or_else(|| Some("some steps did not succeed".into())))
        }
    }
}
