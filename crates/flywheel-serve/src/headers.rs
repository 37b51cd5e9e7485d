//! The HTTP headers Flywheel's server reads and writes beyond the
//! protocols', and the query parameter that names a model. Names are
//! `HeaderName`s made at compile time: inserting one given as text would
//! allocate it again for every response.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

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

/// Says how long an OIP request's JSON header is, binary tensors following it.
pub const BINARY_HEADER: HeaderName = HeaderName::from_static("inference-header-content-length");

/// The request headers the prediction handlers read, each the first of its
/// name as `HeaderMap::get` gives it, found in one pass over the request's
/// headers: a lookup hashes its name, and seven lookups a request were 3%
/// of a one-row request's work.
#[derive(Default, Clone, Copy)]
pub struct Asked<'a> {
    pub model: Option<&'a HeaderValue>,
    pub key: Option<&'a HeaderValue>,
    pub request_id: Option<&'a HeaderValue>,
    pub content_type: Option<&'a HeaderValue>,
    pub content_length: Option<&'a HeaderValue>,
    pub binary: Option<&'a HeaderValue>,
}

impl<'a> Asked<'a> {
    pub fn of(headers: &'a HeaderMap) -> Self {
        let mut asked = Asked::default();
        for (name, value) in headers {
            let slot = if name == header::CONTENT_TYPE {
                &mut asked.content_type
            } else if name == header::CONTENT_LENGTH {
                &mut asked.content_length
            } else if name == REQUEST_ID_HEADER {
                &mut asked.request_id
            } else if name == MODEL_HEADER {
                &mut asked.model
            } else if name == KEY_HEADER {
                &mut asked.key
            } else if name == BINARY_HEADER {
                &mut asked.binary
            } else {
                continue;
            };
            slot.get_or_insert(value);
        }
        asked
    }
}

/// The model `?model=NAME` names in a query string, if it does.
pub fn model_in_query(query: Option<&str>) -> Option<&str> {
    query.into_iter().flat_map(|q| q.split('&')).find_map(|kv| kv.strip_prefix("model="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_header_asked_for_is_found_as_a_lookup_finds_it() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("h"));
        headers.append(KEY_HEADER, HeaderValue::from_static("k1"));
        headers.append(KEY_HEADER, HeaderValue::from_static("k2"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
        headers.insert(HeaderName::from_static("x-flywheel-models"), HeaderValue::from_static("not the model"));
        headers.insert(BINARY_HEADER, HeaderValue::from_static("12"));
        let asked = Asked::of(&headers);
        for (found, name) in [
            (asked.model, MODEL_HEADER),
            (asked.key, KEY_HEADER),
            (asked.request_id, REQUEST_ID_HEADER),
            (asked.content_type, header::CONTENT_TYPE),
            (asked.content_length, header::CONTENT_LENGTH),
            (asked.binary, BINARY_HEADER),
        ] {
            assert_eq!(found, headers.get(&name), "{name}");
        }
        assert_eq!(asked.key.map(HeaderValue::as_bytes), Some(&b"k1"[..]));
    }
}
