//! Windows cut from the prediction log as it grows, scored, and recorded:
//! `update` takes each version's rows logged since its last recorded
//! window, cuts the complete windows (a number of rows, or a span of time
//! that has ended), scores each against the training data of that version
//! and against its window before, and records it.
//! Shadow answers are left out: they are not what callers got.
//!
//! Only rows older than `SETTLED` are cut: the log's writer indexes a row
//! up to 2 s after its request, so a younger time may still gain rows.
//! Rows are put in time order (segments of several versions interleave),
//! and a window never ends inside a run of rows of one time (the rows of
//! one request), so that the next window can start strictly after it.

use crate::merge::WindowSketch;
use crate::reference::{Reference, reference};
use crate::{MonitorError, Scores, score, store};
use flywheel_data::batch::Table;
use flywheel_deploy::{Monitoring, Span};
use flywheel_metadata::NewWindow;
use flywheel_registry::Home;
use flywheel_serve::log::read::{Window, read_log};
use std::collections::HashMap;

/// How old a logged row must be before windows are cut from it: the log
/// writer's flush period (2 s) with room to spare.
pub const SETTLED_US: i64 = 5_000_000;

/// A window just recorded.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub id: i64,
    pub window: NewWindow,
    pub scores: Scores,
}

/// Scores and records every window of `model` complete by `now_us`.
pub async fn update(
    home: &Home,
    model: &str,
    monitoring: &Monitoring,
    now_us: i64,
) -> Result<Vec<Recorded>, MonitorError> {
    update_while(home, (model, monitoring), (now_us, READ_ROWS), || true, &mut Carry::default()).await
}

/// What an update leaves to the next one of the same caller (`up`'s loop):
/// each version's training reference, which never changes, and the part
/// of the log it read but did not cut whole when its pacer stopped it, so
/// that the next update goes on from there instead of reading it again.
#[derive(Default)]
pub struct Carry {
    references: HashMap<(String, i64), Reference>,
    parts: HashMap<(String, i64), Part>,
}

impl Carry {
    /// Forgets what it holds of `model`'s versions not in `versions` (those
    /// retired, whose references would otherwise be held for ever).
    fn keep_only(&mut self, model: &str, versions: &[i64]) {
        let kept = |(m, v): &(String, i64)| m != model || versions.contains(v);
        self.references.retain(|k, _| kept(k));
        self.parts.retain(|k, _| kept(k));
    }
}

/// A part of one version's log read and put in time order: the windows
/// of it not cut yet, the last one cut, and where the next one begins.
struct Part {
    next_since: Option<i64>,
    until: i64,
    /// None when the part held no rows (and so no windows).
    rows: Option<Table>,
    left: Vec<std::ops::Range<usize>>,
    previous: Option<Table>,
}

/// A version whose rows stop this long before the model's newest window
/// is retired: its rows short of a window are left unmonitored (they
/// would otherwise be read again at every update).
pub const RETIRED_US: i64 = 3600 * 1_000_000;

/// [`update`], stopping between windows once `going` says no (a shutdown
/// does not wait for a backlog of windows; the rest are cut next time).
/// Each version's answers are cut into windows of their own (a canary's
/// apart from production's), each compared with that version's training
/// data and its window before. A backlog is read a part at a time
/// (about `part_rows`, [`READ_ROWS`] by default; two windows at least):
/// memory does not grow with it, and a busy caller reads in small bites.
pub async fn update_while(
    home: &Home,
    (model, monitoring): (&str, &Monitoring),
    (now_us, part_rows): (i64, i64),
    going: impl Fn() -> bool,
    carry: &mut Carry,
) -> Result<Vec<Recorded>, MonitorError> {
    let newest = home.metadata.windows(Some(model), 1).map_err(store)?.into_iter().next();
    let floor = newest.map(|w| w.window.last_us.saturating_sub(RETIRED_US));
    let versions = home.metadata.logged_versions(model, floor).map_err(store)?;
    carry.keep_only(model, &versions);
    let mut recorded = Vec::new();
    for version in versions {
        if !going() {
            break;
        }
        let cut = Cut { version, settled: now_us.saturating_sub(SETTLED_US), now_us, part_rows };
        recorded.extend(update_version(home, (model, monitoring), cut, &going, carry).await?);
    }
    recorded.sort_by_key(|r| r.id);
    Ok(recorded)
}

