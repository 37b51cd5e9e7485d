//! What hyper calls for every request. The prediction routes, which a
//! server answers thousands of times a second, go straight to their
//! handlers under [`ops::guarded`]; everything else, and any prediction
//! path not written plainly (a percent-encoded name, a trailing slash),
//! goes through the axum [`Router`](crate::http::router), which has the
//! same routes and the same guard. axum's routing and `from_fn` middleware
//! cost a boxed future, a cloned service and allocated path parameters
//! each; here a prediction costs one boxed future.

use crate::headers::Asked;
use crate::state::AppState;
use crate::{Result, http, ops};
use axum::Router;
use axum::http::{Method, Request};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A prediction endpoint, with its path's parameters.
#[derive(Debug, PartialEq)]
enum Predict<'a> {
    Invocations,
    Infer(&'a str),
    InferVersion(&'a str, &'a str),
}

/// The prediction endpoint `path` is, when written plainly: segments
/// that need no percent-decoding, no empty ones.
fn predict_route(path: &str) -> Option<Predict<'_>> {
    if path == "/invocations" {
        return Some(Predict::Invocations);
    }
    let rest = path.strip_prefix("/v2/models/")?.strip_suffix("/infer")?;
    let plain = |s: &str| !s.is_empty() && !s.contains(['/', '%']);
    // Split at the first `/` (a `str` pattern would build a searcher).
    match rest.find('/') {
        None => plain(rest).then_some(Predict::Infer(rest)),
        Some(at) => {
            let (name, v) = (&rest[..at], rest[at..].strip_prefix("/versions/")?);
            (plain(name) && plain(v)).then_some(Predict::InferVersion(name, v))
        }
    }
}

/// The service a connection calls, one per connection.
struct Front {
    app: Arc<AppState>,
    router: Router,
    activity: Arc<Activity>,
}

impl Front {
    /// The service of a new connection, answering from `app` and `router`.
    fn new(app: &Arc<AppState>, router: &Router) -> Self {
        Front { app: app.clone(), router: router.clone(), activity: Arc::default() }
    }
}

/// What a connection's watchdog reads: the requests begun on it, and how
/// many of them are being answered.
#[derive(Default)]
struct Activity {
    begun: AtomicU64,
    open: AtomicU64,
}

/// A request being answered, counted until its future ends or is dropped.
struct Open(Arc<Activity>);

impl Open {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.begun.fetch_add(1, Ordering::Relaxed);
        activity.open.fetch_add(1, Ordering::Relaxed);
        Open(activity.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Ends once the connection has begun no request for a whole `limit` while
/// none was being answered: a client that sends nothing, or trickles a
/// request head, is let go after `limit` to twice it. hyper's own header
/// timeout does this with a timer armed and dropped for every request head,
/// about 3% of a one-row request's work (bench/README.md); this looks
/// once per `limit`.
async fn idle(activity: &Activity, limit: Duration) {
    let mut seen = activity.begun.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(limit).await;
        let begun = activity.begun.load(Ordering::Relaxed);
        if begun == seen && activity.open.load(Ordering::Relaxed) == 0 {
            return;
        }
        seen = begun;
    }
}

type Answer = Pin<Box<dyn Future<Output = std::result::Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Answer {
        let open = Open::begin(&self.activity);
        let fast = request.method() == Method::POST && predict_route(request.uri().path()).is_some();
        if !fast {
            let answer = tower_service::Service::call(&mut self.router.clone(), request);
            return Box::pin(async move {
                let _open = open;
                answer.await
            });
        }
        let app = self.app.clone();
        Box::pin(async move {
            let _open = open;
            let (parts, body) = request.into_parts();
            let asked = Asked::of(&parts.headers);
            let answer = async {
                let answered: Result<Response> = match predict_route(parts.uri.path()) {
                    Some(Predict::Infer(name)) => http::infer_named(&app, name, &asked, body).await,
                    Some(Predict::InferVersion(name, v)) => http::infer_version(&app, name, v, &asked, body).await,
                    Some(Predict::Invocations) | None => http::invocations_with(&app, &parts, &asked, body).await,
                };
                answered.unwrap_or_else(IntoResponse::into_response)
            };
            Ok(ops::guarded(&app, &parts.uri, asked.model, answer).await)
        })
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; requests in
/// flight then finish before this returns. hyper's own connection loop
/// (what `axum::serve` runs); a connection that begins no request within
/// `Limits::header_timeout` (to twice it) of going idle is closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    // `idle` instead: no timer a request.
    http.header_read_timeout(None);
    let limit = app.limits.header_timeout;
    let router = http::router(app.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = Front::new(&app, &router);
        let activity = service.activity.clone();
        let connection = graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => if let Err(e) = ended {
                    tracing::debug!("connection ended: {e}");
                },
                () = idle(&activity, limit) => tracing::debug!("connection closed: no request for {limit:?}"),
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_prediction_paths_are_taken_and_the_rest_left_to_the_router() {
        assert_eq!(predict_route("/invocations"), Some(Predict::Invocations));
        assert_eq!(predict_route("/v2/models/bikes/infer"), Some(Predict::Infer("bikes")));
        assert_eq!(predict_route("/v2/models/bikes/versions/3/infer"), Some(Predict::InferVersion("bikes", "3")));
        for other in [
            "/invocations/",
            "/v2/models//infer",
            "/v2/models/a%20b/infer",
            "/v2/models/bikes/versions//infer",
            "/v2/models/bikes/versions/3/4/infer",
            "/v2/models/a/b/infer",
            "/v2/models/bikes/infer/",
            "/v2/models/bikes",
            "/ping",
        ] {
            assert_eq!(predict_route(other), None, "{other}");
        }
    }
}
