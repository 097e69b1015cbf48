//! One watch of every object of a kind, kept in one store and fanned out to the controllers
//! that read it or are triggered by it.
//!
//! Why: each watch of every object of a kind is one more copy of them all in memory, one more
//! decoding of every event here, and one more encoding of every event by the API server. With
//! 10,000 Services, three controllers each watching every Configuration held three copies.

use std::fmt::Debug;
use std::hash::Hash;

use futures::channel::mpsc;
use futures::{Stream, StreamExt, TryStreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::store_ready::StoreReady;

/// The changes of a shared watch, as one controller receives them.
pub(super) type Changes<K> = mpsc::UnboundedReceiver<Result<K, watcher::Error>>;
/// Where the watch sends one controller its changes.
pub(super) type ChangeSender<K> = mpsc::UnboundedSender<Result<K, watcher::Error>>;

/// Every `K`, in the store the one watch fills.
pub(super) struct Shared<K: Resource + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    pub store: Store<K>,
    /// Whether the store had its first list. Set by the watch itself, not by waiting on the
    /// store: a `Controller` reading the store waits on it too (see [`StoreReady::following`]).
    pub listed: StoreReady,
}

/// Every `K` (the store, filled by the one watch) and `N` streams of the objects it saw
/// applied or deleted, one per controller; and the future that runs the watch: poll it as
/// long as the controllers run, or the store stays empty and the streams silent. `observe` is
/// shown every watch event (relists included) before the store takes it, for an index kept
/// beside the store.
///
/// The streams are unbounded: a controller at its concurrency limit stops reading its
/// triggers, and a bounded stream would then stop the watch, and with it the store and every
/// other controller.
pub(super) fn watch_all<K, const N: usize>(
    api: Api<K>,
    observe: impl Fn(&watcher::Event<K>) + Send + 'static,
) -> (
    Shared<K>,
    [Changes<K>; N],
    impl Future<Output = ()> + Send + 'static,
)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store::<K>();
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let (listed_sender, listed) = watch::channel(false);
    // The reflector has applied an event to the store by the time it passes it on.
    let events = watcher(api, watcher::Config::default())
        .default_backoff()
        .inspect_ok(observe);
    let changes = reflector::reflector(writer, events)
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone) {
                listed_sender.send_replace(true);
            }
        })
        .touched_objects();
    let (senders, receivers) = channels();
    let shared = Shared {
        store,
        listed: StoreReady::following(listed),
    };
    (shared, receivers, fan_out(kind, changes, senders))
}

/// `N` unbounded channels: their senders, and their receivers.
pub(super) fn channels<K, const N: usize>() -> (Vec<ChangeSender<K>>, [Changes<K>; N]) {
    let mut senders = Vec::with_capacity(N);
    let receivers = std::array::from_fn(|_| {
        let (sender, receiver) = mpsc::unbounded();
        senders.push(sender);
        receiver
    });
    (senders, receivers)
}

/// Passes each change to every controller; a watch error is logged here (the watcher retries
/// with backoff), once rather than by each controller.
pub(super) async fn fan_out<K: Clone>(
    kind: String,
    changes: impl Stream<Item = Result<K, watcher::Error>>,
    senders: Vec<ChangeSender<K>>,
) {
    let mut changes = std::pin::pin!(changes);
    while let Some(change) = changes.next().await {
        match change {
            Ok(object) => {
                for sender in &senders {
                    // A controller that stopped has dropped its stream: the others go on.
                    let _ = sender.unbounded_send(Ok(object.clone()));
                }
            }
            Err(error) => tracing::warn!("watching {kind}s: {error}; retrying"),
        }
    }
}
