//! Errors as Kubernetes `Status` objects (reference §2.6): every failed request answers with
//! one, and kubectl prints `Error from server (<reason>): <message>` from it, so the code,
//! reason and message must be the real server's.

use http::StatusCode;
use serde_json::{Value, json};

use crate::admission;
use crate::field_error::FieldError;
use crate::registry::Resource;
use crate::store::StoreError;

/// A failed request: the HTTP code plus the `Status` body that explains it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status (also `Status.code`).
    pub code: StatusCode,
    /// `Status.reason`: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `BadRequest`, …
    pub reason: &'static str,
    /// `Status.message`: what went wrong, for a person.
    pub message: String,
    /// `Status.details`, when the error is about one object.
    pub details: Option<Box<Details>>,
}

/// `Status.details`: which object, and the fields that were refused.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Details {
    /// The object's name.
    pub name: String,
    /// Its API group (empty for core).
    pub group: String,
    /// Its plural (Kubernetes puts the resource, not the kind, here for most errors) or kind.
    pub kind: String,
    /// The refused fields.
    pub causes: Vec<FieldError>,
    /// Seconds after which a retry may succeed.
    pub retry_after_seconds: Option<u64>,
}

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn about(mut self, resource: &Resource, name: &str) -> Self {
        self.details = Some(Box::new(Details {
            name: name.to_owned(),
            group: resource.group.to_owned(),
            kind: resource.plural.to_owned(),
            ..Details::default()
        }));
        self
    }

    /// 404 for a missing object: `services.serving.knative.dev "nope" not found`.
    pub fn not_found(resource: &Resource, name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} {name:?} not found", qualified(resource)),
        )
        .about(resource, name)
    }

    /// 404 for a URL that names nothing the server serves.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "the server could not find the requested resource ({path}); \
                 `kubectl api-resources` lists what this server serves"
            ),
        )
    }

    /// 409 for a create whose name is taken.
    pub fn already_exists(resource: &Resource, name: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{} {name:?} already exists", qualified(resource)),
        )
        .about(resource, name)
    }

    /// 409 for a write based on a stale resourceVersion, with the upstream message kubectl and
    /// client-go retry helpers recognise.
    pub fn conflict(resource: &Resource, name: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified; \
                 please apply your changes to the latest version and try again",
                qualified(resource)
            ),
        )
        .about(resource, name)
    }

    /// 400 for a malformed request (bad body, bad query, mismatched namespace, …).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 422 for an object that fails the server's own validation, in the built-in style
    /// (`The Service "hello" is invalid: <field>: Invalid value: …`).
    pub fn invalid(resource: &Resource, name: &str, causes: Vec<FieldError>) -> Self {
        let list = causes
            .iter()
            .map(|cause| format!("{}: {}", cause.field, cause.message))
            .collect::<Vec<_>>();
        let message = match list.as_slice() {
            [one] => format!("{} {name:?} is invalid: {one}", resource.kind),
            _ => format!(
                "{} {name:?} is invalid: [{}]",
                resource.kind,
                list.join(", ")
            ),
        };
        let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message);
        error.details = Some(Box::new(Details {
            name: name.to_owned(),
            group: resource.group.to_owned(),
            kind: resource.kind.to_owned(),
            causes,
            retry_after_seconds: None,
        }));
        error
    }

    /// The `Status` Knative's validating webhook refuses a write with: 400 BadRequest, the
    /// refused fields as causes, and the message [`admission::denial`] words. `wisp
    /// controller`'s webhook answers with it; a real API server then adds its prefix, which
    /// gives [`ApiError::denied`].
    pub fn webhook_denial(resource: &Resource, name: &str, causes: Vec<FieldError>) -> Self {
        let mut error = Self::bad_request(admission::denial(&causes)).about(resource, name);
        if let Some(details) = error.details.as_mut() {
            details.causes = causes;
        }
        error
    }

    /// 400 for a Knative admission rejection, as kube-apiserver passes a webhook's refusal on
    /// (the webhook's `Status` with the message prefixed), so kubectl prints `admission webhook
    /// "…" denied the request: validation failed: <message>: <field>` from either server.
    pub fn denied(resource: &Resource, name: &str, causes: Vec<FieldError>) -> Self {
        let mut error = Self::webhook_denial(resource, name, causes);
        error.message = admission::denied_by(admission::WEBHOOK_NAME, &error.message);
        error
    }

    /// 405 for a verb the resource does not allow (writes to read-only pods and nodes).
    pub fn method_not_allowed(resource: &Resource, verb: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on {}: wisp reports these objects itself and they \
                 cannot be written through the API",
                qualified(resource)
            ),
        )
    }

    /// 415 for a body type the endpoint does not take (strategic merge patch on a custom
    /// resource): kubectl prints `error: <type> is not supported by <gvk>: <message>`.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            message,
        )
    }

    /// 413 for a body over the server's limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!(
                "the request body is larger than the server's limit of {limit} bytes; \
                 Kubernetes objects are small: split the request or shrink the object"
            ),
        )
    }

    /// 401 for a missing or wrong bearer token.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized: send the bearer token from the kubeconfig wisp wrote in its data \
             directory",
        )
    }

    /// 403 for a request the server refuses on principle (e.g. content in a terminating
    /// namespace).
    pub fn forbidden(resource: &Resource, name: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message).about(resource, name)
    }

    /// 410 for a resourceVersion or continue token older than the retained history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Expired", message)
    }

    /// 500: the server failed; the message says what, the log has more.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }

    /// 503 with Retry-After: the server is shutting down or overloaded.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        );
        error.details = Some(Box::new(Details {
            retry_after_seconds: Some(1),
            ..Details::default()
        }));
        error
    }

    /// Maps a store failure on `resource`'s object `name`.
    pub fn from_store(resource: &Resource, name: &str, error: StoreError) -> Self {
        match error {
            StoreError::NotFound { .. } => Self::not_found(resource, name),
            StoreError::AlreadyExists { .. } => Self::already_exists(resource, name),
            StoreError::Conflict { .. } => Self::conflict(resource, name),
            StoreError::Expired { .. } => Self::expired(error.to_string()),
            StoreError::Aborted => Self::unavailable(error.to_string()),
            StoreError::TooLarge { bytes, limit, .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!(
                    "{} {name:?} would be {bytes} bytes as stored, more than the {limit} bytes \
                     an object may be; store large data elsewhere or split it over several \
                     objects",
                    resource.kind
                ),
            )
            .about(resource, name),
            StoreError::TooDeep { depth, limit, .. } => Self::invalid(
                resource,
                name,
                vec![FieldError::invalid(
                    "<object>",
                    format!(
                        "it would nest objects and arrays {depth} levels deep, more than the \
                         {limit} an object may have; flatten the fields the request adds"
                    ),
                )],
            ),
            other => Self::internal(other.to_string()),
        }
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if let Some(details) = &self.details {
            let mut body = serde_json::Map::new();
            if !details.name.is_empty() {
                body.insert("name".into(), details.name.clone().into());
            }
            if !details.group.is_empty() {
                body.insert("group".into(), details.group.clone().into());
            }
            if !details.kind.is_empty() {
                body.insert("kind".into(), details.kind.clone().into());
            }
            if !details.causes.is_empty() {
                let causes = details
                    .causes
                    .iter()
                    .map(|cause| {
                        json!({
                            "reason": cause.reason.as_str(),
                            "message": cause.message,
                            "field": cause.field,
                        })
                    })
                    .collect::<Vec<_>>();
                body.insert("causes".into(), causes.into());
            }
            if let Some(seconds) = details.retry_after_seconds {
                body.insert("retryAfterSeconds".into(), seconds.into());
            }
            status["details"] = Value::Object(body);
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code.as_u16(),
            self.reason,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// A success `Status` (what a delete that removed the object answers).
pub fn success(resource: &Resource, name: &str, uid: Option<&str>) -> Value {
    let mut details = json!({"name": name, "kind": resource.plural});
    if !resource.group.is_empty() {
        details["group"] = resource.group.into();
    }
    if let Some(uid) = uid {
        details["uid"] = uid.into();
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

/// `services.serving.knative.dev`, or `namespaces` for the core group: how Kubernetes names a
/// resource in messages.
pub fn qualified(resource: &Resource) -> String {
    if resource.group.is_empty() {
        resource.plural.to_owned()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lookup;

    fn services() -> &'static Resource {
        lookup("serving.knative.dev", "v1", "services").expect("services are registered")
    }

    #[test]
    fn not_found_matches_the_real_server() {
        let status = ApiError::not_found(services(), "nope").to_status();
        assert_eq!(
            status,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"services.serving.knative.dev \"nope\" not found","reason":"NotFound",
                   "details":{"name":"nope","group":"serving.knative.dev","kind":"services"},"code":404})
        );
    }

    #[test]
    fn admission_rejection_reads_like_knative_webhook() {
        let error = ApiError::denied(
            services(),
            "hello",
            vec![FieldError::invalid(
                "spec.traffic",
                "Traffic targets sum to 90, want 100",
            )],
        );
        assert_eq!(error.code, StatusCode::BAD_REQUEST);
        assert_eq!(
            error.message,
            "admission webhook \"validation.webhook.serving.knative.dev\" denied the request: \
             validation failed: Traffic targets sum to 90, want 100: spec.traffic"
        );
        assert_eq!(
            error.to_status()["details"]["causes"][0]["field"],
            "spec.traffic"
        );
    }

    #[test]
    fn the_webhooks_refusal_is_the_same_status_without_the_servers_prefix() {
        let causes = vec![FieldError::invalid(
            "spec.traffic",
            "Traffic targets sum to 90, want 100",
        )];
        let webhook = ApiError::webhook_denial(services(), "hello", causes.clone()).to_status();
        let mut shown = ApiError::denied(services(), "hello", causes).to_status();
        assert_eq!(
            webhook["message"],
            "validation failed: Traffic targets sum to 90, want 100: spec.traffic"
        );
        assert_eq!(
            shown["message"],
            format!(
                "admission webhook \"validation.webhook.serving.knative.dev\" denied the \
                 request: {}",
                webhook["message"].as_str().unwrap_or_default()
            )
        );
        shown["message"] = webhook["message"].clone();
        assert_eq!(shown, webhook);
    }

    #[test]
    fn invalid_lists_every_cause() {
        let error = ApiError::invalid(
            services(),
            "hello",
            vec![
                FieldError::invalid("spec.a", "Invalid value: 1"),
                FieldError::required("spec.b", "Required value"),
            ],
        );
        assert_eq!(
            error.message,
            "Service \"hello\" is invalid: [spec.a: Invalid value: 1, spec.b: Required value]"
        );
        assert_eq!(error.to_status()["code"], 422);
    }
}
