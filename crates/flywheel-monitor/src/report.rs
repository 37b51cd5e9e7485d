//! `flywheel monitor report MODEL --html FILE`: a model's recorded windows
//! over time, self-contained (inline CSS and SVG, no script, no network),
//! as `flywheel drift --html` writes its report. Three charts share one
//! axis, a window per step: the metric against its bound, the share of
//! columns drifted from the training data (and from the window before),
//! and the metric per slice. What happened meanwhile (triggered runs,
//! aliases moved) is marked where it fell between windows.

use flywheel_data::report::{STYLE, escape};
use flywheel_metadata::MonitorWindow;
use flywheel_stats::time::format_micros;
use serde_json::Value;
use std::fmt::Write;

/// Something that happened to the model: a run started by a trigger, a
/// canary sent out, promoted or rolled back.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub at_us: i64,
    pub text: String,
}

/// Colours of versions and slices, in turn.
const PALETTE: &[&str] = &["#337ab7", "#f0ad4e", "#5cb85c", "#9b59b6", "#17a2b8", "#e83e8c", "#6c757d", "#8c564b"];
const RED: &str = "#d9534f";
const W: f64 = 960.0;
const H: f64 = 200.0;
/// Room on the left for the values.
const PAD: f64 = 44.0;

/// The page for `model`'s `windows` (oldest first) and `markers`.
pub fn html(model: &str, windows: &[MonitorWindow], markers: &[Marker]) -> String {
    let mut out = String::new();
    let title = format!("Monitoring of {}", escape(model));
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1>"
    );
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        out.push_str("<p>No window is recorded yet: serve the model with logging on, then `flywheel up` or `flywheel monitor update`.</p></body></html>\n");
        return out;
    };
    let alerts: i64 = windows.iter().map(|w| w.window.alerts).sum();
    let _ = write!(
        out,
        "<p class=\"muted\">{} windows, {} to {} · {} rows, {} labeled · {} alert(s) · versions {}</p>",
        windows.len(),
        format_micros(first.window.first_us, false),
        format_micros(last.window.last_us, false),
        windows.iter().map(|w| w.window.rows).sum::<i64>(),
        windows.iter().map(|w| w.window.labeled).sum::<i64>(),
        alerts,
        versions(windows).iter().map(|v| format!("@{v}")).collect::<Vec<_>>().join(", ")
    );
    let places: Vec<(f64, usize, &Marker)> =
        markers.iter().enumerate().filter_map(|(i, m)| Some((place(windows, m.at_us)?, i + 1, m))).collect();
    out.push_str(&metric_card(windows, &places));
    out.push_str(&drift_card(windows, &places));
    out.push_str(&slices_cards(windows, &places));
    out.push_str(&markers_card(&places));
    out.push_str(&table(windows));
    out.push_str("</body></html>\n");
    out
}

fn versions(windows: &[MonitorWindow]) -> Vec<i64> {
    let mut v: Vec<i64> = windows.iter().map(|w| w.window.version).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Where `at_us` falls on the window axis: between the windows it falls
/// between; `None` outside the windows shown.
fn place(windows: &[MonitorWindow], at_us: i64) -> Option<f64> {
    let k = windows.partition_point(|w| w.window.first_us <= at_us);
    let last = windows.last()?.window.last_us;
    (k > 0 && (k < windows.len() || at_us <= last)).then_some(k as f64 - 0.5)
}

/// One chart's frame: x for window `i` of `n`, y for `v` in `[lo, hi]`.
struct Frame {
    n: usize,
    lo: f64,
    hi: f64,
}

impl Frame {
    fn x(&self, i: f64) -> f64 {
        PAD + (W - PAD - 10.0) * (i + 0.5) / self.n.max(1) as f64
    }

    fn y(&self, v: f64) -> f64 {
        let span = (self.hi - self.lo).max(1e-12);
        10.0 + (H - 30.0) * (1.0 - (v - self.lo) / span)
    }

    /// The axes, three labelled values, the markers' lines and the windows'
    /// ids along the bottom.
    fn open(&self, windows: &[MonitorWindow], places: &[(f64, usize, &Marker)]) -> String {
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{}\" role=\"img\"><line x1=\"{PAD}\" y1=\"{}\" x2=\"{W}\" y2=\"{}\" stroke=\"#999\"/>",
            H + 4.0,
            H - 20.0,
            H - 20.0
        );
        for v in [self.lo, (self.lo + self.hi) / 2.0, self.hi] {
            let y = self.y(v);
            let _ = write!(
                svg,
                "<text x=\"2\" y=\"{:.1}\" font-size=\"10\">{}</text><line x1=\"{PAD}\" y1=\"{y:.1}\" x2=\"{W}\" y2=\"{y:.1}\" stroke=\"#eee\"/>",
                y + 3.0,
                short(v)
            );
        }
        let every = windows.len().div_ceil(12).max(1);
        for (i, w) in windows.iter().enumerate().filter(|(i, _)| i % every == 0) {
            let _ =
                write!(svg, "<text x=\"{:.1}\" y=\"{}\" font-size=\"9\">{}</text>", self.x(i as f64) - 6.0, H, w.id);
        }
        // Markers between the same two windows share one line.
        let mut k = 0;
        while k < places.len() {
            let at = places[k].0;
            let same: Vec<&(f64, usize, &Marker)> = places[k..].iter().take_while(|p| p.0 == at).collect();
            k += same.len();
            let x = self.x(at);
            let numbers: Vec<String> = same.iter().map(|p| p.1.to_string()).collect();
            let texts: Vec<String> = same.iter().map(|p| escape(&p.2.text)).collect();
            let _ = write!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"8\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#555\" stroke-dasharray=\"3,3\"><title>{}</title></line><text x=\"{:.1}\" y=\"9\" font-size=\"10\">{}</text>",
                H - 20.0,
                texts.join("\n"),
                x + 2.0,
                numbers.join(",")
            );
        }
        svg
    }
}

