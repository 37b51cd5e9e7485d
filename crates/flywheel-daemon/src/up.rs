//! The loop of `flywheel up`: every tick, each deployment's new windows are
//! scored and recorded, each of its triggers decided, and a firing starts a
//! run of its pipeline (or waits for, or skips, the one under way).

use crate::DaemonError;
use crate::delivery::{CANARY, Delivered, Deliverer, PRODUCTION};
use crate::triggers::{FileView, Firing, TriggerState, WindowView, decide, new_data, on_demand};
use flywheel_core::{CancelToken, ComponentRegistry, ModelRef, Selector};
use flywheel_deploy::{Deployment, TriggerKind, WhenBusy};
use flywheel_metadata::{DeploymentRecord, RunStatus, TriggerRecord};
use flywheel_monitor::windows::LATE_HORIZON_US;
use flywheel_orchestrator::{Orchestrator, RunOptions, RunOutcome};
use flywheel_registry::Home;
use flywheel_serve::{LogOptions, Sampling, Serve, ServeConfig};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct UpConfig {
    pub home: PathBuf,
    pub deployments: Vec<Deployment>,
    /// Where to serve; the first deployment's `[serving] addr`, or
    /// 127.0.0.1:8080, when `None`.
    pub addr: Option<String>,
    /// How often windows are cut and triggers decided.
    pub tick: Duration,
    pub token: Option<String>,
    /// The server's memory hook (`flywheel_serve::Serve::memory_hook`).
    pub memory_hook: Option<fn(flywheel_serve::Moment)>,
}

/// What `up` tells as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    Window {
        deployment: String,
        text: String,
    },
    Fired {
        deployment: String,
        reason: String,
    },
    /// A run of this deployment that an earlier `up` left unfinished
    /// (killed, or stopped), taken up again.
    Resumed {
        deployment: String,
        run_id: i64,
        status: String,
    },
    /// A firing that starts no run, and why not.
    Skipped {
        deployment: String,
        reason: String,
        because: String,
    },
    Queued {
        deployment: String,
        reason: String,
    },
    RunFinished {
        deployment: String,
        run_id: i64,
        status: String,
        error: Option<String>,
    },
    Problem {
        deployment: String,
        text: String,
    },
    /// A canary went out, was promoted, rolled back, or waits for approval.
    Delivery {
        deployment: String,
        delivered: Delivered,
        text: String,
    },
}

type Tell = Arc<dyn Fn(Event) + Send + Sync>;

/// Runs until `shutdown` resolves: serves, monitors and retrains.
pub async fn up(
    config: UpConfig,
    components: ComponentRegistry,
    ready: impl FnOnce(SocketAddr),
    tell: Tell,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    check(&config)?;
    let (stop, stopped) = watch::channel(false);
    let stop = Arc::new(stop);
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = on_signal.send(true);
    });
    let claimed = Home::open(&config.home)?;
    claim(&claimed, &config)?;
    let started = async {
        first_runs(&config, &components, &tell, stopped.clone()).await?;
        Ok::<_, DaemonError>(Serve::load(&serve_config(&config)?).await?)
    };
    let serve = match started.await {
        Ok(serve) => Serve { memory_hook: config.memory_hook, ..serve },
        Err(e) => {
            // Nothing served: the home is free again.
            let _ = claimed.metadata.clear_up();
            return Err(e);
        }
    };
    let home = serve.home.clone().ok_or_else(|| DaemonError::Nothing("the server opened no home".into()))?;
    let deliverer = Deliverer::new(serve.table.clone(), serve.metrics.clone());
    for d in &config.deployments {
        home.metadata.record_deployment(&record(d))?;
    }
    // The loop reads files and scores windows: on a thread and runtime of
    // its own, it never holds up the server's accepting and answering.
    let names: Vec<String> = config.deployments.iter().map(|d| d.name.clone()).collect();
    let recorder = home.clone();
    let looping = Loop::new(home, components, config, deliverer, tell);
    let loop_stopped = stopped.clone();
    let looper = std::thread::spawn(move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => {
            yield_to_serving();
            rt.block_on(looping.run(loop_stopped))
        }
        Err(e) => (looping.tell)(Event::Problem { deployment: String::new(), text: format!("no runtime: {e}") }),
    });
    let mut rx = stopped;
    let clearer = recorder.clone();
    let served = flywheel_serve::run_until(
        serve,
        move |addr| {
            // For `flywheel status`: who serves this home, where.
            let _ = recorder.metadata.record_up(&format!("http://{addr}"), &names.join(", "), now_us());
            ready(addr);
        },
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    )
    .await;
    let _ = clearer.metadata.clear_up();
    // However the server ended (a signal, or an address it could not
    // bind), the loop ends with it.
    let _ = stop.send(true);
    let _ = tokio::task::spawn_blocking(move || looper.join()).await;
    Ok(served?)
}

