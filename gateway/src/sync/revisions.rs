//! Revisions: each one applied to the data plane by a task of its own (so a slow download never
//! holds up the others), and its status written back.
//!
//! One task per revision serialises everything done to it — apply, retry, remove — so a slow
//! apply can never land after the revision's deletion. The watcher loop owns the tasks and
//! hands each the latest object through a `watch` channel (intermediate versions are skipped).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use tokio::sync::watch;
use tokio::task::{Id, JoinSet};
use wisp_api::knative::Revision;
use wisp_api::revision_key::RevisionKey;

use super::convert::{Converted, convert, revision_key};
use super::spread;
use super::status::{self, Outcome};
use super::write::write_status;
use super::{Serving, Shared};
use crate::dataplane::RevisionConfig;

/// First wait before retrying a revision whose image could not be fetched; doubles up to
/// [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Watches Revisions in every namespace until dropped. Sets `loaded` once every Revision of
/// the first list has had its first attempt (applied or failed, status written).
pub(super) async fn run(shared: Arc<Shared>, loaded: watch::Sender<bool>) {
    let api: Api<Revision> = Api::all(shared.client.clone());
    let mut tasks = Tasks::default();
    // Waits on the first list's tasks; pending until that list is complete.
    let mut loading: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(std::future::pending());
    loop {
        let mut events = watcher::watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut listed: Option<HashSet<RevisionKey>> = None;
        loop {
            tokio::select! {
                event = events.next() => match event {
                    None => break,
                    Some(Ok(Event::Init)) => listed = Some(HashSet::new()),
                    Some(Ok(Event::InitApply(revision))) => {
                        if let Some(listed) = listed.as_mut() {
                            listed.insert(revision_key(&revision));
                        }
                        tasks.desire(&shared, revision_key(&revision), Some(revision));
                    }
                    Some(Ok(Event::Apply(revision))) => {
                        tasks.desire(&shared, revision_key(&revision), Some(revision));
                    }
                    Some(Ok(Event::Delete(revision))) => {
                        tasks.desire(&shared, revision_key(&revision), None);
                    }
                    Some(Ok(Event::InitDone)) => {
                        // A relist after a broken watch: what it no longer lists was deleted
                        // while the watch was down.
                        let listed = listed.take().unwrap_or_default();
                        for key in tasks.known().filter(|k| !listed.contains(k)).collect::<Vec<_>>() {
                            tasks.desire(&shared, key, None);
                        }
                        if !*loaded.borrow() {
                            loading = Box::pin(tasks.first_attempts(&listed));
                        }
                    }
                    Some(Err(error)) => tracing::warn!(%error, "watching Revisions"),
                },
                Some(finished) = tasks.set.join_next_with_id(), if !tasks.set.is_empty() => {
                    let id = match finished {
                        Ok((id, ())) => id,
                        Err(error) => {
                            tracing::error!(%error, "a revision's sync task failed");
                            error.id()
                        }
                    };
                    tasks.finished(&shared, id);
                }
                () = &mut loading => {
                    loading = Box::pin(std::future::pending());
                    loaded.send_replace(true);
                    tracing::debug!("every listed revision had its first attempt");
                }
            }
        }
        tokio::time::sleep(super::RESTART_DELAY).await;
    }
}

/// The per-revision tasks and the channels that feed them.
#[derive(Default)]
struct Tasks {
    /// One copy of each Revision, shared by its task and [`Shared`]'s cache.
    desired: HashMap<RevisionKey, watch::Sender<Option<Arc<Revision>>>>,
    /// Set by the revision's current task once its first attempt is over.
    attempted: HashMap<RevisionKey, watch::Receiver<bool>>,
    ids: HashMap<Id, RevisionKey>,
    set: JoinSet<()>,
}

