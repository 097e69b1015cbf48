//! The routing-state labels the Route controller wrote that its Revision cache may not show
//! yet. A Route is reconciled again as soon as its own status write comes back, usually before
//! the label patch it made just after has reached the cache: read from the cache alone, the
//! label looked unwritten and was patched again, two or three times per Service. Each patch
//! moved the Revision's resourceVersion on, so the node's and the Revision controller's status
//! writes then conflicted and were read and written again.
//!
//! A written label stands in for the cached one only while the cache still holds the version
//! the label was decided on. Once the cache shows another version, the cache is read again: it
//! may be the patch, someone else's label, or a write made before the patch and seen after it
//! (a status write), which costs one redundant patch. Entries also expire. Either way a
//! stand-in costs at most a redundant patch, never a wrong label.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a written label may stand in for the cache. Far longer than a watch event takes
/// to arrive, even on a loaded machine.
const EXPIRY: Duration = Duration::from_secs(30);

/// One label write the cache may not show yet.
struct Written {
    state: String,
    /// The cached Revision's resourceVersion the write was decided on.
    over_version: Option<String>,
    at: Instant,
}

#[derive(Default)]
struct Entries {
    by_revision: HashMap<(String, String), Written>,
    /// How many entries the last pruning kept: pruning waits until the map has doubled.
    kept: usize,
}

#[derive(Default)]
pub(super) struct WrittenLabels {
    entries: Mutex<Entries>,
}

fn lock(mutex: &Mutex<Entries>) -> MutexGuard<'_, Entries> {
    // A map of hints: after a panic, what it holds is still safe to use.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WrittenLabels {
    /// The revision's routing state: `cached` (the label on the cached Revision at
    /// `cached_version`), unless this controller wrote one over that very version.
    pub(super) fn state(
        &self,
        namespace: &str,
        revision: &str,
        cached: Option<String>,
        cached_version: Option<&str>,
    ) -> Option<String> {
        self.state_at(namespace, revision, cached, cached_version, Instant::now())
    }

    fn state_at(
        &self,
        namespace: &str,
        revision: &str,
        cached: Option<String>,
        cached_version: Option<&str>,
        now: Instant,
    ) -> Option<String> {
        let mut entries = lock(&self.entries);
        if entries.by_revision.is_empty() {
            return cached;
        }
        let key = (namespace.to_owned(), revision.to_owned());
        let standing = entries.by_revision.get(&key).map(|written| {
            written.over_version.as_deref() == cached_version
                && now.duration_since(written.at) < EXPIRY
        });
        match standing {
            Some(true) => entries.by_revision.get(&key).map(|w| w.state.clone()),
            Some(false) => {
                entries.by_revision.remove(&key);
                cached
            }
            None => cached,
        }
    }

    /// Records that the revision was labelled `state`, decided over the cached
    /// `over_version`.
    pub(super) fn wrote(
        &self,
        namespace: &str,
        revision: &str,
        state: &str,
        over_version: Option<String>,
    ) {
        self.wrote_at(namespace, revision, state, over_version, Instant::now());
    }

    fn wrote_at(
        &self,
        namespace: &str,
        revision: &str,
        state: &str,
        over_version: Option<String>,
        now: Instant,
    ) {
        let mut entries = lock(&self.entries);
        entries.by_revision.insert(
            (namespace.to_owned(), revision.to_owned()),
            Written {
                state: state.to_owned(),
                over_version,
                at: now,
            },
        );
        // Entries of revisions never read again (deleted ones) would stay: drop the expired
        // ones whenever the map has doubled, so the walk costs nothing per write on average.
        if entries.by_revision.len() >= 2 * entries.kept.max(64) {
            entries
                .by_revision
                .retain(|_, written| now.duration_since(written.at) < EXPIRY);
            entries.kept = entries.by_revision.len();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.entries).by_revision.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active() -> Option<String> {
        Some("active".to_owned())
    }

    #[test]
    fn a_written_label_stands_in_until_the_cache_moves_past_its_version() {
        let labels = WrittenLabels::default();
        let now = Instant::now();
        labels.wrote_at("ns", "a-00001", "active", Some("7".to_owned()), now);
        // The cache still holds version 7, without the label: the write stands.
        assert_eq!(
            labels.state_at("ns", "a-00001", None, Some("7"), now),
            active()
        );
        // Another revision, or namespace, is not affected.
        assert_eq!(labels.state_at("ns", "b-00001", None, Some("7"), now), None);
        assert_eq!(
            labels.state_at("other", "a-00001", None, Some("7"), now),
            None
        );
        // The cache moved on (version 9, labelled `reserve` by someone else): it is the truth,
        // and the write is forgotten.
        let reserve = Some("reserve".to_owned());
        assert_eq!(
            labels.state_at("ns", "a-00001", reserve.clone(), Some("9"), now),
            reserve
        );
        assert_eq!(labels.state_at("ns", "a-00001", None, Some("7"), now), None);
    }

    #[test]
    fn a_written_label_expires() {
        let labels = WrittenLabels::default();
        let now = Instant::now();
        labels.wrote_at("ns", "a-00001", "active", Some("7".to_owned()), now);
        let later = now + EXPIRY;
        assert_eq!(
            labels.state_at("ns", "a-00001", None, Some("7"), later),
            None
        );
    }

    #[test]
    fn expired_entries_are_dropped_once_the_map_has_doubled() {
        let labels = WrittenLabels::default();
        let start = Instant::now();
        for i in 0..100 {
            labels.wrote_at("ns", &format!("old-{i}"), "active", None, start);
        }
        assert_eq!(labels.len(), 100);
        let later = start + EXPIRY;
        for i in 0..28 {
            labels.wrote_at("ns", &format!("new-{i}"), "active", None, later);
        }
        // The 128th entry doubled the map past 64: the 100 expired ones went.
        assert_eq!(labels.len(), 28);
    }
}
