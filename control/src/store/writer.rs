//! The one writer: a dedicated thread owns the write connection and applies queued jobs in
//! batches, one SQLite transaction (and so one fsync) per batch, each job in its own savepoint.
//!
//! Why a thread and not a mutex plus `spawn_blocking`: SQLite admits one writer at a time anyway,
//! and with `synchronous=FULL` a commit costs an fsync. A thread that drains everything queued
//! since its last commit into the next transaction (group commit) turns N concurrent writes into
//! one fsync instead of N, and async callers only ever await a channel: nothing blocks the
//! runtime. A job's failure rolls back its savepoint only; its neighbours in the batch commit.
//! Replies are sent, and events broadcast to watchers, only after the commit succeeded, in
//! resourceVersion order; if the commit fails every write in the batch reports it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{broadcast, mpsc};

use super::error::StoreError;
use super::event::Event;
use super::jobs::{Job, Reply};
use super::{lock, retention, tables};

/// At most this many jobs share one transaction, which bounds how long one commit holds
/// the write lock and how much one failed commit takes down.
const MAX_BATCH: usize = 256;

/// The writer's state, moved onto its thread.
pub(crate) struct Writer {
    /// The write connection (shared with readers only for in-memory databases).
    pub(crate) conn: Arc<Mutex<Connection>>,
    /// Committed events go out here, in resourceVersion order.
    pub(crate) events: broadcast::Sender<Arc<Event>>,
    /// The last committed resourceVersion, for `Store::current_rv`.
    pub(crate) committed: Arc<AtomicU64>,
    /// Keep this many events in the log; older ones are compacted with each batch.
    pub(crate) retention: Option<u64>,
    /// Keep the log within this many bytes too; older events are compacted with each batch.
    pub(crate) retention_bytes: Option<u64>,
}

impl Writer {
    /// Starts the writer thread with a queue of `queue` (at least 1) jobs; it runs until every
    /// sender of the returned queue is dropped.
    pub(crate) fn spawn(self, queue: usize) -> Result<mpsc::Sender<Box<dyn Job>>, StoreError> {
        let (tx, rx) = mpsc::channel(queue);
        std::thread::Builder::new()
            .name("wisp-store-writer".to_owned())
            .spawn(move || self.run(rx))
            .map_err(|e| StoreError::storage("starting the store's writer thread", e))?;
        Ok(tx)
    }

    fn run(self, mut queue: mpsc::Receiver<Box<dyn Job>>) {
        while let Some(first) = queue.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.write_batch(jobs);
        }
    }

    /// Runs `jobs` in one transaction; after the commit, publishes their events and answers them.
    pub(crate) fn write_batch(&self, jobs: Vec<Box<dyn Job>>) {
        let mut replies = Vec::with_capacity(jobs.len());
        let mut pending = jobs.into_iter();
        let result = {
            let mut conn = lock(&self.conn);
            let retention = Retention {
                events: self.retention,
                bytes: self.retention_bytes,
            };
            run_batch(&mut conn, &mut pending, &mut replies, retention)
        };
        match result {
            Ok((rv, events)) => {
                self.committed.fetch_max(rv, Ordering::SeqCst);
                for event in events {
                    // An error only means nobody is watching right now.
                    let _ = self.events.send(event);
                }
                for reply in replies {
                    reply.send();
                }
            }
            Err(error) => {
                tracing::error!(%error, "a store write batch failed; its writes were rolled back");
                for reply in replies {
                    reply.send_failure(error.clone());
                }
                for job in pending {
                    job.fail(error.clone());
                }
            }
        }
    }
}

/// The event log's bounds, applied after each batch.
#[derive(Clone, Copy)]
struct Retention {
    events: Option<u64>,
    bytes: Option<u64>,
}