/// Which rows a version's update cuts: its answers after its last window
/// (all of them before its first), settled by `settled`.
#[derive(Debug, Clone, Copy)]
struct Cut {
    version: i64,
    settled: i64,
    now_us: i64,
    part_rows: i64,
}

async fn update_version(
    home: &Home,
    (model, monitoring): (&str, &Monitoring),
    cut: Cut,
    going: &impl Fn() -> bool,
    carry: &mut Carry,
) -> Result<Vec<Recorded>, MonitorError> {
    let mut recorded = Vec::new();
    let mut whole = false;
    loop {
        let (more, until) = update_part(home, (model, monitoring), (cut, whole), going, carry).await?;
        if more.is_empty() && until < cut.settled && !whole && going() {
            // A part that cut no window (its rows counted shadow answers,
            // say): read up to `settled` this once, or it would stall.
            whole = true;
            continue;
        }
        let done = more.is_empty() || until >= cut.settled || !going();
        recorded.extend(more);
        if done {
            return Ok(recorded);
        }
        whole = false;
    }
}

/// The windows of one part of a version's log, from its last recorded
/// window up to at most [`READ_ROWS`] rows (or the part carried from the
/// update before); and where the part ended.
async fn update_part(
    home: &Home,
    (model, monitoring): (&str, &Monitoring),
    (cut, whole): (Cut, bool),
    going: &impl Fn() -> bool,
    carry: &mut Carry,
) -> Result<(Vec<Recorded>, i64), MonitorError> {
    let key = (model.to_string(), cut.version);
    let last = home.metadata.last_window_of(model, cut.version).map_err(store)?;
    // From the version's last window; a version's first window from its
    // first row (the retired are not asked: `logged_versions`).
    let since = last.as_ref().map(|w| w.window.last_us + 1);
    let carried = carry.parts.remove(&key).filter(|p| p.next_since == since && !whole);
    let mut part = match carried {
        Some(p) => p,
        None => read_part(home, (model, monitoring), (cut, whole), (since, last.as_ref()))?,
    };
    let (Some(rows), false) = (part.rows.take(), part.left.is_empty()) else {
        return Ok((Vec::new(), part.until));
    };
    if !carry.references.contains_key(&key) {
        let r = reference(home, model, cut.version).await?;
        carry.references.insert(key.clone(), r);
    }
    let r = &carry.references[&key];
    let mut recorded = Vec::new();
    let mut left = std::mem::take(&mut part.left).into_iter();
    // The part is read: at least one window is cut from it, or a pacer that
    // stops after every read would read the same part for ever.
    while let Some(range) = left.next() {
        if !recorded.is_empty() && !going() {
            part.left = std::iter::once(range).chain(left).collect();
            break;
        }
        let window = slice(&rows, range);
        let scores = score(&window, part.previous.as_ref(), r.training.as_ref(), &r.inputs, monitoring)?;
        let columns = crate::score::compared(monitoring, &r.inputs, r.training.as_ref());
        let sketch = WindowSketch::of(&window, &columns, monitoring);
        let done = record(home, (model, cut.version), &window, (scores, &sketch), cut.now_us)?;
        part.next_since = Some(done.window.last_us + 1);
        recorded.push(done);
        part.previous = Some(window);
    }
    let until = part.until;
    if !part.left.is_empty() {
        part.rows = Some(rows);
        carry.parts.insert(key, part);
    }
    Ok((recorded, until))
}

/// One part of a version's log read from `since`, in time order, cut into
/// windows; the window before it read only when one is cut (a version
/// short of one costs a look at the index, not its rows and references).
fn read_part(
    home: &Home,
    (model, monitoring): (&str, &Monitoring),
    (cut, whole): (Cut, bool),
    (since, last): (Option<i64>, Option<&flywheel_metadata::MonitorWindow>),
) -> Result<Part, MonitorError> {
    let version = cut.version;
    let until = if whole { cut.settled } else { bounded(home, (model, version), (since, cut), monitoring.window)? };
    let empty = Part { next_since: since, until, rows: None, left: Vec::new(), previous: None };
    let Some(rows) = logged(home, model, Some(version), (since, Some(until)))? else { return Ok(empty) };
    let rows = in_time_order(&rows)?;
    let left = self::cut(&times(&rows), monitoring.window, until);
    if left.is_empty() {
        return Ok(empty);
    }
    let previous = match last {
        Some(w) => logged(home, model, Some(version), (Some(w.window.first_us), Some(w.window.last_us + 1)))?,
        None => None,
    };
    Ok(Part { next_since: since, until, rows: Some(rows), left, previous })
}

