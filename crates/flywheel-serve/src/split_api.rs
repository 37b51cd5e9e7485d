//! `GET` and `PUT /v2/models/{name}/split`: a model's traffic split read
//! and changed while serving. The new split's versions are loaded (or kept
//! from the current route) before it is put in place, whole, so it answers
//! from the moment it is; a reference that cannot be served, or a split
//! that would answer nothing, is refused and nothing changes.

use crate::follow::load_version;
use crate::route::{Route, Split};
use crate::state::AppState;
use crate::{Result, ServeError, bad};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use flywheel_core::{ModelRef, Selector};
use flywheel_registry::{Home, RegistryError};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The route of a model as JSON: each arm's reference, weight and the
/// version loaded for it (`null` while none is).
pub fn route_json(route: &Route) -> Value {
    let arm = |a: &crate::route::Arm| json!({ "reference": a.reference.to_string(), "weight": a.weight, "version": a.served.as_ref().map(|s| s.version) });
    json!({
        "model": route.split.name,
        "arms": route.arms.iter().map(arm).collect::<Vec<_>>(),
        "shadow": route.shadow.as_ref().map(|a| { let mut v = arm(a); v.as_object_mut().map(|o| o.remove("weight")); v }),
    })
}

pub(crate) async fn get_split(State(app): State<Arc<AppState>>, Path(name): Path<String>) -> Result<Response> {
    let route = served_route(&app, &name)?;
    Ok(reply(&route))
}

/// The largest split body taken.
const BODY_LIMIT: usize = 64 << 10;

pub(crate) async fn put_split(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> Result<Response> {
    let current = served_route(&app, &name)?;
    let body = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| ServeError::TooLarge { limit: BODY_LIMIT })?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let split = parse(&name, &v)?;
    let route = match &app.home {
        Some(home) => prepared(home, &current, split).await?,
        None => current.with_split(split),
    };
    app.table.install(route);
    app.wake.notify_one();
    let installed = served_route(&app, &name)?;
    Ok(reply(&installed))
}

/// The route for `split` with the version of every reference loaded (or
/// taken from the current route), so that it answers from the moment it is
/// installed; refused, naming the field, when a reference cannot be served
/// or no weighted arm would answer. An alias that points nowhere yet is
/// taken: its arm answers once it does.
async fn prepared(home: &Home, current: &Route, split: Split) -> Result<Route> {
    let mut route = current.with_split(split);
    let mut pool = current.versions();
    for arm in route.arms.iter_mut().chain(route.shadow.as_mut()) {
        let field = match &arm.reference.selector {
            s if Some(s) == route.split.shadow.as_ref() => "shadow".to_string(),
            Selector::Alias(a) => format!("split.{a}"),
            Selector::Version(v) => format!("split.{v}"),
            Selector::Latest => "split".to_string(),
        };
        let version = match home.resolve(&arm.reference) {
            Ok(resolved) => resolved.version.version,
            Err(RegistryError::NoAlias { .. }) => continue,
            Err(e) => return Err(bad(format!("`{field}`: {e}"))),
        };
        let served = match pool.iter().find(|s| s.version == version) {
            Some(s) => s.clone(),
            None => {
                let loaded = load_version(home, &arm.reference, version).await;
                let loaded =
                    loaded.map_err(|why| bad(format!("`{field}`: version {version} cannot be served: {why}")))?;
                pool.push(Arc::new(loaded));
                pool[pool.len() - 1].clone()
            }
        };
        arm.served = Some(served);
    }
    if let Some(why) = route.every_arm().find_map(|a| route.input_conflict(&a.reference, a.served.as_deref()?)) {
        return Err(bad(format!("`split`: {why}")));
    }
    if route.pick(None, 0).is_none() {
        return Err(bad(format!(
            "`split`: no weighted reference of {} points at a version, so nothing would answer",
            route.split
        )));
    }
    Ok(route)
}

fn reply(route: &Route) -> Response {
    let body = serde_json::to_vec(&route_json(route)).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn served_route(app: &AppState, name: &str) -> Result<Arc<Route>> {
    app.table.route(name).ok_or_else(|| {
        ServeError::NotFound(format!(
            "model `{name}` is not served; served: {} (a model is added by restarting with it)",
            app.table.names().join(", ")
        ))
    })
}

/// `{"split": {"production": 90, "canary": 10}, "shadow": "challenger"}`:
/// aliases or version numbers, the heaviest arm first.
fn parse(name: &str, v: &Value) -> Result<Split> {
    let Some(body) = v.as_object() else {
        return Err(bad(r#"the body must be an object, as {"split": {"production": 90, "canary": 10}}"#.into()));
    };
    if let Some(k) = body.keys().find(|k| !["split", "shadow"].contains(&k.as_str())) {
        return Err(bad(format!("unknown field `{k}`: the fields are `split` and `shadow`")));
    }
    let arms = match body.get("split") {
        Some(Value::Object(arms)) if !arms.is_empty() => weighted(name, arms)?,
        _ => {
            return Err(bad(
                r#"`split`: an object of references and weights, as {"production": 90, "canary": 10}"#.into()
            ));
        }
    };
    let shadow = match body.get("shadow") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(selector(name, "shadow", s)?),
        Some(_) => return Err(bad("`shadow`: an alias or a version number, or null".into())),
    };
    let split = Split { name: name.to_string(), arms, shadow };
    match split.problem() {
        Some(p) => Err(bad(format!("`split`: {p}"))),
        None => Ok(split),
    }
}

fn weighted(name: &str, arms: &Map<String, Value>) -> Result<Vec<(Selector, u32)>> {
    let mut out = Vec::with_capacity(arms.len());
    for (k, w) in arms {
        let field = format!("split.{k}");
        let w = w.as_u64().and_then(|w| u32::try_from(w).ok());
        let Some(w) = w else { return Err(bad(format!("`{field}`: the weight must be a whole number from 0"))) };
        out.push((selector(name, &field, k)?, w));
    }
    out.sort_by_key(|(_, w)| std::cmp::Reverse(*w));
    Ok(out)
}

fn selector(name: &str, field: &str, s: &str) -> Result<Selector> {
    match ModelRef::parse(&format!("{name}@{s}")) {
        Ok(r) => Ok(r.selector),
        Err(e) => Err(bad(format!("`{field}`: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_is_read_heaviest_arm_first_and_every_mistake_names_its_field() {
        let s = parse("m", &json!({ "split": { "canary": 10, "production": 90, "3": 0 }, "shadow": "next" })).unwrap();
        assert_eq!(s.to_string(), "m@production:90 m@canary:10 m@3:0 m@next:shadow");
        for (body, words) in [
            (json!([1]), "must be an object"),
            (json!({ "split": {} }), "`split`: an object"),
            (json!({ "split": { "p": -1 } }), "`split.p`: the weight"),
            (json!({ "split": { "p": 1.5 } }), "`split.p`: the weight"),
            (json!({ "split": { "bad name!": 1 } }), "`split.bad name!`"),
            (json!({ "split": { "p": 0 } }), "weight above 0"),
            (json!({ "split": { "p": 1 }, "shadow": "p" }), "twice"),
            (json!({ "split": { "p": 1 }, "shadow": 3 }), "`shadow`"),
            (json!({ "split": { "p": 1 }, "shadw": "x" }), "unknown field `shadw`"),
        ] {
            let e = parse("m", &body).unwrap_err().to_string();
            assert!(e.contains(words), "{body}: {e}");
        }
    }
}
