//! Prometheus metrics (`GET /metrics`, the text exposition format):
//! requests by model, version and status, latency histograms by model and
//! version, requests in flight, refusals for overload and timeout, swaps
//! and refused loads by model, the shadow's answers, failures and drops,
//! and the prediction log's drops. The log counts its drops itself (a plain
//! atomic, the log knowing nothing of metrics): that count is brought up
//! to date when the page is rendered.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    version: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    model: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

/// 100 µs to about 3.3 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Every metric the server exports, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<VersionLabels, Histogram, fn() -> Histogram>,
    pub in_flight: Gauge,
    pub overloaded: Counter,
    pub timed_out: Counter,
    swaps: Family<ModelLabels, Counter>,
    load_failures: Family<ModelLabels, Counter>,
    pub shadow_answered: Counter,
    pub shadow_failed: Counter,
    pub shadow_dropped: Counter,
    pub log_dropped: Counter,
    /// Prediction requests started, answered or not (not exported: what
    /// tells the server it has gone quiet).
    pub started: AtomicU64,
    /// Held while counts kept elsewhere are caught up and the page rendered,
    /// so two scrapes at once cannot both add the same difference.
    rendering: std::sync::Mutex<()>,
    /// The counter and histogram of each version's answered (200) requests,
    /// by `name@version`: found without building label strings per request.
    answered: std::sync::RwLock<std::collections::HashMap<String, (Counter, Histogram)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            in_flight: Gauge::default(),
            overloaded: Counter::default(),
            timed_out: Counter::default(),
            swaps: Family::default(),
            load_failures: Family::default(),
            shadow_answered: Counter::default(),
            shadow_failed: Counter::default(),
            shadow_dropped: Counter::default(),
            log_dropped: Counter::default(),
            started: AtomicU64::new(0),
            rendering: std::sync::Mutex::new(()),
            answered: std::sync::RwLock::new(std::collections::HashMap::new()),
        };
        m.register();
        m
    }
}