fn short(v: f64) -> String {
    if v.abs() >= 100.0 { format!("{v:.0}") } else { format!("{v:.3}") }
}

/// The window's metric (name and value), when it had enough labels.
fn metric(w: &MonitorWindow) -> Option<(String, f64)> {
    let m = w.window.scores["metric"].as_array()?;
    Some((m.first()?.as_str()?.to_string(), m.get(1)?.as_f64()?))
}

fn has_alert(w: &MonitorWindow, kind: &str) -> bool {
    w.window.scores["alerts"].as_array().is_some_and(|a| a.iter().any(|x| x["alert"] == kind))
}

/// The bound's value, from `">= 0.7"`.
fn bound_value(windows: &[MonitorWindow]) -> Option<(String, f64)> {
    let text = windows.iter().rev().find_map(|w| w.window.scores["bound"].as_str())?;
    let value = text.trim_start_matches(['<', '>', '=', ' ']).parse().ok()?;
    Some((text.to_string(), value))
}

fn metric_card(windows: &[MonitorWindow], places: &[(f64, usize, &Marker)]) -> String {
    let points: Vec<(usize, f64, &MonitorWindow)> =
        windows.iter().enumerate().filter_map(|(i, w)| Some((i, metric(w)?.1, w))).collect();
    let Some(name) = windows.iter().find_map(metric).map(|m| m.0) else {
        return "<div class=\"card\"><h2>Metric</h2><p class=\"muted\">No window had enough feedback labels for a metric (or no `performance` is declared).</p></div>".into();
    };
    let bound = bound_value(windows);
    let values = points.iter().map(|p| p.1).chain(bound.iter().map(|b| b.1));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let f = Frame { n: windows.len(), lo: lo - (hi - lo) * 0.05, hi: hi + (hi - lo) * 0.05 };
    let mut svg = f.open(windows, places);
    if let Some((_, b)) = &bound {
        let y = f.y(*b);
        let _ = write!(
            svg,
            "<line x1=\"{PAD}\" y1=\"{y:.1}\" x2=\"{W}\" y2=\"{y:.1}\" stroke=\"{RED}\" stroke-dasharray=\"6,4\"/>"
        );
    }
    let line: Vec<String> = points.iter().map(|(i, v, _)| format!("{:.1},{:.1}", f.x(*i as f64), f.y(*v))).collect();
    let _ = write!(svg, "<polyline points=\"{}\" fill=\"none\" stroke=\"#bbb\"/>", line.join(" "));
    let all = versions(windows);
    for (i, v, w) in &points {
        let color = PALETTE[all.iter().position(|x| *x == w.window.version).unwrap_or(0) % PALETTE.len()];
        let ring =
            if has_alert(w, "performance") { format!(" stroke=\"{RED}\" stroke-width=\"2\"") } else { String::new() };
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{color}\"{ring}><title>window {} of @{}: {name} {v:.4} ({} labeled)</title></circle>",
            f.x(*i as f64),
            f.y(*v),
            w.id,
            w.window.version,
            w.window.labeled
        );
    }
    svg.push_str("</svg>");
    let legend: String = all
        .iter()
        .enumerate()
        .map(|(k, v)| format!("<span style=\"background:{}\"></span>@{v}", PALETTE[k % PALETTE.len()]))
        .collect();
    let bound_text =
        bound.map_or(String::new(), |(t, _)| format!(", bound {} (dashed; a red ring is out of it)", escape(&t)));
    format!(
        "<div class=\"card\"><h2>{} per window{bound_text}</h2><p class=\"legend\">answered by{legend}</p>{svg}</div>",
        escape(&name)
    )
}

