//! The HTTP surface: routes, reading bodies under a size limit, finding the
//! model a request names, running the prediction, and turning every refusal
//! into a JSON `{"error": "..."}` with a 4xx status.

use crate::batch::Batch;
use crate::headers::{
    ARM_HEADER, Asked, BINARY_HEADER, MODEL_HEADER, REQUEST_ID_HEADER, VERSION_HEADER, model_in_query,
};
use crate::log::{Entry, now_us};
use crate::served::Served;
use crate::state::AppState;
use crate::table::{ModelTable, Picked, Unanswered};
use crate::{BODY_LIMIT, Result, ServeError, feedback, mlflow, oip, ops, run_request, split_api};
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use flywheel_core::ModelRef;
use flywheel_ml::{MlError, Prediction};
use std::sync::Arc;
use std::time::Instant;

/// Requests with more rows than this predict on a blocking thread, so one
/// big batch does not hold up the small requests sharing its worker.
const INLINE_ROWS: usize = 256;

type App = State<Arc<AppState>>;

/// Every route, answering from `app`'s models.
pub fn router(app: Arc<AppState>) -> Router {
    let predictions = Router::new()
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_v))
        .route("/invocations", post(invocations))
        .route_layer(from_fn_with_state(app.clone(), ops::guard));
    let split = get(split_api::get_split)
        .merge(put(split_api::put_split).route_layer(from_fn_with_state(app.clone(), ops::authorize)));
    Router::new()
        .route("/v2", get(|| async { json(StatusCode::OK, &oip::server_metadata()) }))
        .route("/v2/health/live", get(|| async { StatusCode::OK }))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2/repository/index", post(repository_index))
        .route("/v2/models/{name}", get(metadata))
        .route("/v2/models/{name}/versions/{version}", get(metadata_v))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/versions/{version}/ready", get(model_ready_v))
        .route("/v2/models/{name}/split", split)
        .merge(predictions)
        .route("/ping", get(server_ready))
        .route("/health", get(server_ready))
        .route("/metrics", get(metrics))
        .merge(feedback::routes().route_layer(from_fn_with_state(app.clone(), ops::authorize)))
        .merge(run_request::routes().route_layer(from_fn_with_state(app.clone(), ops::authorize)))
        .fallback(|| async { ServeError::NotFound("no such endpoint: see /v2 and /invocations".into()) })
        .method_not_allowed_fallback(|| async {
            (StatusCode::METHOD_NOT_ALLOWED, error_body("method not allowed on this endpoint"))
        })
        .with_state(app)
}

async fn metrics(State(app): App) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], app.render_metrics()).into_response()
}

