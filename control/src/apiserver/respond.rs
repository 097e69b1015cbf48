//! Responses: JSON bodies, the representation a client asked for in `Accept` (object,
//! server-side Table, or PartialObjectMetadata — reference §3.1, §4), list envelopes and
//! `Warning` headers.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::registry::Resource;

use super::status::ApiError;

/// Every response body: a buffer, or a watch's stream of lines.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// What a read returns, from `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The objects themselves.
    Object,
    /// A `meta.k8s.io/v1` Table (kubectl's human output).
    Table,
    /// Metadata only (kube-rs `metadata_watcher`, `Controller::owns`).
    PartialMetadata,
}

/// The representation `accept` asks for first among those served.
pub fn shape(accept: Option<&str>) -> Shape {
    for range in accept.unwrap_or("").split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if media != "application/json" && media != "*/*" {
            continue;
        }
        let mut as_ = None;
        let mut group = None;
        for parameter in parts {
            match parameter.split_once('=') {
                Some(("as", value)) => as_ = Some(value),
                Some(("g", value)) => group = Some(value),
                _ => {}
            }
        }
        match (as_, group) {
            (None, _) => return Shape::Object,
            (Some("Table"), Some("meta.k8s.io")) => return Shape::Table,
            (Some("PartialObjectMetadata" | "PartialObjectMetadataList"), Some("meta.k8s.io")) => {
                return Shape::PartialMetadata;
            }
            _ => {}
        }
    }
    Shape::Object
}

/// A JSON response.
pub fn json(code: StatusCode, body: &Value) -> Response<Body> {
    bytes(code, Bytes::from(body.to_string()), "application/json")
}

/// A response with a ready body.
pub fn bytes(code: StatusCode, body: Bytes, content_type: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(body).boxed_unsync());
    *response.status_mut() = code;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// A `Status` error response.
pub fn error(error: &ApiError) -> Response<Body> {
    let mut response = json(error.code, &error.to_status());
    if let Some(seconds) = error.details.as_ref().and_then(|d| d.retry_after_seconds) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if error.code == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// Adds one `Warning: 299 - "<text>"` header per warning (reference §1.4), which kubectl
/// prints as `Warning: <text>`.
pub fn with_warnings(mut response: Response<Body>, warnings: &[String]) -> Response<Body> {
    for warning in warnings {
        let quoted = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// An object as PartialObjectMetadata.
pub fn partial(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A list's `metadata`: its resourceVersion and, when more pages follow, the continue token.
pub fn list_metadata(rv: u64, continue_token: Option<&str>) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = token.into();
    }
    metadata
}

/// A list envelope of `items` in `shape` (not Table, which [`crate::table`] builds).
pub fn list(
    resource: &Resource,
    items: Vec<Value>,
    rv: u64,
    continue_token: Option<&str>,
    shape: Shape,
) -> Value {
    let metadata = list_metadata(rv, continue_token);
    match shape {
        Shape::PartialMetadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": items.iter().map(partial).collect::<Vec<_>>(),
        }),
        Shape::Object | Shape::Table => json!({
            "kind": resource.list_kind,
            "apiVersion": resource.api_version(),
            "metadata": metadata,
            "items": items,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_a_table() {
        assert_eq!(
            shape(Some(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
            )),
            Shape::Table
        );
        assert_eq!(shape(Some("application/json")), Shape::Object);
        assert_eq!(shape(None), Shape::Object);
        assert_eq!(
            shape(Some(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            )),
            Shape::PartialMetadata
        );
        assert_eq!(
            shape(Some("application/vnd.kubernetes.protobuf,application/json")),
            Shape::Object
        );
    }

    #[test]
    fn warnings_are_quoted() {
        let response = with_warnings(
            json(StatusCode::OK, &json!({})),
            &["unknown field \"spec.bogus\"".to_owned()],
        );
        assert_eq!(
            response.headers()[header::WARNING],
            "299 - \"unknown field \\\"spec.bogus\\\"\""
        );
    }
}
