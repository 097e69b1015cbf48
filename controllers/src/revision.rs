//! The Revision controller: each Revision's conditions, image digest and replica sums from the
//! reports its nodes leave in `status.annotations` (see [`super::revision_status`] for the
//! rule). It is the only writer of those fields; nodes write only their own report, so no
//! node's view overwrites another's.
//!
//! It also pins a new Revision's registry image ([`super::image_pin`]): the tag resolved to a
//! digest once, recorded before any node loads the Revision. This is the place because it is
//! the one writer of a Revision's status that runs once per cluster (leader-elected), sees every
//! Revision as it is created, and already retries with backoff; Knative pins in its Revision
//! reconciler for the same reasons.

use std::sync::Arc;

use futures::StreamExt;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use wisp_api::knative::Revision;

use super::backoff::Backoff;
use super::image_pin::{self, Plan};
use super::image_resolver::{self, Pinned, Resolver};
use super::nodes::{self, Nodes};
use super::{Error, RESYNC, log_outcome, meta, revision_status};

struct Context {
    client: Client,
    backoff: Backoff,
    nodes: Nodes,
    resolver: Resolver,
    /// Consecutive failed pins per Revision, for the wait before the next attempt. Apart from
    /// `backoff`: a failed pin is a successful reconcile (it writes the failure into the
    /// status), which resets `backoff`, while the pin's own wait keeps growing.
    pin_backoff: Backoff,
    /// The controller's own view of every Revision, to forget the failures of deleted ones
    /// (a deletion reaches no reconcile).
    revisions: Store<Revision>,
}

/// Runs the controller until the future is dropped.
pub(super) async fn run(client: Client, registry: wisp_oci::Registry) {
    let (nodes, node_changes) = nodes::watch(client.clone());
    let controller = Controller::new(
        Api::<Revision>::all(client.clone()),
        watcher::Config::default(),
    );
    let context = Arc::new(Context {
        client: client.clone(),
        backoff: Backoff::default(),
        nodes,
        resolver: Resolver::new(registry),
        pin_backoff: Backoff::default(),
        revisions: controller.store(),
    });
    controller
        .with_config(super::controller_config())
        .reconcile_all_on(node_changes)
        .run(reconcile, error_policy, context)
        .for_each(|outcome| {
            log_outcome("Revision", outcome);
            futures::future::ready(())
        })
        .await;
}

fn error_policy(revision: Arc<Revision>, error: &Error, context: Arc<Context>) -> Action {
    context.backoff.failed(revision.as_ref(), error)
}

async fn reconcile(revision: Arc<Revision>, context: Arc<Context>) -> Result<Action, Error> {
    context
        .backoff
        .forget_deleted_when_grown(&context.revisions);
    context
        .pin_backoff
        .forget_deleted_when_grown(&context.revisions);
    if revision.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    context.nodes.wait_until_ready().await;
    let namespace = meta::namespace(revision.as_ref())?;
    let stored = revision.status.clone().unwrap_or_default();
    let now = meta::now();
    let mut current = stored.clone();
    let mut retry_pin = None;
    let mut pin_failure = None;
    if let Plan::Pin(image) = image_pin::plan(revision.as_ref()) {
        let credentials =
            image_resolver::pull_credentials(&context.client, &namespace, &revision, &image).await;
        match context
            .resolver
            .pin(&context.client, &image, &credentials)
            .await
        {
            Pinned::Pin(pin) => {
                current = image_pin::pinned(&current, &pin);
                context.pin_backoff.succeeded(revision.as_ref());
            }
            Pinned::Failed {
                reason,
                message,
                retry,
            } => {
                tracing::warn!(
                    revision = %revision.name_any(),
                    %namespace,
                    reason,
                    %message,
                    "cannot pin the revision's image"
                );
                let wait = context.pin_backoff.next_retry(revision.as_ref());
                retry_pin = retry.then_some(wait);
                pin_failure = Some((reason, message));
            }
        }
    }
    let next = match &pin_failure {
        Some((reason, message)) => revision_status::pin_failed(
            &current,
            revision.metadata.generation,
            reason,
            message,
            &now,
        ),
        None => revision_status::next(
            &current,
            revision.metadata.generation,
            &context.nodes.view(),
            &now,
        ),
    };
    if next != stored {
        let mut updated = revision.as_ref().clone();
        updated.status = Some(next);
        Api::<Revision>::namespaced(context.client.clone(), &namespace)
            .replace_status(&revision.name_any(), &PostParams::default(), &updated)
            .await?;
    }
    context.backoff.succeeded(revision.as_ref());
    Ok(Action::requeue(retry_pin.unwrap_or(RESYNC)))
}
