//! The HTTP headers Flywheel's server reads and writes beyond the
//! protocols', and the query parameter that names a model. Names are
//! `HeaderName`s made at compile time: inserting one given as text would
//! allocate it again for every response.

use axum::http::HeaderName;

/// Says which version answered: `NAME@VERSION`.
pub const VERSION_HEADER: HeaderName = HeaderName::from_static("x-flywheel-model-version");
/// Says which arm of the model's split answered: `NAME@ALIAS` or `NAME@VERSION`.
pub const ARM_HEADER: HeaderName = HeaderName::from_static("x-flywheel-arm");
/// Names the model `/invocations` is for when several are served (or `?model=`).
pub const MODEL_HEADER: HeaderName = HeaderName::from_static("x-flywheel-model");
/// The request header whose value keeps a caller on one arm of a split.
pub const KEY_HEADER: HeaderName = HeaderName::from_static("x-flywheel-key");
/// The request's id (the caller's, or one made up), to send feedback for it.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The model `?model=NAME` names in a query string, if it does.
pub fn model_in_query(query: Option<&str>) -> Option<&str> {
    query.into_iter().flat_map(|q| q.split('&')).find_map(|kv| kv.strip_prefix("model="))
}
