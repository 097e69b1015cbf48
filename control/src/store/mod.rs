//! The API server's storage: Kubernetes-style objects (JSON) in SQLite, one global
//! resourceVersion, an append-only event log, and watches over it.
//!
//! What the HTTP handlers get from it:
//!
//! * objects keyed by [`ObjectKey`] (resource, namespace, name) and read with [`Store::get`] and
//!   [`Store::list`] (a list's resourceVersion is read in the same transaction as its items);
//! * writes as single transactions: [`Store::create`], [`Store::update`], [`Store::delete`], and
//!   the general [`Store::mutate`], whose closure runs *inside* the transaction so validate →
//!   default → bump resourceVersion → store → log happens atomically. Each successful write
//!   takes the next resourceVersion (global across resources, persisted), writes it into
//!   `metadata.resourceVersion` as a string, and logs exactly one [`Event`];
//! * [`Store::watch`]: the logged events after a resourceVersion, then live ones, with no gaps or
//!   duplicates, and [`StoreError::Expired`] once compaction ([`StoreOptions::event_retention`],
//!   [`Store::compact`]) has removed events a watcher still needed.
//!
//! How it is put together (each part's module says why): `schema` opens the file (WAL,
//! `synchronous=FULL`: an acknowledged write survives a kill -9 and a power cut) and migrates
//! it; `writer` is one thread that owns the write connection and commits queued writes in
//! batches (group commit); `readers` runs reads on separate connections under `spawn_blocking`;
//! `watch` merges the log with a broadcast channel the writer fills after each commit. Async
//! callers only ever await channels or blocking tasks, so the runtime never blocks on SQLite.
//!
//! Not here: label and field selectors beyond one namespace and one name, pagination,
//! bookmarks, and everything Kubernetes-specific about the objects (uid, generation,
//! timestamps, finalizers): that is the API layer's business, done in `mutate` closures.
//!
//! One process owns a data directory: the store is correct with several (SQLite serialises
//! them), but watchers only hear about writes made through their own process.

mod error;
mod event;
mod jobs;
mod key;
mod mutation;
mod options;
mod readers;
mod retention;
mod schema;
pub mod storable;
mod tables;
mod watch;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};

pub use error::StoreError;
pub use event::{Event, EventType};
pub use key::{ObjectKey, Scope};
pub use mutation::{Outcome, resource_version_of};
pub use options::{DEFAULT_EVENT_RETENTION_BYTES, StoreOptions};
pub use tables::{EventPage, StoredJson};
pub use watch::WatchStream;

use jobs::{CompactJob, Job, MutateJob, RemoveUnreadableJob};
use readers::Readers;
use writer::Writer;

/// A list's items and the resourceVersion they are current at.
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    /// The objects, ordered by namespace and name.
    pub items: Vec<Value>,
    /// The global resourceVersion when the items were read: watch from here to see what comes
    /// after them.
    pub resource_version: u64,
}

/// Part of a list as stored JSON text, and the resourceVersion it is current at.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonList {
    /// The objects, ordered by namespace and name.
    pub items: Vec<StoredJson>,
    /// The global resourceVersion when the items were read.
    pub resource_version: u64,
}

/// The storage engine. Cheap to clone (all clones share one database); the writer thread stops
/// when the last clone is dropped, and open watches then end.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    writes: mpsc::Sender<Box<dyn Job>>,
    readers: Arc<Readers>,
    events: broadcast::Sender<Arc<Event>>,
    committed: Arc<AtomicU64>,
}