/// Rows read at once, about: a backlog is worked through a part at a time.
pub const READ_ROWS: i64 = 200_000;

/// Where this part stops reading: `settled`, or earlier once the log's
/// segments from `since` hold about [`READ_ROWS`] rows (two windows, when
/// a window is larger). Segments are a flush of the log writer (about 2 s
/// of requests); one is never cut. Windows of time are read whole: a part
/// is never less than one, so they are not capped.
fn bounded(
    home: &Home,
    (model, version): (&str, i64),
    (since, cut): (Option<i64>, Cut),
    span: Span,
) -> Result<i64, MonitorError> {
    let settled = cut.settled;
    let Span::Requests(n) = span else { return Ok(settled) };
    let cap = cut.part_rows.max(i64::try_from(n).unwrap_or(i64::MAX).saturating_mul(2));
    let mut rows = 0;
    let segments = home.metadata.segments(model, since, Some(settled)).map_err(store)?;
    // A segment begun before `since` (the last window ended inside it) is
    // read, but its rows before `since` are not the part's: not counted.
    let after = |s: &&flywheel_metadata::Segment| since.is_none_or(|t| s.first_us >= t);
    for seg in segments.iter().filter(|s| s.version == version).filter(after) {
        rows += seg.rows;
        if rows >= cap {
            return Ok(settled.min(seg.last_us.saturating_add(1)));
        }
    }
    Ok(settled)
}

/// Windows recorded this recently are scored again when labels arrive
/// after them (a label is often known a day after its prediction).
pub const LATE_HORIZON_US: i64 = 24 * 3600 * 1_000_000;

/// A window scored again: what its labels say now.
#[derive(Debug, Clone)]
pub struct Relabeled {
    pub id: i64,
    pub window: NewWindow,
    pub performance: crate::Performance,
}

