//! Request bodies: read under a size limit (413 past it) and decoded as JSON or YAML with the
//! parse position in the 400 a malformed one gets.

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use super::status::ApiError;

/// The real API server's default request-body limit (3 MiB); objects are far smaller.
pub const DEFAULT_MAX_BODY: usize = 3 * 1024 * 1024;

/// How long a client may take to send a body (a trickled body must not hold a task forever).
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads the whole body, refusing more than `limit` bytes without buffering them.
pub async fn read(body: Incoming, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let collected = tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect())
        .await
        .map_err(|_| {
            ApiError::bad_request(format!(
                "the request body did not arrive within {} seconds; send it at once",
                BODY_READ_TIMEOUT.as_secs()
            ))
        })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::too_large(limit))
        }
        Err(error) => Err(ApiError::bad_request(format!(
            "could not read the request body: {error}"
        ))),
    }
}

/// The media type of a request body, without parameters, lower-cased.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Decodes an object body sent as `media_type`: JSON, or YAML (`application/yaml`, and the
/// apply-patch type, which kubectl fills with JSON and other clients with YAML).
pub fn decode(bytes: &[u8], media_type: &str) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty: send the object as JSON",
        ));
    }
    let value = match media_type {
        "application/yaml" | "application/apply-patch+yaml" => decode_yaml_or_json(bytes)?,
        // kubectl's generators send Secrets, ConfigMaps and Namespaces so.
        "application/vnd.kubernetes.protobuf" => {
            super::protobuf::decode(bytes).map_err(ApiError::unsupported_media_type)?
        }
        _ => decode_json(bytes)?,
    };
    Ok(value)
}

/// JSON with the position of the first error.
pub fn decode_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        ApiError::bad_request(format!(
            "the request body is not valid JSON: {error} (line {}, column {})",
            error.line(),
            error.column()
        ))
    })
}

fn decode_yaml_or_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    serde_norway::from_slice(bytes).map_err(|error| {
        let position = error
            .location()
            .map(|at| format!(" (line {}, column {})", at.line(), at.column()))
            .unwrap_or_default();
        ApiError::bad_request(format!(
            "the request body is neither valid JSON nor valid YAML: {error}{position}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_say_where() {
        let error = decode(b"{\"a\": }", "application/json").expect_err("malformed");
        assert_eq!(error.code, http::StatusCode::BAD_REQUEST);
        assert!(
            error.message.contains("line 1, column 7"),
            "{}",
            error.message
        );
    }

    #[test]
    fn garbage_bytes_are_a_bad_request_not_a_crash() {
        let error = decode(&[0xff, 0x00, 0x13, 0x37], "application/json").expect_err("garbage");
        assert_eq!(error.reason, "BadRequest");
    }

    #[test]
    fn apply_patches_may_be_yaml() {
        let value = decode(
            b"metadata:\n  name: hello\n",
            "application/apply-patch+yaml",
        )
        .expect("yaml");
        assert_eq!(value["metadata"]["name"], "hello");
        let error = decode(b"a: [", "application/apply-patch+yaml").expect_err("bad yaml");
        assert!(error.message.contains("line"), "{}", error.message);
    }

    #[test]
    fn protobuf_is_refused_with_a_way_out() {
        let error = decode(b"k8s\0", "application/vnd.kubernetes.protobuf").expect_err("protobuf");
        assert_eq!(error.code, http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
