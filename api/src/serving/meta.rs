//! `metadata` of any object: the part of Kubernetes' `ObjectMeta` wisp reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DEFAULT_NAMESPACE, null_as_default};

/// An object's name, namespace, labels and annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unset means [`DEFAULT_NAMESPACE`]; see [`ObjectMeta::namespace_or_default`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// The namespace, with Kubernetes' default for an unset or empty one.
    pub fn namespace_or_default(&self) -> &str {
        match self.namespace.as_deref() {
            None | Some("") => DEFAULT_NAMESPACE,
            Some(namespace) => namespace,
        }
    }
}