impl Tasks {
    fn known(&self) -> impl Iterator<Item = RevisionKey> + '_ {
        self.desired
            .iter()
            .filter(|(_, sender)| sender.borrow().is_some())
            .map(|(key, _)| key.clone())
    }

    /// Resolves once each of `keys` had its first attempt (or its task ended: deleted).
    fn first_attempts(&self, keys: &HashSet<RevisionKey>) -> impl Future<Output = ()> + use<> {
        let waits: Vec<watch::Receiver<bool>> = keys
            .iter()
            .filter_map(|key| self.attempted.get(key).cloned())
            .collect();
        async move {
            for mut attempted in waits {
                // An error means the task is gone (its revision deleted): nothing to wait for.
                let _ = attempted.wait_for(|done| *done).await;
            }
        }
    }

    /// Hands the latest object (`None`: deleted) to the revision's task, starting one if needed.
    fn desire(&mut self, shared: &Arc<Shared>, key: RevisionKey, revision: Option<Revision>) {
        let revision = revision.map(Arc::new);
        shared.cache(&key, revision.as_ref());
        match self.desired.get(&key) {
            Some(sender) => {
                sender.send_replace(revision);
            }
            None if revision.is_some() => {
                let (sender, receiver) = watch::channel(revision);
                self.desired.insert(key.clone(), sender);
                self.spawn(shared, key, receiver);
            }
            None => {}
        }
    }

    fn spawn(
        &mut self,
        shared: &Arc<Shared>,
        key: RevisionKey,
        receiver: watch::Receiver<Option<Arc<Revision>>>,
    ) {
        let (attempted, attempted_receiver) = watch::channel(false);
        let handle = self.set.spawn(sync_revision(
            shared.clone(),
            key.clone(),
            receiver,
            attempted,
        ));
        self.attempted.insert(key.clone(), attempted_receiver);
        self.ids.insert(handle.id(), key);
    }

    /// A task ends once its revision is deleted and removed; should the revision have come
    /// back meanwhile, a new task takes it from the same channel.
    fn finished(&mut self, shared: &Arc<Shared>, id: Id) {
        let Some(key) = self.ids.remove(&id) else {
            return;
        };
        let Some(sender) = self.desired.get(&key) else {
            return;
        };
        if sender.borrow().is_none() {
            self.desired.remove(&key);
            self.attempted.remove(&key);
        } else {
            let mut receiver = sender.subscribe();
            receiver.mark_changed();
            self.spawn(shared, key, receiver);
        }
    }
}

/// What the task last did with its revision.
struct Attempt {
    /// The Revision object's uid: a revision deleted and recreated under the same name is a
    /// new one (its Pods are owned by the new uid), even with the same spec.
    uid: Option<String>,
    converted: Result<Converted, super::failure::Failure>,
    outcome: Outcome,
}

/// What to do again, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Retry {
    after: Duration,
    /// Apply the revision again (a transient failure), not only write its status.
    apply: bool,
}

