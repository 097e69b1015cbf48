//! The Revision controller: each Revision's conditions, image digest and replica sums from the
//! reports its nodes leave in `status.annotations` (see [`super::revision_status`] for the
//! rule). It is the only writer of those fields; nodes write only their own report, so no
//! node's view overwrites another's.

use std::sync::Arc;

use futures::StreamExt;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use wisp_api::knative::Revision;

use super::backoff::Backoff;
use super::nodes::{self, Nodes};
use super::{Error, RESYNC, log_outcome, meta, revision_status};

struct Context {
    client: Client,
    backoff: Backoff,
    nodes: Nodes,
}

/// Runs the controller until the future is dropped.
pub(super) async fn run(client: Client) {
    let (nodes, node_changes) = nodes::watch(client.clone());
    let context = Arc::new(Context {
        client: client.clone(),
        backoff: Backoff::default(),
        nodes,
    });
    Controller::new(
        Api::<Revision>::all(client.clone()),
        watcher::Config::default(),
    )
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
    if revision.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    context.nodes.wait_until_ready().await;
    let namespace = meta::namespace(revision.as_ref())?;
    let current = revision.status.clone().unwrap_or_default();
    let next = revision_status::next(
        &current,
        revision.metadata.generation,
        &context.nodes.view(),
        &meta::now(),
    );
    if next != current {
        let mut updated = revision.as_ref().clone();
        updated.status = Some(next);
        Api::<Revision>::namespaced(context.client.clone(), &namespace)
            .replace_status(&revision.name_any(), &PostParams::default(), &updated)
            .await?;
    }
    context.backoff.succeeded(revision.as_ref());
    Ok(Action::requeue(RESYNC))
}
