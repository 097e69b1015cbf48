//! One review in, one review out: runs the embedded API server's admission functions
//! (`wisp_control::admission`) on what kube-apiserver sent. Pure: no I/O, the cluster's
//! `config-defaults` is passed in.

use serde_json::Value;
use wisp_control::admission::{self, ClusterDefaults, Operation, Request};
use wisp_control::apiserver::status::ApiError;
use wisp_control::registry::{self, Resource, SERVING_GROUP};

use crate::review::{self, API_VERSION, AdmissionRequest, AdmissionReview, KIND, Verdict};

/// The Knative kinds the webhooks admit; any other resource is allowed untouched.
const ADMITTED: &[&str] = &["services", "configurations", "revisions", "routes"];

/// Which webhook a review was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// The mutating webhook: Knative's defaults, as a JSONPatch.
    Defaulting,
    /// The validating webhook: Knative's validation, refusing with its message.
    Validation,
}

/// A body that is not an `admission.k8s.io/v1` review this webhook can answer; the server
/// answers 400 with the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadReview(String);

/// The response review to the review `body`, sent to `hook`, with the cluster's `defaults`.
pub fn answer(hook: Hook, body: &[u8], defaults: &ClusterDefaults) -> Result<Value, BadReview> {
    let review: AdmissionReview = serde_json::from_slice(body)
        .map_err(|error| BadReview(format!("the body is not an AdmissionReview: {error}")))?;
    if review.api_version != API_VERSION || review.kind != KIND {
        return Err(BadReview(format!(
            "expected apiVersion {API_VERSION} and kind {KIND}, got {:?} and {:?}; list only \
             \"v1\" in the webhook configuration's admissionReviewVersions",
            review.api_version, review.kind
        )));
    }
    let request = review
        .request
        .ok_or_else(|| BadReview("the AdmissionReview has no request".into()))?;
    if request.uid.is_empty() {
        return Err(BadReview("request.uid is empty".into()));
    }
    let verdict = decide(hook, &request, defaults)?;
    review::response(&request.uid, &verdict)
        .map_err(|error| BadReview(format!("cannot encode the answer: {error}")))
}

/// What `hook` says about `request`.
fn decide(
    hook: Hook,
    request: &AdmissionRequest,
    defaults: &ClusterDefaults,
) -> Result<Verdict, BadReview> {
    let operation = match request.operation.as_str() {
        "CREATE" => Operation::Create,
        "UPDATE" => Operation::Update,
        // Deletes and connects are not Knative's business (nor in the configurations' rules).
        _ => return Ok(Verdict::Allowed),
    };
    // Status writes are exempt, as in the embedded server and in Knative.
    if !request.sub_resource.is_empty() {
        return Ok(Verdict::Allowed);
    }
    let Some(resource) = admitted(request) else {
        return Ok(Verdict::Allowed);
    };
    let object = request
        .object
        .as_ref()
        .filter(|object| object.is_object())
        .ok_or_else(|| BadReview("request.object is missing or not an object".into()))?;
    let old = match operation {
        Operation::Create => None,
        Operation::Update => Some(
            request
                .old_object
                .as_ref()
                .filter(|old| old.is_object())
                .ok_or_else(|| {
                    BadReview("request.oldObject is missing or not an object on UPDATE".into())
                })?,
        ),
    };
    let admission = Request {
        resource,
        operation,
        old,
        user: &request.user_info.username,
        defaults,
    };
    Ok(match hook {
        Hook::Defaulting => {
            let mut defaulted = object.clone();
            admission::default(&admission, &mut defaulted);
            let patch = json_patch::diff(object, &defaulted);
            if patch.0.is_empty() {
                Verdict::Allowed
            } else {
                Verdict::Patched(patch)
            }
        }
        Hook::Validation => match admission::validate(&admission, object) {
            Ok(()) => Verdict::Allowed,
            Err(causes) => Verdict::Denied(
                ApiError::webhook_denial(resource, name_of(request, object), causes).to_status(),
            ),
        },
    })
}

/// The registry entry of a Knative Serving kind the webhooks admit, if the request is for one.
fn admitted(request: &AdmissionRequest) -> Option<&'static Resource> {
    let target = &request.resource;
    if target.group != SERVING_GROUP || !ADMITTED.contains(&target.resource.as_str()) {
        return None;
    }
    registry::lookup(&target.group, &target.version, &target.resource)
}

/// The name the refusal's details carry: the request's, or the object's when the request has
/// none (a create whose name the server generates).
fn name_of<'a>(request: &'a AdmissionRequest, object: &'a Value) -> &'a str {
    if request.name.is_empty() {
        object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    } else {
        &request.name
    }
}

#[cfg(test)]
mod tests;