/// Keeps one revision applied as its latest object says, until it is deleted. `attempted` is
/// set once the first attempt is over.
async fn sync_revision(
    shared: Arc<Shared>,
    key: RevisionKey,
    mut desired: watch::Receiver<Option<Arc<Revision>>>,
    attempted: watch::Sender<bool>,
) {
    let mut last: Option<Attempt> = None;
    let mut backoff = FIRST_RETRY;
    let mut share = shared.share.subscribe();
    loop {
        let current = desired.borrow_and_update().clone();
        let Some(revision) = current else {
            if Box::pin(shared.data_plane.remove_revision(&key)).await {
                tracing::info!(revision = %key, "revision removed");
            }
            shared.stop_serving(&key);
            return;
        };
        // One task per revision waits here for most of its life, holding whatever its future
        // holds: the attempt's state machine is boxed for the attempt's length only (kept in
        // the task it made each task ~21 KB).
        let retry = Box::pin(reconcile(&shared, &key, &revision, &mut last, &mut backoff)).await;
        attempted.send_replace(true);
        tokio::select! {
            changed = desired.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            // Another node joined or left: this node's share of the replica floors moved.
            changed = share.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = sleep_or_forever(retry.map(|retry| retry.after)) => {
                if retry.is_some_and(|retry| retry.apply) {
                    // Forget the attempt, so the unchanged revision is applied again.
                    last = None;
                }
            }
        }
    }
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

/// The retry after an attempt: the apply again after a transient failure, else the status
/// write again when it did not get through; `None` once there is nothing left to do.
fn retry_after(outcome: &Outcome, status_written: bool, backoff: &mut Duration) -> Option<Retry> {
    let apply = matches!(outcome, Outcome::Failed(failure) if failure.transient);
    if !apply && status_written {
        *backoff = FIRST_RETRY;
        return None;
    }
    let after = *backoff;
    *backoff = (*backoff * 2).min(MAX_RETRY);
    Some(Retry { after, apply })
}

/// Applies the revision unless this very spec was already attempted, then brings its status in
/// line. Returns what to try again (a transient failure, a status write that did not get
/// through) and when, if ever.
async fn reconcile(
    shared: &Arc<Shared>,
    key: &RevisionKey,
    revision: &Revision,
    last: &mut Option<Attempt>,
    backoff: &mut Duration,
) -> Option<Retry> {
    if super::convert::awaiting_pin(revision) {
        // The leader records the pin in the status: that change wakes this task again.
        tracing::debug!(revision = %key, "waiting for the leader to pin the revision's image");
        return None;
    }
    let share = *shared.share.borrow();
    let converted = convert(revision, &shared.options.image_base_dir).map(|mut converted| {
        converted.config.annotations = spread::spread(&converted.config.annotations, share);
        converted
    });
    let converted = match converted {
        Ok(mut converted) => {
            // The Secrets are read again only for a new attempt: not on every status change of
            // a revision that already runs (a transient failure forgets the attempt, so a
            // Secret created after a refused pull is read on the retry).
            let kept = last.as_ref().and_then(|attempt| match &attempt.converted {
                Ok(previous)
                    if attempt.uid == revision.uid()
                        && Converted {
                            config: RevisionConfig {
                                pull_credentials: previous.config.pull_credentials.clone(),
                                ..converted.config.clone()
                            },
                            ..converted.clone()
                        } == *previous =>
                {
                    Some(previous.config.pull_credentials.clone())
                }
                _ => None,
            });
            converted.config.pull_credentials = match kept {
                Some(credentials) => credentials,
                None => pull_credentials(shared, revision, &converted).await,
            };
            Ok(converted)
        }
        Err(failure) => Err(failure),
    };
    let generation = revision.metadata.generation;
    let uid = revision.uid();
    let repeat = last
        .as_ref()
        .is_some_and(|attempt| attempt.converted == converted && attempt.uid == uid);
    if !repeat {
        let outcome = match &converted {
            Err(failure) => Outcome::Failed(failure.clone()),
            // No report until the apply has an outcome: a "Deploying" report first told the
            // controllers nothing the absence of one does not (they say the node is still
            // fetching either way), and cost every new revision a status write, often a
            // conflicting one, while the Revision controller wrote its first status too.
            Ok(converted) => apply(shared, key, revision, converted).await,
        };
        *last = Some(Attempt {
            uid,
            converted,
            outcome,
        });
    }
    let attempt = last.as_ref()?;
    let container_name = attempt
        .converted
        .as_ref()
        .map_or(wisp_api::knative::USER_CONTAINER, |c| {
            c.container_name.as_str()
        })
        .to_owned();
    let outcome = attempt.outcome.clone();
    let node = shared.options.node_name.as_str();
    let written = write_revision_status(shared, revision, move |current| {
        status::applied(current, node, generation, &container_name, &outcome)
    })
    .await;
    retry_after(&attempt.outcome, written, backoff)
}

/// The credentials the revision's imagePullSecrets give for its registry image (anonymous for
/// paths and URLs, and without a match). Each Secret is read with one `get`, the only access
/// the node identity has to Secrets; one that is missing or no docker config is logged and
/// passed over, as the kubelet does. Never logs a secret.
async fn pull_credentials(
    shared: &Shared,
    revision: &Revision,
    converted: &Converted,
) -> wisp_oci::Credentials {
    let names = wisp_api::pull_secrets::names(revision);
    let reference = match wisp_runtime::ArtifactSource::parse(&converted.config.component) {
        wisp_runtime::ArtifactSource::Oci(text) => wisp_oci::ImageReference::parse(&text).ok(),
        _ => None,
    };
    let (Some(reference), false) = (reference, names.is_empty()) else {
        return wisp_oci::Credentials::Anonymous;
    };
    let namespace = &converted.config.key.namespace;
    let mut configs = Vec::new();
    for secret in wisp_api::pull_secrets::read(&shared.client, namespace, &names).await {
        match secret {
            Ok(secret) => {
                match wisp_oci::DockerConfig::from_secret(secret.type_.as_deref(), &secret.data) {
                    Ok(config) => configs.push(config),
                    Err(error) => tracing::warn!(
                        %namespace, secret = %secret.name, %error, "imagePullSecret passed over"
                    ),
                }
            }
            Err(problem) => tracing::warn!("{problem}; pulling without it"),
        }
    }
    wisp_oci::DockerConfig::first_match(&configs, &reference)
}

async fn apply(
    shared: &Arc<Shared>,
    key: &RevisionKey,
    revision: &Revision,
    converted: &Converted,
) -> Outcome {
    match shared
        .data_plane
        .apply_revision(converted.config.clone())
        .await
    {
        Ok(state) => {
            shared.start_serving(
                key,
                Serving {
                    uid: revision.uid().unwrap_or_default(),
                    service: converted.config.service.clone(),
                    configuration: converted.config.configuration.clone(),
                    image: converted.image.clone(),
                    container_name: converted.container_name.clone(),
                },
            );
            match probe(shared, key, converted).await {
                Some(failure) => Outcome::Failed(failure),
                None => Outcome::Ready {
                    digest: state.digest,
                },
            }
        }
        Err(error) => {
            tracing::warn!(revision = %key, %error, "revision cannot run");
            Outcome::Failed(super::failure::Failure::data_plane(
                &converted.image,
                &error,
            ))
        }
    }
}

/// Attempts of a readiness probe before the revision is reported failed (Knative's default
/// `failureThreshold`); the revision's retry backoff then probes again later.
const PROBE_ATTEMPTS: usize = 3;
const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// The revision's HTTP readiness probe, when it declares one: `None` once it answers 2xx, the
/// failure after [`PROBE_ATTEMPTS`] that do not.
async fn probe(
    shared: &Shared,
    key: &RevisionKey,
    converted: &Converted,
) -> Option<super::failure::Failure> {
    let path = converted.readiness_path.as_deref()?;
    let mut last = (0, String::from("the revision is gone"));
    for attempt in 0..PROBE_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
        match shared.data_plane.probe(key, path).await {
            Some((status, _)) if status.is_success() => return None,
            Some((status, body)) => last = (status.as_u16(), body),
            None => return Some(super::failure::Failure::probe(path, last.0, &last.1)),
        }
    }
    tracing::warn!(revision = %key, path, status = last.0, "readiness probe failed");
    Some(super::failure::Failure::probe(path, last.0, &last.1))
}

