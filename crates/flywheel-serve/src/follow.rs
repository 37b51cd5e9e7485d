//! The server follows the registry: every arm of every route names an
//! alias (or a version), and when an alias moves — by `models alias`,
//! `push`, or a trigger — the [`Follower`] loads the version it now points
//! at, checks it against its digest, warms it with one prediction, and
//! only then swaps it into the route. Requests in flight finish on the
//! version they started with. A version that fails to load or warm is never
//! swapped in: the failure is logged and recorded in the model's history,
//! and that version is not tried again until the alias moves on.
//!
//! The follower runs on a thread of its own ([`Follower::start`]), so
//! reading the store and loading models never takes a request's worker.

use crate::metrics::Metrics;
use crate::route::{Arm, Route};
use crate::served::Served;
use crate::table::ModelTable;
use flywheel_core::{ModelRef, Selector};
use flywheel_metadata::{Change, ServingEvent};
use flywheel_registry::{Home, RegistryError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often the registry is looked at unless told otherwise.
pub const DEFAULT_POLL: Duration = Duration::from_millis(500);

/// What one look at the registry changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// `to` answers for `reference` now (`from`: the version it replaced).
    Swapped { reference: ModelRef, from: Option<i64>, to: i64 },
    /// `version` is where `reference` points, but it cannot be served.
    Refused { reference: ModelRef, version: i64, why: String },
    /// The alias points nowhere now; its arm takes no more traffic.
    Unassigned { reference: ModelRef, from: i64 },
}

/// Keeps a [`ModelTable`] in step with the registry.
pub struct Follower {
    home: Home,
    table: Arc<ModelTable>,
    /// The version each reference pointed at that failed to load: not tried
    /// again until the reference points elsewhere (and back, say after a repair).
    refused: HashMap<ModelRef, i64>,
    /// Arms whose alias went away but were kept, being their model's last version.
    kept: HashSet<ModelRef>,
    caller: String,
    metrics: Arc<Metrics>,
    /// Past the first look (the server's start), when a first load is a change too.
    started: bool,
}

impl Follower {
    pub fn new(home: Home, table: Arc<ModelTable>, metrics: Arc<Metrics>) -> Self {
        let caller = format!("flywheel serve (pid {})", std::process::id());
        Follower { home, table, refused: HashMap::new(), kept: HashSet::new(), caller, metrics, started: false }
    }

    /// Looks at where every arm's reference points and swaps in what moved;
    /// returns what changed.
    pub async fn tick(&mut self) -> Vec<Followed> {
        let mut changed = Vec::new();
        for route in self.table.routes() {
            for arm in route.every_arm() {
                if let Some(f) = self.follow(&route, arm).await {
                    self.record(&f);
                    changed.push(f);
                }
            }
        }
        self.started = true;
        changed
    }

    async fn follow(&mut self, route: &Route, arm: &Arm) -> Option<Followed> {
        let reference: &ModelRef = &arm.reference;
        let current = arm.served.as_ref().map(|s| s.version);
        let target = match self.home.resolve(reference) {
            Ok(resolved) => resolved.version.version,
            Err(RegistryError::NoAlias { .. }) => return self.unassign(route, arm),
            Err(e) => {
                tracing::warn!("cannot look up {reference}: {e}; serving what is loaded");
                return None;
            }
        };
        self.kept.remove(reference);
        match self.refused.get(reference) {
            Some(&refused) if refused == target => return None,
            Some(_) => {
                self.refused.remove(reference);
            }
            None => {}
        }
        if current == Some(target) {
            return None;
        }
        let served = match route.versions().into_iter().find(|s| s.version == target) {
            Some(loaded) => loaded,
            None => match load_version(&self.home, reference, target).await {
                Ok(served) => Arc::new(served),
                Err(why) => {
                    self.refused.insert(reference.clone(), target);
                    return Some(Followed::Refused { reference: reference.clone(), version: target, why });
                }
            },
        };
        // An alias moved on purpose: served, but said, since callers of the
        // other arms' inputs will be refused by this one.
        if let Some(why) = self.table.route(&reference.name).and_then(|r| r.input_conflict(reference, &served)) {
            tracing::warn!("{reference}: {why}");
        }
        self.table.set_served(reference, Some(served));
        Some(Followed::Swapped { reference: reference.clone(), from: current, to: target })
    }

