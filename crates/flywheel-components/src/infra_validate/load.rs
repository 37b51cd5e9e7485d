//! The load test: `concurrency` keep-alive connections, each sending
//! one-row requests back to back (alternating `/invocations` and the OIP
//! endpoint, cycling through the eval rows) until the duration is over;
//! every request's latency recorded, and the process's resident memory
//! sampled meanwhile.

use flywheel_client::Conn;
use hyper::StatusCode;
use hyper::body::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often resident memory is read during the load test.
const MEMORY_SAMPLE: Duration = Duration::from_millis(10);

/// The requests the load test sends: (path, body), used in turn.
pub type Requests = Arc<Vec<(String, Bytes)>>;

/// What the load test measured.
#[derive(Debug)]
pub struct Figures {
    pub requests: u64,
    pub errors: u64,
    /// The first error seen, to name in the log.
    pub first_error: Option<String>,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Peak VmRSS sampled during the test, in bytes (Linux only).
    pub peak_rss: Option<u64>,
}

/// One connection's share of the test.
#[derive(Default)]
struct Share {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

impl Share {
    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

/// Sends requests on one connection until `until`; a broken connection
/// is an error and is opened again.
async fn client(addr: SocketAddr, requests: Requests, offset: usize, until: Instant) -> Share {
    let mut share = Share::default();
    let mut conn: Option<Conn> = None;
    let mut i = offset;
    while Instant::now() < until {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::open(addr).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    share.error(e.to_string());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let (path, body) = &requests[i % requests.len()];
        i += 1;
        let start = Instant::now();
        match c.post(path, body.clone()).await {
            Ok((StatusCode::OK, _)) => share.latencies.push(start.elapsed()),
            Ok((status, body)) => share.error(format!("{path} answered {status}: {}", String::from_utf8_lossy(&body))),
            Err(e) => {
                share.error(e.to_string());
                conn = None;
            }
        }
    }
    share
}

/// Runs the load test against `addr`.
pub async fn run(addr: SocketAddr, requests: Requests, concurrency: usize, duration: Duration) -> Figures {
    let sampling = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn(sample_memory(sampling.clone(), peak.clone()));
    let start = Instant::now();
    let until = start + duration;
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..concurrency {
        // Each connection starts at another row, so they do not send in step.
        clients.spawn(client(addr, requests.clone(), c * 7, until));
    }
    let mut all = Share::default();
    while let Some(done) = clients.join_next().await {
        match done {
            Ok(share) => {
                all.latencies.extend(share.latencies);
                all.errors += share.errors;
                if let Some(e) = share.first_error {
                    all.first_error.get_or_insert(e);
                }
            }
            Err(e) => all.error(format!("a load-test connection failed: {e}")),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    sampling.store(false, Ordering::SeqCst);
    let _ = sampler.await;
    let mut ms: Vec<f64> = all.latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let requests = ms.len() as u64;
    Figures {
        requests,
        errors: all.errors,
        first_error: all.first_error,
        seconds,
        rps: requests as f64 / seconds.max(f64::MIN_POSITIVE),
        p50_ms: quantile(&ms, 0.50),
        p99_ms: quantile(&ms, 0.99),
        max_ms: ms.last().copied().unwrap_or(0.0),
        peak_rss: current_rss().map(|now| now.max(peak.load(Ordering::SeqCst))),
    }
}

/// The nearest-rank quantile of sorted values (0 for none).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn sample_memory(sampling: Arc<AtomicBool>, peak: Arc<AtomicU64>) {
    while sampling.load(Ordering::SeqCst) {
        if let Some(rss) = current_rss() {
            peak.fetch_max(rss, Ordering::SeqCst);
        }
        tokio::time::sleep(MEMORY_SAMPLE).await;
    }
}

/// This process's resident memory (`VmRSS` of `/proc/self/status`) in
/// bytes; `None` where there is no such file (not Linux).
pub fn current_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn resident_memory_is_read_on_linux() {
        let rss = current_rss().unwrap();
        assert!(rss > 1 << 20, "{rss}");
    }
}
