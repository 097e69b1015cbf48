//! Every Revision in memory, for the Configuration and Route controllers, and the stream of
//! the changes that matter to them.
//!
//! Why: a controller that LISTs a configuration's revisions on each reconcile makes the API
//! server read and parse every Revision of the namespace per call, and the data plane rewrites
//! a revision's replica counts up to once a second, each a Revision event that re-ran both
//! reconciles. At 10,000 Services that was most of a core. A reflector's store with an index by
//! configuration answers the same question from memory in time independent of the number of
//! revisions, and [`Significance`] passes on only the events that change something a
//! controller reads (anything but the replica counts and the resourceVersion).

use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use wisp_api::knative::Revision;
use wisp_api::knative::labels;

use super::shared_watch::{Changes, channels, fan_out};
use super::store_ready::StoreReady;

/// Every Revision (the reflector's store) with an index of them by configuration.
#[derive(Clone)]
pub(super) struct RevisionCache {
    store: Store<Revision>,
    ready: StoreReady,
    index: Arc<Mutex<ByConfiguration>>,
}

impl RevisionCache {
    /// Waits for the first full list (a reconcile before it would see no revisions at all);
    /// the watch that fills the cache is the controller's own trigger, polled meanwhile. Any
    /// number of reconciles may wait at once (see [`StoreReady`]); if the writer is gone, the
    /// controller is stopping and reads what it has.
    pub(super) async fn wait_until_ready(&self) {
        self.ready.wait().await;
    }

    /// Revision `name` of `namespace`, if the cache has it.
    pub(super) fn get(&self, namespace: &str, name: &str) -> Option<Arc<Revision>> {
        self.store.get(&ObjectRef::new(name).within(namespace))
    }

    /// The revisions in `namespace` labelled as made by `configuration`.
    pub(super) fn of_configuration(
        &self,
        namespace: &str,
        configuration: &str,
    ) -> Vec<Arc<Revision>> {
        let names = lock(&self.index).names(namespace, configuration);
        names
            .into_iter()
            .filter_map(|name| self.store.get(&ObjectRef::new(&name).within(namespace)))
            .collect()
    }
}

/// Significant changes, as one controller receives them.
pub(super) type RevisionChanges = Changes<Revision>;

/// The cache, one stream of its significant changes per controller (`N` of them, e.g. as each
/// controller's trigger), and the future that runs the one watch behind them all: poll it as
/// long as the controllers run, or the cache stays empty and the streams silent.
///
/// One watch for all, as [`super::shared_watch`] says why (10,000 Services make 40,000
/// Revision events and hold 10,000 Revisions); unbounded streams for the same reason.
pub(super) fn watch<const N: usize>(
    client: Client,
) -> (
    RevisionCache,
    [RevisionChanges; N],
    impl Future<Output = ()> + Send + 'static,
) {
    let (store, writer) = reflector::store::<Revision>();
    let index = Arc::new(Mutex::new(ByConfiguration::default()));
    let indexer = index.clone();
    let mut significance = Significance::default();
    let changes = reflector::reflector(
        writer,
        watcher(Api::<Revision>::all(client), watcher::Config::default()).default_backoff(),
    )
    .filter_map(move |event| {
        if let Ok(event) = &event {
            lock(&indexer).apply(event);
        }
        futures::future::ready(significance.admit(event))
    });
    let (senders, receivers) = channels();
    let ready = StoreReady::of(&store);
    (
        RevisionCache {
            store,
            ready,
            index,
        },
        receivers,
        fan_out("Revision".to_owned(), changes, senders),
    )
}

fn lock(index: &Mutex<ByConfiguration>) -> std::sync::MutexGuard<'_, ByConfiguration> {
    index.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `(namespace, configuration)` → revision names, kept from the same watch events as the
/// reflector's store (a relist builds a new index and swaps it in at its end, as the store does).
#[derive(Default)]
pub(super) struct ByConfiguration {
    live: Index,
    relisting: Option<Index>,
}

#[derive(Default)]
struct Index {
    names: HashMap<(String, String), BTreeSet<String>>,
    /// `(namespace, name)` → its configuration, to unindex it when it changes or goes.
    configuration_of: HashMap<(String, String), String>,
}

impl Index {
    fn insert(&mut self, revision: &Revision) {
        self.remove(revision);
        let (Some(namespace), Some(configuration)) = (
            revision.namespace(),
            revision.labels().get(labels::CONFIGURATION).cloned(),
        ) else {
            return;
        };
        let name = revision.name_any();
        self.names
            .entry((namespace.clone(), configuration.clone()))
            .or_default()
            .insert(name.clone());
        self.configuration_of
            .insert((namespace, name), configuration);
    }

    fn remove(&mut self, revision: &Revision) {
        let namespace = revision.namespace().unwrap_or_default();
        let key = (namespace, revision.name_any());
        if let Some(configuration) = self.configuration_of.remove(&key) {
            let slot = (key.0, configuration);
            if let Some(names) = self.names.get_mut(&slot) {
                names.remove(&key.1);
                if names.is_empty() {
                    self.names.remove(&slot);
                }
            }
        }
    }
}

impl ByConfiguration {
    pub(super) fn apply(&mut self, event: &watcher::Event<Revision>) {
        match event {
            watcher::Event::Apply(revision) => self.live.insert(revision),
            watcher::Event::Delete(revision) => self.live.remove(revision),
            watcher::Event::Init => self.relisting = Some(Index::default()),
            watcher::Event::InitApply(revision) => {
                self.relisting
                    .get_or_insert_with(Index::default)
                    .insert(revision);
            }
            watcher::Event::InitDone => {
                if let Some(relisted) = self.relisting.take() {
                    self.live = relisted;
                }
            }
        }
    }

