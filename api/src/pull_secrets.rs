//! A Revision's `imagePullSecrets`, read from the API: the Secrets a registry image is resolved
//! and pulled with, as the kubelet reads a Pod's. wisp has no ServiceAccounts, so a Revision's
//! own list is the only source (Knative adds its service account's too).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::knative::Revision;

/// One Secret as read: its type and decoded data. `Debug` never shows the data.
pub struct PullSecret {
    pub name: String,
    pub type_: Option<String>,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for PullSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullSecret")
            .field("name", &self.name)
            .field("type", &self.type_)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `spec.imagePullSecrets[].name` of `revision`, in order, empty names left out.
pub fn names(revision: &Revision) -> Vec<String> {
    revision
        .spec
        .fields
        .get("imagePullSecrets")
        .and_then(serde_json::Value::as_array)
        .map(|secrets| {
            secrets
                .iter()
                .filter_map(|secret| secret.get("name")?.as_str())
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Each named Secret of `namespace` (one `get` each: the node identity may not list them), or
/// why it could not be read. As the kubelet does, a missing Secret is not fatal to the caller:
/// the pull goes on with the others, or anonymously.
pub async fn read(
    client: &Client,
    namespace: &str,
    names: &[String],
) -> Vec<Result<PullSecret, String>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut secrets = Vec::with_capacity(names.len());
    for name in names {
        let secret = match api.get_opt(name).await {
            Ok(Some(secret)) => Ok(PullSecret {
                name: name.clone(),
                type_: secret.type_,
                data: secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(key, value)| (key, value.0))
                    .collect(),
            }),
            Ok(None) => Err(format!(
                "imagePullSecret {namespace}/{name} does not exist; create it with `kubectl \
                 create secret docker-registry {name} -n {namespace} ...`"
            )),
            Err(error) => Err(format!(
                "imagePullSecret {namespace}/{name} cannot be read: {error}"
            )),
        };
        secrets.push(secret);
    }
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_revision_spec_in_order() {
        let revision: Revision = serde_json::from_value(serde_json::json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "metadata": {"name": "a-00001"},
            "spec": {
                "containers": [{"image": "r.io/a:v1"}],
                "imagePullSecrets": [{"name": "b"}, {"name": ""}, {}, {"name": "a"}],
            },
        }))
        .unwrap();
        assert_eq!(names(&revision), ["b", "a"]);
    }

    #[test]
    fn debug_shows_no_data() {
        let secret = PullSecret {
            name: "pull".into(),
            type_: Some("kubernetes.io/dockerconfigjson".into()),
            data: BTreeMap::from([(".dockerconfigjson".into(), b"hunter2".to_vec())]),
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
