//! Read-modify-write of a status subresource with the object's resourceVersion, so the sync and
//! the controllers never clobber each other: a conflict re-reads and computes again.

use std::fmt::Debug;

use kube::api::PostParams;
use kube::{Api, Resource};

/// Conflicts tolerated in one write before giving up on it (the caller retries later).
const ATTEMPTS: usize = 5;

/// Why a status write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The API refused or could not be reached.
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// Every attempt met a newer resourceVersion: other writers kept winning, so the status
    /// may still be stale and the write must be tried again.
    #[error("status still conflicting after {0} attempts")]
    Conflicts(usize),
}

/// Writes the status `next` computes from the object (starting from `cached`, the watcher's
/// copy, when there is one). `next` returns `None` when nothing would change: no write.
/// Returns whether a write happened (`false`: nothing to change, or the object is gone); an
/// error means the stored status may still differ from what `next` wants.
pub async fn write_status<K>(
    api: &Api<K>,
    name: &str,
    cached: Option<K>,
    next: impl Fn(&K) -> Option<K>,
) -> Result<bool, WriteError>
where
    K: Resource
        + Clone
        + Debug
        + k8s_openapi::serde::Serialize
        + k8s_openapi::serde::de::DeserializeOwned,
{
    let mut current = cached;
    for _ in 0..ATTEMPTS {
        let object = match current.take() {
            Some(object) => object,
            None => match api.get_opt(name).await? {
                Some(object) => object,
                None => return Ok(false),
            },
        };
        let Some(updated) = next(&object) else {
            return Ok(false);
        };
        match api
            .replace_status(name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(false),
            Err(error) => return Err(error.into()),
        }
    }
    Err(WriteError::Conflicts(ATTEMPTS))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::PostParams;
    use serde_json::json;
    use wisp_api::knative::Revision;
    use wisp_control::apiserver::{ApiServer, ApiServerConfig};

    use super::*;

    async fn server() -> (ApiServer, kube::Client, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let config = ApiServerConfig::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
        let server = ApiServer::start(config).await.unwrap();
        let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        (server, client, dir)
    }

    #[tokio::test]
    async fn conflicts_that_outlast_the_attempts_are_an_error_not_a_skip() {
        let (server, client, _dir) = server().await;
        let api: Api<Revision> = Api::namespaced(client, "default");
        let revision: Revision = serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "metadata": {"name": "a-00001", "namespace": "default"},
            "spec": {"containers": [{"image": "a.wasm"}]},
        }))
        .unwrap();
        let created = api.create(&PostParams::default(), &revision).await.unwrap();
        let stale = created.metadata.resource_version.clone();
        // Move the object on: every write from the stale version now conflicts.
        let mut moved = created.clone();
        moved.status = Some(wisp_api::knative::RevisionStatus {
            actual_replicas: Some(1),
            ..Default::default()
        });
        api.replace_status("a-00001", &PostParams::default(), &moved)
            .await
            .unwrap();

        let always_stale = |object: &Revision| {
            let mut next = object.clone();
            next.metadata.resource_version = stale.clone();
            next.status = Some(wisp_api::knative::RevisionStatus {
                actual_replicas: Some(2),
                ..Default::default()
            });
            Some(next)
        };
        let result = write_status(&api, "a-00001", None, always_stale).await;
        assert!(
            matches!(result, Err(WriteError::Conflicts(ATTEMPTS))),
            "{result:?}"
        );

        // Nothing to change and a vanished object are not errors; a write is a write.
        let unchanged = write_status(&api, "a-00001", None, |_: &Revision| None).await;
        assert!(matches!(unchanged, Ok(false)), "{unchanged:?}");
        let gone: Api<ConfigMap> = Api::namespaced(api.clone().into_client(), "default");
        let missing = write_status(&gone, "absent", None, |c: &ConfigMap| Some(c.clone())).await;
        assert!(matches!(missing, Ok(false)), "{missing:?}");
        let fresh = |object: &Revision| {
            let mut next = object.clone();
            next.status = Some(wisp_api::knative::RevisionStatus {
                actual_replicas: Some(3),
                ..Default::default()
            });
            Some(next)
        };
        assert!(matches!(
            write_status(&api, "a-00001", None, fresh).await,
            Ok(true)
        ));
        server.shutdown().await;
    }
}
