//! The revision template of a Service (`spec.template`): what each Revision is made from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DEFAULT_TIMEOUT_SECONDS, MEMORY, ObjectMeta, null_as_default};
use crate::quantity::Quantity;

/// `spec.template`: the metadata and spec every new Revision gets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RevisionTemplateSpec {
    /// `name` names the Revision (Knative generates `{service}-00001` when unset); the
    /// annotations carry per-revision settings such as `autoscaling.knative.dev/*`.
    pub metadata: ObjectMeta,
    pub spec: RevisionSpec,
}

/// `spec.template.spec`: Knative's RevisionSpec.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RevisionSpec {
    /// Requests one replica serves at once; 0 (or unset) means unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_concurrency: Option<i64>,
    /// Deadline of one request in seconds; unset means [`DEFAULT_TIMEOUT_SECONDS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// Knative allows one serving container; wisp runs its `image` as a component.
    #[serde(deserialize_with = "null_as_default")]
    pub containers: Vec<Container>,
}

impl RevisionSpec {
    /// `timeoutSeconds` with Knative's default.
    pub fn timeout_seconds_or_default(&self) -> i64 {
        self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS)
    }
}

/// One container: for wisp, a WebAssembly component and its environment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The component: a path, a `file:` URL or an `http(s)://` URL of a `.wasm`.
    pub image: String,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<EnvVar>,
    #[serde(skip_serializing_if = "ResourceRequirements::is_empty")]
    pub resources: ResourceRequirements,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<ContainerPort>,
}

/// An environment variable: a literal `value`, or `valueFrom` a ConfigMap or Secret (which
/// needs an API server to resolve).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvVar {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

/// `env[].valueFrom`: the sources Knative allows by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvVarSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeySelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeySelector>,
}

/// A key of a named ConfigMap or Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeySelector {
    pub name: String,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `resources`: limits and requests by resource name (`memory`, `cpu`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceRequirements {
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub limits: BTreeMap<String, Quantity>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub requests: BTreeMap<String, Quantity>,
}

impl ResourceRequirements {
    /// `limits.memory`: a replica's linear-memory limit in wisp.
    pub fn memory_limit(&self) -> Option<&Quantity> {
        self.limits.get(MEMORY)
    }

    pub fn is_empty(&self) -> bool {
        self.limits.is_empty() && self.requests.is_empty()
    }
}

/// `ports[]`: Knative allows at most one, naming the port and protocol (`h2c` for HTTP/2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerPort {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}
