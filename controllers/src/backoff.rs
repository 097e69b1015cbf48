//! Per-object retry delays: a conflict is retried almost at once (the next read sees the other
//! writer's change), any other failure waits twice as long as the previous one, up to a cap, so
//! a broken object or an unreachable server does not spin.
//!
//! The counts are kept per object (by uid) only while it fails: a success forgets them, and so
//! does [`Backoff::forget_deleted`] once the object is gone (a deletion reaches no reconcile,
//! so without it every object deleted while failing would stay in the map for good). Every
//! reconcile calls [`Backoff::forget_deleted_when_grown`], which walks the map only when it
//! has doubled since its last walk.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};

use super::Error;

/// The first retry after a failure that is not a conflict.
const FIRST: Duration = Duration::from_millis(500);
/// The longest wait between retries.
const CAP: Duration = Duration::from_secs(60);
/// The wait after a conflict.
const CONFLICT: Duration = Duration::from_millis(100);

/// The delay before the retry that follows `failures` consecutive failures (1 = the first).
fn delay(failures: u32, conflict: bool) -> Duration {
    if conflict {
        return CONFLICT;
    }
    let doublings = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(CAP)
}

/// Consecutive failures per object, reset by a success and dropped once the object is gone.
/// Keyed by uid, so an object deleted and created again under its name starts afresh.
#[derive(Default)]
pub(super) struct Backoff {
    failing: Mutex<Failing>,
}

#[derive(Default)]
struct Failing {
    by_uid: HashMap<String, Failures>,
    /// How many entries the last pruning kept.
    kept: usize,
}

/// One failing object's count, with where it lives, to find out whether it still exists.
#[derive(Debug)]
struct Failures {
    namespace: String,
    name: String,
    count: u32,
}

impl Backoff {
    /// Forgets `object`'s failures.
    pub(super) fn succeeded<K: Resource>(&self, object: &K) {
        let mut failing = self.lock();
        failing.by_uid.remove(&uid_of(object));
        // So that after an outage ends the next walk comes as soon as the map doubles from
        // what is left, not from what was failing during the outage.
        failing.kept = failing.kept.min(failing.by_uid.len());
    }

    /// Logs the failure of `object` and says when to retry it (the controllers' error policy).
    pub(super) fn failed<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        error: &Error,
    ) -> Action {
        let kind = K::kind(&());
        let object_name = namespaced_name(object);
        // A conflict is another writer's progress (a node writing its report into the same
        // status), not a sign that the object or the server is broken: counting it would make
        // the next real failure wait as if that many had failed before it (up to a minute).
        if error.is_conflict() {
            let wait = delay(0, true);
            tracing::debug!(%kind, object = %object_name, "conflict, retrying: {error}");
            return Action::requeue(wait);
        }
        let failures = self.count_failure(object);
        let wait = delay(failures, false);
        tracing::warn!(%kind, object = %object_name, failures, ?wait, "reconcile failed: {error}");
        Action::requeue(wait)
    }

    /// Counts one more failure of `object` and returns the wait before its next attempt, for
    /// a failure the reconcile handles itself (the Revision controller's image pin).
    pub(super) fn next_retry<K: Resource>(&self, object: &K) -> Duration {
        delay(self.count_failure(object), false)
    }

    /// Forgets the failures of objects no longer in `store` (or there under another uid: the
    /// object was deleted and created again). Cheap: the map holds failing objects only.
    pub(super) fn forget_deleted<K>(&self, store: &Store<K>)
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        self.prune(|namespace, name| {
            store
                .get(&ObjectRef::new(name).within(namespace))
                .and_then(|object| object.meta().uid.clone())
        });
    }

    /// [`Backoff::forget_deleted`] once the map has doubled since the last pruning (what each
    /// reconcile calls). Pruning on every reconcile walked every failing object each time:
    /// with the API server down and 10,000 objects failing, 10,000 reconciles a minute each
    /// looked up 10,000 entries. Now each entry costs a constant share of a walk, and the
    /// entries of deleted objects stay fewer than the live failing ones the last walk kept
    /// (so the map holds less than twice what is failing).
    pub(super) fn forget_deleted_when_grown<K>(&self, store: &Store<K>)
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        if self.grown() {
            self.forget_deleted(store);
        }
    }

    fn grown(&self) -> bool {
        let failing = self.lock();
        !failing.by_uid.is_empty() && failing.by_uid.len() >= 2 * failing.kept
    }

    /// Drops the failures of objects that no longer exist: `live` gives the uid of the object
    /// now at a namespace and name, if there is one.
    fn prune(&self, live: impl Fn(&str, &str) -> Option<String>) {
        let mut failing = self.lock();
        if failing.by_uid.is_empty() {
            return;
        }
        failing.by_uid.retain(|uid, failures| {
            live(&failures.namespace, &failures.name).as_deref() == Some(uid.as_str())
        });
        failing.kept = failing.by_uid.len();
    }

    /// Counts one more failure of `object`; returns how many in a row.
    fn count_failure<K: Resource>(&self, object: &K) -> u32 {
        let mut failing = self.lock();
        let failures = failing
            .by_uid
            .entry(uid_of(object))
            .or_insert_with(|| Failures {
                namespace: object.meta().namespace.clone().unwrap_or_default(),
                name: object.meta().name.clone().unwrap_or_default(),
                count: 0,
            });
        failures.count = failures.count.saturating_add(1);
        failures.count
    }

    fn lock(&self) -> MutexGuard<'_, Failing> {
        // A panic elsewhere while holding the lock leaves only counters behind; they are
        // still usable.
        self.failing.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The key an object's failures are counted under: its uid, which the API server always sets
