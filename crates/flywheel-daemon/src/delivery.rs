//! Canary delivery: a triggered run pushes its model to `canary`; the
//! server sends it the deployment's share of traffic; each tick it is
//! judged against production on the same traffic, and promoted to
//! `production` (compare-and-set against the version it was judged
//! against) or rolled back (the `canary` alias removed), with the reason
//! recorded in the registry's audit and the home's canary record.
//!
//! - [`judge`] decides from what was observed (pure).
//! - [`Deliverer::step`] observes, judges, and applies the verdict.

use crate::DaemonError;
use flywheel_core::{ModelRef, Selector};
use flywheel_deploy::{Approval, Delivery, Deployment, Span};
use flywheel_metadata::{ApprovalState, Change, MetadataError};
use flywheel_monitor::compare::{Comparison, compare};
use flywheel_registry::{Home, RegistryError};
use flywheel_serve::Metrics;
use flywheel_serve::ModelTable;
use std::sync::Arc;
use std::time::Duration;

/// The alias a deployment's new models go out under.
pub const CANARY: &str = "canary";
pub const PRODUCTION: &str = "production";
/// How long a canary may take to be loaded and warmed before it counts as
/// one that cannot be served.
pub const LOAD_GRACE: Duration = Duration::from_secs(15);
/// Failures are judged over at least this many requests, so that the first
/// failure of a few is not a 100% error rate, while many failures roll the
/// canary back before its hold is up.
pub const ERROR_FLOOR: u64 = 20;
/// Who the registry records as moving the aliases.
pub const CALLER: &str = "flywheel up";

/// What a canary showed so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub version: i64,
    /// Whether the server has it loaded for the canary arm.
    pub loaded: bool,
    pub since_start: Duration,
    pub answered: u64,
    pub failed: u64,
    /// Requests its hold counts: the rows logged as its answers (so that
    /// the comparison has them), or `answered` when nothing is logged.
    pub counted: u64,
    pub comparison: Comparison,
    pub approval: ApprovalState,
    pub rejected_because: Option<String>,
    /// The production version it is compared with, if there is one.
    pub production: Option<i64>,
}

/// Answers each version must have logged on the same traffic before their
/// predictions' distributions are compared.
pub const MIN_ANSWERS: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Still holding; how far along.
    Hold(String),
    /// Held its thresholds; waits for `flywheel models approve`.
    AwaitApproval(String),
    Promote(String),
    RollBack(String),
}

/// Whether a canary is promoted, rolled back, or held on. One still held
/// after `max_hold` (too little traffic, or too few labels, to decide) is
/// rolled back: production is untouched, and retraining goes on.
pub fn judge(d: &Delivery, o: &Observed) -> Verdict {
    match judged(d, o) {
        Verdict::Hold(progress) if o.since_start >= d.max_hold => Verdict::RollBack(format!(
            "no verdict after {}s ({progress}); the deployment's `max_hold` is {}s",
            o.since_start.as_secs(),
            d.max_hold.as_secs()
        )),
        v => v,
    }
}

fn judged(d: &Delivery, o: &Observed) -> Verdict {
    if let Some(v) = failing(d, o) {
        return v;
    }
    if o.approval == ApprovalState::Rejected {
        let why = o.rejected_because.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        return Verdict::RollBack(format!("version {} was rejected{why}", o.version));
    }
    let held = match d.hold {
        Span::Requests(n) => o.counted >= n,
        Span::Time(t) => o.since_start >= t && o.counted > 0,
    };
    if !held {
        let progress = match d.hold {
            Span::Requests(n) => format!("{} of {n} requests", o.counted),
            Span::Time(t) => format!("{}s of {}s", o.since_start.as_secs(), t.as_secs()),
        };
        return Verdict::Hold(progress);
    }
    let evidence = match evidence(d, &o.comparison, o.production.is_some()) {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Verdict::Hold(format!(
                "no comparison yet: each version needs {MIN_ANSWERS} logged answers on the same traffic"
            ));
        }
        Err(why) => return Verdict::RollBack(why),
    };
    let held = format!("held {} requests without failing; {evidence}", o.counted);
    match (d.approval, o.approval) {
        (Approval::Manual, ApprovalState::Approved) | (Approval::Auto, _) => Verdict::Promote(held),
        (Approval::Manual, _) => Verdict::AwaitApproval(held),
    }
}

/// A canary that cannot be served, or fails too often, is rolled back at
/// once: production is untouched.
fn failing(d: &Delivery, o: &Observed) -> Option<Verdict> {
    if !o.loaded && o.since_start >= LOAD_GRACE {
        return Some(Verdict::RollBack(format!(
            "version {} was not loaded or warmed by the server in {}s",
            o.version,
            o.since_start.as_secs()
        )));
    }
    let total = o.answered + o.failed;
    let rate = o.failed as f64 / total.max(ERROR_FLOOR) as f64;
    (o.failed > 0 && rate > d.max_error_rate).then(|| {
        Verdict::RollBack(format!(
            "{} of {total} requests failed ({:.1}%; at most {:.1}% allowed)",
            o.failed,
            100.0 * o.failed as f64 / total as f64,
            100.0 * d.max_error_rate
        ))
    })
}