impl Metrics {
    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "flywheel_requests",
            "Prediction requests answered, by model, version and HTTP status",
            self.requests.clone(),
        );
        r.register("flywheel_request_duration_seconds", "Time to answer a prediction request", self.latency.clone());
        r.register("flywheel_requests_in_flight", "Prediction requests being answered now", self.in_flight.clone());
        r.register(
            "flywheel_overloaded",
            "Requests refused with 503 because too many were in flight",
            self.overloaded.clone(),
        );
        r.register("flywheel_timed_out", "Requests that took longer than the request timeout", self.timed_out.clone());
        r.register("flywheel_swaps", "Versions swapped in because an alias moved", self.swaps.clone());
        r.register(
            "flywheel_load_failures",
            "Versions an alias pointed at that could not be loaded",
            self.load_failures.clone(),
        );
        r.register("flywheel_shadow_answered", "Shadow predictions made", self.shadow_answered.clone());
        r.register("flywheel_shadow_failed", "Shadow predictions that failed", self.shadow_failed.clone());
        r.register(
            "flywheel_shadow_dropped",
            "Shadow copies dropped for want of a free slot",
            self.shadow_dropped.clone(),
        );
        r.register(
            "flywheel_log_dropped",
            "Prediction log rows dropped because the writer fell behind, or failed to write",
            self.log_dropped.clone(),
        );
    }

    /// One prediction request answered: `version` empty when none was chosen.
    pub fn request(&self, model: &str, version: &str, code: u16, took: Duration) {
        let (count, latency) = self.handles(model, version, code);
        count.inc();
        latency.observe(took.as_secs_f64());
    }

    /// One prediction request answered 200 by `label` (`name@version`),
    /// through handles kept by label after the first.
    pub fn answered(&self, label: &str, took: Duration) {
        let cache = self.answered.read().unwrap_or_else(|p| p.into_inner());
        if let Some((count, latency)) = cache.get(label) {
            count.inc();
            latency.observe(took.as_secs_f64());
            return;
        }
        drop(cache);
        let (model, version) = label.rsplit_once('@').unwrap_or((label, ""));
        let handles = self.handles(model, version, 200);
        self.answered.write().unwrap_or_else(|p| p.into_inner()).insert(label.to_string(), handles);
        self.answered(label, took);
    }

    /// The request counter and latency histogram of these labels.
    fn handles(&self, model: &str, version: &str, code: u16) -> (Counter, Histogram) {
        let labels = VersionLabels { model: model.to_string(), version: version.to_string() };
        let count = self
            .requests
            .get_or_create(&RequestLabels { model: labels.model.clone(), version: labels.version.clone(), code })
            .clone();
        (count, self.latency.get_or_create(&labels).clone())
    }

    /// Requests `version` of `model` answered, and those it failed (a 5xx
    /// while it was chosen), since the server started: what a canary is
    /// judged by.
    pub fn version_counts(&self, model: &str, version: i64) -> (u64, u64) {
        let count = |code: u16| {
            let labels = RequestLabels { model: model.to_string(), version: version.to_string(), code };
            self.requests.get(&labels).map_or(0, |c| c.get())
        };
        let failed = [500, 502, 503, 504].into_iter().map(count).sum();
        (count(200), failed)
    }

    pub fn swapped(&self, model: &str) {
        self.swaps.get_or_create(&ModelLabels { model: model.to_string() }).inc();
    }

    pub fn load_failed(&self, model: &str) {
        self.load_failures.get_or_create(&ModelLabels { model: model.to_string() }).inc();
    }

    /// The exposition text, after `catch_up` has brought the counts kept
    /// elsewhere up to date (one scrape at a time).
    pub fn render(&self, catch_up: impl FnOnce(&Metrics)) -> String {
        let _one = self.rendering.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        catch_up(self);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Brings `counter` up to `value`, a count kept elsewhere that only grows.
pub fn catch_up(counter: &Counter, value: u64) {
    let seen = counter.get();
    if value > seen {
        counter.inc_by(value - seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_model_version_and_status_and_timed() {
        let m = Metrics::default();
        m.answered("bikes@3", Duration::from_millis(2));
        m.request("bikes", "3", 200, Duration::from_millis(4));
        m.request("bikes", "", 400, Duration::from_micros(50));
        m.swapped("bikes");
        catch_up(&m.shadow_dropped, 5);
        catch_up(&m.shadow_dropped, 3);
        let text = m.render(|m| catch_up(&m.log_dropped, 2));
        for line in [
            r#"flywheel_requests_total{model="bikes",version="3",code="200"} 2"#,
            r#"flywheel_requests_total{model="bikes",version="",code="400"} 1"#,
            r#"flywheel_request_duration_seconds_count{model="bikes",version="3"} 2"#,
            r#"flywheel_request_duration_seconds_bucket{le="0.0064",model="bikes",version="3"} 2"#,
            r#"flywheel_request_duration_seconds_bucket{le="0.0032",model="bikes",version="3"} 1"#,
            r#"flywheel_swaps_total{model="bikes"} 1"#,
            "flywheel_shadow_dropped_total 5",
            "flywheel_log_dropped_total 2",
            "# TYPE flywheel_requests_in_flight gauge",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn a_versions_answers_and_failures_are_counted_for_its_canary() {
        let m = Metrics::default();
        m.answered("bikes@3", Duration::from_millis(2));
        m.request("bikes", "3", 200, Duration::from_millis(4));
        m.request("bikes", "3", 500, Duration::from_micros(50));
        m.request("bikes", "3", 400, Duration::from_micros(50));
        // A client's mistake is not the version's failure.
        assert_eq!(m.version_counts("bikes", 3), (2, 1));
        assert_eq!(m.version_counts("bikes", 4), (0, 0));
    }
}
