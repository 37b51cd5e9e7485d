//! The HTTP surface: routes, reading bodies under a size limit, finding the
//! model a request names, running the prediction, and turning every refusal
//! into a JSON `{"error": "..."}` with a 4xx status.

use crate::log::{Entry, now_us};
use crate::state::AppState;
use crate::table::{ModelTable, Served};
use crate::{Result, ServeError, feedback, mlflow, oip};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flywheel_ml::{Frame, MlError, Prediction};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The largest request body taken (413 beyond).
pub const BODY_LIMIT: usize = 64 << 20;
/// Says which version answered: `NAME@VERSION`.
pub const VERSION_HEADER: &str = "x-flywheel-model-version";
/// Names the model `/invocations` is for when several are served (or `?model=`).
pub const MODEL_HEADER: &str = "x-flywheel-model";
/// The request's id (the caller's, or one made up), to send feedback for it.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
const BINARY_HEADER: &str = "inference-header-content-length";
/// Requests with more rows than this predict on a blocking thread, so one
/// big batch does not hold up the small requests sharing its worker.
const INLINE_ROWS: usize = 256;

type App = State<Arc<AppState>>;

/// Every route, answering from `app`'s models.
pub fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/v2", get(|| async { json(StatusCode::OK, &oip::server_metadata()) }))
        .route("/v2/health/live", get(|| async { StatusCode::OK }))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2/models/{name}", get(metadata))
        .route("/v2/models/{name}/versions/{version}", get(metadata_v))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/versions/{version}/ready", get(model_ready_v))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_v))
        .route("/invocations", post(invocations))
        .route("/ping", get(server_ready))
        .route("/health", get(server_ready))
        .merge(feedback::routes())
        .fallback(|| async { ServeError::NotFound("no such endpoint: see /v2 and /invocations".into()) })
        .method_not_allowed_fallback(|| async {
            (StatusCode::METHOD_NOT_ALLOWED, error_body("method not allowed on this endpoint"))
        })
        .with_state(app)
}

/// Serves `app` on `listener` until `shutdown` resolves; requests in
/// flight then finish before this returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ServeError::Internal(format!("server stopped: {e}")))
}

async fn server_ready(State(app): App) -> StatusCode {
    if app.table.names().is_empty() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
}

async fn metadata(State(app): App, Path(name): Path<String>) -> Result<Response> {
    let served = find(&app.table, &name, None)?;
    Ok(versioned(json(StatusCode::OK, &oip::model_metadata(&served)), &served))
}

async fn metadata_v(State(app): App, Path((name, v)): Path<(String, String)>) -> Result<Response> {
    let served = find(&app.table, &name, Some(&v))?;
    Ok(versioned(json(StatusCode::OK, &oip::model_metadata(&served)), &served))
}

async fn model_ready(State(app): App, Path(name): Path<String>) -> Result<StatusCode> {
    find(&app.table, &name, None).map(|_| StatusCode::OK)
}

async fn model_ready_v(State(app): App, Path((name, v)): Path<(String, String)>) -> Result<StatusCode> {
    find(&app.table, &name, Some(&v)).map(|_| StatusCode::OK)
}

async fn infer(State(app): App, Path(name): Path<String>, headers: HeaderMap, body: Body) -> Result<Response> {
    let served = find(&app.table, &name, None)?;
    infer_with(&app, served, &headers, body).await
}

