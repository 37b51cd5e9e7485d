//! What keeps the server up under load and closed to strangers: every
//! prediction request counted and timed (`/metrics`) and refused with 503
//! and `Retry-After` when too many are in flight rather than queued without
//! end (`guard`, a middleware); waits bounded by the request timeout
//! (`within`: the body's arrival, a blocking prediction); and the endpoints
//! that change state (a split, feedback) behind a bearer token when one is
//! configured (`FLYWHEEL_TOKEN`).

use crate::ServeError;
use crate::headers::{MODEL_HEADER, VERSION_HEADER, model_in_query};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;

/// Counts, times and limits a prediction request routed by axum (the
/// routes `front` does not take first): see [`guarded`].
pub(crate) async fn guard(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    // Kept (cheap clones) to name the model only when no version answered.
    let (uri, named) = (request.uri().clone(), request.headers().get(MODEL_HEADER).cloned());
    guarded(&app, &uri, named.as_ref(), next.run(request)).await
}

/// Runs `answer`, the handler of a prediction request for `uri`: refused
/// with 503 and `Retry-After` when `max_in_flight` are being answered,
/// counted and timed by the version that answered (or the model `uri` or
/// the `named` header names, when none did).
pub(crate) async fn guarded(
    app: &AppState,
    uri: &Uri,
    named: Option<&HeaderValue>,
    answer: impl std::future::Future<Output = Response>,
) -> Response {
    let start = Instant::now();
    app.metrics.started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let response = match app.slots.clone().try_acquire_owned() {
        Ok(permit) => {
            app.metrics.in_flight.inc();
            let _done = InFlight(app);
            SLOT.scope(Slot(Arc::new(permit)), answer).await
        }
        Err(_) => {
            app.metrics.overloaded.inc();
            let mut response = ServeError::Overloaded(app.limits.max_in_flight).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    };
    let took = start.elapsed();
    let status = response.status().as_u16();
    let version = response.headers().get(VERSION_HEADER).and_then(|v| v.to_str().ok());
    match version.and_then(|label| Some((label, label.rsplit_once('@')?))) {
        Some((label, _)) if status == 200 => app.metrics.answered(label, took),
        Some((_, (m, v))) => app.metrics.request(m, v, status, took),
        None => {
            // A name the server does not serve is not a label: callers could
            // otherwise grow the metrics without end, one made-up name at a time.
            let model = model_of(uri.path(), uri.query(), named);
            let model = if app.table.route(&model).is_some() { model } else { String::new() };
            app.metrics.request(&model, "", status, took);
        }
    }
    response
}

/// Lowers the in-flight gauge however the request ends (a client that
/// goes away drops the future).
struct InFlight<'a>(&'a AppState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.metrics.in_flight.dec();
    }
}

/// The model a request names by its path, query or header, for requests
/// refused before a version was chosen.
fn model_of(path: &str, query: Option<&str>, header: Option<&HeaderValue>) -> String {
    if let Some(rest) = path.strip_prefix("/v2/models/") {
        return rest.split('/').next().unwrap_or_default().to_string();
    }
    let from_header = header.and_then(|v| v.to_str().ok());
    model_in_query(query).or(from_header).unwrap_or_default().to_string()
}

/// Waits for `work` at most `limit`, without a timer when it is done at
/// once (a small request's body is usually whole when its handler starts,
/// and a timer costs a lock of the runtime's timer wheel).
pub(crate) async fn within<F: std::future::Future>(limit: std::time::Duration, work: F) -> Option<F::Output> {
    let mut work = std::pin::pin!(work);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(work.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(done) => Some(done),
        std::task::Poll::Pending => tokio::time::timeout(limit, work).await.ok(),
    }
}

/// A request's place among the `max_in_flight`, shared with the blocking
/// prediction it starts: a request cut off by the timeout gives its place
/// back only when that prediction has ended too.
#[derive(Clone)]
pub(crate) struct Slot(#[allow(dead_code)] Arc<tokio::sync::OwnedSemaphorePermit>);

tokio::task_local! {
    static SLOT: Slot;
}

/// The slot of the request being answered on this task, if it has one.
pub(crate) fn current_slot() -> Option<Slot> {
    SLOT.try_with(Slot::clone).ok()
}

/// Lets a request through when no token is configured, or when it carries
/// `Authorization: Bearer TOKEN`.
pub(crate) async fn authorize(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(token) = &app.token else { return next.run(request).await };
    let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let given = given.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    if given.is_some_and(|g| same(g.as_bytes(), token.as_bytes())) {
        return next.run(request).await;
    }
    let mut response = ServeError::Unauthorized(match given {
        None => {
            "this endpoint changes the server: send Authorization: Bearer TOKEN (the server's FLYWHEEL_TOKEN)".into()
        }
        Some(_) => "the bearer token is not the server's FLYWHEEL_TOKEN".into(),
    })
    .into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Compares in time that depends on the length only, so a token cannot be
/// guessed a byte at a time from how fast it is refused.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What to warn about before serving on `addr` with or without a token.
pub fn exposure_warning(addr: std::net::SocketAddr, token: Option<&str>) -> Option<String> {
    if addr.ip().is_loopback() || token.is_some() {
        return None;
    }
    Some(format!(
        "listening on {addr}, beyond this machine, with no FLYWHEEL_TOKEN: anyone who can reach it can change \
         splits and send feedback; set FLYWHEEL_TOKEN, or listen on 127.0.0.1"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_only_itself() {
        assert!(same(b"s3cret", b"s3cret"));
        assert!(!same(b"s3cret", b"s3cres"));
        assert!(!same(b"s3cret", b"s3cret!"));
        assert!(!same(b"", b"x"));
    }

    #[test]
    fn only_listening_beyond_loopback_without_a_token_is_warned_about() {
        let at = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert!(exposure_warning(at("127.0.0.1:8080"), None).is_none());
        assert!(exposure_warning(at("[::1]:8080"), None).is_none());
        assert!(exposure_warning(at("0.0.0.0:8080"), Some("t")).is_none());
        let w = exposure_warning(at("0.0.0.0:8080"), None).unwrap();
        assert!(w.contains("0.0.0.0:8080") && w.contains("FLYWHEEL_TOKEN"), "{w}");
    }

    #[test]
    fn the_model_of_a_request_is_read_from_its_path_query_or_header() {
        assert_eq!(model_of("/v2/models/bikes/versions/2/infer", None, None), "bikes");
        assert_eq!(model_of("/invocations", Some("a=1&model=clf"), None), "clf");
        assert_eq!(model_of("/invocations", None, Some(&HeaderValue::from_static("reg"))), "reg");
    }
}
