//! The prediction server: registered models served over HTTP, with the
//! Open Inference Protocol v2 (KServe's and Triton's `/v2/...`, JSON and the
//! binary tensor extension) and MLflow's scoring format (`/invocations`).
//!
//! [`ServeConfig`] is what the user asked for; [`Serve::load`] resolves it
//! against the registry (`flywheel_registry::Home`) and loads every model,
//! refusing to start if one cannot be; [`run`] binds and serves until
//! SIGTERM or Ctrl-C, letting requests in flight finish. Requests become a
//! `flywheel_ml::Frame` (`columns.rs`) and go through the model's own
//! `predict`, so a served prediction is the one `flywheel predict` makes.
//! The models answer from a [`ModelTable`], whose entries can be swapped
//! while serving (what following the registry's aliases will do).

mod batch;
mod binary;
mod columns;
mod config;
mod fast;
mod feedback;
mod follow;
mod front;
mod headers;
mod http;
pub mod log;
mod metrics;
mod mlflow;
mod oip;
mod ops;
mod quiet;
mod route;
mod run_request;
mod scan;
mod served;
mod shadow;
mod split_api;
mod state;
mod table;
mod write;

pub use config::{DEFAULT_ADDR, DEFAULT_ALIAS, Serve, ServeConfig};
pub use follow::{DEFAULT_POLL, Followed, Follower, Following};
pub use front::serve as serve_on;
pub use headers::{ARM_HEADER, KEY_HEADER, MODEL_HEADER, REQUEST_ID_HEADER, VERSION_HEADER};
pub use http::router;
pub use log::{LogOptions, PredictionLog, Sampling};
pub use metrics::Metrics;
pub use ops::exposure_warning;
pub use quiet::Moment;
pub use route::{Arm, Route, Split};
pub use served::Served;
pub use shadow::Shadow;
pub use state::{AppState, Limits};
pub use table::{ModelTable, Picked, Unanswered};

use axum::http::StatusCode;
use std::sync::Arc;

/// Why the server cannot start, or why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The registry could not be opened or read.
    #[error(transparent)]
    Registry(#[from] flywheel_registry::RegistryError),
    /// A model named to be served cannot be loaded.
    #[error("cannot serve `{reference}`: {message}")]
    Load { reference: String, message: String },
    /// Nothing to serve.
    #[error("{0}")]
    NoModels(String),
    /// The address to listen on is not one.
    #[error("--addr `{addr}`: {message}")]
    Address { addr: String, message: String },
    /// The address cannot be listened on (taken, not this machine's).
    #[error("cannot listen on {addr}: {message}")]
    Bind { addr: String, message: String },
    /// A request names a model or version that is not served.
    #[error("{0}")]
    NotFound(String),
    /// The model is served but no version of it is loaded to answer.
    #[error("{0}")]
    Unavailable(String),
    /// A request the server cannot read (malformed, wrong shape or type,
    /// missing or extra input), with the field it is about.
    #[error("{0}")]
    BadRequest(String),
    /// A body type the endpoint does not take.
    #[error("{0}")]
    Unsupported(String),
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// Too many requests in flight: try again shortly.
    #[error("the server is answering {0} requests already: try again in a second")]
    Overloaded(usize),
    #[error("the request took longer than {0:?} and was cut off")]
    TimedOut(std::time::Duration),
    /// The client did not send its whole body within the request timeout.
    #[error("the request body did not arrive within {0:?}: send it whole, or not at all")]
    BodyTimedOut(std::time::Duration),
    /// A state-changing endpoint called without the configured token.
    #[error("{0}")]
    Unauthorized(String),
    /// A `--log-sample` value that is not a rate.
    #[error("{0}")]
    LogSample(String),
    /// The model failed on well-formed input: the server's fault.
    #[error("{0}")]
    Internal(String),
}

impl ServeError {
    /// The HTTP status a refused request gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::NotFound(_) => StatusCode::NOT_FOUND,
            ServeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServeError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ServeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::LogSample(_) => StatusCode::BAD_REQUEST,
            ServeError::Unavailable(_) | ServeError::Overloaded(_) | ServeError::TimedOut(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ServeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServeError::BodyTimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            ServeError::Registry(_)
            | ServeError::Load { .. }
            | ServeError::NoModels(_)
            | ServeError::Address { .. }
            | ServeError::Bind { .. }
            | ServeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

pub type Result<T> = std::result::Result<T, ServeError>;

/// The largest request body taken (413 beyond).
pub const BODY_LIMIT: usize = 64 << 20;

/// The most rows reserved ahead of reading them: a request's declared
/// shape is only a claim, and must not size an allocation by itself.
pub(crate) const RESERVE: usize = 1 << 16;

/// A refused request, the message naming the field.
pub(crate) fn bad(message: String) -> ServeError {
    ServeError::BadRequest(message)
}

/// Serves `serve` until SIGTERM or Ctrl-C, following the registry as it
/// goes; `ready` is told the address actually bound (port 0 picks a free
/// one) once the server accepts.
pub async fn run(serve: Serve, ready: impl FnOnce(std::net::SocketAddr)) -> Result<()> {
    run_until(serve, ready, shutdown_signal()).await
}

/// [`run`] until `shutdown` resolves, for a process that hosts the server
/// beside other work (`flywheel up`) and decides itself when to stop.
pub async fn run_until(
    serve: Serve,
    ready: impl FnOnce(std::net::SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let bind_err = |e: std::io::Error| ServeError::Bind { addr: serve.addr.clone(), message: e.to_string() };
    let listener = tokio::net::TcpListener::bind(&serve.addr).await.map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    let log = match (&serve.home, &serve.log) {
        (Some(home), Some(options)) => PredictionLog::start(home.root.clone(), home.metadata.clone(), options.clone())?,
        _ => PredictionLog::disabled(),
    };
    let app = AppState::with(serve.table, serve.metrics, serve.limits, serve.token);
    let app = Arc::new(app.with_log(log).with_home(serve.home.clone()));
    let following = match serve.follower {
        Some(f) => Some(
            f.start(serve.poll, app.wake.clone())
                .map_err(|e| ServeError::Internal(format!("cannot start following the registry: {e}")))?,
        ),
        None => None,
    };
    let quiet = serve.memory_hook.map(|hook| tokio::spawn(quiet::watch(app.metrics.clone(), hook)));
    ready(local);
    let served = front::serve(listener, app.clone(), shutdown).await;
    if let Some(q) = quiet {
        q.abort();
    }
    if let Some(f) = following {
        let _ = tokio::task::spawn_blocking(move || f.stop()).await;
    }
    // Requests have finished: what they queued is written before exiting.
    let closing = app.clone();
    let _ = tokio::task::spawn_blocking(move || closing.log.close()).await;
    served
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