/// A deployment whose model has no `production` version yet (a new home)
/// has its pipeline run first, publishing as the pipeline declares, before
/// there is anything to serve. A first run that publishes nothing stops
/// `up`, saying why; a signal meanwhile cancels it.
async fn first_runs(
    config: &UpConfig,
    components: &ComponentRegistry,
    tell: &Tell,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    let home = Home::open(&config.home)?;
    let orchestrator = Orchestrator::new(home.clone(), components.clone());
    for d in &config.deployments {
        let production = ModelRef { name: d.model.clone(), selector: Selector::Alias(PRODUCTION.into()) };
        if home.resolve(&production).is_ok() {
            continue;
        }
        let reason = format!("first run: `{}` has no production version yet", d.model);
        (tell)(Event::Fired { deployment: d.name.clone(), reason: reason.clone() });
        let opts = RunOptions {
            trigger: reason,
            started_by: UP.into(),
            overrides: d.params.clone(),
            deployment: Some(d.name.clone()),
            ..RunOptions::default()
        };
        let cancel = CancelToken::new();
        let silent: Arc<dyn flywheel_orchestrator::Observer> = Arc::new(flywheel_orchestrator::Silent);
        let run = orchestrator.run(&d.pipeline, &opts, silent, cancel.clone());
        tokio::pin!(run);
        let finished = tokio::select! {
            o = &mut run => Some(o),
            _ = stopped.wait_for(|s| *s) => None,
        };
        let Some(outcome) = finished else {
            // The run stops its step and records itself cancelled.
            cancel.cancel();
            let _ = run.await;
            return Err(DaemonError::FirstRun(format!("stopped during the first run of `{}`", d.name)));
        };
        let outcome = outcome?;
        let (run_id, status, error) = (outcome.run_id, outcome.status.to_string(), outcome.error.clone());
        (tell)(Event::RunFinished { deployment: d.name.clone(), run_id, status: status.clone(), error: error.clone() });
        if home.resolve(&production).is_err() {
            let why = error.map_or(String::new(), |e| format!(": {e}"));
            return Err(DaemonError::FirstRun(format!(
                "the first run of `{}` (run {run_id}) {status} and put no version of `{}` in production{why}; see `flywheel runs show {run_id}`",
                d.name, d.model
            )));
        }
    }
    Ok(())
}

/// Monitoring and training run at a lower priority than the server (nice
/// +10 on Linux, for this thread and the run threads it starts, which
/// inherit it): on a busy machine the answers come first, and the loop
/// takes what is left.
fn yield_to_serving() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id changes only its nice value.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        // Ten lower than the server's, whatever it runs at (`nice -n 5 flywheel up`).
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (now + 10).min(19));
    }
}

/// One `up` per home: two would each fire the same triggers and judge the
/// same canaries. Refused, naming the one that holds it.
fn claim(home: &Home, config: &UpConfig) -> Result<(), DaemonError> {
    let names: Vec<&str> = config.deployments.iter().map(|d| d.name.as_str()).collect();
    let holder = home.metadata.claim_up(&names.join(", "), now_us(), still_up)?;
    match holder {
        None => Ok(()),
        Some(other) => Err(DaemonError::Busy(format!(
            "another `flywheel up` (pid {}{}, deploying {}) runs on {}; stop it (SIGTERM) or use another --home",
            other.pid,
            if other.addr.is_empty() { String::new() } else { format!(", serving {}", other.addr) },
            other.deployments,
            home.root.display()
        ))),
    }
}

/// Whether a recorded pid is still a live `flywheel` (a pid reused by
/// another program after a crash is not).
fn still_up(pid: i64) -> bool {
    if !flywheel_metadata::pid_alive(pid) {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains("flywheel"),
        Err(_) => true,
    }
}

/// Deployments that cannot run side by side: two of one model (one
/// server, one split, one log per model), or two of one name.
fn check(config: &UpConfig) -> Result<(), DaemonError> {
    if config.deployments.is_empty() {
        return Err(DaemonError::Nothing("no deployment named, and none recorded in the home".into()));
    }
    for (i, a) in config.deployments.iter().enumerate() {
        for b in &config.deployments[..i] {
            let clash = if a.model == b.model {
                Some(format!("model `{}`", a.model))
            } else {
                (a.name == b.name).then(|| format!("the name `{}`", a.name))
            };
            if let Some(what) = clash {
                return Err(DaemonError::Nothing(format!(
                    "{} and {} both deploy {what}: run one of them, or give each its own `[deployment] name` and model",
                    b.path.display(),
                    a.path.display()
                )));
            }
        }
    }
    Ok(())
}

