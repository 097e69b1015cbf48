//! The store's tuning knobs, with defaults for a single-machine cluster.

use std::time::Duration;

/// The default [`StoreOptions::event_retention_bytes`]: 256 MiB.
pub const DEFAULT_EVENT_RETENTION_BYTES: u64 = 256 << 20;

/// Tuning knobs; [`StoreOptions::default`] suits a single-machine cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Keep this many of the latest events in the log; older ones are compacted away as writes
    /// happen. `None` keeps everything until [`Store::compact`](super::Store::compact).
    /// Default 100,000: a watcher that falls behind while thousands of Services are applied at
    /// once (each a dozen writes: Service, Configuration, Revision, Route and their statuses)
    /// can still catch up from the log instead of relisting everything, which under that load
    /// made it fall further behind; 100,000 events of Knative-sized objects are a few hundred MB
    /// of disk at most.
    pub event_retention: Option<u64>,
    /// Keep the log's events within this many bytes (their objects' JSON and keys) as well:
    /// past it the oldest are compacted away as writes happen, whatever `event_retention`
    /// allows, so large objects rewritten often cannot fill the disk. The newest event is
    /// always kept. `None` bounds by count only. Default 256 MiB.
    pub event_retention_bytes: Option<u64>,
    /// How many events the live channel holds for a watcher that is behind; one that falls
    /// further behind reads the log instead. At least one; default 1,024.
    pub watch_buffer: usize,
    /// Read connections for a file database, 1 to 64 (an in-memory one has only its one
    /// connection). Default 4.
    pub read_connections: usize,
    /// Writes that may wait for the writer before further callers wait to enqueue (at least
    /// one). Default 1,024.
    pub write_queue: usize,
    /// How long a connection waits for a lock another one holds. Default 5 s.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            event_retention: Some(100_000),
            event_retention_bytes: Some(DEFAULT_EVENT_RETENTION_BYTES),
            watch_buffer: 1024,
            read_connections: 4,
            write_queue: 1024,
            busy_timeout: Duration::from_secs(5),
        }
    }
}
