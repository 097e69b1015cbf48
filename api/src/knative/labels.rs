//! The labels and annotations Knative puts on the objects it makes (reference §6.3).

pub const SERVICE: &str = "serving.knative.dev/service";
pub const SERVICE_UID: &str = "serving.knative.dev/serviceUID";
pub const CONFIGURATION: &str = "serving.knative.dev/configuration";
pub const CONFIGURATION_UID: &str = "serving.knative.dev/configurationUID";
pub const CONFIGURATION_GENERATION: &str = "serving.knative.dev/configurationGeneration";
pub const ROUTE: &str = "serving.knative.dev/route";
pub const REVISION: &str = "serving.knative.dev/revision";
pub const REVISION_UID: &str = "serving.knative.dev/revisionUID";
/// `active` for a revision some route sends traffic to, `reserve` otherwise.
pub const ROUTING_STATE: &str = "serving.knative.dev/routingState";

/// Annotations.
pub const CREATOR: &str = "serving.knative.dev/creator";
pub const LAST_MODIFIER: &str = "serving.knative.dev/lastModifier";
pub const ROUTES: &str = "serving.knative.dev/routes";
pub const ROUTING_STATE_MODIFIED: &str = "serving.knative.dev/routingStateModified";

/// Labels and annotations that belong to the controllers and are never copied from a parent
/// onto a child: a Service's `kubectl.kubernetes.io/last-applied-configuration` describes the
/// Service, not its Route.
pub fn propagates(key: &str) -> bool {
    !matches!(
        key,
        SERVICE | SERVICE_UID | CONFIGURATION | CONFIGURATION_UID | ROUTE
    ) && key != "kubectl.kubernetes.io/last-applied-configuration"
}