/// The canary against production on the same traffic: the metric when
/// both have labels, else their predictions' distributions; `Err` with
/// why the canary is worse, `Ok(None)` while there is nothing to compare
/// yet (never a promotion on no evidence, while there is a production).
fn evidence(d: &Delivery, c: &Comparison, has_production: bool) -> Result<Option<String>, String> {
    let m = &c.metric;
    if let (Some((cv, cn)), Some((pv, pn))) = (c.canary.metric, c.production.metric) {
        let lower_is_better = matches!(m.as_str(), "rmse" | "mae" | "mape" | "log_loss");
        let slack = d.tolerance * pv.abs();
        let worse = if lower_is_better { cv > pv + slack } else { cv < pv - slack };
        let text = format!("{m} {cv:.4} against production's {pv:.4} ({cn} and {pn} labeled rows)");
        return if worse {
            Err(format!("{text}: worse by more than {:.0}%", 100.0 * d.tolerance))
        } else {
            Ok(Some(text))
        };
    }
    if !has_production {
        return Ok(Some("there is no production to compare it with".into()));
    }
    if c.canary.rows < MIN_ANSWERS || c.production.rows < MIN_ANSWERS {
        return Ok(None);
    }
    match c.predictions {
        Some((score, threshold, true)) => Err(format!(
            "no labels to compare; its predictions drifted from production's on the same traffic (score {score:.3}, threshold {threshold})"
        )),
        Some((score, _, false)) => Ok(Some(format!(
            "no labels to compare; its predictions are distributed as production's (score {score:.3})"
        ))),
        None => Ok(None),
    }
}

/// What the loop needs to deliver: the server's table and counts.
pub struct Deliverer {
    pub table: Arc<ModelTable>,
    pub metrics: Arc<Metrics>,
    /// When each canary was first seen pointed at but not yet loaded: its
    /// hold starts when it answers, its grace to load from here.
    waiting: std::collections::HashMap<(String, i64), i64>,
}

/// What a delivery step did, for `up` to tell.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Delivered {
    Started { version: i64 },
    Promoted { version: i64, from: Option<i64>, reason: String },
    RolledBack { version: i64, reason: String },
    Awaiting { version: i64, reason: String },
}

impl Deliverer {
    pub fn new(table: Arc<ModelTable>, metrics: Arc<Metrics>) -> Deliverer {
        Deliverer { table, metrics, waiting: Default::default() }
    }

    /// One tick of `d`'s canary, if it has one: `Ok(None)` when nothing
    /// changed. `held` is whether a canary is out (triggers wait for it).
    pub fn step(&mut self, home: &Home, d: &Deployment, now_us: i64) -> Result<(Option<Delivered>, bool), DaemonError> {
        let Some(canary) = home.metadata.aliased_version(&d.model, CANARY)? else {
            complete_left_over(home, d, now_us)?;
            return Ok((None, false));
        };
        let production = home.metadata.aliased_version(&d.model, PRODUCTION)?.map(|v| v.version);
        let decided = home.metadata.canaries(&d.name, 50)?;
        if production == Some(canary.version)
            || decided.iter().any(|c| c.version == canary.version && c.outcome.is_some())
        {
            // Decided before a restart, or promoted: the alias is left over.
            let change = Change { caller: CALLER, reason: Some("the canary was decided; its alias is left over") };
            let _ = home.metadata.remove_alias_if(&d.model, CANARY, canary.version, change);
            return Ok((None, false));
        }
        let known = decided.iter().any(|c| c.version == canary.version);
        if !known && !self.loaded(d, canary.version) {
            // Not answering yet: its hold has not begun.
            let first = *self.waiting.entry((d.name.clone(), canary.version)).or_insert(now_us);
            let waited = Duration::from_micros(u64::try_from(now_us - first).unwrap_or(0));
            if waited < LOAD_GRACE {
                return Ok((None, true));
            }
            let why =
                format!("version {} was not loaded or warmed by the server in {}s", canary.version, waited.as_secs());
            home.metadata.canary(&d.name, canary.version, now_us)?;
            return Ok((Some(roll_back(home, d, canary.version, &why, now_us)?), false));
        }
        self.waiting.remove(&(d.name.clone(), canary.version));
        let record = home.metadata.canary(&d.name, canary.version, now_us)?;
        let started = record.started_us == now_us;
        let observed = self.observe(home, d, canary.version, production, record.started_us, now_us)?;
        let done = match judge(&d.delivery, &observed) {
            Verdict::Hold(_) => None,
            Verdict::AwaitApproval(reason) => Some(Delivered::Awaiting { version: canary.version, reason }),
            Verdict::Promote(reason) => Some(promote(home, d, canary.version, production, &reason, now_us)?),
            Verdict::RollBack(reason) => Some(roll_back(home, d, canary.version, &reason, now_us)?),
        };
        let held = !matches!(done, Some(Delivered::Promoted { .. } | Delivered::RolledBack { .. }));
        Ok((done.or(started.then_some(Delivered::Started { version: canary.version })), held))
    }