    /// The alias of `arm` points nowhere: its arm stops taking traffic,
    /// unless it is the last version its model has loaded.
    fn unassign(&mut self, route: &Route, arm: &Arm) -> Option<Followed> {
        let from = arm.served.as_ref()?.version;
        let others = route.arms.iter().any(|a| a.reference != arm.reference && a.weight > 0 && a.served.is_some());
        if !others && arm.weight > 0 {
            if self.kept.insert((*arm.reference).clone()) {
                tracing::warn!(
                    "{} points nowhere now; {}@{from} keeps answering, being the only version loaded",
                    arm.reference,
                    arm.reference.name
                );
            }
            return None;
        }
        self.table.set_served(&arm.reference, None);
        Some(Followed::Unassigned { reference: (*arm.reference).clone(), from })
    }

    /// Logs what changed and writes swaps and refusals to the model's history.
    fn record(&self, f: &Followed) {
        let (reference, action, from, version, detail) = match f {
            Followed::Swapped { reference, from, to } => {
                if self.started {
                    self.metrics.swapped(&reference.name);
                }
                let was = from.map_or("none".to_string(), |v| v.to_string());
                tracing::info!("{reference}: version {to} answers now (was {was})");
                (reference, "serve_swap", *from, *to, None)
            }
            Followed::Refused { reference, version, why } => {
                self.metrics.load_failed(&reference.name);
                tracing::error!("{reference} points at version {version}, which cannot be served: {why}");
                (reference, "serve_load_failed", None, *version, Some(why.clone()))
            }
            Followed::Unassigned { reference, from } => {
                tracing::info!("{reference} points nowhere now; version {from} no longer answers for it");
                return;
            }
        };
        // The first load at start is not a change anyone made.
        if !self.started && matches!(f, Followed::Swapped { .. }) {
            return;
        }
        let event = ServingEvent {
            model: reference.name.clone(),
            action,
            alias: reference.alias().map(str::to_string),
            from_version: from,
            version,
            detail,
        };
        if let Err(e) = self.home.metadata.record_serving(&event, Change { caller: &self.caller, reason: None }) {
            tracing::warn!("cannot record in the history of `{}`: {e}", reference.name);
        }
    }

    /// Follows on a thread of its own, every `every` and whenever `wake`
    /// is notified, until the returned handle is stopped.
    pub fn start(mut self, every: Duration, wake: Arc<Notify>) -> std::io::Result<Following> {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new().name("flywheel-follow".into()).spawn(move || {
            runtime.block_on(async move {
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        _ = tokio::time::sleep(every) => {}
                        _ = wake.notified() => {}
                    }
                    self.tick().await;
                }
            })
        })?;
        Ok(Following { stop: Some(stop), thread: Some(thread) })
    }
}

/// Loads version `version` for `reference`, checked against its digest and
/// warmed: what may be swapped in.
pub(crate) async fn load_version(home: &Home, reference: &ModelRef, version: i64) -> Result<Served, String> {
    let pinned = ModelRef { name: reference.name.clone(), selector: Selector::Version(version) };
    let (_, model) = home.load_model(&pinned).await.map_err(|e| e.to_string())?;
    let served = Served::new(reference.name.clone(), version, reference.to_string(), model);
    served.warm()?;
    Ok(served)
}

/// A follower running on its thread; stopped when dropped.
pub struct Following {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Following {
    /// Stops following and waits for a load under way to finish.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        self.halt();
    }
}