fn drift_card(windows: &[MonitorWindow], places: &[(f64, usize, &Marker)]) -> String {
    let share = |w: &MonitorWindow, k: &str| w.window.scores[k]["share"].as_f64();
    if windows.iter().all(|w| share(w, "from_training").is_none()) {
        return "<div class=\"card\"><h2>Drift</h2><p class=\"muted\">No window was compared with training data (a model imported without it).</p></div>".into();
    }
    let f = Frame { n: windows.len(), lo: 0.0, hi: 1.0 };
    let mut svg = f.open(windows, places);
    let slot = (W - PAD - 10.0) / windows.len().max(1) as f64;
    for (i, w) in windows.iter().enumerate() {
        let Some(s) = share(w, "from_training") else { continue };
        let t = &w.window.scores["from_training"];
        let color = if t["drift"] == true { RED } else { "#5cb85c" };
        let cols: Vec<&str> = t["columns"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\" fill-opacity=\"0.6\"><title>window {}: {} of {} columns drifted from training ({})</title></rect>",
            f.x(i as f64) - slot * 0.35,
            f.y(s),
            slot * 0.7,
            f.y(0.0) - f.y(s),
            w.id,
            t["drifted"],
            t["compared"],
            escape(&cols.join(", "))
        );
    }
    let prev: Vec<String> = windows
        .iter()
        .enumerate()
        .filter_map(|(i, w)| Some(format!("{:.1},{:.1}", f.x(i as f64), f.y(share(w, "from_previous")?))))
        .collect();
    let _ = write!(svg, "<polyline points=\"{}\" fill=\"none\" stroke=\"#333\"/></svg>", prev.join(" "));
    format!(
        "<div class=\"card\"><h2>Share of columns drifted</h2><p class=\"legend\"><span style=\"background:{RED}\"></span>from the training data, the window drifts<span style=\"background:#5cb85c\"></span>from the training data<span style=\"background:#333;height:2px\"></span>from the window before</p>{svg}</div>"
    )
}

/// One chart per `slices` spec: a line per slice (the 8 with most labels).
fn slices_cards(windows: &[MonitorWindow], places: &[(f64, usize, &Marker)]) -> String {
    let mut specs: Vec<String> = Vec::new();
    for w in windows {
        for s in w.window.scores["slices"].as_array().into_iter().flatten() {
            if let Some(spec) = s["spec"].as_str().filter(|x| !specs.iter().any(|k| k == x)) {
                specs.push(spec.to_string());
            }
        }
    }
    specs.iter().map(|spec| slice_card(windows, places, spec)).collect()
}

/// A slice's name, its labels over all windows, and its points (window
/// index, value).
type SliceLine = (String, i64, Vec<(usize, f64)>);

fn slice_card(windows: &[MonitorWindow], places: &[(f64, usize, &Marker)], spec: &str) -> String {
    let mut lines: Vec<SliceLine> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        let of_spec = w.window.scores["slices"].as_array().into_iter().flatten().find(|s| s["spec"] == spec);
        for s in of_spec.and_then(|s| s["slices"].as_array()).into_iter().flatten() {
            let (Some(name), Some(v)) = (s["slice"].as_str(), s["value"].as_f64()) else { continue };
            let n = s["labeled"].as_i64().unwrap_or(0);
            match lines.iter_mut().find(|l| l.0 == name) {
                Some(l) => {
                    l.1 += n;
                    l.2.push((i, v));
                }
                None => lines.push((name.to_string(), n, vec![(i, v)])),
            }
        }
    }
    lines.sort_by_key(|l| -l.1);
    lines.truncate(PALETTE.len());
    let values = lines.iter().flat_map(|l| l.2.iter().map(|p| p.1));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return format!(
            "<div class=\"card\"><h2>Per slice: {}</h2><p class=\"muted\">No slice had enough labels in any window.</p></div>",
            escape(spec)
        );
    }
    let f = Frame { n: windows.len(), lo, hi: hi.max(lo + 1e-9) };
    let mut svg = f.open(windows, places);
    let mut legend = String::new();
    for (k, (name, n, points)) in lines.iter().enumerate() {
        let color = PALETTE[k];
        let pts: Vec<String> = points.iter().map(|(i, v)| format!("{:.1},{:.1}", f.x(*i as f64), f.y(*v))).collect();
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"><title>{}</title></polyline>",
            pts.join(" "),
            escape(name)
        );
        let _ = write!(legend, "<span style=\"background:{color}\"></span>{} ({n} labeled)", escape(name));
    }
    svg.push_str("</svg>");
    format!("<div class=\"card\"><h2>Per slice: {}</h2><p class=\"legend\">{legend}</p>{svg}</div>", escape(spec))
}