/// The windows of `model` whose requests got labels that arrived in
/// `(after, now]`, after the window was (last) scored and within
/// [`LATE_HORIZON_US`] of it: their metric, slices and performance alert
/// computed again and recorded (their drift does not change). A window
/// the performance trigger has not used yet may then fire it. Found by
/// the labels' arrival (indexed): a tick with no new label reads nothing.
pub fn relabel(
    home: &Home,
    model: &str,
    monitoring: &Monitoring,
    (after_us, now_us): (i64, i64),
) -> Result<Vec<Relabeled>, MonitorError> {
    let arrived = home.metadata.labels_arrived(model, after_us, now_us).map_err(store)?;
    let (Some(from), Some(to)) = (arrived.iter().map(|a| a.0).min(), arrived.iter().map(|a| a.0).max()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for w in home.metadata.windows_covering(model, from, to).map_err(store)? {
        let x = &w.window;
        let scored = x.scores["rescored_us"].as_i64().unwrap_or(x.at_us);
        let late = arrived.iter().any(|&(t, at)| (x.first_us..=x.last_us).contains(&t) && at > scored);
        if !late || now_us.saturating_sub(x.at_us) > LATE_HORIZON_US {
            continue;
        }
        let span = (Some(x.first_us), Some(x.last_us.saturating_add(1)));
        let Some(rows) = logged(home, model, Some(x.version), span)? else { continue };
        let rows = in_time_order(&rows)?;
        let p = crate::performance(&rows, monitoring)?;
        let sketch = resummed(home, w.id, &rows)?;
        let mut scores = x.scores.clone();
        let mut alerts: Vec<serde_json::Value> = scores["alerts"].as_array().cloned().unwrap_or_default();
        alerts.retain(|a| a["alert"] != "performance");
        alerts.extend(p.alert.iter().filter_map(|a| serde_json::to_value(a).ok()));
        scores["labeled"] = p.labeled.into();
        scores["rescored_us"] = now_us.into();
        scores["metric"] = serde_json::to_value(&p.metric).unwrap_or_default();
        scores["slices"] = serde_json::to_value(&p.slices).unwrap_or_default();
        scores["alerts"] = alerts.clone().into();
        let (labeled, n_alerts) = (p.labeled as i64, alerts.len() as i64);
        home.metadata.rescore_window(w.id, (labeled, n_alerts), &scores, sketch.as_deref()).map_err(store)?;
        let window = NewWindow { labeled, alerts: n_alerts, scores, ..x.clone() };
        out.push(Relabeled { id: w.id, window, performance: p });
    }
    Ok(out)
}

/// The sketch window `id` keeps, its metric's sums made again from its
/// `rows` (labels arrived); `None` for a window that keeps none.
fn resummed(home: &Home, id: i64, rows: &Table) -> Result<Option<String>, MonitorError> {
    let kept = home.metadata.window_sketches(&[id]).map_err(store)?;
    let Some(mut sketch) = kept.get(&id).and_then(|s| serde_json::from_str::<WindowSketch>(s).ok()) else {
        return Ok(None);
    };
    sketch.metric = crate::MetricSums::of(rows).ok().filter(crate::MetricSums::is_finite);
    Ok(Some(sketch.to_json()))
}

/// The rows logged for `model` (answered by `version`, when given) in
/// `[since, until)` (µs), shadow answers left out; `None` when the model
/// has no log yet.
pub(crate) fn logged(
    home: &Home,
    model: &str,
    version: Option<i64>,
    (since, until): (Option<i64>, Option<i64>),
) -> Result<Option<Table>, MonitorError> {
    let window = Window { since_us: since, until_us: until, version };
    match read_log(&home.root, &home.metadata, model, window) {
        Ok(t) => Ok(Some(flywheel_registry::logs::answered(t).map_err(|e| MonitorError::Window(e.to_string()))?)),
        Err(flywheel_registry::RegistryError::NoLog(_)) => Ok(None),
        Err(e) => Err(MonitorError::Store(e.to_string())),
    }
}

/// Each row's time, µs since 1970.
fn times(t: &Table) -> Vec<i64> {
    let Some(i) = t.column_index("time") else { return Vec::new() };
    t.batches
        .iter()
        .flat_map(|b| flywheel_data::batch::seconds(b.column(i)))
        .map(|s| s.map_or(0, |s| (s * 1e6).round() as i64))
        .collect()
}

/// The complete windows among rows at `times` (in time order, all older
/// than `settled`): runs of a number of rows (each taking the rest of the
/// rows of its last time), or spans of time that ended by `settled`.
pub fn cut(times: &[i64], span: Span, settled: i64) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    match span {
        Span::Requests(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX).max(1);
            let mut start = 0;
            while times.len() - start >= n {
                let mut end = start + n;
                // Not inside the rows of one time: the next window starts after it.
                while end < times.len() && times[end] == times[end - 1] {
                    end += 1;
                }
                out.push(start..end);
                start = end;
            }
        }
        Span::Time(d) => {
            let Some(&first) = times.first() else { return out };
            let width = i64::try_from(d.as_micros()).unwrap_or(i64::MAX).max(1);
            let mut start = 0;
            let mut end_us = first.saturating_add(width);
            while end_us <= settled && start < times.len() {
                let end = start + times[start..].partition_point(|&t| t < end_us);
                if end > start {
                    out.push(start..end);
                }
                start = end;
                end_us = end_us.saturating_add(width);
            }
        }
    }
    out
}

/// The log is read segment by segment, and each version (a canary beside
/// production) writes its own: its rows, sorted by time (stable: the rows
/// of one request keep their order), in one batch that windows are sliced
/// from without copying.
fn in_time_order(t: &Table) -> Result<Table, MonitorError> {
    if t.batches.is_empty() {
        return Ok(t.clone());
    }
    let times = times(t);
    let order: Vec<usize> = if times.is_sorted() {
        (0..times.len()).collect()
    } else {
        let mut order: Vec<usize> = (0..times.len()).collect();
        order.sort_by_key(|&i| times[i]);
        order
    };
    take(t, &order)
}

/// Rows `range` of a one-batch table (`in_time_order`'s), without copying.
fn slice(t: &Table, range: std::ops::Range<usize>) -> Table {
    let batches = t.batches.first().map(|b| vec![b.slice(range.start, range.len())]).unwrap_or_default();
    Table { schema: t.schema.clone(), batches }
}

/// Rows `order` of `t`, in that order.
fn take(t: &Table, order: &[usize]) -> Result<Table, MonitorError> {
    let mut batches = Vec::new();
    let columns: Result<Vec<arrow_array::ArrayRef>, _> = (0..t.schema.fields().len())
        .map(|c| {
            let parts: Vec<&dyn arrow_array::Array> = t.batches.iter().map(|b| b.column(c).as_ref()).collect();
            let whole = arrow_select::concat::concat(&parts)?;
            let idx = arrow_array::UInt64Array::from(order.iter().map(|&i| i as u64).collect::<Vec<_>>());
            arrow_select::take::take(whole.as_ref(), &idx, None)
        })
        .collect();
    let columns = columns.map_err(|e| MonitorError::Window(e.to_string()))?;
    if !columns.is_empty() {
        batches.push(
            arrow_array::RecordBatch::try_new(t.schema.clone(), columns)
                .map_err(|e| MonitorError::Window(e.to_string()))?,
        );
    }
    Ok(Table { schema: t.schema.clone(), batches })
}

