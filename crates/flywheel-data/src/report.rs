//! Self-contained HTML reports (no network, no scripts): inline CSS and SVG.

use crate::dataset_drift::{DriftReport, Histogram};
use serde_json::Value as Json;
use std::fmt::Write;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}\
h1{font-size:1.4rem}h2{font-size:1.1rem;margin:0 0 .4rem}\
.card{border:1px solid #ddd;border-radius:6px;padding:1rem;margin:1rem 0}\
.drift{border-left:6px solid #d9534f}.ok{border-left:6px solid #5cb85c}\
table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:right;border-bottom:1px solid #eee}\
th:first-child,td:first-child{text-align:left}.legend span{display:inline-block;width:12px;height:12px;margin:0 .3rem 0 1rem}\
.muted{color:#777}";

fn num(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

/// Overlaid bars: reference in blue, current in orange.
fn bars(h: &Histogram) -> String {
    let n = h.labels.len().max(1);
    let (w, ht, pad) = (720.0, 180.0, 30.0);
    let top = h.reference.iter().chain(&h.current).copied().fold(0.0f64, f64::max).max(1e-12);
    let slot = (w - pad) / n as f64;
    // Extra width on the right for the last rotated label.
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\"><line x1=\"{pad}\" y1=\"{ht}\" x2=\"{w}\" y2=\"{ht}\" stroke=\"#999\"/>",
        w + 80.0,
        ht + 40.0
    );
    for (i, label) in h.labels.iter().enumerate() {
        let x = pad + slot * i as f64;
        for (k, (v, color)) in [(h.reference[i], "#337ab7"), (h.current[i], "#f0ad4e")].into_iter().enumerate() {
            let bh = v / top * (ht - 10.0);
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{color}\" fill-opacity=\"0.6\"><title>{}: {} {:.2}%</title></rect>",
                x + slot * 0.1 + k as f64 * slot * 0.4,
                ht - bh,
                slot * 0.4,
                escape(label),
                if k == 0 { "reference" } else { "current" },
                100.0 * v
            );
        }
        if n <= 20 {
            let short: String = label.chars().take(14).collect();
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"9\" transform=\"rotate(30 {:.1} {})\">{}</text>",
                x + slot * 0.2,
                ht + 12.0,
                x + slot * 0.2,
                ht + 12.0,
                escape(&short)
            );
        }
    }
    let _ = write!(svg, "<text x=\"0\" y=\"12\" font-size=\"10\">{:.1}%</text></svg>", 100.0 * top);
    svg
}

pub fn drift_report(r: &DriftReport, reference: &str, current: &str) -> String {
    let mut out = String::new();
    let verdict = if r.dataset_drift { "Dataset drift detected" } else { "No dataset drift" };
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Flywheel drift report</title><style>{STYLE}</style></head><body>\
         <h1>{verdict}: {} of {} columns drifted ({:.0}%, threshold {:.0}%)</h1>\
         <p class=\"muted\">reference: {} ({} rows) · current: {} ({} rows)</p>\
         <p class=\"legend\"><span style=\"background:#337ab7\"></span>reference<span style=\"background:#f0ad4e\"></span>current</p>",
        r.drifted_columns,
        r.compared_columns,
        100.0 * r.drift_share,
        100.0 * r.drift_share_threshold,
        escape(reference),
        r.reference_rows,
        escape(current),
        r.current_rows
    );
    if !r.only_in_reference.is_empty() || !r.only_in_current.is_empty() {
        let _ = write!(
            out,
            "<div class=\"card drift\"><h2>Columns not in both datasets</h2><p>only in reference: {}<br>only in current: {}</p></div>",
            escape(&r.only_in_reference.join(", ")),
            escape(&r.only_in_current.join(", "))
        );
    }
    let mut cols: Vec<_> = r.columns.iter().collect();
    cols.sort_by_key(|(name, c)| (!c.drift.drift, (*name).clone()));
    for (name, c) in cols {
        let d = &c.drift;
        let rule = if d.method.is_p_value() { "drift when p ≤" } else { "drift when ≥" };
        let _ = write!(
            out,
            "<div class=\"card {}\"><h2>{} — {}</h2><p>{} · {}: <b>{}</b> ({rule} {}) · present: {} / {} · missing: {} / {}</p>{}</div>",
            if d.drift { "drift" } else { "ok" },
            escape(name),
            if d.drift { "drift" } else { "no drift" },
            match d.kind {
                flywheel_stats::Kind::Numeric => "numeric",
                flywheel_stats::Kind::Categorical => "categorical",
            },
            d.method.as_str(),
            num(d.score),
            num(d.threshold),
            d.reference_count,
            d.current_count,
            c.reference_missing,
            c.current_missing,
            bars(&c.histogram)
        );
    }
    out.push_str("</body></html>\n");
    out
}

/// A page of `flywheel stats` output: key figures and a histogram per column.
pub fn stats_report(stats: &Json, data: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Flywheel statistics</title><style>{STYLE}</style></head><body>\
         <h1>Statistics of {}</h1><p class=\"muted\">{} rows</p>",
        escape(data),
        stats["rows"]
    );
    let empty = serde_json::Map::new();
    for (name, c) in stats["columns"].as_object().unwrap_or(&empty) {
        let _ = write!(
            out,
            "<div class=\"card ok\"><h2>{} <span class=\"muted\">{}</span></h2><table>",
            escape(name),
            c["type"].as_str().unwrap_or("")
        );
        for key in ["count", "missing", "distinct", "zeros", "nan", "inf", "mean", "std", "min", "max"] {
            if let Some(v) = c.get(key).filter(|v| !v.is_null()) {
                let text = v.as_f64().map_or_else(|| v.to_string(), num);
                let _ = write!(out, "<tr><td>{key}</td><td>{}</td></tr>", escape(&text));
            }
        }
        out.push_str("</table>");
        let hist = if let Some(h) = c.get("histogram") {
            let edges: Vec<f64> =
                h["edges"].as_array().map(|a| a.iter().filter_map(Json::as_f64).collect()).unwrap_or_default();
            let counts: Vec<f64> =
                h["counts"].as_array().map(|a| a.iter().filter_map(Json::as_f64).collect()).unwrap_or_default();
            let total: f64 = counts.iter().sum::<f64>().max(1.0);
            Histogram {
                labels: edges.windows(2).map(|w| format!("{}–{}", num(w[0]), num(w[1]))).collect(),
                reference: counts.iter().map(|c| c / total).collect(),
                current: vec![0.0; counts.len()],
            }
        } else {
            let top = c["top"].as_array().cloned().unwrap_or_default();
            let total = c["count"].as_f64().unwrap_or(1.0).max(1.0);
            Histogram {
                labels: top
                    .iter()
                    .map(|t| t["value"].as_str().map_or_else(|| t["value"].to_string(), str::to_string))
                    .collect(),
                reference: top.iter().map(|t| t["count"].as_f64().unwrap_or(0.0) / total).collect(),
                current: vec![0.0; top.len()],
            }
        };
        if !hist.labels.is_empty() {
            out.push_str(&bars(&hist));
        }
        out.push_str("</div>");
    }
    out.push_str("</body></html>\n");
    out
}
