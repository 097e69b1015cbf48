//! Write requests as the writer thread sees them: a [`Job`] runs inside the batch transaction and
//! leaves a [`Reply`] that is sent only once the batch has committed (or fails with it). Type
//! erasure lives here, so the writer handles `mutate` closures of any error type alike.

use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::oneshot;

use super::error::StoreError;
use super::event::Event;
use super::key::ObjectKey;
use super::mutation::{self, Outcome};
use super::tables;

/// One write request waiting in the writer's queue.
pub(crate) trait Job: Send {
    /// Does the work on `conn` (a savepoint of the batch transaction). A write uses `next_rv`
    /// and returns its event.
    fn run(self: Box<Self>, conn: &Connection, next_rv: u64) -> Done;

    /// Answers with `error` without running (the batch could not run at all).
    fn fail(self: Box<Self>, error: StoreError);
}

/// What a job left behind: its event, if it wrote, and its answer, held until the commit.
pub(crate) struct Done {
    pub(crate) event: Option<Event>,
    pub(crate) reply: Box<dyn Reply>,
}

/// A job's answer, sent after its batch's commit.
pub(crate) trait Reply: Send {
    /// Whether the job failed (its savepoint is rolled back, and it sends its own error).
    fn failed(&self) -> bool;

    /// Sends the result: the batch committed.
    fn send(self: Box<Self>);

    /// The batch did not commit: a successful result becomes `error`; a failure stays as it was.
    fn send_failure(self: Box<Self>, error: StoreError);
}

struct Answer<T, E> {
    tx: oneshot::Sender<Result<T, E>>,
    result: Result<T, E>,
}

impl<T, E> Reply for Answer<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn failed(&self) -> bool {
        self.result.is_err()
    }

    fn send(self: Box<Self>) {
        // The caller may have gone away (its future dropped); the write stands regardless.
        let _ = self.tx.send(self.result);
    }

    fn send_failure(self: Box<Self>, error: StoreError) {
        let result = match self.result {
            Ok(_) => Err(E::from(error)),
            Err(own) => Err(own),
        };
        let _ = self.tx.send(result);
    }
}

/// A `mutate` call: the read-modify-write of one object, which may read a second one (the
/// guard) in the same transaction when the first does not exist yet.
pub(crate) struct MutateJob<F, E> {
    pub(crate) key: ObjectKey,
    pub(crate) guard: Option<ObjectKey>,
    pub(crate) decide: F,
    pub(crate) tx: oneshot::Sender<Result<Outcome, E>>,
}

impl<F, E> Job for MutateJob<F, E>
where
    F: FnOnce(Option<&Value>, Option<&Value>) -> Result<Option<Value>, E> + Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection, next_rv: u64) -> Done {
        let Self {
            key,
            guard,
            decide,
            tx,
        } = *self;
        let guarded = |current: Option<&Value>| {
            // Read only for a create: an existing object's writes never need it, and most
            // writes are to existing objects.
            let guard = match (&guard, current) {
                (Some(guard), None) => tables::read_object(conn, guard)?.map(|(_, object)| object),
                _ => None,
            };
            decide(current, guard.as_ref())
        };
        let (result, event) = match mutation::apply(conn, &key, next_rv, guarded) {
            Ok((outcome, event)) => (Ok(outcome), event),
            Err(error) => (Err(error), None),
        };
        Done {
            event,
            reply: Box::new(Answer { tx, result }),
        }
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.tx.send(Err(E::from(error)));
    }
}

/// A `remove_unreadable` call: delete a row that cannot be decoded.
pub(crate) struct RemoveUnreadableJob {
    pub(crate) key: ObjectKey,
    pub(crate) stub: Value,
    pub(crate) tx: oneshot::Sender<Result<Outcome, StoreError>>,
}

impl Job for RemoveUnreadableJob {
    fn run(self: Box<Self>, conn: &Connection, next_rv: u64) -> Done {
        let (result, event) = match mutation::remove_unreadable(conn, &self.key, next_rv, self.stub)
        {
            Ok((outcome, event)) => (Ok(outcome), event),
            Err(error) => (Err(error), None),
        };
        Done {
            event,
            reply: Box::new(Answer {
                tx: self.tx,
                result,
            }),
        }
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.tx.send(Err(error));
    }
}

/// A `compact` call: raise the compaction floor.
pub(crate) struct CompactJob {
    pub(crate) through: u64,
    pub(crate) tx: oneshot::Sender<Result<u64, StoreError>>,
}

impl Job for CompactJob {
    fn run(self: Box<Self>, conn: &Connection, next_rv: u64) -> Done {
        // Never past the last resourceVersion handed out (including earlier jobs of this batch):
        // the floor must not swallow events that do not exist yet.
        let result = tables::compact(conn, self.through.min(next_rv.saturating_sub(1)));
        Done {
            event: None,
            reply: Box::new(Answer {
                tx: self.tx,
                result,
            }),
        }
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.tx.send(Err(error));
    }
}