/// Runs the jobs in one transaction and commits it; returns the last resourceVersion and the
/// events written. On error, the jobs not yet run are left in `pending` and the answers of those
/// that ran in `replies`, for the caller to fail.
fn run_batch(
    conn: &mut Connection,
    pending: &mut impl Iterator<Item = Box<dyn Job>>,
    replies: &mut Vec<Box<dyn Reply>>,
    retention: Retention,
) -> Result<(u64, Vec<Arc<Event>>), StoreError> {
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sql("starting a write transaction"))?;
    // Read, not cached: the database is the one source of truth for the counter.
    let start = tables::resource_version(&tx)?;
    let mut rv = start;
    let mut events = Vec::new();
    for job in pending.by_ref() {
        let savepoint = match tx.savepoint() {
            Ok(savepoint) => savepoint,
            Err(e) => {
                let error = StoreError::storage("starting a savepoint", e);
                job.fail(error.clone());
                return Err(error);
            }
        };
        let next = rv + 1;
        let done = catch_unwind(AssertUnwindSafe(|| job.run(&savepoint, next)));
        match done {
            Ok(done) if !done.reply.failed() => {
                let released = savepoint.commit();
                replies.push(done.reply);
                released.map_err(StoreError::sql("releasing a savepoint"))?;
                if let Some(event) = done.event {
                    rv = next;
                    events.push(Arc::new(event));
                }
            }
            Ok(done) => {
                replies.push(done.reply);
                // Dropping a savepoint would roll back too, but silently.
                savepoint
                    .finish()
                    .map_err(StoreError::sql("rolling back a failed write"))?;
            }
            Err(_) => {
                // The job's reply channel was dropped in the unwind: its caller sees `Aborted`.
                tracing::error!("a store mutation function panicked; its write was rolled back");
                savepoint
                    .finish()
                    .map_err(StoreError::sql("rolling back a panicked write"))?;
            }
        }
    }
    if rv > start {
        tables::set_resource_version(&tx, rv)?;
        if let Some(keep) = retention.events.filter(|keep| rv > *keep) {
            tables::compact(&tx, rv - keep)?;
        }
        if let Some(bound) = retention.bytes {
            retention::compact_to_bytes(&tx, bound, rv)?;
        }
    }
    tx.commit()
        .map_err(StoreError::sql("committing a write transaction"))?;
    Ok((rv, events))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use tokio::sync::oneshot;

    use super::*;
    use crate::store::jobs::{Done, MutateJob};
    use crate::store::key::ObjectKey;
    use crate::store::mutation::Outcome;
    use crate::store::schema;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("serving.knative.dev/services", "default", name)
    }

    type Rx = oneshot::Receiver<Result<Outcome, StoreError>>;

    fn create(name: &str) -> (Box<dyn Job>, Rx) {
        let (tx, rx) = oneshot::channel();
        let job = MutateJob {
            key: key(name),
            guard: None,
            decide: |_: Option<&Value>, _: Option<&Value>| Ok(Some(json!({"spec": 1}))),
            tx,
        };
        (Box::new(job), rx)
    }

    /// Writes a row behind the store's back, then reports failure: its savepoint must undo it.
    struct WritesThenFails(oneshot::Sender<()>);

    struct Failed(oneshot::Sender<()>);

    impl Reply for Failed {
        fn failed(&self) -> bool {
            true
        }
        fn send(self: Box<Self>) {
            let _ = self.0.send(());
        }
        fn send_failure(self: Box<Self>, _: StoreError) {
            let _ = self.0.send(());
        }
    }

    impl Job for WritesThenFails {
        fn run(self: Box<Self>, conn: &Connection, next_rv: u64) -> Done {
            tables::put_object(conn, &key("sneaky"), next_rv, "{}").expect("write");
            Done {
                event: None,
                reply: Box::new(Failed(self.0)),
            }
        }
        fn fail(self: Box<Self>, _: StoreError) {}
    }

    #[test]
    fn a_failed_or_panicking_job_rolls_back_alone_and_the_batch_commits() {
        let conn = Arc::new(Mutex::new(schema::open_memory().expect("open")));
        let (events, mut live) = broadcast::channel(16);
        let committed = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            conn: Arc::clone(&conn),
            events,
            committed: Arc::clone(&committed),
            retention: None,
            retention_bytes: None,
        };
        let (first, mut first_rx) = create("a");
        let (failing_tx, mut failing_rx) = oneshot::channel();
        let (panic_tx, mut panic_rx) = oneshot::channel::<Result<Outcome, StoreError>>();
        let panicking = Box::new(MutateJob {
            key: key("boom"),
            guard: None,
            decide: |_: Option<&Value>, _: Option<&Value>| -> Result<Option<Value>, StoreError> {
                panic!("a bug in a mutate closure")
            },
            tx: panic_tx,
        });
        let (last, mut last_rx) = create("b");
        writer.write_batch(vec![
            first,
            Box::new(WritesThenFails(failing_tx)),
            panicking,
            last,
        ]);

        let rv = |rx: &mut Rx| {
            rx.try_recv()
                .expect("answered")
                .expect("written")
                .resource_version()
        };
        assert_eq!(rv(&mut first_rx), Some(1));
        assert_eq!(
            rv(&mut last_rx),
            Some(2),
            "the failures used no resourceVersion"
        );
        assert!(failing_rx.try_recv().is_ok(), "the failed job was answered");
        assert!(
            panic_rx.try_recv().is_err(),
            "the panicked job's caller sees Aborted"
        );
        assert_eq!(committed.load(Ordering::SeqCst), 2);
        let conn = lock(&conn);
        assert!(
            tables::read_object(&conn, &key("sneaky"))
                .expect("read")
                .is_none()
        );
        assert!(
            tables::read_object(&conn, &key("boom"))
                .expect("read")
                .is_none()
        );
        assert_eq!(tables::resource_version(&conn).expect("rv"), 2);
        let published: Vec<u64> = std::iter::from_fn(|| live.try_recv().ok())
            .map(|event| event.resource_version)
            .collect();
        assert_eq!(published, [1, 2]);
    }

    #[test]
    fn retention_compacts_the_log_as_writes_commit() {
        let conn = Arc::new(Mutex::new(schema::open_memory().expect("open")));
        let (events, _) = broadcast::channel(16);
        let writer = Writer {
            conn: Arc::clone(&conn),
            events,
            committed: Arc::new(AtomicU64::new(0)),
            retention: Some(3),
            retention_bytes: None,
        };
        for i in 0..5 {
            writer.write_batch(vec![create(&format!("o{i}")).0]);
        }
        let conn = lock(&conn);
        assert_eq!(tables::compacted_through(&conn).expect("floor"), 2);
        let scope = crate::store::Scope::resource("serving.knative.dev/services");
        let page = tables::events_after(&conn, &scope, 2, 10).expect("events");
        let rvs: Vec<u64> = page.events.iter().map(|e| e.resource_version).collect();
        assert_eq!(rvs, [3, 4, 5]);
        assert!(matches!(
            tables::events_after(&conn, &scope, 1, 10),
            Err(StoreError::Expired {
                requested: 1,
                oldest_available: 2
            })
        ));
    }
}
