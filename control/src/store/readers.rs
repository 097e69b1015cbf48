//! Reads off the runtime: a few read connections, each used by one blocking task at a time.
//!
//! In WAL mode readers see the last committed state and never wait for the writer, so reads get
//! their own connections rather than queueing behind writes. Each read is one transaction (a
//! consistent snapshot: a list's items and its resourceVersion agree) run under
//! `spawn_blocking`; a semaphore with one permit per connection keeps thousands of watchers that
//! catch up at once from tying up thousands of blocking threads.

use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::error::StoreError;
use super::lock;

pub(crate) struct Readers {
    conns: Vec<Arc<Mutex<Connection>>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// Readers over `conns` (an in-memory store passes its one connection, shared with the
    /// writer: the mutex then keeps reads and write batches apart).
    pub(crate) fn new(conns: Vec<Arc<Mutex<Connection>>>) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(conns.len()));
        Arc::new(Self { conns, permits })
    }

    /// Runs `read` in one read transaction on a free connection, off the async runtime.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Aborted)?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = this.pick()?;
            // Dropped at the end: a read transaction has nothing to keep.
            let tx = conn
                .unchecked_transaction()
                .map_err(StoreError::sql("starting a read transaction"))?;
            read(&tx)
        })
        .await
        .map_err(|e| StoreError::storage("running a read", e))?
    }

    /// A connection nobody is using (with a permit held, one always is, except for an in-memory
    /// store whose only connection the writer may hold for a moment).
    fn pick(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        for conn in &self.conns {
            if let Ok(guard) = conn.try_lock() {
                return Ok(guard);
            }
        }
        let first = self.conns.first().ok_or(StoreError::Aborted)?;
        Ok(lock(first))
    }
}
