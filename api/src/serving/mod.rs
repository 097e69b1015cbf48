//! Knative Serving v1 (`serving.knative.dev/v1`) resources as plain serde types, with Knative's
//! field names (camelCase) so a manifest written for Knative reads unchanged.
//!
//! Only the fields wisp acts on are modelled; every other field is tolerated and dropped (Knative
//! manifests carry `status`, `creationTimestamp`, probes and the like). A `null` where a list or
//! map goes reads as empty, as Kubernetes reads it. Checking the values (names, ranges, traffic)
//! is the reader's job: the API server's admission, or a loader such as `wisp serve`'s.
//!
//! Not here: Configuration, Revision and Route objects (they come with the API server), status.

mod meta;
mod revision;
mod service;

pub use meta::ObjectMeta;
pub use revision::{
    Container, ContainerPort, EnvVar, EnvVarSource, KeySelector, ResourceRequirements,
    RevisionSpec, RevisionTemplateSpec,
};
pub use service::{Service, ServiceSpec, TrafficTarget};

/// `apiVersion` of every Knative Serving v1 resource.
pub const API_VERSION: &str = "serving.knative.dev/v1";
/// `kind` of a Knative Service.
pub const SERVICE_KIND: &str = "Service";
/// The namespace of an object whose `metadata.namespace` is unset.
pub const DEFAULT_NAMESPACE: &str = "default";
/// Knative's default `timeoutSeconds` (`config-defaults` `revision-timeout-seconds`).
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 300;
/// The longest `timeoutSeconds` wisp accepts.
pub const MAX_TIMEOUT_SECONDS: i64 = 3600;
/// Knative's `container-concurrency-max-limit` default: the largest `containerConcurrency`.
pub const MAX_CONTAINER_CONCURRENCY: i64 = 1000;
/// The resource name of memory in `resources.limits` and `resources.requests`.
pub const MEMORY: &str = "memory";

/// Reads `null` as the type's default: Kubernetes treats `labels: null` (or `labels:` with
/// nothing after it in YAML) like an absent field.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    let value: Option<T> = serde::Deserialize::deserialize(deserializer)?;
    Ok(value.unwrap_or_default())
}

#[cfg(test)]
mod tests;