fn markers_card(places: &[(f64, usize, &Marker)]) -> String {
    if places.is_empty() {
        return String::new();
    }
    let items: String = places
        .iter()
        .map(|(_, n, m)| {
            format!("<tr><td>{n}</td><td>{}</td><td>{}</td></tr>", format_micros(m.at_us, false), escape(&m.text))
        })
        .collect();
    format!(
        "<div class=\"card\"><h2>What happened</h2><table><tr><th>#</th><th>when</th><th>what</th></tr>{items}</table></div>"
    )
}

/// Every window, newest first.
fn table(windows: &[MonitorWindow]) -> String {
    let mut rows = String::new();
    for w in windows.iter().rev() {
        let s = &w.window.scores;
        let drift = |k: &str| match &s[k] {
            Value::Null => "–".to_string(),
            d => format!("{}/{}", d["drifted"], d["compared"]),
        };
        let m = metric(w).map_or("–".to_string(), |(n, v)| format!("{n} {v:.4}"));
        let _ = write!(
            rows,
            "<tr{}><td>{}</td><td>@{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if w.window.alerts > 0 { " style=\"color:#a94442\"" } else { "" },
            w.id,
            w.window.version,
            format_micros(w.window.first_us, false),
            w.window.rows,
            w.window.labeled,
            drift("from_training"),
            drift("from_previous"),
            escape(&m)
        );
    }
    format!(
        "<div class=\"card\"><h2>Windows</h2><table><tr><th>window</th><th>version</th><th>from</th><th>rows</th><th>labeled</th><th>drift from training</th><th>from the window before</th><th>metric</th></tr>{rows}</table></div>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_metadata::NewWindow;
    use serde_json::json;

    fn window(id: i64, version: i64, first_us: i64, accuracy: f64, alert: bool) -> MonitorWindow {
        let alerts = if alert { json!([{"alert": "performance"}]) } else { json!([]) };
        let scores = json!({
            "rows": 500, "labeled": 500, "metric": ["accuracy", accuracy], "bound": ">= 0.7",
            "from_training": {"drifted": 1, "compared": 4, "share": 0.25, "drift": false, "columns": ["a"]},
            "from_previous": null, "alerts": alerts,
            "slices": [{"spec": "day", "slices": [{"slice": "day=1", "labeled": 70, "value": accuracy - 0.1}]}],
        });
        let window = NewWindow {
            model_name: "m".into(),
            version,
            first_us,
            last_us: first_us + 9,
            rows: 500,
            labeled: 500,
            alerts: i64::from(alert),
            scores,
            at_us: first_us + 20,
        };
        MonitorWindow { id, window }
    }

    #[test]
    fn markers_fall_between_the_windows_they_happened_between() {
        let w: Vec<MonitorWindow> = (0..4).map(|i| window(i + 1, 1, i * 100, 0.8, false)).collect();
        assert_eq!(place(&w, -5), None, "before the first window");
        assert_eq!(place(&w, 150), Some(1.5));
        assert_eq!(place(&w, 305), Some(3.5), "inside the last window");
        assert_eq!(place(&w, 400), None, "after the last window");
    }

    #[test]
    fn the_page_draws_metric_bound_drift_slices_and_what_happened() {
        let w = vec![window(1, 1, 0, 0.75, false), window(2, 1, 100, 0.6, true), window(3, 2, 200, 0.8, false)];
        let m = [
            Marker { at_us: 150, text: "run 2 (succeeded): performance: <low>".into() },
            Marker { at_us: 160, text: "m@canary: nothing → 2".into() },
        ];
        let page = html("m", &w, &m);
        assert_eq!(page.matches("<svg").count(), 3, "metric, drift, one slice spec");
        assert!(page.contains("bound &gt;= 0.7"), "{page}");
        assert!(page.contains("Per slice: day"));
        assert!(page.contains(">1,2</text>"), "two markers between windows 2 and 3 share a line");
        assert!(page.contains("performance: &lt;low&gt;"), "marker text escaped");
        assert_eq!(page.matches(&format!("stroke=\"{RED}\" stroke-width=\"2\"")).count(), 1, "one window out of bound");
        assert!(!page.contains("NaN") && !page.contains("inf"), "{page}");
        let empty = html("m", &[], &[]);
        assert!(empty.contains("No window is recorded yet"));
    }
}