/// Locks a mutex, carrying on after a panic elsewhere: every lock here guards a connection whose
/// transactions roll back on their own, so a poisoned one is still consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// Opens (creating if needed, with its directory) the database at `path`, with default
    /// options. Blocks for the open and any migration: call it at start-up.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// [`Store::open`] with options.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let writer = schema::open_writer(path, options.busy_timeout)?;
        let readers = (0..options.read_connections.clamp(1, 64))
            .map(|_| schema::open_reader(path, options.busy_timeout).map(Mutex::new))
            .map(|conn| conn.map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Self::start(Arc::new(Mutex::new(writer)), readers, &options)
    }

    /// A store that lives in memory only (tests, dry runs).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::open_in_memory_with(StoreOptions::default())
    }

    /// [`Store::open_in_memory`] with options (`read_connections` is ignored: reads share the
    /// one connection an in-memory database can have).
    pub fn open_in_memory_with(options: StoreOptions) -> Result<Self, StoreError> {
        let conn = Arc::new(Mutex::new(schema::open_memory()?));
        Self::start(Arc::clone(&conn), vec![conn], &options)
    }

    fn start(
        writer: Arc<Mutex<Connection>>,
        readers: Vec<Arc<Mutex<Connection>>>,
        options: &StoreOptions,
    ) -> Result<Self, StoreError> {
        let rv = tables::resource_version(&lock(&writer))?;
        let committed = Arc::new(AtomicU64::new(rv));
        // tokio's broadcast channel refuses a capacity of 0 or above usize::MAX / 2.
        let (events, _) = broadcast::channel(options.watch_buffer.clamp(1, 1 << 24));
        let writes = Writer {
            conn: writer,
            events: events.clone(),
            committed: Arc::clone(&committed),
            retention: options.event_retention,
            retention_bytes: options.event_retention_bytes,
        }
        .spawn(options.write_queue.clamp(1, 1 << 20))?;
        Ok(Self {
            inner: Arc::new(Inner {
                writes,
                readers: Readers::new(readers),
                events,
                committed,
            }),
        })
    }

    /// The last committed resourceVersion. Cheap (no I/O). For a watch's bookmarks use
    /// [`WatchStream::resume_rv`] instead: it never runs ahead of what the watcher was sent.
    pub fn current_rv(&self) -> u64 {
        self.inner.committed.load(Ordering::SeqCst)
    }

    /// The object at `key`, or [`StoreError::NotFound`].
    pub async fn get(&self, key: &ObjectKey) -> Result<Value, StoreError> {
        let key = key.clone();
        self.inner
            .readers
            .read(move |conn| match tables::read_object(conn, &key)? {
                Some((_, object)) => Ok(object),
                None => Err(StoreError::NotFound { key }),
            })
            .await
    }

    /// The objects in `scope` and the resourceVersion they are current at, from one snapshot.
    pub async fn list(&self, scope: &Scope) -> Result<List, StoreError> {
        let scope = scope.clone();
        self.inner
            .readers
            .read(move |conn| {
                Ok(List {
                    resource_version: tables::resource_version(conn)?,
                    items: tables::list_objects(conn, &scope)?,
                })
            })
            .await
    }

    /// The objects whose `metadata.ownerReferences` name `owner_uid` (in `namespace` when
    /// given), found through an index the store keeps with every write and read in one
    /// snapshot, each with its key, ordered by key.
    pub async fn dependents(
        &self,
        owner_uid: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<(ObjectKey, Value)>, StoreError> {
        let (owner_uid, namespace) = (owner_uid.to_owned(), namespace.map(str::to_owned));
        self.inner
            .readers
            .read(move |conn| {
                let keys = tables::dependents(conn, &owner_uid, namespace.as_deref())?;
                let mut objects = Vec::with_capacity(keys.len());
                for key in keys {
                    // The index and the objects are read in one snapshot: a key is always there.
                    if let Some((_, object)) = tables::read_object(conn, &key)? {
                        objects.push((key, object));
                    }
                }
                Ok(objects)
            })
            .await
    }

    /// Up to `limit` objects of `scope` after the (namespace, name) `after`, as their stored JSON
    /// text, from one snapshot: what a paged or unfiltered list serves without parsing objects.
    pub async fn list_json(
        &self,
        scope: &Scope,
        after: Option<(String, String)>,
        limit: Option<usize>,
    ) -> Result<JsonList, StoreError> {
        let scope = scope.clone();
        self.inner
            .readers
            .read(move |conn| {
                Ok(JsonList {
                    resource_version: tables::resource_version(conn)?,
                    items: tables::list_json(conn, &scope, after.as_ref(), limit)?,
                })
            })
            .await
    }

    /// The general write: runs `decide` on the current object (`None` if absent) inside the
    /// write transaction and stores what it returns — `Some(object)` creates or replaces, `None`
    /// deletes. Returning an error, or panicking, writes nothing: no resourceVersion is used and
    /// no event is logged. A new state equal to the current one (ignoring the resourceVersion)
    /// is not written either ([`Outcome::Unchanged`]).
    ///
    /// `decide` runs on the writer thread while other writes wait: keep it to computation (the
    /// API layer's validation and defaulting), no I/O. If the caller stops waiting, the write
    /// still happens.
    pub async fn mutate<F, E>(&self, key: &ObjectKey, decide: F) -> Result<Outcome, E>
    where
        F: FnOnce(Option<&Value>) -> Result<Option<Value>, E> + Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit_mutation(key, None, move |current, _| decide(current))
            .await
    }

    /// [`Store::mutate`], with `decide` also seeing — when `key` does not exist yet, i.e. for a
    /// create — the object at `guard` as it is in the same transaction: a create that depends
    /// on another object (content in a namespace that must not be terminating) sees exactly the
    /// state it commits against. For an existing object `decide` gets `None` for the guard.
    pub async fn mutate_guarded<F, E>(
        &self,
        key: &ObjectKey,
        guard: &ObjectKey,
        decide: F,
    ) -> Result<Outcome, E>
    where
        F: FnOnce(Option<&Value>, Option<&Value>) -> Result<Option<Value>, E> + Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit_mutation(key, Some(guard.clone()), decide).await
    }

    async fn submit_mutation<F, E>(
        &self,
        key: &ObjectKey,
        guard: Option<ObjectKey>,
        decide: F,
    ) -> Result<Outcome, E>
    where
        F: FnOnce(Option<&Value>, Option<&Value>) -> Result<Option<Value>, E> + Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = MutateJob {
            key: key.clone(),
            guard,
            decide,
            tx,
        };
        self.submit(Box::new(job), rx).await
    }

    /// Stores a new object; [`StoreError::AlreadyExists`] if the key is taken. Returns the
    /// object as stored (with its resourceVersion).
    pub async fn create(&self, key: &ObjectKey, object: Value) -> Result<Value, StoreError> {
        let taken = key.clone();
        let outcome = self
            .mutate(key, move |current| match current {
                Some(_) => Err(StoreError::AlreadyExists { key: taken }),
                None => Ok(Some(object)),
            })
            .await?;
        written(key, outcome)
    }

    /// Replaces an existing object; [`StoreError::NotFound`] if there is none, and
    /// [`StoreError::Conflict`] if `expected_rv` is given and the stored object's
    /// resourceVersion differs. Returns the object as stored.
    pub async fn update(
        &self,
        key: &ObjectKey,
        object: Value,
        expected_rv: Option<u64>,
    ) -> Result<Value, StoreError> {
        let target = key.clone();
        let outcome = self
            .mutate(key, move |current| {
                check_current(&target, current, expected_rv)?;
                Ok(Some(object))
            })
            .await?;
        written(key, outcome)
    }

    /// Removes an object ([`StoreError::NotFound`] if absent; [`StoreError::Conflict`] if
    /// `expected_rv` is stale). Returns its last state stamped with the deletion's
    /// resourceVersion, the object its `DELETED` event carries.
    pub async fn delete(
        &self,
        key: &ObjectKey,
        expected_rv: Option<u64>,
    ) -> Result<Value, StoreError> {
        let target = key.clone();
        let outcome = self
            .mutate(key, move |current| {
                check_current(&target, current, expected_rv)?;
                Ok(None)
            })
            .await?;
        written(key, outcome)
    }

    /// Removes the object at `key` although its stored text cannot be decoded
    /// ([`StoreError::Unreadable`] from every other call): the way out for an object stored
    /// before writes were checked. Its `DELETED` event carries `stub` (the identity the caller
    /// knows: apiVersion, kind, name), stamped with the deletion's resourceVersion.
    pub async fn remove_unreadable(
        &self,
        key: &ObjectKey,
        stub: Value,
    ) -> Result<Value, StoreError> {
        let (tx, rx) = oneshot::channel();
        let job = RemoveUnreadableJob {
            key: key.clone(),
            stub,
            tx,
        };
        let outcome = self.submit(Box::new(job), rx).await?;
        written(key, outcome)
    }

    /// Raises the compaction floor to `through` (capped at the current resourceVersion; the
    /// floor never goes down) and drops the logged events at or below it. Returns the floor.
    pub async fn compact(&self, through: u64) -> Result<u64, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Box::new(CompactJob { through, tx }), rx).await
    }

    /// The event log's size in bytes (its events' objects and keys), which
    /// [`StoreOptions::event_retention_bytes`] bounds.
    pub async fn event_log_bytes(&self) -> Result<u64, StoreError> {
        self.inner.readers.read(retention::event_bytes).await
    }

    /// Up to `limit` logged events of `scope` after resourceVersion `after`, oldest first;
    /// [`StoreError::Expired`] if compaction has removed some of them.
    pub async fn events_since(
        &self,
        scope: &Scope,
        after: u64,
        limit: usize,
    ) -> Result<EventPage, StoreError> {
        let scope = scope.clone();
        self.inner
            .readers
            .read(move |conn| tables::events_after(conn, &scope, after, limit))
            .await
    }

    /// Watches `scope` from `from_rv`: every change after it, logged ones first, then live ones,
    /// in resourceVersion order. [`StoreError::Expired`] at once if the log no longer reaches
    /// back to `from_rv` (a Kubernetes watch sends that as an `ERROR` event with a 410 `Status`).
    ///
    /// To start from "now" with the current objects (a watch with resourceVersion 0), list
    /// first and watch from the list's resourceVersion.
    pub async fn watch(&self, scope: &Scope, from_rv: u64) -> Result<WatchStream, StoreError> {
        // Subscribe before reading the log: see `watch` for why that leaves no gap.
        let live = self.inner.events.subscribe();
        let readers = Arc::clone(&self.inner.readers);
        let mut stream = WatchStream::new(scope.clone(), live, readers, from_rv);
        stream.prime().await?;
        Ok(stream)
    }

    async fn submit<T, E>(
        &self,
        job: Box<dyn Job>,
        reply: oneshot::Receiver<Result<T, E>>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.inner
            .writes
            .send(job)
            .await
            .map_err(|_| E::from(StoreError::Aborted))?;
        reply.await.map_err(|_| E::from(StoreError::Aborted))?
    }
}

/// Checks that the object exists and, if asked, that its resourceVersion is the expected one.
fn check_current(
    key: &ObjectKey,
    current: Option<&Value>,
    expected_rv: Option<u64>,
) -> Result<(), StoreError> {
    let current = current.ok_or_else(|| StoreError::NotFound { key: key.clone() })?;
    match (expected_rv, resource_version_of(current)) {
        (Some(expected), current_rv) if current_rv != Some(expected) => Err(StoreError::Conflict {
            key: key.clone(),
            current_rv: current_rv.unwrap_or(0),
            expected_rv: expected,
        }),
        _ => Ok(()),
    }
}

/// The object a create, update or delete leaves (those always produce one).
fn written(key: &ObjectKey, outcome: Outcome) -> Result<Value, StoreError> {
    outcome
        .into_object()
        .ok_or_else(|| StoreError::NotFound { key: key.clone() })
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("current_rv", &self.current_rv())
            .finish_non_exhaustive()
    }
}