    /// Whether the server answers with `version` for the canary arm.
    fn loaded(&self, d: &Deployment, version: i64) -> bool {
        self.table
            .route(&d.model)
            .and_then(|r| r.loaded(&Selector::Alias(CANARY.into())))
            .is_some_and(|s| s.version == version)
    }

    fn observe(
        &self,
        home: &Home,
        d: &Deployment,
        version: i64,
        production: Option<i64>,
        started_us: i64,
        now_us: i64,
    ) -> Result<Observed, DaemonError> {
        let loaded = self.loaded(d, version);
        let (answered, failed) = self.metrics.version_counts(&d.model, version);
        let metric = d.monitoring.performance.as_ref().map(|b| b.metric.as_str());
        let comparison = compare(home, &d.model, started_us, version, production, metric)?;
        let v = home.metadata.model_version(&d.model, Some(version))?;
        let counted = if d.serving.log_sample > 0.0 { comparison.canary.rows as u64 } else { answered };
        Ok(Observed {
            version,
            loaded,
            since_start: Duration::from_micros(u64::try_from(now_us.saturating_sub(started_us)).unwrap_or(0)),
            answered,
            failed,
            counted,
            comparison,
            approval: v.approval.state,
            rejected_because: v.approval.reason,
            production,
        })
    }
}

/// A canary record left undecided (its alias moved before the outcome was
/// written, and `up` stopped; or moved by hand): completed from where the
/// aliases point, so `flywheel status` does not say it is still held.
fn complete_left_over(home: &Home, d: &Deployment, now_us: i64) -> Result<(), DaemonError> {
    let open = home.metadata.canaries(&d.name, 5)?;
    let Some(c) = open.iter().find(|c| c.outcome.is_none()) else { return Ok(()) };
    let production = home.metadata.aliased_version(&d.model, PRODUCTION)?.map(|v| v.version);
    let (outcome, why) = if production == Some(c.version) {
        ("promoted", "it is production: the record was completed afterwards")
    } else {
        ("rolled back", "its `canary` alias was moved or removed outside the delivery")
    };
    Ok(home.metadata.decide_canary(&d.name, c.version, outcome, why, now_us)?)
}

/// `production` moved to the canary, only if it still points where it did
/// when the canary was judged; then the `canary` alias removed.
fn promote(
    home: &Home,
    d: &Deployment,
    version: i64,
    production: Option<i64>,
    reason: &str,
    now_us: i64,
) -> Result<Delivered, DaemonError> {
    let to = ModelRef { name: d.model.clone(), selector: Selector::Version(version) };
    let text = format!("canary promoted: {reason}");
    let change = Change { caller: CALLER, reason: Some(&text) };
    match home.move_alias(&to, PRODUCTION, Some(production), change) {
        Ok(_) => {}
        Err(RegistryError::Metadata(MetadataError::AliasMoved { current, .. })) => {
            let why = format!(
                "production moved to {} while the canary was judged against {}: not promoted",
                current.map_or("nothing".into(), |v| v.to_string()),
                production.map_or("nothing".into(), |v| v.to_string())
            );
            return roll_back(home, d, version, &why, now_us);
        }
        Err(e) => return Err(e.into()),
    }
    let change = Change { caller: CALLER, reason: Some("promoted to production") };
    let _ = home.metadata.remove_alias_if(&d.model, CANARY, version, change);
    home.metadata.decide_canary(&d.name, version, "promoted", reason, now_us)?;
    Ok(Delivered::Promoted { version, from: production, reason: reason.to_string() })
}

fn roll_back(home: &Home, d: &Deployment, version: i64, reason: &str, now_us: i64) -> Result<Delivered, DaemonError> {
    let text = format!("canary rolled back: {reason}");
    let change = Change { caller: CALLER, reason: Some(&text) };
    match home.metadata.remove_alias_if(&d.model, CANARY, version, change) {
        // Moved by someone else meanwhile: theirs now, nothing to undo.
        Ok(()) | Err(MetadataError::AliasMoved { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    home.metadata.decide_canary(&d.name, version, "rolled back", reason, now_us)?;
    Ok(Delivered::RolledBack { version, reason: reason.to_string() })
}

#[cfg(test)]
mod tests;
