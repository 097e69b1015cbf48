//! The Ready wisp nodes, watched so this node knows its [`Share`] of revision-wide replica
//! floors (see [`super::spread`]); every revision is applied again when the share changes.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use kube::{Api, ResourceExt};
use wisp_api::nodes::{NODE_LABEL, is_ready};

use super::Shared;
use super::spread::Share;

/// Runs until dropped.
pub(super) async fn run(shared: Arc<Shared>) {
    let api: Api<Node> = Api::all(shared.client.clone());
    let selector = format!("{NODE_LABEL}=true");
    let mut events = watch(api, watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    let mut ready: BTreeSet<String> = BTreeSet::new();
    // A relist is gathered whole before it replaces the set.
    let mut listing: Option<BTreeSet<String>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listing = Some(BTreeSet::new()),
            Ok(Event::InitApply(node)) => {
                if let Some(listing) = listing.as_mut()
                    && is_ready(&node)
                {
                    listing.insert(node.name_any());
                }
                continue;
            }
            Ok(Event::InitDone) => ready = listing.take().unwrap_or_default(),
            Ok(Event::Apply(node)) => {
                if is_ready(&node) {
                    ready.insert(node.name_any());
                } else {
                    ready.remove(&node.name_any());
                }
            }
            Ok(Event::Delete(node)) => {
                ready.remove(&node.name_any());
            }
            Err(error) => {
                tracing::warn!(%error, "watching wisp Nodes");
                continue;
            }
        }
        let names: Vec<String> = ready.iter().cloned().collect();
        let share = Share::of(&shared.options.node_name, &names);
        shared.share.send_if_modified(|current| {
            let changed = *current != share;
            if changed {
                tracing::info!(
                    place = share.index,
                    nodes = share.count,
                    "this node's share of min-scale and initial-scale changed"
                );
                *current = share;
            }
            changed
        });
    }
}
