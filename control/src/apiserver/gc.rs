//! Garbage collection (reference §2.7): when an object is removed its dependents — objects
//! whose `ownerReferences` name its uid — are deleted too (or, with the `Orphan` policy, let
//! go), and a deleted namespace is emptied before it disappears. Runs as one background task fed
//! by the write path, so a delete answers at once, as with the real server's Background policy.

use serde_json::Value;
use tokio::sync::mpsc;

use crate::registry::{self, Resource};
use crate::store::{Outcome, StoreError};

use super::metadata::{is_terminating, meta_str};
use super::objects::DeleteOptions;
use super::objects::{Objects, Preconditions, key};
use super::status::ApiError;

/// `propagationPolicy` of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Delete dependents after the owner is gone (the default for custom resources).
    #[default]
    Background,
    /// Kubernetes keeps the owner until its dependents are gone; here the dependents are
    /// deleted right after it, which ends in the same state.
    Foreground,
    /// Leave dependents, removing their reference to the owner.
    Orphan,
}

impl Propagation {
    /// Parses `propagationPolicy` (absent = Background).
    pub fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        match text {
            None | Some("" | "Background") => Ok(Self::Background),
            Some("Foreground") => Ok(Self::Foreground),
            Some("Orphan") => Ok(Self::Orphan),
            Some(other) => Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \
                 \"Background\", \"Foreground\", \"Orphan\""
            ))),
        }
    }
}

/// Work for the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// An object is gone: collect what it owned.
    Removed {
        /// Its uid.
        uid: String,
        /// Its namespace (`""` for a cluster-scoped owner, whose dependents may be anywhere).
        namespace: String,
        /// What to do with dependents.
        propagation: Propagation,
    },
    /// A namespace is terminating: delete its contents, then it.
    Namespace(String),
}

/// The write path's handle on the collector: cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct Collector {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Collector {
    /// A collector and the queue [`run`] works through.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Job>) {
        let (jobs, queue) = mpsc::unbounded_channel();
        (Self { jobs }, queue)
    }

    /// Reports that `object` of `resource` was removed.
    pub fn removed(&self, resource: &Resource, object: &Value, propagation: Propagation) {
        let Some(uid) = meta_str(object, "uid") else {
            return;
        };
        let namespace = if resource.namespaced {
            meta_str(object, "namespace").unwrap_or("")
        } else {
            ""
        };
        // A send fails only once the collector has stopped, i.e. at shutdown; the start-up
        // sweep collects whatever that left behind.
        let _ = self.jobs.send(Job::Removed {
            uid: uid.to_owned(),
            namespace: namespace.to_owned(),
            propagation,
        });
    }

    /// Reports that namespace `name` started terminating.
    pub fn terminate_namespace(&self, name: &str) {
        let _ = self.jobs.send(Job::Namespace(name.to_owned()));
    }
}

/// Works through the queue until every [`Collector`] is dropped. First sweeps what a previous
/// run may have left: terminating namespaces and dependents whose owners are all gone. A step
/// that fails (the store busy, a conflict with a concurrent write) is tried again later, with a
/// growing delay, until it succeeds: dependents are never left behind by one bad moment.
pub async fn run(objects: Objects, mut queue: mpsc::UnboundedReceiver<Job>) {
    if let Err(error) = sweep(&objects).await {
        tracing::warn!(%error, "garbage collection sweep at start-up failed");
    }
    let mut retries = Retries::default();
    loop {
        let (job, attempt) = tokio::select! {
            next = queue.recv() => match next {
                Some(job) => (job, 0),
                None => return,
            },
            () = retries.due() => match retries.pop() {
                Some(retry) => retry,
                None => continue,
            },
        };
        let result = match &job {
            Job::Removed {
                uid,
                namespace,
                propagation,
            } => collect_dependents(&objects, uid, namespace, *propagation).await,
            Job::Namespace(name) => empty_namespace(&objects, name).await,
        };
        if let Err(error) = result {
            let delay = retry_delay(attempt);
            tracing::warn!(%error, ?job, attempt, ?delay, "garbage collection step failed; retrying");
            retries.push(job, attempt + 1, delay);
        }
    }
}

/// How long to wait before trying a failed step again: 100 ms doubling to 30 s.
fn retry_delay(attempt: u32) -> std::time::Duration {
    let millis = 100u64.saturating_mul(1u64 << attempt.min(20));
    std::time::Duration::from_millis(millis.min(30_000))
}

