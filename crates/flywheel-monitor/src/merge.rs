//! Windows merged into longer ones without reading their rows again. Each
//! window keeps a small sketch of the inputs it compared (exact counts of
//! few distinct values, else a KLL sketch: `DatasetReference::of_window`)
//! and its metric's sums (`MetricSums`). Consecutive windows of one
//! version add up; the merged window is compared with that version's
//! training reference and with the merged window before it, and its
//! metric is the one of all its labeled rows together.

use crate::reference::reference;
use crate::score::{bound_text, summary};
use crate::{DriftSummary, MetricSums, MonitorError};
use flywheel_data::batch::Table;
use flywheel_data::dataset_drift::{DatasetReference, DriftOptions, dataset_drift_between};
use flywheel_deploy::{Bound, Monitoring, Op};
use flywheel_metadata::MonitorWindow;
use flywheel_registry::Home;
use flywheel_stats::reference::WINDOW_LIMITS;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a window keeps to merge with others, and the settings it was
/// judged by (a merged window is judged by its last window's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowSketch {
    pub inputs: DatasetReference,
    /// `None` when the log has no label column yet.
    pub metric: Option<MetricSums>,
    pub drift_share: f64,
    #[serde(default)]
    pub bound: Option<KeptBound>,
}

/// The deployment's performance bound, as the window was judged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeptBound {
    pub metric: String,
    /// `>=`, `>`, `<=` or `<`.
    pub op: String,
    pub value: f64,
}

impl KeptBound {
    fn bound(&self) -> Option<Bound> {
        let op = match self.op.as_str() {
            ">=" => Op::Ge,
            ">" => Op::Gt,
            "<=" => Op::Le,
            "<" => Op::Lt,
            _ => return None,
        };
        Some(Bound { metric: self.metric.clone(), op, value: self.value })
    }
}

impl WindowSketch {
    /// The sketch of `window`'s `columns` (those its drift compared).
    pub fn of(window: &Table, columns: &[String], monitoring: &Monitoring) -> WindowSketch {
        let bound = monitoring.performance.as_ref().map(|b| {
            let text = bound_text(b);
            let op = text.split_whitespace().next().unwrap_or_default().to_string();
            KeptBound { metric: b.metric.clone(), op, value: b.value }
        });
        WindowSketch {
            inputs: DatasetReference::of_window(window, columns, WINDOW_LIMITS),
            metric: MetricSums::of(window).ok().filter(MetricSums::is_finite),
            drift_share: monitoring.drift_share,
            bound,
        }
    }