fn serve_config(config: &UpConfig) -> Result<ServeConfig, DaemonError> {
    let mut models = Vec::new();
    let mut samples = Vec::new();
    for d in &config.deployments {
        for (alias, weight) in with_canary(d) {
            models.push(format!("{}@{alias}:{weight}", d.model));
        }
        if let Some(shadow) = &d.serving.shadow {
            models.push(format!("{}@{shadow}:shadow", d.model));
        }
        samples.push(format!("{}={}", d.model, d.serving.log_sample));
    }
    let addr =
        config.addr.clone().or_else(|| config.deployments.iter().find_map(|d| d.serving.addr.map(|a| a.to_string())));
    Ok(ServeConfig {
        home: config.home.clone(),
        addr: addr.unwrap_or_else(|| flywheel_serve::DEFAULT_ADDR.to_string()),
        models,
        poll: Duration::from_millis(500),
        limits: Default::default(),
        token: config.token.clone(),
        log: Some(LogOptions { sampling: Sampling::parse(&samples)?, ..LogOptions::default() }),
    })
}

/// The deployment's split with the canary's share: `production = 100` and
/// a 10% canary serve as production 90, canary 10. The canary arm answers
/// only while the alias points at a version.
fn with_canary(d: &Deployment) -> Vec<(String, u64)> {
    let split = &d.serving.split;
    if split.iter().any(|(a, _)| a == CANARY) {
        return split.iter().map(|(a, w)| (a.clone(), u64::from(*w))).collect();
    }
    let total: u64 = split.iter().map(|(_, w)| u64::from(*w)).sum();
    let share = u64::from(d.delivery.canary);
    let mut arms: Vec<(String, u64)> = split.iter().map(|(a, w)| (a.clone(), u64::from(*w) * (100 - share))).collect();
    arms.push((CANARY.to_string(), total * share));
    arms
}

