//! Read-modify-write of a status subresource with the object's resourceVersion, so the sync and
//! the controllers never clobber each other: a conflict re-reads and computes again.

use std::fmt::Debug;

use kube::api::PostParams;
use kube::{Api, Resource};

/// Conflicts tolerated in one write before leaving it to the next watch event.
const ATTEMPTS: usize = 5;

/// Writes the status `next` computes from the object (starting from `cached`, the watcher's
/// copy, when there is one). `next` returns `None` when nothing would change: no write.
/// Returns whether a write happened; a vanished object is not an error.
pub async fn write_status<K>(
    api: &Api<K>,
    name: &str,
    cached: Option<K>,
    next: impl Fn(&K) -> Option<K>,
) -> Result<bool, kube::Error>
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
            Err(error) => return Err(error),
        }
    }
    Ok(false)
}