    /// Adds the window after this one.
    pub fn merge(&mut self, next: &WindowSketch) -> Result<(), MonitorError> {
        self.inputs.merge(&next.inputs, WINDOW_LIMITS);
        match (&mut self.metric, &next.metric) {
            (Some(a), Some(b)) => a.merge(b)?,
            (None, Some(b)) => self.metric = Some(b.clone()),
            _ => {}
        }
        self.drift_share = next.drift_share;
        self.bound.clone_from(&next.bound);
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Consecutive windows of one version, merged.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    pub version: i64,
    /// The windows' ids, oldest first.
    pub windows: Vec<i64>,
    pub first_us: i64,
    pub last_us: i64,
    pub rows: u64,
    pub labeled: usize,
    pub from_training: Option<DriftSummary>,
    pub from_previous: Option<DriftSummary>,
    pub metric: Option<(String, f64)>,
    pub bound: Option<String>,
    /// The metric is out of its bound.
    pub out_of_bound: bool,
    /// Windows recorded before windows kept sketches: not in the sums.
    pub unsketched: usize,
}

/// `windows` (oldest first) merged `every` at a time, each version's
/// apart; each scored from its windows' sketches, against its version's
/// training data and its version's merged window before.
pub async fn merged(
    home: &Home,
    model: &str,
    windows: &[MonitorWindow],
    every: usize,
) -> Result<Vec<Merged>, MonitorError> {
    let ids: Vec<i64> = windows.iter().map(|w| w.id).collect();
    let kept = home.metadata.window_sketches(&ids).map_err(crate::store)?;
    let mut references = HashMap::new();
    let mut previous: HashMap<i64, DatasetReference> = HashMap::new();
    let mut out = Vec::new();
    for group in groups(windows, every.max(1)) {
        let version = group[0].window.version;
        let mut sketch: Option<WindowSketch> = None;
        let mut unsketched = 0;
        for w in &group {
            let Some(s) = kept.get(&w.id).and_then(|s| serde_json::from_str::<WindowSketch>(s).ok()) else {
                unsketched += 1;
                continue;
            };
            match &mut sketch {
                Some(m) => m.merge(&s)?,
                None => sketch = Some(s),
            }
        }
        if let std::collections::hash_map::Entry::Vacant(e) = references.entry(version) {
            e.insert(reference(home, model, version).await?.training);
        }
        let mut m = Merged {
            version,
            windows: group.iter().map(|w| w.id).collect(),
            first_us: group[0].window.first_us,
            last_us: group[group.len() - 1].window.last_us,
            rows: group.iter().map(|w| w.window.rows.max(0) as u64).sum(),
            labeled: 0,
            from_training: None,
            from_previous: None,
            metric: None,
            bound: None,
            out_of_bound: false,
            unsketched,
        };
        if let Some(s) = &sketch {
            score(&mut m, s, (references[&version].as_ref(), previous.get(&version)))?;
        }
        if let Some(s) = sketch {
            previous.insert(version, s.inputs);
        }
        out.push(m);
    }
    Ok(out)
}

/// Each version's windows, `every` at a time (a canary's windows
/// interleave with production's: each version's are merged apart), in
/// the order of each group's first window.
fn groups(windows: &[MonitorWindow], every: usize) -> Vec<Vec<&MonitorWindow>> {
    let mut by_version: Vec<(i64, Vec<&MonitorWindow>)> = Vec::new();
    for w in windows {
        match by_version.iter_mut().find(|(v, _)| *v == w.window.version) {
            Some((_, ws)) => ws.push(w),
            None => by_version.push((w.window.version, vec![w])),
        }
    }
    let mut out: Vec<Vec<&MonitorWindow>> =
        by_version.into_iter().flat_map(|(_, ws)| ws.chunks(every).map(<[_]>::to_vec).collect::<Vec<_>>()).collect();
    out.sort_by_key(|g| g[0].id);
    out
}

fn score(
    m: &mut Merged,
    s: &WindowSketch,
    (training, previous): (Option<&DatasetReference>, Option<&DatasetReference>),
) -> Result<(), MonitorError> {
    let opts = DriftOptions {
        columns: s.inputs.columns.keys().cloned().collect(),
        drift_share: Some(s.drift_share),
        threads: Some(1),
        ..DriftOptions::default()
    };
    let drift = |r: &DatasetReference| -> Result<Option<DriftSummary>, MonitorError> {
        let mut opts = opts.clone();
        opts.columns.retain(|c| r.columns.get(c).is_some_and(|x| x.values.is_some()));
        if opts.columns.is_empty() || r.rows == 0 || s.inputs.rows == 0 {
            return Ok(None);
        }
        Ok(Some(summary(&dataset_drift_between(r, &s.inputs, &opts)?)))
    };
    m.from_training = training.map(drift).transpose()?.flatten();
    m.from_previous = previous.map(drift).transpose()?.flatten();
    if let Some(sums) = &s.metric {
        m.labeled = sums.labeled();
        if let Some(b) = s.bound.as_ref().and_then(KeptBound::bound)
            && m.labeled >= crate::MIN_LABELS
        {
            let value = sums.value(&b.metric)?;
            if value.is_finite() {
                m.metric = Some((b.metric.clone(), value));
                m.out_of_bound = !b.holds(value);
            }
            m.bound = Some(bound_text(&b));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_metadata::NewWindow;

    fn w(id: i64, version: i64) -> MonitorWindow {
        let window = NewWindow {
            model_name: "m".into(),
            version,
            first_us: id,
            last_us: id,
            rows: 10,
            labeled: 0,
            alerts: 0,
            scores: serde_json::Value::Null,
            at_us: id,
        };
        MonitorWindow { id, window }
    }

    #[test]
    fn a_canarys_windows_merge_apart_from_productions() {
        let windows: Vec<MonitorWindow> = [(1, 1), (2, 1), (3, 1), (4, 2), (5, 1), (6, 2), (7, 2), (8, 1)]
            .into_iter()
            .map(|(id, v)| w(id, v))
            .collect();
        let ids: Vec<Vec<i64>> = groups(&windows, 2).iter().map(|g| g.iter().map(|w| w.id).collect()).collect();
        assert_eq!(ids, [vec![1, 2], vec![3, 5], vec![4, 6], vec![7], vec![8]]);
    }
}