fn record(d: &Deployment) -> DeploymentRecord {
    DeploymentRecord {
        name: d.name.clone(),
        // Absolute: `up` started elsewhere must find the same file.
        path: std::fs::canonicalize(&d.path).unwrap_or_else(|_| d.path.clone()).display().to_string(),
        digest: d.digest.clone(),
        model_name: d.model.clone(),
        recorded_us: now_us(),
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Who `up`'s runs are started by, as runs record it.
const UP: &str = "flywheel up";
/// The pipeline parameter a `new_data` firing's files are passed in.
pub const NEW_DATA: &str = "new_data";

/// A new run (with its trigger's reason), or an unfinished one taken up.
enum Start {
    /// The trigger's reason, and a `new_data` firing's files.
    New(String, Vec<String>),
    Resume(i64),
}

/// A run under way: its thread, and how to stop it.
struct Running {
    thread: std::thread::JoinHandle<Result<RunOutcome, String>>,
    cancel: CancelToken,
}

struct Loop {
    home: Home,
    orchestrator: Arc<Orchestrator>,
    deliverer: Deliverer,
    config: UpConfig,
    tell: Tell,
    running: HashMap<String, Running>,
    /// The last problem told per deployment: a lasting one is told once.
    told: HashMap<String, String>,
    /// Says when `up` is stopping: a backlog of windows is left for later.
    stopping: Option<watch::Receiver<bool>>,
    /// Per model, until when arrived labels were looked at.
    labels_seen: HashMap<String, i64>,
    /// How monitoring keeps to its share while the machine is saturated.
    pace: Pace,
    /// What the monitor read and has not used up, kept between ticks.
    carry: flywheel_monitor::windows::Carry,
}

/// See [`Loop::pace`].
struct Pace {
    /// When the monitor last came up between windows.
    paced: std::cell::Cell<std::time::Instant>,
    /// The machine's CPU times when saturation was last judged, and the verdict.
    cpu: std::cell::Cell<Option<CpuTimes>>,
    saturated: std::cell::Cell<bool>,
    /// The rest owed, not yet taken.
    owed: std::cell::Cell<Duration>,
    /// A rest longer than [`MAX_OWED`] holds: no windows are cut until then.
    resting_until: std::cell::Cell<Option<std::time::Instant>>,
}

impl Pace {
    fn new() -> Pace {
        Pace {
            paced: std::cell::Cell::new(std::time::Instant::now()),
            cpu: std::cell::Cell::new(CpuTimes::now()),
            saturated: std::cell::Cell::new(false),
            owed: std::cell::Cell::new(Duration::ZERO),
            resting_until: std::cell::Cell::new(None),
        }
    }

    /// Whether the machine's cores are saturated, judged over at least 20
    /// clock ticks of their time (the last verdict standing in between).
    fn judge(&self) -> bool {
        if let (Some(before), Some(now)) = (self.cpu.get(), CpuTimes::now())
            && let Some(idle) = now.idle_share_since(before)
        {
            self.saturated.set(idle < IDLE_BELOW);
            self.cpu.set(Some(now));
        }
        self.saturated.get()
    }

    /// Whether a rest from an earlier tick still holds: not once it has
    /// passed, nor once the machine has idle cores again (the windows left
    /// behind are caught up at once).
    fn resting(&self) -> bool {
        let until = self.resting_until.get();
        if !self.judge() || until.is_some_and(|t| std::time::Instant::now() >= t) {
            self.resting_until.set(None);
            self.owed.set(Duration::ZERO);
        }
        self.resting_until.get().is_some()
    }
}

/// The share of one core monitoring takes while the machine's cores are
/// saturated (less than [`IDLE_BELOW`] of their time idle since the last
/// window): after a window that took `t`, the loop rests `t·(1/share − 1)`.
/// Answers come first; windows fall behind under such load and are caught
/// up when it eases.
pub const BUSY_SHARE: f64 = 0.03;
pub const IDLE_BELOW: f64 = 0.25;
/// The longest rest taken between two windows; the rest of it is owed.
const TICK_REST: Duration = Duration::from_millis(250);
/// A rest owed beyond this is taken by cutting no window until it passes,
/// for at most `MAX_REST`.
const MAX_OWED: Duration = Duration::from_secs(2);
const MAX_REST: Duration = Duration::from_secs(5);
/// The longest single sleep of a rest, so that a stop is seen soon.
const REST_STEP: Duration = Duration::from_millis(50);

impl Loop {
    fn new(home: Home, components: ComponentRegistry, config: UpConfig, deliverer: Deliverer, tell: Tell) -> Loop {
        let orchestrator = Arc::new(Orchestrator::new(home.clone(), components));
        let (running, told, labels_seen) = (HashMap::new(), HashMap::new(), HashMap::new());
        Loop {
            home,
            orchestrator,
            deliverer,
            config,
            tell,
            running,
            told,
            stopping: None,
            labels_seen,
            pace: Pace::new(),
            carry: Default::default(),
        }
    }

    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        self.stopping = Some(stopped.clone());
        self.resume_unfinished();
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.wait_for(|s| *s) => break,
            }
            self.reap();
            for i in 0..self.config.deployments.len() {
                if self.is_stopping() {
                    break;
                }
                let d = self.config.deployments[i].clone();
                let problem = self.step(&d).await.err();
                self.tell_once(&d.name, problem);
            }
        }
        // Runs under way are cancelled (recorded `cancelled`; `flywheel
        // resume` finishes them) and waited for.
        for (_, r) in self.running.drain() {
            r.cancel.cancel();
            let _ = tokio::task::spawn_blocking(move || r.thread.join()).await;
        }
    }

    fn is_stopping(&self) -> bool {
        self.stopping.as_ref().is_some_and(|s| *s.borrow())
    }

    /// Between two windows: whether to go on. While the machine is
    /// saturated, monitoring keeps to [`BUSY_SHARE`] of a core: work that
    /// took `t` owes a rest of `t·(1/share − 1)`, taken [`TICK_REST`] at a
    /// time between windows (the loop has a thread of its own: a rest holds
    /// up nothing else); more than [`MAX_OWED`] owed, no window is cut
    /// until it has passed, [`MAX_REST`] at most.
    fn pace(&self) -> bool {
        let p = &self.pace;
        // A rest already set holds for the rest of this update too.
        if p.resting_until.get().is_some_and(|t| std::time::Instant::now() < t) {
            return false;
        }
        let worked = p.paced.get().elapsed();
        let mut going = true;
        if p.judge() {
            let owed = p.owed.get() + worked.mul_f64(1.0 / BUSY_SHARE - 1.0);
            let here = owed.min(TICK_REST);
            let end = std::time::Instant::now() + here;
            while std::time::Instant::now() < end && !self.is_stopping() {
                std::thread::sleep(REST_STEP.min(end.saturating_duration_since(std::time::Instant::now())));
            }
            let owed = owed - here;
            if owed > MAX_OWED {
                // A one-off burst (the first look at a version's training
                // data, a slow machine) rests at most MAX_REST.
                p.resting_until.set(Some(std::time::Instant::now() + owed.min(MAX_REST)));
                p.owed.set(Duration::ZERO);
                going = false;
            } else {
                p.owed.set(owed);
            }
        } else {
            p.owed.set(Duration::ZERO);
        }
        p.paced.set(std::time::Instant::now());
        going && !self.is_stopping()
    }

    /// Tells `problem` unless it was the last one told for `deployment`.
    fn tell_once(&mut self, deployment: &str, problem: Option<String>) {
        self.tell_once_as(deployment, deployment, problem);
    }

    /// [`Self::tell_once`], remembered under `topic` (a deployment may
    /// have several lasting problems: monitoring, a watched folder).
    fn tell_once_as(&mut self, topic: &str, deployment: &str, problem: Option<String>) {
        match problem {
            Some(text) if self.told.get(topic) != Some(&text) => {
                self.told.insert(topic.to_string(), text.clone());
                (self.tell)(Event::Problem { deployment: deployment.to_string(), text });
            }
            Some(_) => {}
            None => {
                self.told.remove(topic);
            }
        }
    }

    /// One deployment's tick: new windows, then each trigger (a schedule
    /// fires even when monitoring cannot go on; the problem is told).
    async fn step(&mut self, d: &Deployment) -> Result<(), String> {
        self.pace.paced.set(std::time::Instant::now());
        // Saturated, the log is read a little at a time (two windows, one
        // segment at least): no long burst.
        let part = if self.pace.judge() { 0 } else { flywheel_monitor::windows::READ_ROWS };
        let mut carry = std::mem::take(&mut self.carry);
        let going = || self.pace();
        let monitored = if self.pace.resting() {
            Ok(Vec::new())
        } else {
            let at = (&d.model[..], &d.monitoring);
            flywheel_monitor::windows::update_while(&self.home, at, (now_us(), part), going, &mut carry).await
        };
        self.carry = carry;
        for w in monitored.iter().flatten() {
            let text = window_text(w);
            (self.tell)(Event::Window { deployment: d.name.clone(), text });
        }
        // Labels that arrived since the last look (a day back at the start).
        let now = now_us();
        let after = *self.labels_seen.entry(d.model.clone()).or_insert(now - LATE_HORIZON_US);
        let relabeled = if self.is_stopping() {
            Ok(Vec::new())
        } else {
            flywheel_monitor::windows::relabel(&self.home, &d.model, &d.monitoring, (after, now))
        };
        if relabeled.is_ok() {
            self.labels_seen.insert(d.model.clone(), now);
        }
        for r in relabeled.iter().flatten() {
            let text = relabeled_text(r);
            (self.tell)(Event::Window { deployment: d.name.clone(), text });
        }
        let canary_out = self.deliver(d)?;
        self.start_queued(d, canary_out)?;
        let windows = self.views(&d.model).map_err(|e| e.to_string())?;
        let asked = self.asked(d)?;
        for trigger in &d.triggers {
            // Requests and files wait for the canary's verdict; windows and
            // ticks seen meanwhile are used (and the firing skipped).
            if canary_out && matches!(trigger.kind, TriggerKind::OnDemand | TriggerKind::NewData { .. }) {
                continue;
            }
            // Files skipped would never be any run's new span: with `skip`,
            // they wait untaken for the run under way to end, then fire.
            let busy = self.running.contains_key(&d.name);
            if busy && matches!((&trigger.kind, trigger.when_busy), (TriggerKind::NewData { .. }, WhenBusy::Skip)) {
                continue;
            }
            let Some(f) = self.fire(d, trigger, &windows, &asked)? else { continue };
            if canary_out {
                // A new model would replace the canary being judged.
                let because = "a canary is out, and its verdict comes first".into();
                (self.tell)(Event::Skipped { deployment: d.name.clone(), reason: f.reason, because });
            } else {
                self.offer(d, f, trigger.when_busy);
            }
        }
        monitored.and(relabeled).map(|_| ()).map_err(|e| format!("monitoring: {e}"))
    }

    /// The runs asked for by hand; refused at once when no `on_demand`
    /// trigger would take them.
    fn asked(&mut self, d: &Deployment) -> Result<Vec<flywheel_metadata::RunRequest>, String> {
        let asked = self.home.metadata.pending_run_requests(&d.name).map_err(|e| e.to_string())?;
        if asked.is_empty() || d.triggers.iter().any(|t| matches!(t.kind, TriggerKind::OnDemand)) {
            return Ok(asked);
        }
        let ids: Vec<i64> = asked.iter().map(|r| r.id).collect();
        let why = "refused: the deployment declares no `on_demand` trigger";
        self.home.metadata.take_run_requests(&ids, why, now_us()).map_err(|e| e.to_string())?;
        let text = format!("{} run request(s) {why} (add [[trigger]] on = \"on_demand\")", ids.len());
        (self.tell)(Event::Problem { deployment: d.name.clone(), text });
        Ok(Vec::new())
    }

    /// Whether `trigger` fires now; its state (and the requests it took)
    /// saved before its run starts: killed after this, `up` does not fire
    /// it again for the same requests or windows.
    fn fire(
        &mut self,
        d: &Deployment,
        trigger: &flywheel_deploy::Trigger,
        windows: &[WindowView],
        asked: &[flywheel_metadata::RunRequest],
    ) -> Result<Option<Firing>, String> {
        let key = trigger_key(trigger);
        let saved = self.home.metadata.trigger_state(&d.name, &key).map_err(|e| e.to_string())?;
        let now = now_us();
        // A trigger seen for the first time starts from now: windows of rows
        // served before it existed do not fire it.
        let fresh = TriggerState { looked_us: Some(now), since_us: now, ..TriggerState::default() };
        let state = saved.clone().map_or(fresh, |s| TriggerState {
            fired_us: s.fired_us,
            used_window: s.used_window,
            looked_us: s.looked_us,
            since_us: s.since_us,
        });
        let fired = match &trigger.kind {
            TriggerKind::OnDemand => {
                let pairs: Vec<(String, String)> =
                    asked.iter().map(|r| (r.reason.clone(), r.requested_by.clone())).collect();
                on_demand(trigger, &state, &pairs, now)
            }
            TriggerKind::NewData { path, settle } => {
                self.watch(d, trigger, &key, (path, *settle), (&state, saved.is_none()), now)?
            }
            _ => decide(trigger, &state, windows, now),
        };
        let looked = matches!(trigger.kind, TriggerKind::Schedule(_)).then_some(now).or(state.looked_us);
        let next = TriggerRecord {
            fired_us: if fired.is_some() { Some(now) } else { state.fired_us },
            used_window: fired.as_ref().and_then(|f| f.window).unwrap_or(state.used_window),
            looked_us: looked,
            since_us: state.since_us,
        };
        if fired.is_some() && matches!(trigger.kind, TriggerKind::OnDemand) {
            let ids: Vec<i64> = asked.iter().map(|r| r.id).collect();
            let skipped = self.running.contains_key(&d.name) && matches!(trigger.when_busy, WhenBusy::Skip);
            let outcome = if skipped { "skipped: a run was under way (when_busy = \"skip\")" } else { "fired" };
            self.home.metadata.take_run_requests(&ids, outcome, now).map_err(|e| e.to_string())?;
        }
        self.home.metadata.save_trigger_state(&d.name, &key, &next).map_err(|e| e.to_string())?;
        Ok(fired)
    }

    /// A `new_data` trigger's look at its folder: every file noted with its
    /// size and time, and the settled, untaken ones fired for (and taken).
    /// A folder that is not there is told once; it fires once files appear.
    fn watch(
        &mut self,
        d: &Deployment,
        trigger: &flywheel_deploy::Trigger,
        key: &str,
        (path, settle): (&std::path::Path, Duration),
        (state, first_look): (&TriggerState, bool),
        now: i64,
    ) -> Result<Option<Firing>, String> {
        let topic = format!("{}#{key}", d.name);
        let files = match flywheel_data::spans::spans(path) {
            Ok(f) => f,
            Err(e) => {
                let text = format!("`new_data` watches {}: {e}; it fires once files appear", path.display());
                self.tell_once_as(&topic, &d.name, Some(text));
                return Ok(None);
            }
        };
        self.tell_once_as(&topic, &d.name, None);
        let store = |e: flywheel_metadata::MetadataError| e.to_string();
        let mut present = HashMap::new();
        for f in &files {
            let Ok(meta) = std::fs::metadata(f) else { continue };
            let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            let mtime = mtime.map_or(0, |t| i64::try_from(t.as_micros()).unwrap_or(i64::MAX));
            let size = i64::try_from(meta.len()).unwrap_or(i64::MAX);
            let shown = f.display().to_string();
            self.home.metadata.see_file(&d.name, key, &shown, size, mtime, now).map_err(store)?;
            present.insert(shown, f.file_name().unwrap_or_default().to_string_lossy().into_owned());
        }
        if first_look {
            // The files there when the trigger first looks are the data it
            // starts from: taken, not fired for.
            let all: Vec<String> = present.keys().cloned().collect();
            self.home.metadata.take_files(&d.name, key, &all, now).map_err(store)?;
            return Ok(None);
        }
        let seen = self.home.metadata.watched_files(&d.name, key).map_err(store)?;
        let views: Vec<FileView> = seen
            .iter()
            .filter_map(|w| {
                let name = present.get(&w.path)?;
                Some(FileView { name: name.clone(), seen_us: w.seen_us, taken: w.taken_us.is_some() })
            })
            .collect();
        let Some((mut firing, names)) = new_data(trigger, state, &views, settle, now) else { return Ok(None) };
        let mut taken: Vec<String> =
            present.iter().filter(|(_, n)| names.contains(n)).map(|(p, _)| p.clone()).collect();
        taken.sort();
        self.home.metadata.take_files(&d.name, key, &taken, now).map_err(store)?;
        firing.new_files = taken;
        Ok(Some(firing))
    }

    /// The deployment's canary judged; whether one is still out.
    fn deliver(&mut self, d: &Deployment) -> Result<bool, String> {
        let (done, out) = self.deliverer.step(&self.home, d, now_us()).map_err(|e| e.to_string())?;
        let model = &d.model;
        let Some(done) = done else { return Ok(out) };
        let text = match &done {
            Delivered::Started { version } => {
                format!("{model}@{version} is out as canary, with {}% of traffic", d.delivery.canary)
            }
            Delivered::Awaiting { version, reason } => {
                format!("{model}@{version} {reason}; it waits for `flywheel models approve {model}@{version}`")
            }
            Delivered::Promoted { version, from, reason } => format!(
                "{model}@{version} promoted to production (was {}): {reason}",
                from.map_or("nothing".into(), |v| format!("@{v}"))
            ),
            Delivered::RolledBack { version, reason } => {
                format!("{model}@{version} rolled back, production untouched: {reason}")
            }
        };
        // Awaiting approval is told once per version, not every tick.
        let key = match &done {
            Delivered::Awaiting { version, .. } => format!("awaiting {version}"),
            _ => format!("delivery {text}"),
        };
        if self.told.get(&format!("{}#delivery", d.name)) != Some(&key) {
            self.told.insert(format!("{}#delivery", d.name), key);
            (self.tell)(Event::Delivery { deployment: d.name.clone(), delivered: done, text });
        }
        Ok(out)
    }

    /// The model's recent windows, oldest first, as the triggers see them:
    /// those of its `production` version (a canary's, or another arm's of
    /// a split, do not start runs; every version's when none is in
    /// production).
    fn views(&self, model: &str) -> Result<Vec<WindowView>, flywheel_metadata::MetadataError> {
        let production = ModelRef { name: model.to_string(), selector: Selector::Alias(PRODUCTION.into()) };
        let serving = self.home.resolve(&production).ok().map(|r| r.version.version);
        let mut views: Vec<WindowView> = self
            .home
            .metadata
            .windows(Some(model), 200)?
            .into_iter()
            .filter(|w| serving.is_none_or(|v| w.window.version == v))
            .map(|w| {
                let s = &w.window.scores;
                let t = &s["from_training"];
                let drift = (t["drift"] == true).then(|| {
                    (t["drifted"].as_u64().unwrap_or(0) as usize, t["compared"].as_u64().unwrap_or(0) as usize)
                });
                let out = s["alerts"].as_array().into_iter().flatten().find(|a| a["alert"] == "performance").map(|a| {
                    (
                        a["metric"].as_str().unwrap_or_default().to_string(),
                        a["value"].as_f64().unwrap_or(f64::NAN),
                        a["bound"].as_str().unwrap_or_default().to_string(),
                    )
                });
                WindowView { id: w.id, first_us: w.window.first_us, drift, out_of_bound: out }
            })
            .collect();
        views.reverse();
        Ok(views)
    }

    /// Starts a run for `f`, or queues or skips it while one is under way.
    fn offer(&mut self, d: &Deployment, f: Firing, busy: WhenBusy) {
        let name = d.name.clone();
        if self.running.contains_key(&name) {
            match busy {
                // Kept in the home: an `up` stopped or killed meanwhile
                // starts it after restarting. One stands for all.
                WhenBusy::Queue => match self.home.metadata.queue_firing(&name, &f.reason, &f.new_files, now_us()) {
                    Ok(_) => (self.tell)(Event::Queued { deployment: name, reason: f.reason }),
                    Err(e) => (self.tell)(Event::Problem {
                        deployment: name,
                        text: format!("a firing ({}) could not be queued: {e}", f.reason),
                    }),
                },
                WhenBusy::Skip => (self.tell)(Event::Skipped {
                    deployment: name,
                    reason: f.reason,
                    because: "a run is under way".into(),
                }),
            }
            return;
        }
        (self.tell)(Event::Fired { deployment: name.clone(), reason: f.reason.clone() });
        let running = self.start(d, Start::New(f.reason, f.new_files));
        self.running.insert(name, running);
    }

    /// Each deployment's newest run started by `up`, when an earlier `up`
    /// left it interrupted (killed) or cancelled (stopped), is finished
    /// (`Orchestrator::resume`: steps that succeeded keep their outputs). Its
    /// trigger's state was saved before it started: nothing fires twice.
    fn resume_unfinished(&mut self) {
        let runs = match self.home.metadata.list_runs(500) {
            Ok(r) => r,
            Err(e) => {
                (self.tell)(Event::Problem { deployment: String::new(), text: format!("cannot list runs: {e}") });
                return;
            }
        };
        for d in self.config.deployments.clone() {
            let mine = |r: &&flywheel_metadata::RunRecord| r.options["deployment"].as_str() == Some(d.name.as_str());
            let newest = runs.iter().find(|r| r.started_by == UP && mine(r));
            let Some(r) = newest.filter(|r| matches!(r.status, RunStatus::Interrupted | RunStatus::Cancelled)) else {
                continue;
            };
            let status = r.status.to_string();
            (self.tell)(Event::Resumed { deployment: d.name.clone(), run_id: r.id, status });
            let running = self.start(&d, Start::Resume(r.id));
            self.running.insert(d.name.clone(), running);
        }
    }

    /// A run of `d`'s pipeline on a thread and runtime of its own, so that
    /// training does not hold up serving; one job, a core left to serve.
    fn start(&self, d: &Deployment, what: Start) -> Running {
        let cancel = CancelToken::new();
        let (o, pipeline, c) = (self.orchestrator.clone(), d.pipeline.clone(), cancel.clone());
        // New models go out as canaries: the run pushes to `canary`, and
        // delivery decides about production.
        let trigger = match &what {
            Start::New(t, _) => t.clone(),
            Start::Resume(_) => String::new(),
        };
        let mut overrides = d.params.clone();
        // A pipeline that declares a `new_data` parameter reads the files
        // that fired the run by it (the new span); other runs keep its default.
        if let Start::New(_, files) = &what
            && d.pipeline.parameters.contains_key(NEW_DATA)
            && let Some(span) = crate::triggers::new_span(files)
        {
            overrides.retain(|(k, _)| k != NEW_DATA);
            overrides.push((NEW_DATA.to_string(), span));
        }
        let opts = RunOptions {
            jobs: 1,
            trigger,
            started_by: UP.into(),
            overrides,
            publish_alias: Some(CANARY.to_string()),
            deployment: Some(d.name.clone()),
            ..RunOptions::default()
        };
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let silent: Arc<dyn flywheel_orchestrator::Observer> = Arc::new(flywheel_orchestrator::Silent);
            let ran = match what {
                Start::New(..) => rt.block_on(o.run(&pipeline, &opts, silent, c)),
                Start::Resume(id) => rt.block_on(o.resume(id, &opts, silent, c)),
            };
            ran.map_err(|e| e.to_string())
        });
        Running { thread, cancel }
    }

    /// Runs that ended are told.
    fn reap(&mut self) {
        let done: Vec<String> =
            self.running.iter().filter(|(_, r)| r.thread.is_finished()).map(|(n, _)| n.clone()).collect();
        for name in done {
            let Some(r) = self.running.remove(&name) else { continue };
            let event = match r.thread.join() {
                Ok(Ok(o)) => Event::RunFinished {
                    deployment: name.clone(),
                    run_id: o.run_id,
                    status: o.status.to_string(),
                    error: o.error,
                },
                Ok(Err(e)) => {
                    Event::Problem { deployment: name.clone(), text: format!("the run could not start: {e}") }
                }
                Err(_) => Event::Problem { deployment: name.clone(), text: "the run's thread panicked".into() },
            };
            (self.tell)(event);
        }
    }

    /// A firing queued behind a run starts once that run and any canary it
    /// sent out are done (taken from the home before its run starts, as a
    /// trigger's state is saved: killed after this, it does not start twice).
    fn start_queued(&mut self, d: &Deployment, canary_out: bool) -> Result<(), String> {
        if canary_out || self.running.contains_key(&d.name) {
            return Ok(());
        }
        if let Some((reason, files)) = self.home.metadata.take_queued_firing(&d.name).map_err(|e| e.to_string())? {
            (self.tell)(Event::Fired { deployment: d.name.clone(), reason: reason.clone() });
            let running = self.start(d, Start::New(reason, files));
            self.running.insert(d.name.clone(), running);
        }
        Ok(())
    }
}

