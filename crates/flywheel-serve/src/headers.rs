//! The HTTP headers Flywheel's server reads and writes beyond the
//! protocols', and the query parameter that names a model.

/// Says which version answered: `NAME@VERSION`.
pub const VERSION_HEADER: &str = "x-flywheel-model-version";
/// Says which arm of the model's split answered: `NAME@ALIAS` or `NAME@VERSION`.
pub const ARM_HEADER: &str = "x-flywheel-arm";
/// Names the model `/invocations` is for when several are served (or `?model=`).
pub const MODEL_HEADER: &str = "x-flywheel-model";
/// The request header whose value keeps a caller on one arm of a split.
pub const KEY_HEADER: &str = "x-flywheel-key";
/// The request's id (the caller's, or one made up), to send feedback for it.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The model `?model=NAME` names in a query string, if it does.
pub fn model_in_query(query: Option<&str>) -> Option<&str> {
    query.into_iter().flat_map(|q| q.split('&')).find_map(|kv| kv.strip_prefix("model="))
}