async fn server_ready(State(app): App) -> StatusCode {
    if app.table.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

/// `POST /v2/repository/index` (Triton's model repository extension, what
/// tritonclient's `get_model_repository_index` calls): every reference the
/// server answers for, with the version loaded for it, `READY`, or
/// `UNAVAILABLE` and why. The body (Triton's `{"ready": bool}`) is ignored.
async fn repository_index(State(app): App) -> Response {
    let mut models = Vec::new();
    for route in app.table.routes() {
        for arm in route.every_arm() {
            models.push(match &arm.served {
                Some(s) => serde_json::json!({ "name": s.name, "version": s.version.to_string(), "state": "READY" }),
                None => serde_json::json!({
                    "name": route.split.name, "version": "", "state": "UNAVAILABLE",
                    "reason": format!("{} points at no version that loaded", arm.reference),
                }),
            });
        }
    }
    json(StatusCode::OK, &serde_json::Value::Array(models))
}

async fn metadata(State(app): App, Path(name): Path<String>) -> Result<Response> {
    let served = any_version(&app.table, &name)?;
    Ok(metadata_of(&app.table, &served))
}

async fn metadata_v(State(app): App, Path((name, v)): Path<(String, String)>) -> Result<Response> {
    let served = find_version(&app.table, &name, &v)?;
    Ok(metadata_of(&app.table, &served))
}

fn metadata_of(table: &ModelTable, served: &Served) -> Response {
    let versions: Vec<i64> =
        table.route(&served.name).map(|r| r.versions().iter().map(|s| s.version).collect()).unwrap_or_default();
    versioned(json(StatusCode::OK, &oip::model_metadata(served, &versions)), served)
}

async fn model_ready(State(app): App, Path(name): Path<String>) -> Result<StatusCode> {
    any_version(&app.table, &name).map(|_| StatusCode::OK)
}

async fn model_ready_v(State(app): App, Path((name, v)): Path<(String, String)>) -> Result<StatusCode> {
    find_version(&app.table, &name, &v).map(|_| StatusCode::OK)
}

// Handlers take the request whole: the `HeaderMap` extractor would copy
// the headers of every request.
async fn infer(State(app): App, Path(name): Path<String>, request: Request) -> Result<Response> {
    let (parts, body) = request.into_parts();
    infer_named(&app, &name, &Asked::of(&parts.headers), body).await
}

async fn infer_v(State(app): App, Path((name, v)): Path<(String, String)>, request: Request) -> Result<Response> {
    let (parts, body) = request.into_parts();
    infer_version(&app, &name, &v, &Asked::of(&parts.headers), body).await
}

/// `POST /v2/models/{name}/infer`: the version `name`'s split picks.
pub(crate) async fn infer_named(app: &Arc<AppState>, name: &str, asked: &Asked<'_>, body: impl In) -> Result<Response> {
    let picked = pick(&app.table, name, asked)?;
    infer_with(app, picked, asked, body).await
}

/// `POST /v2/models/{name}/versions/{v}/infer`: that version, when served.
pub(crate) async fn infer_version(
    app: &Arc<AppState>,
    name: &str,
    v: &str,
    asked: &Asked<'_>,
    body: impl In,
) -> Result<Response> {
    let served = find_version(&app.table, name, v)?;
    let arm = ModelRef { name: name.to_string(), selector: flywheel_core::Selector::Version(served.version) };
    let arm_header = HeaderValue::try_from(arm.to_string()).ok();
    let picked = Picked { served, arm: Arc::new(arm), arm_header, shadow: None };
    infer_with(app, picked, asked, body).await
}

/// `POST .../infer`: JSON, or a JSON header and binary tensors.
async fn infer_with(app: &Arc<AppState>, picked: Picked, asked: &Asked<'_>, body: impl In) -> Result<Response> {
    let served = picked.served.clone();
    let started = Instant::now();
    let body = read_body(app, asked, body).await?;
    let (head, data) = match header_str(asked.binary, &BINARY_HEADER)? {
        Some(n) => crate::binary::split(&body, n)?,
        None => (&body[..], &[][..]),
    };
    let oip::Infer { id, batch, outputs } = oip::parse_infer(&served, head, data)?;
    let id = match id {
        Some(id) if !id.is_empty() => id,
        _ => request_id(asked)?,
    };
    let (pred, batch) = answer(app, &picked, &id, batch).await?;
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
    let by = Answerer { served: &picked.served, arm: &picked.arm, shadow: false };
    log_prediction(app, by, &id, &batch, &pred, started);
    batch.recycle();
    with_id(&mut response, id);
    Ok(picked_by(response, &picked))
}

async fn invocations(State(app): App, request: Request) -> Result<Response> {
    let (parts, body) = request.into_parts();
    invocations_with(&app, &parts, &Asked::of(&parts.headers), body).await
}

/// `POST /invocations`, MLflow's scoring format.
pub(crate) async fn invocations_with(
    app: &Arc<AppState>,
    parts: &Parts,
    asked: &Asked<'_>,
    body: impl In,
) -> Result<Response> {
    let started = Instant::now();
    let picked = invocation_model(&app.table, parts.uri.query(), asked)?;
    let id = request_id(asked)?;
    let body = read_body(app, asked, body).await?;
    let batch = mlflow::parse(&picked.served, header_str(asked.content_type, &header::CONTENT_TYPE)?, &body)?;
    let (pred, batch) = answer(app, &picked, &id, batch).await?;
    let mut response = json_bytes(StatusCode::OK, mlflow::answer(&picked.served, &pred));
    let by = Answerer { served: &picked.served, arm: &picked.arm, shadow: false };
    log_prediction(app, by, &id, &batch, &pred, started);
    batch.recycle();
    with_id(&mut response, id);
    Ok(picked_by(response, &picked))
}

/// The caller's `x-request-id`, or a new id.
fn request_id(asked: &Asked) -> Result<String> {
    match header_str(asked.request_id, &REQUEST_ID_HEADER)? {
        Some(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => Ok(new_id()),
    }
}

/// Sets `x-request-id`, the id's own buffer becoming the header's.
fn with_id(response: &mut Response, id: String) {
    if let Ok(v) = HeaderValue::try_from(id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
}

/// Who made a logged prediction: the version, the arm of the split that
/// chose it, and whether it answered as the shadow.
struct Answerer<'a> {
    served: &'a Arc<Served>,
    arm: &'a ModelRef,
    shadow: bool,
}

/// Hands a sampled request to the prediction log (never waits, never fails).
fn log_prediction(app: &AppState, by: Answerer, id: &str, batch: &Batch, pred: &Prediction, started: Instant) {
    let served = by.served;
    if !app.log.sampled(&served.name, id) {
        return;
    }
    let latency_us = started.elapsed().as_micros() as i64;
    app.log.record(&Entry {
        request_id: id,
        arm: by.arm,
        shadow: by.shadow,
        at_us: now_us() - latency_us,
        served,
        batch,
        prediction: pred,
        latency_us,
    });
}

/// The model `/invocations` is for: `?model=NAME`, the `x-flywheel-model`
/// header, or the only one served.
fn invocation_model(table: &ModelTable, query: Option<&str>, asked: &Asked) -> Result<Picked> {
    if let Some(name) = model_in_query(query).or(header_str(asked.model, &MODEL_HEADER)?) {
        return pick(table, name, asked);
    }
    let route = table.sole().ok_or_else(|| {
        ServeError::BadRequest(format!(
            "several models are served ({}): name one with ?model=NAME or the {MODEL_HEADER} header",
            table.names().join(", ")
        ))
    })?;
    let key = asked.key.map(HeaderValue::as_bytes);
    table.pick_from(&route, key).map_err(|why| unanswered(table, &route.split.name, why))
}

/// The version that answers a request for `name`, by the model's split
/// (sticky by the request's `x-flywheel-key`); a 404 naming the models
/// served, or a 503 while none of its versions is loaded.
fn pick(table: &ModelTable, name: &str, asked: &Asked) -> Result<Picked> {
    let key = asked.key.map(HeaderValue::as_bytes);
    table.pick(name, key).map_err(|why| unanswered(table, name, why))
}

fn any_version(table: &ModelTable, name: &str) -> Result<Arc<Served>> {
    match table.get(name) {
        Some(served) => Ok(served),
        None if table.route(name).is_some() => Err(unanswered(table, name, Unanswered::NothingLoaded)),
        None => Err(unanswered(table, name, Unanswered::NotServed)),
    }
}

/// Version `v` of `name`, when an arm of its split has it loaded.
fn find_version(table: &ModelTable, name: &str, v: &str) -> Result<Arc<Served>> {
    any_version(table, name)?;
    let versions = table.route(name).map(|r| r.versions()).unwrap_or_default();
    let wanted = v.parse::<i64>().ok();
    match versions.iter().find(|s| Some(s.version) == wanted) {
        Some(served) => Ok(served.clone()),
        None => {
            let serves: Vec<String> = versions.iter().map(|s| s.version.to_string()).collect();
            Err(ServeError::NotFound(format!(
                "model `{name}` has no version `{v}` served; it serves version {}",
                serves.join(", ")
            )))
        }
    }
}

fn unanswered(table: &ModelTable, name: &str, why: Unanswered) -> ServeError {
    match why {
        Unanswered::NotServed => ServeError::NotFound(format!(
            "model `{name}` is not served; served: {}",
            table.all().iter().map(|s| s.label()).collect::<Vec<_>>().join(", ")
        )),
        Unanswered::NothingLoaded => ServeError::Unavailable(format!(
            "model `{name}` has no version loaded yet: none of {} points at a version that loaded",
            table.route(name).map(|r| r.split.to_string()).unwrap_or_default()
        )),
    }
}

/// Predicts with the picked version, then sends a copy to its shadow
/// (whose answer is logged under the same request id, never returned).
async fn answer(app: &Arc<AppState>, picked: &Picked, id: &str, batch: Batch) -> Result<(Prediction, Batch)> {
    let answered = predict(app, &picked.served, batch).await?;
    if let Some((arm, shadow)) = &picked.shadow {
        let (app, id, arm) = (app.clone(), id.to_string(), arm.clone());
        let started = Instant::now();
        let frame = answered.1.to_frame(&picked.served);
        app.clone().shadow.send(shadow.clone(), frame, move |served, frame, pred| {
            let by = Answerer { served: &served, arm: &arm, shadow: true };
            log_prediction(&app, by, &id, &Batch::Frame(frame), &pred, started);
        });
    }
    Ok(answered)
}

/// Runs the model, giving the rows back (for the log); a refusal of the
/// data (a non-finite number, say) is the caller's, anything else the server's.
async fn predict(app: &AppState, served: &Arc<Served>, batch: Batch) -> Result<(Prediction, Batch)> {
    let frame = match batch {
        Batch::Row(row) => match served.predict_row(&row) {
            Some(result) => return checked(served, result).map(|pred| (pred, Batch::Row(row))),
            // Not taken as a row (an infinity): the frame's refusal names it.
            None => Batch::Row(row).into_frame(served),
        },
        Batch::Frame(frame) => frame,
    };
    if frame.rows() == 0 {
        return Err(ServeError::BadRequest("the request has no rows to predict".into()));
    }
    let (result, frame) = if frame.rows() <= INLINE_ROWS {
        (served.predict(&frame), frame)
    } else {
        let (served, slot) = (served.clone(), ops::current_slot());
        // Cut off after the timeout, the prediction still runs to its end,
        // holding the request's slot (the permit moves with it).
        let running = tokio::task::spawn_blocking(move || {
            let _held = slot;
            (served.predict(&frame), frame)
        });
        let Some(done) = ops::within(app.limits.timeout, running).await else {
            app.metrics.timed_out.inc();
            return Err(ServeError::TimedOut(app.limits.timeout));
        };
        done.map_err(|e| ServeError::Internal(format!("prediction failed: {e}")))?
    };
    checked(served, result).map(|pred| (pred, Batch::Frame(frame)))
}

/// The model's answer as the caller gets it: its refusal of the data as
/// a bad request, and an answer that is not a finite number refused.
fn checked(served: &Served, result: std::result::Result<Prediction, MlError>) -> Result<Prediction> {
    let pred = result.map_err(|e| match e {
        MlError::Data(m) => ServeError::BadRequest(m),
        other => ServeError::Internal(format!("model `{}` failed: {other}", served.label())),
    })?;
    if let Some(row) = non_finite_row(&pred) {
        // JSON has no NaN or infinity: answering one as `null` would read as
        // a missing value, not as a model that could not answer.
        return Err(ServeError::BadRequest(format!(
            "row {row}: model `{}` predicts no finite number for it (inputs far outside the data it was trained on?)",
            served.label()
        )));
    }
    Ok(pred)
}

/// The first row whose prediction or probabilities are not finite numbers.
fn non_finite_row(pred: &Prediction) -> Option<usize> {
    match pred {
        Prediction::Values(v) => v.iter().position(|x| !x.is_finite()),
        Prediction::Classes { probabilities: p, .. } => {
            p.data.iter().position(|x| !x.is_finite()).map(|i| i / p.cols.max(1))
        }
    }
}

/// A request body as the prediction handlers take it: axum's, or hyper's
/// own from `front.rs`, which would box it to make it axum's.
pub(crate) trait In: HttpBody<Data = Bytes, Error: std::fmt::Display> + Unpin + Send {}

impl<B: HttpBody<Data = Bytes, Error: std::fmt::Display> + Unpin + Send> In for B {}

/// The whole body, refused beyond `BODY_LIMIT`, or with 408 when it has not
/// arrived within the request timeout.
async fn read_body(app: &AppState, asked: &Asked<'_>, mut body: impl In) -> Result<Bytes> {
    let declared = header_str(asked.content_length, &header::CONTENT_LENGTH)?.and_then(|n| n.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return Err(ServeError::TooLarge { limit: BODY_LIMIT });
    }
    let Some(read) = ops::within(app.limits.timeout, collect(&mut body, BODY_LIMIT)).await else {
        app.metrics.timed_out.inc();
        return Err(ServeError::BodyTimedOut(app.limits.timeout));
    };
    read
}

/// The body's bytes: the one frame a small body arrives in, as it is, or
/// the frames copied together; refused past `limit`. (`axum::body::to_bytes`
/// does the same through a limit, a collector and a list of buffers, a
/// fifth of a one-row request's handler.)
async fn collect(body: &mut impl In, limit: usize) -> Result<Bytes> {
    let (mut first, mut joined) = (None::<Bytes>, Vec::new());
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ServeError::BadRequest(format!("cannot read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        if first.as_ref().map_or(0, Bytes::len) + joined.len() + data.len() > limit {
            return Err(ServeError::TooLarge { limit });
        }
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            Some(earlier) => {
                joined.extend_from_slice(&earlier);
                joined.extend_from_slice(&data);
            }
            None => joined.extend_from_slice(&data),
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}

/// A header's value (of `name`) as text.
fn header_str<'a>(value: Option<&'a HeaderValue>, name: &HeaderName) -> Result<Option<&'a str>> {
    value.map(|v| v.to_str().map_err(|_| ServeError::BadRequest(format!("header {name}: not ASCII text")))).transpose()
}

/// A request id for a request that gave none: the process's start time
/// (µs) and pid, then a counter, so ids stay unique across restarts (the
/// log joins feedback by them). Of fixed width and in the order they were
/// made, so that the log's index keeps them by block, not one row each.
fn new_id() -> String {
    static IDS: std::sync::OnceLock<flywheel_metadata::RequestIds> = std::sync::OnceLock::new();
    IDS.get_or_init(|| flywheel_metadata::RequestIds::new(now_us(), std::process::id())).make()
}

fn picked_by(response: Response, picked: &Picked) -> Response {
    let mut response = versioned(response, &picked.served);
    if let Some(v) = picked.arm_header.clone() {
        response.headers_mut().insert(ARM_HEADER, v);
    }
    response
}

fn versioned(mut response: Response, served: &Served) -> Response {
    if let Some(v) = served.label_header() {
        response.headers_mut().insert(VERSION_HEADER, v);
    }
    response
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    json_bytes(status, serde_json::to_vec(v).unwrap_or_default())
}

fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    // Built whole: `(status, body).into_response()` would set a content
    // type to be replaced. A static header value: one given as text is
    // copied for every response.
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
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

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_ml::transform::Matrix;

    #[test]
    fn made_up_ids_are_of_the_form_the_log_index_keeps_by_block() {
        let ids: Vec<String> = (0..20).map(|_| new_id()).collect();
        assert!(ids.iter().all(|id| id.len() == 14 + 1 + 8 + 1 + 12), "{ids:?}");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }

    #[test]
    fn a_prediction_that_is_not_a_finite_number_is_found_by_its_row() {
        assert_eq!(non_finite_row(&Prediction::Values(vec![1.0, -2.5])), None);
        assert_eq!(non_finite_row(&Prediction::Values(vec![1.0, f64::INFINITY, f64::NAN])), Some(1));
        let probabilities = Matrix { rows: 3, cols: 2, data: vec![0.5, 0.5, 0.1, 0.9, f64::NAN, 1.0] };
        assert_eq!(non_finite_row(&Prediction::Classes { probabilities, labels: vec![0, 1, 1] }), Some(2));
    }
}