fn record(
    home: &Home,
    (model, version): (&str, i64),
    window: &Table,
    (scores, sketch): (Scores, &WindowSketch),
    now_us: i64,
) -> Result<Recorded, MonitorError> {
    let t = times(window);
    let new = NewWindow {
        model_name: model.to_string(),
        version,
        first_us: t.first().copied().unwrap_or_default(),
        last_us: t.last().copied().unwrap_or_default(),
        rows: window.rows() as i64,
        labeled: scores.labeled as i64,
        alerts: scores.alerts.len() as i64,
        scores: serde_json::to_value(&scores).unwrap_or_default(),
        at_us: now_us,
    };
    let id = home.metadata.record_window(&new, Some(&sketch.to_json())).map_err(store)?;
    Ok(Recorded { id, window: new, scores })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rows_of_several_segments_are_put_in_time_order() {
        use arrow_array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
        use std::sync::Arc;
        // A production segment, then a canary's, interleaved in time.
        let batch = |times: Vec<i64>, version: i64| {
            let n = times.len();
            RecordBatch::try_from_iter([
                ("time", Arc::new(TimestampMicrosecondArray::from(times)) as arrow_array::ArrayRef),
                ("version", Arc::new(Int64Array::from(vec![version; n]))),
            ])
            .unwrap()
        };
        let (a, b) = (batch(vec![1, 3, 3, 6], 1), batch(vec![2, 4, 5], 2));
        let t = Table { schema: a.schema(), batches: vec![a, b] };
        let sorted = in_time_order(&t).unwrap();
        assert_eq!(times(&sorted), [1, 2, 3, 3, 4, 5, 6]);
        assert_eq!(sorted.f64_column(1), [1., 2., 1., 1., 2., 2., 1.].map(Some));
        assert_eq!(sorted.batches.len(), 1, "one batch, sliced without copies");
        assert_eq!(times(&slice(&sorted, 2..5)), [3, 3, 4]);
        let none = Table { schema: t.schema.clone(), batches: Vec::new() };
        assert_eq!(in_time_order(&none).unwrap().rows(), 0, "no rows logged since: nothing to sort");
    }

    #[test]
    fn windows_are_cut_whole_by_rows_or_by_ended_spans_of_time() {
        // The rows of one time (one request) stay in one window.
        let same: Vec<i64> = vec![1, 2, 2, 2, 3, 4, 5, 5];
        assert_eq!(cut(&same, Span::Requests(2), 0), [0..4, 4..6, 6..8]);
        let t: Vec<i64> = (0..25).map(|i| i * 100).collect();
        assert_eq!(cut(&t, Span::Requests(10), 0), [0..10, 10..20]);
        assert!(cut(&t, Span::Requests(30), 0).is_empty());
        let d = Span::Time(Duration::from_micros(1000));
        // Spans [0,1000), [1000,2000) ended by now; [2000,3000) has not.
        assert_eq!(cut(&t, d, 2500), [0..10, 10..20]);
        assert_eq!(cut(&t, d, 3000), [0..10, 10..20, 20..25]);
        let gap: Vec<i64> = vec![0, 10, 5000, 5010];
        assert_eq!(cut(&gap, d, 10_000), [0..2, 2..4], "an empty span is no window");
    }

    #[test]
    fn a_carry_forgets_the_versions_no_longer_monitored_of_its_model_only() {
        let mut carry = Carry::default();
        let part = || Part { next_since: None, until: 0, rows: None, left: Vec::new(), previous: None };
        for key in [("a", 1), ("a", 2), ("b", 1)] {
            let key = (key.0.to_string(), key.1);
            carry.references.insert(key.clone(), crate::reference::Reference { training: None, inputs: Vec::new() });
            carry.parts.insert(key, part());
        }
        carry.keep_only("a", &[2, 3]);
        let mut held: Vec<_> = carry.references.keys().cloned().collect();
        held.sort();
        assert_eq!(held, [("a".to_string(), 2), ("b".to_string(), 1)]);
        let mut parts: Vec<_> = carry.parts.into_keys().collect();
        parts.sort();
        assert_eq!(parts, held);
    }
}
