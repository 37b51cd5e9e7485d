//! When a trigger fires, decided from what the monitor recorded and what
//! the trigger did before:
//!
//! - `drift` fires when `windows` windows in a row drifted from the training
//!   data, `performance` when the metric was out of its bound in `windows`
//!   in a row, among the windows not seen by a firing yet (several may
//!   arrive in one tick; the run need not be the newest). A firing uses
//!   every window up to the newest: none counts again, so the same windows
//!   cannot start two runs.
//! - `schedule` fires at most once for all the ticks since it last looked:
//!   ticks missed while `up` was down are not replayed one by one.
//! - every trigger waits out its cooldown after it fired.
//!
//! `on_demand` fires for the runs asked for (`flywheel trigger`, or `POST
//! /v2/deployments/NAME/trigger`), once for all that waited, after its
//! cooldown; `new_data` from files, with the same cooldown.

use flywheel_deploy::{Trigger, TriggerKind};

/// What a trigger needs of a recorded window (newest last).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowView {
    pub id: i64,
    /// When its first row was served, µs since 1970.
    pub first_us: i64,
    /// `(drifted, compared)` columns when the window drifted from the
    /// training data.
    pub drift: Option<(usize, usize)>,
    /// The metric, its value and its bound, when out of that bound.
    pub out_of_bound: Option<(String, f64, String)>,
}

/// What a trigger remembers (kept in the home by `up`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriggerState {
    /// When it last fired, µs since 1970.
    pub fired_us: Option<i64>,
    /// The newest window a firing used: older ones never count again.
    pub used_window: i64,
    /// When a schedule last looked for ticks (its start, at first).
    pub looked_us: Option<i64>,
    /// When the state began: windows that began before it (served before
    /// the trigger was declared, or before it was started afresh) never
    /// fire it.
    pub since_us: i64,
}

/// A trigger firing: why, in words a run records ("drift: 5 of 8 columns
/// drifted from the training data in windows 41–43"), and the newest window
/// it used.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub reason: String,
    pub window: Option<i64>,
    /// A `new_data` firing's files, the new span (full paths, in name order).
    pub new_files: Vec<String>,
}

/// Whether `trigger` fires at `now_us`, given the monitored `windows`
/// (newest last) and its state.
pub fn decide(trigger: &Trigger, state: &TriggerState, windows: &[WindowView], now_us: i64) -> Option<Firing> {
    let cooldown = i64::try_from(trigger.cooldown.as_micros()).unwrap_or(i64::MAX);
    if state.fired_us.is_some_and(|t| now_us < t.saturating_add(cooldown)) {
        return None;
    }
    let fresh: Vec<&WindowView> =
        windows.iter().filter(|w| w.id > state.used_window && w.first_us >= state.since_us).collect();
    let newest = fresh.last().map(|w| w.id);
    match &trigger.kind {
        TriggerKind::Drift { windows: n } => in_a_row(&fresh, *n, |w| w.drift.is_some()).map(|run| {
            let (drifted, compared) = run.last().and_then(|w| w.drift).unwrap_or_default();
            Firing {
                reason: format!(
                    "drift: {drifted} of {compared} columns drifted from the training data in {}",
                    span(&run)
                ),
                window: newest,
                new_files: Vec::new(),
            }
        }),
        TriggerKind::Performance { windows: n } => in_a_row(&fresh, *n, |w| w.out_of_bound.is_some()).map(|run| {
            let (metric, value, bound) = run.last().and_then(|w| w.out_of_bound.clone()).unwrap_or_default();
            Firing {
                reason: format!("performance: {metric} {value:.4} is not {bound} in {}", span(&run)),
                window: newest,
                new_files: Vec::new(),
            }
        }),
        TriggerKind::Schedule(s) => {
            let since = chrono::DateTime::from_timestamp_micros(state.looked_us.unwrap_or(now_us))?;
            let tick = s.next_after(since)?;
            (tick.timestamp_micros() <= now_us).then(|| Firing {
                reason: format!("schedule: `{}` at {}", s.text, tick.format("%Y-%m-%d %H:%M UTC")),
                window: None,
                new_files: Vec::new(),
            })
        }
        // Fired from outside: requests (`on_demand`), files (`new_data`).
        TriggerKind::OnDemand | TriggerKind::NewData { .. } => None,
    }
}