async fn infer_v(
    State(app): App,
    Path((name, v)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let served = find(&app.table, &name, Some(&v))?;
    infer_with(&app, served, &headers, body).await
}

/// `POST .../infer`: JSON, or a JSON header and binary tensors.
async fn infer_with(app: &AppState, served: Arc<Served>, headers: &HeaderMap, body: Body) -> Result<Response> {
    let started = Instant::now();
    let body = read_body(headers, body).await?;
    let (head, data) = match header_str(headers, BINARY_HEADER)? {
        Some(n) => crate::binary::split(&body, n)?,
        None => (&body[..], &[][..]),
    };
    let oip::Infer { id, frame, outputs } = oip::parse_infer(&served, head, data)?;
    let id = match id {
        Some(id) if !id.is_empty() => id,
        _ => request_id(headers)?,
    };
    let (pred, frame) = predict(&served, frame).await?;
    let encoded = oip::answer(&served, &outputs, &id, &pred);
    let mut response = Response::new(Body::from(encoded.body));
    let h = response.headers_mut();
    match encoded.header_len {
        Some(n) => {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            h.insert(BINARY_HEADER, HeaderValue::from(n));
        }
        None => {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
    }
    with_id(&mut response, &id);
    log_prediction(app, &served, id, frame, pred, started);
    Ok(versioned(response, &served))
}

/// `POST /invocations`, MLflow's scoring format.
async fn invocations(State(app): App, RawQuery(query): RawQuery, headers: HeaderMap, body: Body) -> Result<Response> {
    let started = Instant::now();
    let served = invocation_model(&app.table, query.as_deref(), &headers)?;
    let id = request_id(&headers)?;
    let body = read_body(&headers, body).await?;
    let frame = mlflow::parse(&served, header_str(&headers, header::CONTENT_TYPE.as_str())?, &body)?;
    let (pred, frame) = predict(&served, frame).await?;
    let mut response = json(StatusCode::OK, &mlflow::answer(&served, &pred));
    with_id(&mut response, &id);
    log_prediction(&app, &served, id, frame, pred, started);
    Ok(versioned(response, &served))
}

/// The caller's `x-request-id`, or a new id.
fn request_id(headers: &HeaderMap) -> Result<String> {
    match header_str(headers, REQUEST_ID_HEADER)? {
        Some(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => Ok(new_id()),
    }
}

fn with_id(response: &mut Response, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
}

/// Hands a sampled request to the prediction log (never waits, never fails).
fn log_prediction(app: &AppState, served: &Arc<Served>, id: String, frame: Frame, pred: Prediction, started: Instant) {
    if !app.log.sampled(&served.name, &id) {
        return;
    }
    let latency_us = started.elapsed().as_micros() as i64;
    app.log.record(Entry {
        request_id: id,
        at_us: now_us() - latency_us,
        served: served.clone(),
        frame,
        prediction: pred,
        latency_us,
    });
}

/// The model `/invocations` is for: `?model=NAME`, the `x-flywheel-model`
/// header, or the only one served.
fn invocation_model(table: &ModelTable, query: Option<&str>, headers: &HeaderMap) -> Result<Arc<Served>> {
    let from_query = query.into_iter().flat_map(|q| q.split('&')).find_map(|kv| kv.strip_prefix("model="));
    match from_query.or(header_str(headers, MODEL_HEADER)?) {
        Some(name) => find(table, name, None),
        None => table.sole().ok_or_else(|| {
            ServeError::BadRequest(format!(
                "several models are served ({}): name one with ?model=NAME or the {MODEL_HEADER} header",
                table.names().join(", ")
            ))
        }),
    }
}

/// The model a request names, or a 404 naming the models served.
fn find(table: &ModelTable, name: &str, version: Option<&str>) -> Result<Arc<Served>> {
    let Some(served) = table.get(name) else {
        return Err(ServeError::NotFound(format!(
            "model `{name}` is not served; served: {}",
            table.all().iter().map(|s| s.label()).collect::<Vec<_>>().join(", ")
        )));
    };
    match version {
        Some(v) if v != served.version.to_string() => Err(ServeError::NotFound(format!(
            "model `{name}` has no version `{v}` served; it serves version {}",
            served.version
        ))),
        _ => Ok(served),
    }
}

/// Runs the model, giving the frame back (for the log); a refusal of the
/// data (a non-finite number, say) is the caller's, anything else the server's.
async fn predict(served: &Arc<Served>, frame: Frame) -> Result<(Prediction, Frame)> {
    if frame.rows() == 0 {
        return Err(ServeError::BadRequest("the request has no rows to predict".into()));
    }
    let (result, frame) = if frame.rows() <= INLINE_ROWS {
        (served.model.predict(&frame), frame)
    } else {
        let served = served.clone();
        tokio::task::spawn_blocking(move || (served.model.predict(&frame), frame))
            .await
            .map_err(|e| ServeError::Internal(format!("prediction failed: {e}")))?
    };
    let pred = result.map_err(|e| match e {
        MlError::Data(m) => ServeError::BadRequest(m),
        other => ServeError::Internal(format!("model `{}` failed: {other}", served.label())),
    })?;
    Ok((pred, frame))
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes> {
    let declared = header_str(headers, header::CONTENT_LENGTH.as_str())?.and_then(|n| n.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return Err(ServeError::TooLarge { limit: BODY_LIMIT });
    }
    axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|e| {
        if e.to_string().contains("length limit") {
            ServeError::TooLarge { limit: BODY_LIMIT }
        } else {
            ServeError::BadRequest(format!("cannot read the request body: {e}"))
        }
    })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>> {
    headers
        .get(name)
        .map(|v| v.to_str().map_err(|_| ServeError::BadRequest(format!("header {name}: not ASCII text"))))
        .transpose()
}

/// A request id for a request that gave none: the process's start time
/// (µs) and pid, then a counter, so ids stay unique across restarts (the
/// log joins feedback by them).
fn new_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let start = START.get_or_init(|| format!("{:x}-{:x}", now_us(), std::process::id()));
    format!("{start}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn versioned(mut response: Response, served: &Served) -> Response {
    if let Ok(v) = HeaderValue::from_str(&served.label()) {
        response.headers_mut().insert(VERSION_HEADER, v);
    }
    response
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_body(message: &str) -> Response {
    json(StatusCode::OK, &serde_json::json!({ "error": message }))
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!("{self}");
        }
        let mut response = error_body(&self.to_string());
        *response.status_mut() = status;
        response
    }
}