/// (its namespace/name otherwise, which the next pruning drops as it matches no live uid).
fn uid_of<K: Resource>(object: &K) -> String {
    object
        .meta()
        .uid
        .clone()
        .unwrap_or_else(|| namespaced_name(object))
}

/// `namespace/name`, as the logs name an object.
fn namespaced_name<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;
    use wisp_api::knative::{Revision, Service};

    use super::*;

    fn revision(name: &str, uid: &str) -> Revision {
        let mut revision = Revision::new(name, Default::default());
        revision.metadata.namespace = Some("ns".into());
        revision.metadata.uid = Some(uid.into());
        revision
    }

    fn unavailable() -> Error {
        Error::Api(kube::Error::Api(Box::new(
            kube::core::Status::failure("try again", "ServiceUnavailable").with_code(503),
        )))
    }

    fn count(backoff: &Backoff, uid: &str) -> Option<u32> {
        backoff
            .lock()
            .by_uid
            .get(uid)
            .map(|failures| failures.count)
    }

    #[test]
    fn failures_double_up_to_the_cap() {
        assert_eq!(delay(1, false), Duration::from_millis(500));
        assert_eq!(delay(2, false), Duration::from_secs(1));
        assert_eq!(delay(4, false), Duration::from_secs(4));
        assert_eq!(delay(40, false), CAP);
        assert_eq!(delay(u32::MAX, false), CAP);
    }

    #[test]
    fn conflicts_retry_quickly() {
        assert_eq!(delay(9, true), CONFLICT);
    }

    #[test]
    fn conflicts_do_not_lengthen_the_wait_after_a_real_failure() {
        let backoff = Backoff::default();
        let revision = revision("x-00001", "uid-x");
        let conflict = Error::Api(kube::Error::Api(Box::new(
            kube::core::Status::failure("the object has been modified", "Conflict").with_code(409),
        )));
        for _ in 0..8 {
            assert_eq!(
                backoff.failed(&revision, &conflict),
                Action::requeue(CONFLICT)
            );
        }
        assert_eq!(
            backoff.failed(&revision, &unavailable()),
            Action::requeue(FIRST),
            "eight conflicts before it must not make the first real failure wait 60 s"
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let backoff = Backoff::default();
        let error = Error::MissingField {
            kind: "Service".into(),
            name: "x".into(),
            field: "uid",
        };
        let mut service = Service::new("x", Default::default());
        service.metadata.namespace = Some("ns".into());
        service.metadata.uid = Some("uid-x".into());
        backoff.failed(&service, &error);
        assert_eq!(
            backoff.failed(&service, &error),
            Action::requeue(Duration::from_secs(1))
        );
        assert_eq!(count(&backoff, "uid-x"), Some(2));
        backoff.succeeded(&service);
        assert_eq!(count(&backoff, "uid-x"), None);
    }

    #[test]
    fn failures_are_counted_per_uid_forgotten_on_success_and_pruned_when_gone() {
        let backoff = Backoff::default();
        let (a, b) = (revision("a", "uid-a"), revision("b", "uid-b"));
        assert_eq!(backoff.next_retry(&a), Duration::from_millis(500));
        assert_eq!(backoff.next_retry(&a), Duration::from_secs(1));
        assert_eq!(backoff.next_retry(&b), Duration::from_millis(500));
        backoff.succeeded(&a);
        assert_eq!(backoff.next_retry(&a), Duration::from_millis(500));

        // b is deleted; a is deleted and created again under its name (another uid).
        backoff.prune(|namespace, name| {
            assert_eq!(namespace, "ns");
            (name == "a").then(|| "uid-a2".to_owned())
        });
        assert!(backoff.lock().by_uid.is_empty());

        let a2 = revision("a", "uid-a2");
        assert_eq!(backoff.next_retry(&a2), Duration::from_millis(500));
        backoff.prune(|_, name| (name == "a").then(|| "uid-a2".to_owned()));
        assert_eq!(backoff.next_retry(&a2), Duration::from_secs(1));
    }

    #[test]
    fn a_failing_object_deleted_from_the_store_is_forgotten() {
        let backoff = Backoff::default();
        let (store, mut writer) = reflector::store::<Revision>();
        let (deleted, kept) = (revision("deleted", "uid-d"), revision("kept", "uid-k"));
        for revision in [&deleted, &kept] {
            writer.apply_watcher_event(&Event::Apply(revision.clone()));
            backoff.failed(revision, &unavailable());
        }
        backoff.forget_deleted(&store);
        assert_eq!(count(&backoff, "uid-d"), Some(1), "it still exists");

        writer.apply_watcher_event(&Event::Delete(deleted.clone()));
        backoff.forget_deleted(&store);
        assert_eq!(count(&backoff, "uid-d"), None);
        assert_eq!(count(&backoff, "uid-k"), Some(1));

        // Created again under its name: the new object's first failure is a first one.
        let recreated = revision("kept", "uid-k2");
        writer.apply_watcher_event(&Event::Apply(recreated.clone()));
        backoff.forget_deleted(&store);
        assert_eq!(count(&backoff, "uid-k"), None);
        assert_eq!(
            backoff.failed(&recreated, &unavailable()),
            Action::requeue(FIRST)
        );
    }

    #[test]
    fn pruning_on_reconcile_waits_until_the_failures_have_doubled() {
        let backoff = Backoff::default();
        let (store, mut writer) = reflector::store::<Revision>();
        let failing: Vec<Revision> = (0..4)
            .map(|i| revision(&format!("r{i}"), &format!("uid-{i}")))
            .collect();
        for revision in &failing {
            writer.apply_watcher_event(&Event::Apply(revision.clone()));
            backoff.failed(revision, &unavailable());
        }
        backoff.forget_deleted_when_grown(&store);
        assert_eq!(backoff.lock().kept, 4, "the first walk keeps all four");

        // One deleted: not walked for yet, the map has not grown.
        writer.apply_watcher_event(&Event::Delete(failing[0].clone()));
        backoff.forget_deleted_when_grown(&store);
        assert_eq!(count(&backoff, "uid-0"), Some(1));

        // Four more failing: eight entries, twice what the last walk kept.
        for i in 4..8 {
            let revision = revision(&format!("r{i}"), &format!("uid-{i}"));
            writer.apply_watcher_event(&Event::Apply(revision.clone()));
            backoff.failed(&revision, &unavailable());
        }
        backoff.forget_deleted_when_grown(&store);
        assert_eq!(
            count(&backoff, "uid-0"),
            None,
            "walked, and the deleted one went"
        );
        assert_eq!(backoff.lock().kept, 7);
    }
}
