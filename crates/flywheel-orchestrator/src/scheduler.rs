//! The scheduler: which steps run when.

use crate::launcher::{StepJob, StepOutputs, run_step};
use crate::ordering::{self, Wait};
use crate::{Event, Observer, OrchestratorError, Result};
use flywheel_core::{CancelToken, ComponentRegistry, Role};
use flywheel_metadata::{ExecStatus, RunStatus};
use flywheel_pipeline::Pipeline;
use flywheel_registry::Home;
use serde::Serialize;
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
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            no_cache: false,
            overrides: Vec::new(),
            trigger: "manual".into(),
            started_by: default_user(),
        }
    }
}

pub fn default_user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into())
}

#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    pub step: String,
    pub execution_id: Option<i64>,
    pub status: ExecStatus,
    pub cache_hit: bool,
    pub attempts: u32,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub summary: Json,
    /// Succeeded before a `resume` and was not run again.
    pub resumed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub run_id: i64,
    pub pipeline: String,
    pub status: RunStatus,
    pub duration_ms: i64,
    pub steps: Vec<StepOutcome>,
    pub error: Option<String>,
}

pub struct Orchestrator {
    pub home: Home,
    pub components: ComponentRegistry,
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
        Self { home, components }
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
        let options = json!({ "jobs": opts.jobs, "no_cache": opts.no_cache });
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
        self.drive(&pipeline, run_id, values, opts, done, observer, cancel).await
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
        let n = pipeline.steps.len();
        let mut state = vec![State::Pending; n];
        let mut outputs: HashMap<usize, StepOutputs> = HashMap::new();
        let mut outcomes: Vec<Option<StepOutcome>> = vec![None; n];
        let resumed: Vec<String> = done.keys().map(|&i| pipeline.steps[i].name.clone()).collect();
        for (i, o) in done {
            state[i] = State::Done;
            outcomes[i] = Some(StepOutcome {
                step: pipeline.steps[i].name.clone(),
                execution_id: None,
                status: ExecStatus::Succeeded,
                cache_hit: false,
                attempts: 0,
                duration_ms: 0,
                error: None,
                summary: Json::Null,
                resumed: true,
            });
            outputs.insert(i, o);
        }
        observer.event(&Event::RunStarted {
            run_id,
            pipeline: pipeline.name.clone(),
            steps: pipeline.steps.iter().map(|s| s.name.clone()).collect(),
            resumed,
        });
        let roles: Vec<Role> = pipeline
            .steps
            .iter()
            .map(|s| self.components.get(&s.component).map_or(Role::Ordinary, |c| c.role()))
            .collect();
        let deps: Vec<Vec<usize>> = pipeline.steps.iter().map(|s| s.deps.clone()).collect();
        let waits = ordering::waits(&deps, &roles);
        let jobs = opts.jobs.max(1);
        let mut set: tokio::task::JoinSet<(usize, Result<(StepOutcome, StepOutputs)>)> = tokio::task::JoinSet::new();
        let mut running = 0;
        let mut first_error: Option<String> = None;
        let mut infra_error: Option<OrchestratorError> = None;
        let mut cancelling = false;
        loop {
            if cancel.is_cancelled() && !cancelling {
                cancelling = true;
                observer.event(&Event::Cancelling);
            }
            if !cancelling && infra_error.is_none() {
                for i in 0..n {
                    if running >= jobs {
                        break;
                    }
                    if state[i] != State::Pending {
                        continue;
                    }
                    let step = &pipeline.steps[i];
                    if let Some(reason) = blocked_by(&waits[i], &state, pipeline) {
                        state[i] = State::Failed;
                        let o = self.skip(run_id, step, reason)?;
                        observer.event(&Event::StepFinished(o.clone()));
                        outcomes[i] = Some(o);
                        continue;
                    }
                    if !waits[i].iter().all(|&(d, _)| state[d] == State::Done) {
                        continue;
                    }
                    let Some(component) = self.components.get(&step.component).cloned() else {
                        continue;
                    };
                    let inputs = step
                        .inputs
                        .iter()
                        .filter_map(|(port, r)| {
                            outputs.get(&r.step_index).and_then(|o| o.get(&r.output)).map(|a| (port.clone(), a.clone()))
                        })
                        .collect();
                    let job = StepJob {
                        run_id,
                        step: step.for_run(&values),
                        component,
                        params: step.resolve_params(&values),
                        inputs,
                        base_dir: pipeline.base_dir.clone(),
                        use_cache: !opts.no_cache,
                        cancel: cancel.clone(),
                    };
                    state[i] = State::Running;
                    running += 1;
                    let home = self.home.clone();
                    let obs = observer.clone();
                    set.spawn(async move { (i, run_step(&home, job, obs.as_ref()).await) });
                }
            }
            if running == 0 {
                break;
            }
            tokio::select! {
                joined = set.join_next() => {
                    let Some(joined) = joined else { break };
                    running -= 1;
                    let (i, result) = match joined {
                        Ok(r) => r,
                        Err(e) => {
                            infra_error.get_or_insert(OrchestratorError::Io(std::io::Error::other(format!("a step task panicked: {e}"))));
                            continue;
                        }
                    };
                    match result {
                        Ok((outcome, outs)) => {
                            state[i] = match outcome.status {
                                ExecStatus::Succeeded => State::Done,
                                ExecStatus::Refused => State::Refused,
                                _ => State::Failed,
                            };
                            if state[i] == State::Done {
                                outputs.insert(i, outs);
                            }
                            if outcome.status == ExecStatus::Failed && first_error.is_none() {
                                first_error = Some(format!("step `{}` failed: {}", outcome.step, outcome.error.clone().unwrap_or_default()));
                            }
                            observer.event(&Event::StepFinished(outcome.clone()));
                            outcomes[i] = Some(outcome);
                        }
                        Err(e) => {
                            state[i] = State::Failed;
                            infra_error.get_or_insert(e);
                        }
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let duration_ms = started.elapsed().as_millis() as i64;
        let all_done = state.iter().all(|s| *s == State::Done);
        let refusals: Vec<String> = outcomes
            .iter()
            .flatten()
            .filter(|o| o.status == ExecStatus::Refused)
            .map(|o| format!("`{}` refused: {}", o.step, o.error.as_deref().unwrap_or_default()))
            .collect();
        let only_refused = state.iter().all(|s| matches!(s, State::Done | State::Refused)) && !refusals.is_empty();
        let (status, error) = if let Some(e) = infra_error {
            let msg = e.to_string();
            let _ = self.home.metadata.finish_run(run_id, RunStatus::Failed, duration_ms, Some(&msg));
            return Err(e);
        } else if cancelling || cancel.is_cancelled() && !all_done {
            (RunStatus::Cancelled, Some("cancelled by the user".to_string()))
        } else if all_done {
            (RunStatus::Succeeded, None)
        } else if only_refused {
            (RunStatus::Refused, Some(refusals.join("; ")))
        } else {
            (RunStatus::Failed, first_error.or_else(|| Some("some steps did not succeed".into())))
        };
        self.home.metadata.finish_run(run_id, status, duration_ms, error.as_deref())?;
        Ok(RunOutcome {
            run_id,
            pipeline: pipeline.name.clone(),
            status,
            duration_ms,
            steps: outcomes.into_iter().flatten().collect(),
            error,
        })
    }
}
