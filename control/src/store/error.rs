//! The store's errors. Each one says what went wrong and what the caller can do about it; the
//! API layer maps them onto Kubernetes `Status` objects (404, 409, 409, 410-in-a-200 watch, …).

use std::error::Error as StdError;
use std::sync::Arc;

use super::key::ObjectKey;

/// Why a store operation failed.
///
/// `Clone`, so one failed group commit can be reported to every write it carried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{key} not found; check its name and namespace, or create it first")]
    NotFound {
        /// The missing object.
        key: ObjectKey,
    },

    /// A create found an object of that name already there.
    #[error("{key} already exists; choose another name, or update the existing object")]
    AlreadyExists {
        /// The existing object.
        key: ObjectKey,
    },

    /// A precondition on the resourceVersion failed: someone else changed the object first.
    #[error(
        "cannot change {key}: the object has been modified (its resourceVersion is \
         {current_rv}, the request expected {expected_rv}); read the latest version, apply \
         your changes to it and try again"
    )]
    Conflict {
        /// The object.
        key: ObjectKey,
        /// Its resourceVersion now.
        current_rv: u64,
        /// The resourceVersion the request was based on.
        expected_rv: u64,
    },

    /// The events after `requested` are no longer all in the log (compaction removed some).
    /// A watch turns this into the `ERROR` event carrying a 410 `Status`.
    #[error(
        "too old resource version: {requested} ({oldest_available}): the event log has been \
         compacted; list again and watch from the list's resourceVersion"
    )]
    Expired {
        /// The resourceVersion the caller wanted the events after.
        requested: u64,
        /// The oldest resourceVersion a watch can still start from (the compaction floor: the
        /// events after it are all still logged).
        oldest_available: u64,
    },

    /// The object cannot be stored as given (not a JSON object, or its metadata contradicts its
    /// key). Only a bug in the caller reaches this; the API layer validates first.
    #[error("cannot store {key}: {reason}")]
    InvalidObject {
        /// The object.
        key: ObjectKey,
        /// What is wrong with it.
        reason: String,
    },

    /// The object's JSON text is larger than the store takes (413).
    #[error(
        "{key} is {bytes} bytes as stored, more than the {limit} bytes an object may be; store \
         large data elsewhere (a volume, an image) or split it over several objects"
    )]
    TooLarge {
        key: ObjectKey,
        bytes: usize,
        limit: usize,
    },

    /// The object nests objects and arrays deeper than the store takes (422).
    #[error(
        "{key} would nest objects and arrays {depth} levels deep, more than the {limit} an \
         object may have; flatten the fields the request adds"
    )]
    TooDeep {
        key: ObjectKey,
        depth: usize,
        limit: usize,
    },

    /// The object would not decode, or (stored before these checks) does not: 422 on a write;
    /// on a read, the object can only be deleted.
    #[error(
        "{key} cannot be decoded ({reason}); a write like this is refused, and an object \
         stored so can only be deleted"
    )]
    Unreadable { key: ObjectKey, reason: String },

    /// The write was not applied: the store is shutting down, or the function passed to
    /// `mutate` panicked (its transaction was rolled back).
    #[error(
        "the write was not applied: the store is shutting down or the update function \
         panicked; retry, and restart the server if it persists"
    )]
    Aborted,

    /// The database was written by a newer wisp with a schema this build does not know.
    #[error(
        "the database is at schema version {found}, but this wisp only knows versions up to \
         {supported}; run the newer wisp that wrote it, or start with a fresh data directory"
    )]
    SchemaTooNew {
        /// The database's `user_version`.
        found: i64,
        /// The newest schema this build can use.
        supported: i64,
    },

    /// SQLite (or the file system beneath it) failed, or a stored row could not be decoded.
    #[error(
        "storage failure while {context}: {source}; check the data directory (free disk \
         space, permissions, no other process using the database)"
    )]
    Storage {
        /// What the store was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: Arc<dyn StdError + Send + Sync>,
    },
}

impl StoreError {
    /// A [`StoreError::Storage`] for `source`, raised while doing `context`.
    pub(crate) fn storage(
        context: &'static str,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::Storage {
            context,
            source: Arc::new(source),
        }
    }

    /// A closure for `map_err` that wraps an error as [`StoreError::Storage`].
    pub(crate) fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| Self::storage(context, source)
    }
}
