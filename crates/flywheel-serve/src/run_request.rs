//! `POST /v2/deployments/{name}/trigger`: a run of a deployment asked for
//! over HTTP, as `flywheel trigger` asks for it. The request is recorded in
//! the home; `flywheel up`'s `on_demand` trigger starts the run (and says,
//! in its output, when a deployment declares none). State-changing: behind
//! the token when one is configured. Answers 202 with the request's id.

use crate::state::AppState;
use crate::{Result, ServeError, bad};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::Arc;

/// The largest body taken: a reason.
const BODY_LIMIT: usize = 16 << 10;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v2/deployments/{name}/trigger", post(trigger))
}

async fn trigger(State(app): State<Arc<AppState>>, Path(name): Path<String>, body: Body) -> Result<Response> {
    let home = app.home.as_ref().ok_or_else(|| ServeError::NotFound("this server has no home".into()))?;
    let recorded = home.metadata.deployments().map_err(|e| ServeError::Registry(e.into()))?;
    if !recorded.iter().any(|d| d.name == name) {
        let names: Vec<&str> = recorded.iter().map(|d| d.name.as_str()).collect();
        return Err(ServeError::NotFound(format!(
            "no deployment `{name}`{}; recorded: {}",
            flywheel_core::did_you_mean(&name, names.iter().copied()),
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        )));
    }
    let body = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| ServeError::TooLarge { limit: BODY_LIMIT })?;
    let reason = reason(&body)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let at = i64::try_from(now.as_micros()).unwrap_or(i64::MAX);
    let id = home.metadata.request_run(&name, &reason, "http", at).map_err(|e| ServeError::Registry(e.into()))?;
    let answer = json!({ "request": id, "deployment": name, "reason": reason });
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_TYPE, "application/json")], answer.to_string()).into_response())
}

/// `{"reason": "…"}`, or no body at all.
fn reason(body: &[u8]) -> Result<String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok("asked for over HTTP".into());
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    match v.get("reason") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(other) => Err(bad(format!("`reason` must be a non-empty string, found {other}"))),
        None if v.is_object() => Ok("asked for over HTTP".into()),
        None => Err(bad("the body must be a JSON object, as {\"reason\": \"…\"}".into())),
    }
}