/// Failed steps waiting for their next attempt, soonest first.
#[derive(Default)]
struct Retries {
    waiting: Vec<(tokio::time::Instant, Job, u32)>,
}

impl Retries {
    fn push(&mut self, job: Job, attempt: u32, delay: std::time::Duration) {
        self.waiting
            .push((tokio::time::Instant::now() + delay, job, attempt));
        self.waiting.sort_by_key(|(at, ..)| *at);
    }

    /// Resolves when the soonest retry is due; never, with none waiting.
    async fn due(&self) {
        match self.waiting.first() {
            Some((at, ..)) => tokio::time::sleep_until(*at).await,
            None => std::future::pending().await,
        }
    }

    /// The soonest retry, if it is due.
    fn pop(&mut self) -> Option<(Job, u32)> {
        let due = self
            .waiting
            .first()
            .is_some_and(|(at, ..)| *at <= tokio::time::Instant::now());
        due.then(|| {
            let (_, job, attempt) = self.waiting.remove(0);
            (job, attempt)
        })
    }
}

/// Deletes by the garbage collector name the uid they mean, so an object deleted and created
/// again under the same name in the meantime is left alone.
fn uid_precondition(object: &Value) -> Preconditions {
    Preconditions {
        uid: meta_str(object, "uid").map(str::to_owned),
        resource_version: None,
    }
}

/// Whether a collector delete found its object already gone or replaced.
fn gone(error: &ApiError) -> bool {
    error.reason == "NotFound" || error.reason == "Conflict"
}

/// Resources that can hold dependents or namespace content.
fn namespaced_resources() -> impl Iterator<Item = &'static Resource> {
    registry::resources()
        .iter()
        .filter(|resource| resource.namespaced)
}

fn namespaces() -> Result<&'static Resource, ApiError> {
    registry::lookup("", "v1", "namespaces")
        .ok_or_else(|| ApiError::internal("the namespaces resource is not registered"))
}

