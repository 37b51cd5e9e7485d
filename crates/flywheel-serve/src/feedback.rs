//! `POST /feedback`: ground-truth labels for logged requests, by request
//! id. One (`{"id", "label"}`, with `row` for a row other than the first,
//! or `labels` for every row of the request) or many (`{"feedback": [...]}`).
//! A malformed body or a label that does not fit the model's target is a
//! 400 naming the field; an id never logged is a 404 alone, and in a batch
//! the known ids are taken and the unknown ones listed in the answer.

use crate::state::AppState;
use crate::{Result, ServeError, bad};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use flywheel_metadata::{Feedback, Label, LoggedRequest, TargetKind};
use serde_json::{Value, json};
use std::sync::Arc;

/// The feedback route, merged into the server's router.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/feedback", post(feedback))
}

/// One item of a body, as read (before its id is looked up).
struct Item {
    /// Where it is in the body (`feedback[2].`), for errors.
    at: String,
    id: String,
    labels: Labels,
}

enum Labels {
    /// One label, for the row `row`.
    One { row: i64, label: Value },
    /// One label per row of the request.
    Each(Vec<Value>),
}

/// The largest feedback body taken (413 beyond, as JSON like every refusal).
const FEEDBACK_LIMIT: usize = 16 << 20;

async fn feedback(State(app): State<Arc<AppState>>, body: Body) -> Result<Response> {
    if !app.log.is_enabled() {
        return Err(ServeError::NotFound("the prediction log is off (--no-log): no feedback is taken".into()));
    }
    let body = axum::body::to_bytes(body, FEEDBACK_LIMIT).await.map_err(|e| {
        if e.to_string().contains("length limit") {
            ServeError::TooLarge { limit: FEEDBACK_LIMIT }
        } else {
            bad(format!("cannot read the request body: {e}"))
        }
    })?;
    let body: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let (items, single) = parse(&body)?;
    let answer = tokio::task::spawn_blocking(move || take(&app, items, single))
        .await
        .map_err(|e| ServeError::Internal(format!("feedback failed: {e}")))??;
    let bytes = serde_json::to_vec(&answer).unwrap_or_default();
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// The items of a body, and whether it was a single one.
fn parse(body: &Value) -> Result<(Vec<Item>, bool)> {
    let Value::Object(map) = body else {
        return Err(bad(
            "the body must be a JSON object: {\"id\": ..., \"label\": ...} or {\"feedback\": [...]}".into()
        ));
    };
    match map.get("feedback") {
        Some(Value::Array(list)) => {
            let items =
                list.iter().enumerate().map(|(i, v)| item(v, format!("feedback[{i}]."))).collect::<Result<_>>()?;
            Ok((items, false))
        }
        Some(_) => Err(bad("`feedback` must be a list of {\"id\": ..., \"label\": ...}".into())),
        None => Ok((vec![item(body, String::new())?], true)),
    }
}

fn item(v: &Value, at: String) -> Result<Item> {
    let Value::Object(map) = v else {
        return Err(bad(format!("`{}` must be an object with `id` and `label`", at.trim_end_matches('.'))));
    };
    if let Some(k) = map.keys().find(|k| !["id", "label", "labels", "row"].contains(&k.as_str())) {
        return Err(bad(format!("`{at}{k}`: unknown field; an item has `id`, `label` (with `row`) or `labels`")));
    }
    let id = match map.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(bad(format!("`{at}id` must be the request id, a non-empty string"))),
        None => return Err(bad(format!("`{at}id` is missing: the id of the request the label is for"))),
    };
    let row = match map.get("row") {
        None => 0,
        Some(r) => {
            r.as_i64().filter(|&r| r >= 0).ok_or_else(|| bad(format!("`{at}row` must be a row index, 0 or more")))?
        }
    };
    let labels = match (map.get("label"), map.get("labels")) {
        (Some(label), None) => Labels::One { row, label: label.clone() },
        (None, Some(Value::Array(all))) if map.get("row").is_none() => Labels::Each(all.clone()),
        (None, Some(Value::Array(_))) => return Err(bad(format!("`{at}row` goes with `label`, not `labels`"))),
        (None, Some(_)) => return Err(bad(format!("`{at}labels` must be a list, one label per row"))),
        (Some(_), Some(_)) => return Err(bad(format!("`{at}label` and `{at}labels`: give one of them"))),
        (None, None) => return Err(bad(format!("`{at}label` is missing: the true value for the request"))),
    };
    Ok(Item { at, id, labels })
}

/// Looks the ids up and records the labels of the known ones.
fn take(app: &AppState, items: Vec<Item>, single: bool) -> Result<Value> {
    let now = crate::log::now_us();
    let mut records = Vec::new();
    let mut unknown = Vec::new();
    let mut accepted = 0;
    for it in items {
        let Some(request) = app.log.lookup(&it.id)? else {
            if single {
                return Err(ServeError::NotFound(format!("`id`: no logged request has the id `{}`", it.id)));
            }
            unknown.push(it.id);
            continue;
        };
        records.extend(labels_of(&it, &request, now)?);
        accepted += 1;
    }
    if !records.is_empty() {
        app.log.record_feedback(&records)?;
    }
    Ok(json!({ "accepted": accepted, "labels": records.len(), "unknown": unknown }))
}

fn labels_of(it: &Item, request: &LoggedRequest, at_us: i64) -> Result<Vec<Feedback>> {
    let one = |row: i64, v: &Value, field: String| -> Result<Feedback> {
        Ok(Feedback {
            request_id: it.id.clone(),
            row,
            model_name: request.model_name.clone(),
            label: label(v, request.target, &field, &request.model_name)?,
            at_us,
            request_at_us: request.at_us,
        })
    };
    match &it.labels {
        Labels::One { row, label } => {
            if *row >= request.rows {
                return Err(bad(format!(
                    "`{}row`: {row} is past the request's last row (it had {} row(s))",
                    it.at, request.rows
                )));
            }
            Ok(vec![one(*row, label, format!("{}label", it.at))?])
        }
        Labels::Each(all) => {
            if all.len() as i64 != request.rows {
                return Err(bad(format!(
                    "`{}labels`: {} label(s) for a request of {} row(s); give one per row",
                    it.at,
                    all.len(),
                    request.rows
                )));
            }
            all.iter().enumerate().map(|(i, v)| one(i as i64, v, format!("{}labels[{i}]", it.at))).collect()
        }
    }
}

/// A label that fits the target: a number for a regressor; a class (text,
/// or a number or boolean written as text) for a classifier.
fn label(v: &Value, target: TargetKind, field: &str, model: &str) -> Result<Label> {
    match (target, v) {
        (TargetKind::Number, Value::Number(n)) => Ok(Label::Number(n.as_f64().unwrap_or(f64::NAN))),
        (TargetKind::Number, other) => {
            Err(bad(format!("`{field}`: model `{model}` predicts a number, got {}", crate::columns::describe(other))))
        }
        (TargetKind::Text, Value::String(s)) => Ok(Label::Text(s.clone())),
        (TargetKind::Text, Value::Number(n)) => Ok(Label::Text(n.to_string())),
        (TargetKind::Text, Value::Bool(b)) => Ok(Label::Text(b.to_string())),
        (TargetKind::Text, other) => Err(bad(format!(
            "`{field}`: model `{model}` predicts a class, a string; got {}",
            crate::columns::describe(other)
        ))),
    }
}
