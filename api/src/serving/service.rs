//! The Knative `Service`: a revision template and the traffic block of its route.

use serde::{Deserialize, Serialize};

use super::{API_VERSION, ObjectMeta, RevisionTemplateSpec, SERVICE_KIND, null_as_default};

/// `serving.knative.dev/v1` `Service`. A Service owns a Configuration and a Route of its name;
/// each change of `spec.template` makes a new Revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ServiceSpec,
}

impl Service {
    /// Whether `apiVersion` and `kind` say this is a Knative Service.
    pub fn is_knative_service(&self) -> bool {
        self.api_version == API_VERSION && self.kind == SERVICE_KIND
    }
}

/// `Service.spec`: Knative inlines a ConfigurationSpec (`template`) and a RouteSpec (`traffic`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceSpec {
    pub template: RevisionTemplateSpec,
    /// Empty means Knative's default: all traffic to the latest ready revision.
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub traffic: Vec<TrafficTarget>,
}

/// One entry of a traffic block: a share of the route's traffic (`percent`) and/or a tag host,
/// sent to a named revision or to whichever revision is latest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrafficTarget {
    /// Also serve this entry at `{tag}-{route}.{namespace}.{domain}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_name: Option<String>,
    /// Only valid in a Route; Knative rejects it in a Service (modelled so readers can say so).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration_name: Option<String>,
    /// `true`: follow the latest ready revision. Knative defaults it to `true` when no
    /// `revisionName` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<bool>,
    /// Share of the route's traffic, 0–100; unset counts as 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
}

impl TrafficTarget {
    /// Whether this entry follows the latest revision, with Knative's defaulting applied.
    pub fn follows_latest(&self) -> bool {
        self.latest_revision
            .unwrap_or_else(|| self.revision_name.as_deref().is_none_or(str::is_empty))
    }
}