fn owner_uids(object: &Value) -> Vec<&str> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|owners| {
            owners
                .iter()
                .filter_map(|owner| owner.get("uid").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

async fn collect_dependents(
    objects: &Objects,
    uid: &str,
    namespace: &str,
    propagation: Propagation,
) -> Result<(), ApiError> {
    let scope_namespace = (!namespace.is_empty()).then_some(namespace);
    let dependents = objects
        .store()
        .dependents(uid, scope_namespace)
        .await
        .map_err(|error| ApiError::internal(format!("reading the dependents of {uid}: {error}")))?;
    for (key, dependent) in &dependents {
        let Some(resource) = registry::resources()
            .iter()
            .find(|resource| resource.namespaced && resource.store_resource() == key.resource)
        else {
            continue;
        };
        let name = meta_str(dependent, "name").unwrap_or_default();
        let dependent_namespace = meta_str(dependent, "namespace");
        let sole_owner = owner_uids(dependent).len() == 1;
        let uid_of_dependent = uid_precondition(dependent);
        let result = if propagation == Propagation::Orphan || !sole_owner {
            release(objects, resource, dependent_namespace, name, uid).await
        } else {
            objects
                .delete(
                    resource,
                    dependent_namespace,
                    name,
                    DeleteOptions {
                        preconditions: uid_of_dependent,
                        ..DeleteOptions::default()
                    },
                )
                .await
                .map(drop)
        };
        match result {
            Ok(()) => {}
            // Gone, or replaced by a new object of the same name: not ours to collect.
            Err(error) if gone(&error) => {}
            Err(error) => return Err(error),
        }
    }
    if !namespace.is_empty() {
        let namespace_object = objects.get(namespaces()?, None, namespace).await;
        if namespace_object.is_ok_and(|object| is_terminating(&object)) {
            empty_namespace(objects, namespace).await?;
        }
    }
    Ok(())
}

/// Drops `owner_uid` from a dependent's ownerReferences (orphaning, or one owner of several
/// going away).
async fn release(
    objects: &Objects,
    resource: &'static Resource,
    namespace: Option<&str>,
    name: &str,
    owner_uid: &str,
) -> Result<(), ApiError> {
    let owner_uid = owner_uid.to_owned();
    let outcome = objects
        .store()
        .mutate(&key(resource, namespace, name), move |current| {
            let Some(current) = current else {
                return Ok::<_, StoreError>(None);
            };
            let mut released = current.clone();
            if let Some(owners) = released
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                owners.retain(|owner| owner.get("uid").and_then(Value::as_str) != Some(&owner_uid));
            }
            Ok(Some(released))
        })
        .await;
    match outcome {
        Ok(_) => Ok(()),
        Err(error) => Err(ApiError::from_store(resource, name, error)),
    }
}

/// Deletes everything in a terminating namespace; once nothing is left, the namespace itself.
/// Objects held by finalizers keep it Terminating until they go (their removal re-runs this).
async fn empty_namespace(objects: &Objects, name: &str) -> Result<(), ApiError> {
    let mut remaining = 0;
    for resource in namespaced_resources() {
        let (items, _) = objects.list(resource, Some(name), None).await?;
        for item in &items {
            remaining += 1;
            if is_terminating(item) {
                continue;
            }
            let object_name = meta_str(item, "name").unwrap_or_default();
            match objects
                .delete(
                    resource,
                    Some(name),
                    object_name,
                    DeleteOptions {
                        preconditions: uid_precondition(item),
                        ..DeleteOptions::default()
                    },
                )
                .await
            {
                Ok(super::objects::Deleted::Removed(_)) => remaining -= 1,
                Ok(super::objects::Deleted::Pending(_)) => {}
                Err(error) if gone(&error) => remaining -= 1,
                Err(error) => return Err(error),
            }
        }
    }
    if remaining > 0 {
        return Ok(());
    }
    let namespaces = namespaces()?;
    let outcome = objects
        .store()
        .mutate(&key(namespaces, None, name), |current| {
            Ok::<_, StoreError>(match current {
                Some(namespace) if is_terminating(namespace) => None,
                other => other.cloned(),
            })
        })
        .await
        .map_err(|error| ApiError::from_store(namespaces, name, error))?;
    if let Outcome::Deleted(namespace) = outcome {
        tracing::debug!(namespace = name, "namespace deleted");
        drop(namespace);
    }
    Ok(())
}

/// Start-up: resume namespace terminations and collect dependents whose owners are all gone
/// (a crash between a delete and its collection leaves such orphans).
async fn sweep(objects: &Objects) -> Result<(), ApiError> {
    let namespaces = namespaces()?;
    let (all_namespaces, _) = objects.list(namespaces, None, None).await?;
    let mut uids = std::collections::HashSet::new();
    let mut everything = Vec::new();
    for resource in registry::resources() {
        let (items, _) = objects.list(resource, None, None).await?;
        uids.extend(
            items
                .iter()
                .filter_map(|item| meta_str(item, "uid").map(str::to_owned)),
        );
        everything.push((resource, items));
    }
    for (resource, items) in &everything {
        for item in items {
            let owners = owner_uids(item);
            if owners.is_empty() || owners.iter().any(|uid| uids.contains(*uid)) {
                continue;
            }
            let name = meta_str(item, "name").unwrap_or_default();
            let result = objects
                .delete(
                    resource,
                    meta_str(item, "namespace"),
                    name,
                    DeleteOptions {
                        preconditions: uid_precondition(item),
                        ..DeleteOptions::default()
                    },
                )
                .await;
            if let Err(error) = result
                && !gone(&error)
            {
                return Err(error);
            }
        }
    }
    for namespace in all_namespaces.iter().filter(|ns| is_terminating(ns)) {
        empty_namespace(objects, meta_str(namespace, "name").unwrap_or_default()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_thirty_seconds() {
        let delays: Vec<u64> = (0..12).map(|a| retry_delay(a).as_millis() as u64).collect();
        assert_eq!(delays[..4], [100, 200, 400, 800]);
        assert_eq!(delays[11], 30_000);
        assert_eq!(retry_delay(u32::MAX).as_millis(), 30_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_step_comes_back_when_due_soonest_first() {
        let mut retries = Retries::default();
        let later = Job::Namespace("later".into());
        let sooner = Job::Namespace("sooner".into());
        retries.push(later.clone(), 3, std::time::Duration::from_secs(2));
        retries.push(sooner.clone(), 1, std::time::Duration::from_secs(1));
        assert_eq!(retries.pop(), None, "nothing is due yet");
        retries.due().await;
        assert_eq!(retries.pop(), Some((sooner, 1)));
        assert_eq!(retries.pop(), None);
        retries.due().await;
        assert_eq!(retries.pop(), Some((later, 3)));
        let none = tokio::time::timeout(std::time::Duration::from_secs(3600), retries.due()).await;
        assert!(none.is_err(), "with nothing waiting, never due");
    }
}
