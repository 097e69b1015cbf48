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
use super::store_ready::StoreReady;

/// The wisp Nodes (a reflector's store).
#[derive(Clone)]
pub(crate) struct Nodes {
    store: Store<Node>,
    ready: StoreReady,
}

impl Nodes {
    fn of(store: Store<Node>) -> Self {
        Self {
            ready: StoreReady::of(&store),
            store,
        }
    }

    /// Waits for the first full list: before it, every node would look absent. Any number of
    /// reconciles may wait at once (see [`StoreReady`]).
    pub(crate) async fn wait_until_ready(&self) {
        self.ready.wait().await;
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
    (Nodes::of(store), changes)
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

    /// The restart race of issue 16: the Revision controller's reconciles start once the
    /// Revisions are listed, each on a task of its own, and wait for the Nodes' list. Every one
    /// of them must go on once it is there, not only the last to wait.
    #[tokio::test]
    async fn every_reconcile_waiting_for_the_node_list_goes_on_once_it_is_there() {
        let (store, mut writer) = reflector::store::<Node>();
        let nodes = Nodes::of(store);
        let reconciles: Vec<_> = (0..6)
            .map(|_| {
                let nodes = nodes.clone();
                tokio::spawn(async move {
                    nodes.wait_until_ready().await;
                    nodes.view()
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitApply(node("local", "True")));
        writer.apply_watcher_event(&watcher::Event::InitDone);
        for reconcile in reconciles {
            let view = tokio::time::timeout(std::time::Duration::from_secs(10), reconcile)
                .await
                .expect("a reconcile waiting for the Node list was never woken")
                .expect("the reconcile ran");
            assert!(view.ready.contains("local"));
        }
    }

    #[test]
    fn only_nodes_whose_ready_condition_is_true_are_ready() {
        let nodes = [node("a", "True"), node("b", "Unknown"), node("c", "False")];
        let view = view_of(nodes.iter());
        assert_eq!(view.ready.iter().collect::<Vec<_>>(), ["a"]);
        assert_eq!(view.known.len(), 3);
    }
}
