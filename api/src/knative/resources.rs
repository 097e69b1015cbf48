//! The four Knative Serving kinds as kube-rs resources.

use std::collections::BTreeMap;

use kube::CustomResource;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::conditions::Condition;
use crate::serving;

/// `spec.template` of a Service or Configuration: the metadata and spec of every Revision made
/// from it. The spec stays raw so copying it loses nothing; [`Template::typed_spec`] reads it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    #[serde(default)]
    pub metadata: TemplateMeta,
    #[serde(default)]
    pub spec: Map<String, Value>,
}

impl Template {
    /// The fields wisp acts on, with Knative's defaults applied by their readers.
    pub fn typed_spec(&self) -> Result<serving::RevisionSpec, serde_json::Error> {
        serde_json::from_value(Value::Object(self.spec.clone()))
    }
}

/// `spec.template.metadata`: a Revision's name (BYO), labels and annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One traffic entry, in a spec (what the user asked for) or a status (what it resolved to:
/// always a `revisionName`, and a `url` for tagged entries).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl TrafficTarget {
    /// Whether the entry follows the latest ready revision (Knative's default when it names no
    /// revision).
    pub fn follows_latest(&self) -> bool {
        self.latest_revision
            .unwrap_or_else(|| self.revision_name.as_deref().is_none_or(str::is_empty))
    }
}

/// `status.address`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Addressable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `serving.knative.dev/v1` Service: owns a Configuration and a Route of its name.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Service",
    plural = "services",
    shortname = "ksvc",
    namespaced,
    status = "ServiceStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default)]
    pub template: Template,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
}

/// `Service.status`: the Configuration's and the Route's, side by side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_created_revision_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ready_revision_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
}

/// `serving.knative.dev/v1` Configuration: makes a Revision per template change.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Configuration",
    plural = "configurations",
    shortname = "config",
    namespaced,
    status = "ConfigurationStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationSpec {
    #[serde(default)]
    pub template: Template,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_created_revision_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ready_revision_name: Option<String>,
}

/// `serving.knative.dev/v1` Revision: an immutable snapshot of a template. Its spec is the
/// template's spec as stored (raw, so nothing is lost in the copy).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Revision",
    plural = "revisions",
    shortname = "rev",
    namespaced,
    status = "RevisionStatus",
    schema = "disabled"
)]
pub struct RevisionObjectSpec {
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl RevisionObjectSpec {
    /// The fields wisp acts on.
    pub fn typed(&self) -> Result<serving::RevisionSpec, serde_json::Error> {
        serde_json::from_value(Value::Object(self.fields.clone()))
    }

    /// `containers[0].image` as written: read in place, without converting (and copying) the
    /// whole spec as [`RevisionObjectSpec::typed`] does, since it is asked of every Revision
    /// on every pass.
    pub fn image(&self) -> Option<&str> {
        self.fields
            .get("containers")?
            .get(0)?
            .get("image")?
            .as_str()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_statuses: Vec<ContainerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    /// Knative's `status.annotations`; wisp's nodes report here (see [`crate::nodes`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `status.containerStatuses[]`: the digest the revision's component resolved to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

/// `serving.knative.dev/v1` Route: splits a host's traffic across revisions.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Route",
    plural = "routes",
    namespaced,
    status = "RouteStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
    /// Knative's `status.annotations`; wisp's nodes report here (see [`crate::nodes`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_the_first_containers_as_written() {
        let spec = |value: Value| RevisionObjectSpec {
            fields: match value {
                Value::Object(fields) => fields,
                _ => Map::new(),
            },
        };
        let two = spec(serde_json::json!({
            "containers": [{"image": " registry.example/a:v1 "}, {"image": "b.wasm"}]
        }));
        assert_eq!(two.image(), Some(" registry.example/a:v1 "));
        assert_eq!(spec(serde_json::json!({"containers": []})).image(), None);
        assert_eq!(
            spec(serde_json::json!({"containers": [{"image": 7}]})).image(),
            None
        );
        assert_eq!(spec(serde_json::json!({})).image(), None);
    }
}
