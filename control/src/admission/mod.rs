//! Knative admission: the defaulting and validation Knative Serving's webhooks apply to
//! Services, Configurations, Revisions and Routes (reference §6.4, §6.5), run in-process on the
//! JSON the API server received.
//!
//! The HTTP layer calls [`default`] and then [`validate`] on every create and update of the main
//! resource (not `/status` writes, which Knative also exempts), and renders a refusal with
//! [`render_message`] as a 400 BadRequest, the way a denying Knative webhook surfaces in kubectl.
//! Other resources pass through untouched. On a real cluster `wisp controller` serves the same
//! functions as admission webhooks (`wisp-webhook`), so both servers default, validate and word
//! refusals alike. Rules follow knative/serving's
//! `pkg/apis/serving/v1/*_{defaults,validation}.go` where they make sense for wisp, which runs
//! one WebAssembly component per revision rather than containers.

mod cluster_defaults;
mod defaults;
mod json;
#[cfg(test)]
mod test_support;
mod validation;

pub use cluster_defaults::ClusterDefaults;

use crate::field_error::FieldError;
use crate::registry::{Resource, SERVING_GROUP};

/// The webhook name Knative's validation errors carry; kubectl users recognise it. `wisp
/// controller`'s validating webhook has this name, so a real API server words its refusals the
/// way the embedded one does.
pub const WEBHOOK_NAME: &str = "validation.webhook.serving.knative.dev";

/// Which write is being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A new object (POST, or an apply that creates).
    Create,
    /// A replacement of a stored object (PUT, or any PATCH after it is applied).
    Update,
}

/// Everything admission needs to know about a write besides the object itself.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Which kind; only Knative Serving's services, configurations, revisions and routes are
    /// admitted, anything else is a no-op.
    pub resource: &'static Resource,
    /// Create or update.
    pub operation: Operation,
    /// The stored object, on update.
    pub old: Option<&'a serde_json::Value>,
    /// The authenticated user, recorded in the creator and lastModifier annotations.
    pub user: &'a str,
    /// `config-defaults` as it is now.
    pub defaults: &'a ClusterDefaults,
}

/// The Knative kinds admission knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Service,
    Configuration,
    Revision,
    Route,
}

impl Kind {
    fn of(resource: &Resource) -> Option<Self> {
        if resource.group != SERVING_GROUP {
            return None;
        }
        match resource.plural {
            "services" => Some(Self::Service),
            "configurations" => Some(Self::Configuration),
            "revisions" => Some(Self::Revision),
            "routes" => Some(Self::Route),
            _ => None,
        }
    }
}

/// Knative defaulting, in place. Non-Knative resources are left alone.
pub fn default(request: &Request<'_>, object: &mut serde_json::Value) {
    if let Some(kind) = Kind::of(request.resource) {
        defaults::apply(kind, request, object);
    }
}

/// Knative validation of the (already defaulted) object: every problem found, not just the first.
pub fn validate(request: &Request<'_>, object: &serde_json::Value) -> Result<(), Vec<FieldError>> {
    let Some(kind) = Kind::of(request.resource) else {
        return Ok(());
    };
    let errors = validation::check(kind, request, object);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// What Knative's validating webhook answers as its `status.message` when it refuses a write:
/// `validation failed: <cause 1>; <cause 2>` (knative.dev/pkg's `MakeErrorStatus("validation
/// failed: %v", err)`). `wisp controller`'s webhook sends exactly this; the API server in front
/// of it adds the [`denied_by`] prefix.
pub fn denial(causes: &[FieldError]) -> String {
    let causes: Vec<String> = causes.iter().map(ToString::to_string).collect();
    format!("validation failed: {}", causes.join("; "))
}

/// How kube-apiserver shows a webhook's refusal to the client (apiserver:
/// `pkg/admission/plugin/webhook/errors/statuserror.go`, `ToStatusErr`): `admission webhook
/// "<webhook>" denied the request: <message>`.
pub fn denied_by(webhook: &str, message: &str) -> String {
    format!("admission webhook {webhook:?} denied the request: {message}")
}

/// The message of the 400 BadRequest a refusal becomes, as kubectl shows it whether the rules
/// ran in the embedded API server or in `wisp controller`'s webhook behind a real one:
/// `admission webhook "validation.webhook.serving.knative.dev" denied the request: validation
/// failed: <cause 1>; <cause 2>`.
pub fn render_message(causes: &[FieldError]) -> String {
    denied_by(WEBHOOK_NAME, &denial(causes))
}

#[cfg(test)]
mod tests;
