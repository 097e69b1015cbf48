//! Knative Serving v1 objects as the controllers and the data plane read and write them through
//! the Kubernetes API (kube-rs resource types), with their status, conditions, labels and naming
//! rules (reference/kubernetes-api.md §6).
//!
//! Specs keep every field as it was stored (`template.spec` is raw JSON), so a controller that
//! copies a template into a Revision never drops a field wisp itself does not act on. Typed
//! views of a template come from [`crate::serving`].

pub mod child_name;
pub mod conditions;
pub mod domain;
pub mod labels;
mod resources;

pub use conditions::{Condition, ConditionStatus};
pub use resources::{
    Addressable, Configuration, ConfigurationSpec, ConfigurationStatus, ContainerStatus, Revision,
    RevisionObjectSpec, RevisionStatus, Route, RouteSpec, RouteStatus, Service, ServiceSpec,
    ServiceStatus, Template, TemplateMeta, TrafficTarget,
};

/// The namespace of Knative's cluster-wide ConfigMaps (`config-autoscaler`, `config-defaults`,
/// `config-domain`).
pub const SYSTEM_NAMESPACE: &str = "knative-serving";
/// `config-autoscaler`: the autoscaler's cluster-wide settings.
pub const CONFIG_AUTOSCALER: &str = "config-autoscaler";
/// `config-defaults`: defaults and limits of revision specs.
pub const CONFIG_DEFAULTS: &str = "config-defaults";
/// `config-deployment`: how Revisions become workloads (`registries-skipping-tag-resolving`).
pub const CONFIG_DEPLOYMENT: &str = "config-deployment";
/// `config-domain`: the domain of route hosts.
pub const CONFIG_DOMAIN: &str = "config-domain";
/// wisp's default domain: `*.localhost` resolves to loopback with no DNS set-up.
pub const DEFAULT_DOMAIN: &str = "localhost";
/// The name Knative gives a revision's first (and usually only) container.
pub const USER_CONTAINER: &str = "user-container";

/// Condition types and reasons Knative uses, so every writer spells them the same way.
pub mod condition_types {
    pub const READY: &str = "Ready";
    pub const CONFIGURATIONS_READY: &str = "ConfigurationsReady";
    pub const ROUTES_READY: &str = "RoutesReady";
    pub const ALL_TRAFFIC_ASSIGNED: &str = "AllTrafficAssigned";
    pub const INGRESS_READY: &str = "IngressReady";
    pub const CERTIFICATE_PROVISIONED: &str = "CertificateProvisioned";
    pub const RESOURCES_AVAILABLE: &str = "ResourcesAvailable";
    pub const CONTAINER_HEALTHY: &str = "ContainerHealthy";
    pub const ACTIVE: &str = "Active";
    /// wisp's: whether every replica the autoscaler wants runs. `False` (severity Warning, so
    /// `Ready` is untouched: what runs keeps serving) while a node runs fewer, reason
    /// [`UNSCHEDULABLE`] as a Pod the scheduler cannot place has, and a message naming the
    /// node, the limit, the replicas wanted and running, and what to change. Absent otherwise.
    pub const REPLICAS_SCHEDULED: &str = "ReplicasScheduled";
    /// The reason of a `ReplicasScheduled=False` condition (Kubernetes' `PodScheduled` reason).
    pub const UNSCHEDULABLE: &str = "Unschedulable";
}

#[cfg(test)]
mod tests;
