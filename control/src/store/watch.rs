//! Watching: the logged events after a resourceVersion, then live ones, in resourceVersion order
//! with no gaps and no duplicates.
//!
//! Live events come from a broadcast channel the writer fills after each commit: a write never
//! waits for a watcher (its cost per watcher is one wake-up), and a slow reader holds up nobody
//! but itself. Each stream
//! keeps a *position*: every event up to it has been considered (delivered, or skipped by its
//! filter). It subscribes before it reads the log, so an event committed meanwhile is in the
//! log, in the channel, or both, and anything at or below the position is dropped as a
//! duplicate. A stream that falls so far behind that the channel overwrote events it had not
//! read (`Lagged`) reads them back from the log from its position, and ends with
//! [`StoreError::Expired`] if compaction removed them first.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use super::error::StoreError;
use super::event::Event;
use super::key::Scope;
use super::readers::Readers;
use super::tables;

/// How many logged events one catch-up read fetches.
const PAGE: usize = 512;

/// A watch on one [`Scope`], from [`Store::watch`](super::Store::watch).
pub struct WatchStream {
    scope: Scope,
    live: broadcast::Receiver<Arc<Event>>,
    readers: Arc<Readers>,
    /// Every event with a resourceVersion at or below this has been considered.
    position: u64,
    /// Logged events read but not yet handed out (all at or below `position`).
    backlog: VecDeque<Arc<Event>>,
    /// The log may hold events after `position` that the channel will not deliver.
    catching_up: bool,
    finished: bool,
}

impl WatchStream {
    pub(crate) fn new(
        scope: Scope,
        live: broadcast::Receiver<Arc<Event>>,
        readers: Arc<Readers>,
        from_rv: u64,
    ) -> Self {
        Self {
            scope,
            live,
            readers,
            position: from_rv,
            backlog: VecDeque::new(),
            catching_up: true,
            finished: false,
        }
    }

    /// Reads the first page of the log now, so a compacted `from_rv` is reported by `watch`.
    pub(crate) async fn prime(&mut self) -> Result<(), StoreError> {
        self.read_log().await
    }

    /// The next event in the scope; `None` once the store has shut down. An `Err` (the events
    /// this stream still needed were compacted away, or the log could not be read) ends it.
    ///
    /// Cancel-safe: dropping the future before it completes loses nothing, so it can sit in a
    /// `select!` beside a bookmark timer.
    pub async fn next(&mut self) -> Option<Result<Arc<Event>, StoreError>> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(event) = self.backlog.pop_front() {
                return Some(Ok(event));
            }
            if self.catching_up {
                if let Err(error) = self.read_log().await {
                    self.finished = true;
                    return Some(Err(error));
                }
                continue;
            }
            match self.live.recv().await {
                Ok(event) if event.resource_version <= self.position => {}
                Ok(event) if event.resource_version > self.position.saturating_add(1) => {
                    // Cannot happen while the channel reports every loss as `Lagged`; if it
                    // ever does, the log has everything: read it rather than skip events.
                    self.catching_up = true;
                }
                Ok(event) => {
                    self.position = event.resource_version;
                    if self.scope.contains(&event.key) {
                        return Some(Ok(event));
                    }
                }
                Err(RecvError::Lagged(_)) => self.catching_up = true,
                Err(RecvError::Closed) => self.finished = true,
            }
        }
    }

    /// The resourceVersion a client can resume from having seen every event returned so far:
    /// the right value for a `BOOKMARK`. It moves past events outside the scope too, so a quiet
    /// watch on a busy store still gets fresh bookmarks.
    pub fn resume_rv(&self) -> u64 {
        match self.backlog.front() {
            Some(next) => next.resource_version.saturating_sub(1),
            None => self.position,
        }
    }

    /// The scope this stream watches.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The stream as a [`futures::Stream`], for handlers that forward it with combinators.
    pub fn into_stream(self) -> impl Stream<Item = Result<Arc<Event>, StoreError>> + Send {
        futures::stream::unfold(self, |mut watch| async move {
            let item = watch.next().await?;
            Some((item, watch))
        })
    }

    /// Reads the next page of the log after `position` (state changes only once it completes,
    /// which is what keeps `next` cancel-safe).
    async fn read_log(&mut self) -> Result<(), StoreError> {
        let scope = self.scope.clone();
        let after = self.position;
        let page = self
            .readers
            .read(move |conn| tables::events_after(conn, &scope, after, PAGE))
            .await?;
        self.position = self.position.max(page.through);
        self.catching_up = page.more;
        self.backlog.extend(page.events.into_iter().map(Arc::new));
        Ok(())
    }
}