    pub(super) fn names(&self, namespace: &str, configuration: &str) -> Vec<String> {
        self.live
            .names
            .get(&(namespace.to_owned(), configuration.to_owned()))
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Remembers each object's last fingerprint and lets through an applied object only when it
/// changed; deletions always pass (a deleted object may look exactly as it did).
#[derive(Default)]
pub(super) struct Significance {
    seen: HashMap<ObjectRef<Revision>, u64>,
}

impl Significance {
    /// The object to trigger on, if `event` carries a significant change (or an error, which
    /// the controller reports).
    pub(super) fn admit(
        &mut self,
        event: Result<watcher::Event<Revision>, watcher::Error>,
    ) -> Option<Result<Revision, watcher::Error>> {
        match event {
            Ok(watcher::Event::Apply(revision) | watcher::Event::InitApply(revision)) => {
                let print = fingerprint(&revision);
                let previous = self.seen.insert(ObjectRef::from_obj(&revision), print);
                (previous != Some(print)).then_some(Ok(revision))
            }
            Ok(watcher::Event::Delete(revision)) => {
                self.seen.remove(&ObjectRef::from_obj(&revision));
                Some(Ok(revision))
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
            Err(error) => Some(Err(error)),
        }
    }
}

/// A hash of everything the controllers may read: the object without its resourceVersion,
/// managed fields, replica counts and node reports (which the data plane rewrites as replicas
/// come and go).
fn fingerprint(revision: &Revision) -> u64 {
    let mut significant = revision.clone();
    significant.metadata.resource_version = None;
    significant.metadata.managed_fields = None;
    if let Some(status) = significant.status.as_mut() {
        status.actual_replicas = None;
        status.desired_replicas = None;
        // The nodes' own reports: the Revision controller turns them into conditions, which
        // are what the other controllers read.
        status.annotations.clear();
    }
    let mut hasher = DefaultHasher::new();
    // Serialising a typed object cannot fail; an empty encoding would only make the change pass.
    serde_json::to_vec(&significant)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wisp_api::knative::RevisionStatus;

    fn revision(rv: &str, actual: i32, ready: &str) -> Revision {
        let mut revision: Revision = serde_json::from_value(serde_json::json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "metadata": {"name": "hello-00001", "namespace": "default", "resourceVersion": rv},
            "spec": {"containers": [{"image": "hello.wasm"}]},
        }))
        .expect("a revision");
        let mut status: RevisionStatus = serde_json::from_value(serde_json::json!({
            "conditions": [{"type": "Ready", "status": ready}],
        }))
        .expect("a status");
        status.actual_replicas = Some(actual);
        status.desired_replicas = Some(actual);
        revision.status = Some(status);
        revision
    }

    fn passes(significance: &mut Significance, event: watcher::Event<Revision>) -> bool {
        significance.admit(Ok(event)).is_some()
    }

    fn of(configuration: &str, name: &str) -> Revision {
        let mut made = revision("1", 0, "True");
        made.metadata.name = Some(name.to_owned());
        made.labels_mut()
            .insert(labels::CONFIGURATION.to_owned(), configuration.to_owned());
        made
    }

    #[test]
    fn the_index_follows_applies_deletes_relabels_and_relists() {
        let mut index = ByConfiguration::default();
        index.apply(&watcher::Event::Apply(of("a", "a-1")));
        index.apply(&watcher::Event::Apply(of("a", "a-2")));
        index.apply(&watcher::Event::Apply(of("b", "b-1")));
        assert_eq!(index.names("default", "a"), ["a-1", "a-2"]);
        assert!(index.names("other", "a").is_empty(), "namespaces apart");

        index.apply(&watcher::Event::Apply(of("b", "a-2")));
        assert_eq!(index.names("default", "a"), ["a-1"], "relabelled away");
        assert_eq!(index.names("default", "b"), ["a-2", "b-1"]);
        index.apply(&watcher::Event::Delete(of("b", "b-1")));
        assert_eq!(index.names("default", "b"), ["a-2"]);

        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(of("a", "a-1")));
        assert_eq!(
            index.names("default", "b"),
            ["a-2"],
            "the old index serves until the relist ends"
        );
        index.apply(&watcher::Event::InitDone);
        assert!(
            index.names("default", "b").is_empty(),
            "gone while the watch was down"
        );
        assert_eq!(index.names("default", "a"), ["a-1"]);
    }

    #[test]
    fn replica_counts_alone_do_not_trigger_but_everything_else_does() {
        let mut significance = Significance::default();
        assert!(passes(
            &mut significance,
            watcher::Event::InitApply(revision("1", 0, "Unknown"))
        ));
        assert!(!passes(
            &mut significance,
            watcher::Event::Apply(revision("2", 3, "Unknown"))
        ));
        assert!(passes(
            &mut significance,
            watcher::Event::Apply(revision("3", 3, "True"))
        ));
        let mut labelled = revision("4", 1, "True");
        labelled
            .labels_mut()
            .insert(labels::ROUTING_STATE.to_owned(), "active".to_owned());
        assert!(passes(
            &mut significance,
            watcher::Event::Apply(labelled.clone())
        ));
        assert!(!passes(
            &mut significance,
            watcher::Event::Apply(labelled.clone())
        ));
        assert!(passes(
            &mut significance,
            watcher::Event::Delete(labelled.clone())
        ));
        assert!(
            passes(&mut significance, watcher::Event::Apply(labelled)),
            "a revision made again after its deletion is new"
        );
        assert!(!passes(&mut significance, watcher::Event::InitDone));
    }
}
