//! Per-object retry delays: a conflict is retried almost at once (the next read sees the other
//! writer's change), any other failure waits twice as long as the previous one, up to a cap, so
//! a broken object or an unreachable server does not spin.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kube::Resource;
use kube::runtime::controller::Action;

use super::Error;

/// The first retry after a failure that is not a conflict.
const FIRST: Duration = Duration::from_millis(500);
/// The longest wait between retries.
const CAP: Duration = Duration::from_secs(60);
/// The wait after a conflict.
const CONFLICT: Duration = Duration::from_millis(100);

/// The delay before the retry that follows `failures` consecutive failures (1 = the first).
pub(super) fn delay(failures: u32, conflict: bool) -> Duration {
    if conflict {
        return CONFLICT;
    }
    let doublings = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(CAP)
}

/// Consecutive failures per object, reset by a success.
#[derive(Default)]
pub(super) struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Forgets `object`'s failures.
    pub(super) fn succeeded<K: Resource<DynamicType = ()>>(&self, object: &K) {
        self.lock().remove(&key(object));
    }

    /// Logs the failure of `object` and says when to retry it (the controllers' error policy).
    pub(super) fn failed<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        error: &Error,
    ) -> Action {
        let kind = K::kind(&());
        let key = key(object);
        let conflict = error.is_conflict();
        // A conflict is another writer's progress (a node writing its report into the same
        // status), not a sign that the object or the server is broken: counting it would make
        // the next real failure wait as if that many had failed before it (up to a minute).
        let failures = if conflict {
            0
        } else {
            let mut map = self.lock();
            let count = map.entry(key.clone()).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        let wait = delay(failures, conflict);
        if conflict {
            tracing::debug!(%kind, object = %key, "conflict, retrying: {error}");
        } else {
            tracing::warn!(%kind, object = %key, failures, ?wait, "reconcile failed: {error}");
        }
        Action::requeue(wait)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // A panic elsewhere while holding the lock leaves only counters behind; they are
        // still usable.
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The key an object's failures are counted under.
fn key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut revision = wisp_api::knative::Revision::new("x-00001", Default::default());
        revision.metadata.namespace = Some("ns".into());
        let conflict = Error::Api(kube::Error::Api(Box::new(
            kube::core::Status::failure("the object has been modified", "Conflict").with_code(409),
        )));
        for _ in 0..8 {
            backoff.failed(&revision, &conflict);
        }
        let unavailable = Error::Api(kube::Error::Api(Box::new(
            kube::core::Status::failure("try again", "ServiceUnavailable").with_code(503),
        )));
        assert_eq!(
            backoff.failed(&revision, &unavailable),
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
        let mut service = wisp_api::knative::Service::new("x", Default::default());
        service.metadata.namespace = Some("ns".into());
        backoff.failed(&service, &error);
        backoff.failed(&service, &error);
        assert_eq!(backoff.lock().get("ns/x"), Some(&2));
        backoff.succeeded(&service);
        assert_eq!(backoff.lock().get("ns/x"), None);
    }
}
