//! The wisp nodes as the controllers see them: which exist and which are Ready, kept by a watch
//! of the Nodes labelled [`wisp_api::nodes::NODE_LABEL`], with a stream that fires whenever
//! that view changes (so every Revision and Route is looked at again when a node joins, leaves
//! or lapses — and not on the nodes' other status changes).

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use wisp_api::nodes::{NODE_LABEL, is_ready};

use super::revision_status::NodeView;

/// The wisp Nodes (a reflector's store).
#[derive(Clone)]
pub(crate) struct Nodes {
    store: Store<Node>,
}

impl Nodes {
    /// Waits for the first full list: before it, every node would look absent.
    pub(crate) async fn wait_until_ready(&self) {
        // An error means the writer is gone: the controller is stopping.
        let _ = self.store.wait_until_ready().await;
    }

    /// Which nodes exist and which are Ready now.
    pub(crate) fn view(&self) -> NodeView {
        view_of(self.store.state().iter().map(AsRef::as_ref))
    }
}

/// The store, and the stream that fills it and yields `()` each time the [`NodeView`] changes
/// (poll it, e.g. as a controller's `reconcile_all_on`, or the store stays empty).
pub(crate) fn watch(client: Client) -> (Nodes, impl Stream<Item = ()> + Send + 'static) {
    let (store, writer) = reflector::store::<Node>();
    let reader = store.clone();
    let selector = format!("{NODE_LABEL}=true");
    let mut last: Option<NodeView> = None;
    let changes = reflector::reflector(
        writer,
        watcher(
            Api::<Node>::all(client),
            watcher::Config::default().labels(&selector),
        )
        .default_backoff(),
    )
    .filter_map(move |event| {
        let changed = match event {
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => false,
            Ok(_) => {
                let now = view_of(reader.state().iter().map(AsRef::as_ref));
                let changed = last.as_ref() != Some(&now);
                last = Some(now);
                changed
            }
            Err(error) => {
                tracing::warn!("watching wisp Nodes: {error}");
                false
            }
        };
        futures::future::ready(changed.then_some(()))
    });
    (Nodes { store }, changes)
}

fn view_of<'a>(nodes: impl Iterator<Item = &'a Node>) -> NodeView {
    let mut view = NodeView::default();
    for node in nodes {
        let name = node.name_any();
        if is_ready(node) {
            view.ready.insert(name.clone());
        }
        view.known.insert(name);
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ready: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": ready}]},
        }))
        .unwrap()
    }

    #[test]
    fn only_nodes_whose_ready_condition_is_true_are_ready() {
        let nodes = [node("a", "True"), node("b", "Unknown"), node("c", "False")];
        let view = view_of(nodes.iter());
        assert_eq!(view.ready.iter().collect::<Vec<_>>(), ["a"]);
        assert_eq!(view.known.len(), 3);
    }
}