/// Whether an `on_demand` trigger fires for the runs asked for (`(reason,
/// who)`, oldest first): once for all of them, after its cooldown.
pub fn on_demand(trigger: &Trigger, state: &TriggerState, asked: &[(String, String)], now_us: i64) -> Option<Firing> {
    let cooldown = i64::try_from(trigger.cooldown.as_micros()).unwrap_or(i64::MAX);
    if asked.is_empty() || state.fired_us.is_some_and(|t| now_us < t.saturating_add(cooldown)) {
        return None;
    }
    let (reason, by) = &asked[asked.len() - 1];
    let more = match asked.len() {
        1 => String::new(),
        n => format!(" (and {} earlier request(s))", n - 1),
    };
    Some(Firing { reason: format!("on_demand: {reason}, asked by {by}{more}"), window: None, new_files: Vec::new() })
}

/// A watched file as a `new_data` trigger sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileView {
    pub name: String,
    /// When its current size and time were first seen, µs.
    pub seen_us: i64,
    pub taken: bool,
}

/// Whether a `new_data` trigger fires, and for which files: those not
/// taken whose size and time stayed for `settle` (a file still being
/// written keeps changing, and waits), after its cooldown.
pub fn new_data(
    trigger: &Trigger,
    state: &TriggerState,
    files: &[FileView],
    settle: std::time::Duration,
    now_us: i64,
) -> Option<(Firing, Vec<String>)> {
    let cooldown = i64::try_from(trigger.cooldown.as_micros()).unwrap_or(i64::MAX);
    if state.fired_us.is_some_and(|t| now_us < t.saturating_add(cooldown)) {
        return None;
    }
    let settle = i64::try_from(settle.as_micros()).unwrap_or(i64::MAX);
    let ready: Vec<String> = files
        .iter()
        .filter(|f| !f.taken && now_us >= f.seen_us.saturating_add(settle))
        .map(|f| f.name.clone())
        .collect();
    if ready.is_empty() {
        return None;
    }
    let shown: Vec<&str> = ready.iter().take(5).map(String::as_str).collect();
    let more = if ready.len() > 5 { format!(" and {} more", ready.len() - 5) } else { String::new() };
    let reason = format!("new_data: {} new file(s): {}{more}", ready.len(), shown.join(", "));
    Some((Firing { reason, window: None, new_files: Vec::new() }, ready))
}

/// The path a run reads a `new_data` firing's files by, as `ingest`'s
/// `path` takes one: the file itself, or a glob of exactly those names
/// (`incoming/{2012-03.csv,2012-04.csv}`, special characters escaped) in
/// their folder. `None` without files, or for files of several folders.
pub fn new_span(files: &[String]) -> Option<String> {
    let paths: Vec<&std::path::Path> = files.iter().map(std::path::Path::new).collect();
    match paths.as_slice() {
        [] => None,
        // A name that reads as a glob (`sales[1].csv`) is escaped, as `ingest` would take it for one.
        [one] => match one.file_name().map(|n| n.to_string_lossy()) {
            Some(name) if flywheel_data::spans::is_glob(one) => {
                Some(one.with_file_name(escape(&name)).display().to_string())
            }
            _ => Some(one.display().to_string()),
        },
        [first, rest @ ..] => {
            let dir = first.parent()?;
            if rest.iter().any(|p| p.parent() != Some(dir)) {
                return None;
            }
            let names: Vec<String> =
                paths.iter().filter_map(|p| p.file_name()).map(|n| escape(&n.to_string_lossy())).collect();
            Some(dir.join(format!("{{{}}}", names.join(","))).display().to_string())
        }
    }
}

fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '\\' | '*' | '?' | '[' | ']' | '{' | '}' | ',') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The newest `n` windows in a row that each hold `holds`, if any.
fn in_a_row<'a>(fresh: &[&'a WindowView], n: u32, holds: impl Fn(&WindowView) -> bool) -> Option<Vec<&'a WindowView>> {
    let n = n.max(1) as usize;
    let mut streak = 0;
    for (i, w) in fresh.iter().enumerate().rev() {
        streak = if holds(w) { streak + 1 } else { 0 };
        if streak == n {
            return Some(fresh[i..i + n].to_vec());
        }
    }
    None
}

/// `window 7` or `windows 41–43`.
fn span(run: &[&WindowView]) -> String {
    match (run.first(), run.last()) {
        (Some(a), Some(b)) if a.id != b.id => format!("windows {}–{}", a.id, b.id),
        (Some(a), _) => format!("window {}", a.id),
        _ => "no window".into(),
    }
}

#[cfg(test)]
mod tests;
