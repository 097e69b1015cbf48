//! Every Revision in memory, for the Configuration and Route controllers, and the stream of
//! the changes that matter to them.
//!
//! Why: a controller that LISTs a configuration's revisions on each reconcile makes the API
//! server read and parse every Revision of the namespace per call, and the data plane rewrites
//! a revision's replica counts up to once a second, each a Revision event that re-ran both
//! reconciles. At 10,000 Services that was most of a core. A reflector's store answers the same
//! question from memory, and [`Significance`] passes on only the events that change something a
//! controller reads (anything but the replica counts and the resourceVersion).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use wisp_api::knative::Revision;
use wisp_api::knative::labels;

/// A store of every Revision, and the stream that fills it and yields each significant change
/// (poll it, e.g. as a controller's trigger, or the store stays empty).
pub(super) fn watch(
    client: Client,
) -> (
    Store<Revision>,
    impl Stream<Item = Result<Revision, watcher::Error>> + Send + 'static,
) {
    let (store, writer) = reflector::store::<Revision>();
    let mut significance = Significance::default();
    let changes = reflector::reflector(
        writer,
        watcher(Api::<Revision>::all(client), watcher::Config::default()).default_backoff(),
    )
    .filter_map(move |event| futures::future::ready(significance.admit(event)));
    (store, changes)
}

/// Waits for the store's first full list (a reconcile before it would see no revisions at
/// all); the watch that fills it is the controller's own trigger, polled meanwhile.
pub(super) async fn wait_until_ready(store: &Store<Revision>) {
    // An error means the writer is gone: the controller is stopping, and reads the store as is.
    let _ = store.wait_until_ready().await;
}

/// The revisions of `store` in `namespace` labelled as made by `configuration`.
pub(super) fn of_configuration(
    store: &Store<Revision>,
    namespace: &str,
    configuration: &str,
) -> Vec<std::sync::Arc<Revision>> {
    store
        .state()
        .into_iter()
        .filter(|revision| revision.namespace().as_deref() == Some(namespace))
        .filter(|revision| {
            revision
                .labels()
                .get(labels::CONFIGURATION)
                .map(String::as_str)
                == Some(configuration)
        })
        .collect()
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
/// managed fields and replica counts (which the data plane rewrites as replicas come and go).
fn fingerprint(revision: &Revision) -> u64 {
    let mut significant = revision.clone();
    significant.metadata.resource_version = None;
    significant.metadata.managed_fields = None;
    if let Some(status) = significant.status.as_mut() {
        status.actual_replicas = None;
        status.desired_replicas = None;
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