/// The machine's CPU time, idle and in all, in clock ticks (`/proc/stat`);
/// `None` where there is none to read.
#[derive(Debug, Clone, Copy)]
struct CpuTimes {
    idle: u64,
    total: u64,
}

impl CpuTimes {
    fn now() -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().next()?.strip_prefix("cpu ")?;
        let ticks: Vec<u64> = line.split_whitespace().filter_map(|t| t.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal …
        let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
        Some(CpuTimes { idle, total: ticks.iter().take(8).sum() })
    }

    /// The share of the cores' time spent idle since `before` (`None` when
    /// too little time passed to tell).
    fn idle_share_since(self, before: CpuTimes) -> Option<f64> {
        // 20 ticks of all cores together: a tenth of a second on two (USER_HZ is 100).
        let total = self.total.checked_sub(before.total).filter(|t| *t >= 20)?;
        Some(self.idle.saturating_sub(before.idle) as f64 / total as f64)
    }
}

/// What a trigger is, as its state is kept: its kind and settings, so that
/// a trigger added, removed or changed in the file does not take another's.
fn trigger_key(t: &flywheel_deploy::Trigger) -> String {
    match &t.kind {
        TriggerKind::Drift { windows } => format!("drift windows={windows}"),
        TriggerKind::Performance { windows } => format!("performance windows={windows}"),
        TriggerKind::Schedule(s) => format!("schedule cron={}", s.text),
        TriggerKind::NewData { path, .. } => format!("new_data path={}", path.display()),
        TriggerKind::OnDemand => "on_demand".to_string(),
    }
}

fn relabeled_text(r: &flywheel_monitor::windows::Relabeled) -> String {
    let p = &r.performance;
    let metric = p.metric.as_ref().map_or("too few for a metric".to_string(), |(m, v)| format!("{m} {v:.4}"));
    let alert = if p.alert.is_some() { ", 1 alert(s)" } else { "" };
    format!(
        "window {} of {}@{} scored again with late labels: {} labeled, {metric}{alert}",
        r.id, r.window.model_name, r.window.version, p.labeled
    )
}

fn window_text(w: &flywheel_monitor::windows::Recorded) -> String {
    let s = &w.scores;
    let drift = s.from_training.as_ref().map_or("–".to_string(), |d| format!("{}/{}", d.drifted, d.compared));
    let metric = s.metric.as_ref().map_or("no labels".to_string(), |(m, v)| format!("{m} {v:.4}"));
    let alerts = if s.alerts.is_empty() { String::new() } else { format!(", {} alert(s)", s.alerts.len()) };
    format!(
        "window {} of {}@{}: {} rows, drifted from training {drift}, {metric}{alerts}",
        w.id, w.window.model_name, w.window.version, w.window.rows
    )
}