/// Writes the status `next` computes from the stored one, when it differs. Returns whether the
/// stored status now says it (written, nothing to change, or the revision is gone); `false`
/// (the API down, conflicts) is for the caller to retry.
async fn write_revision_status(
    shared: &Shared,
    revision: &Revision,
    next: impl Fn(&wisp_api::knative::RevisionStatus) -> wisp_api::knative::RevisionStatus,
) -> bool {
    let key = revision_key(revision);
    let api: Api<Revision> = Api::namespaced(shared.client.clone(), &key.namespace);
    let cached = shared.cached(&key).or_else(|| Some(revision.clone()));
    let result = write_status(&api, &key.name, cached, |object: &Revision| {
        let current = object.status.clone().unwrap_or_default();
        let updated = next(&current);
        (updated != current).then(|| Revision {
            status: Some(updated),
            ..object.clone()
        })
    })
    .await;
    match result {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(revision = %key, %error, "cannot write the revision's status; retrying");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::failure::Failure;

    fn failed(transient: bool) -> Outcome {
        Outcome::Failed(Failure {
            reason: "ContainerMissing",
            message: "gone".into(),
            transient,
        })
    }

    #[test]
    fn a_status_write_that_did_not_get_through_is_retried_with_backoff() {
        let ready = Outcome::Ready {
            digest: "sha256:0".into(),
        };
        let mut backoff = FIRST_RETRY;
        let first = retry_after(&ready, false, &mut backoff);
        assert_eq!(
            first,
            Some(Retry {
                after: FIRST_RETRY,
                apply: false
            })
        );
        let second = retry_after(&ready, false, &mut backoff);
        assert_eq!(second.map(|r| r.after), Some(FIRST_RETRY * 2));
        // Once written, nothing is left to do and the backoff starts over.
        assert_eq!(retry_after(&ready, true, &mut backoff), None);
        assert_eq!(backoff, FIRST_RETRY);
        // A permanent failure, once reported, is not retried either.
        assert_eq!(retry_after(&failed(false), true, &mut backoff), None);
        assert!(retry_after(&failed(false), false, &mut backoff).is_some_and(|r| !r.apply));
    }

    #[test]
    fn a_transient_failure_is_applied_again_up_to_the_longest_wait() {
        let mut backoff = FIRST_RETRY;
        for _ in 0..20 {
            let retry = retry_after(&failed(true), true, &mut backoff).unwrap();
            assert!(retry.apply);
            assert!(retry.after <= MAX_RETRY);
        }
        assert_eq!(backoff, MAX_RETRY);
    }
}
