//! Guest stdout and stderr, turned into `tracing` events one line at a time and tagged with the
//! revision and request that wrote them. A request may log so much and no more: a guest that
//! writes in a loop costs the log pipeline a bounded amount, and one line says what was dropped.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept whole; a longer one is logged in pieces so a guest cannot make the host
/// buffer without bound.
const MAX_LINE: usize = 16 * 1024;
/// How much the guest may write per `check-write`.
const WRITE_PERMIT: usize = 64 * 1024;
/// Bytes one request may log on stdout and stderr together; the rest is counted and dropped.
pub const MAX_LOG_BYTES_PER_REQUEST: u64 = 1024 * 1024;

/// What one request may still log, shared by its stdout and stderr.
#[derive(Debug)]
pub struct LogBudget {
    revision: Arc<str>,
    /// The request now running in the instance: a reused instance serves many in turn.
    request_id: Mutex<Arc<str>>,
    remaining: AtomicU64,
    dropped: AtomicU64,
}

impl LogBudget {
    pub fn new(revision: Arc<str>, request_id: Arc<str>) -> Arc<Self> {
        Arc::new(Self {
            revision,
            request_id: Mutex::new(request_id),
            remaining: AtomicU64::new(MAX_LOG_BYTES_PER_REQUEST),
            dropped: AtomicU64::new(0),
        })
    }

    /// How many of `wanted` bytes may be logged; the rest is counted as dropped.
    fn take(&self, wanted: usize) -> usize {
        let wanted = wanted as u64;
        let granted =
            match self
                .remaining
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |remaining| {
                    Some(remaining.saturating_sub(wanted))
                }) {
                Ok(before) | Err(before) => before.min(wanted),
            };
        if granted < wanted {
            self.dropped.fetch_add(wanted - granted, Ordering::Relaxed);
        }
        granted as usize
    }

    /// Starts the budget of the next request a reused instance serves, after saying what the
    /// previous one dropped.
    pub fn begin_request(&self, request_id: Arc<str>) {
        self.report_dropped();
        if let Ok(mut current) = self.request_id.lock() {
            *current = request_id;
        }
        self.remaining
            .store(MAX_LOG_BYTES_PER_REQUEST, Ordering::Release);
    }

    fn request_id(&self) -> Arc<str> {
        match self.request_id.lock() {
            Ok(id) => id.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn report_dropped(&self) {
        let dropped = self.dropped.swap(0, Ordering::AcqRel);
        if dropped > 0 {
            tracing::warn!(
                target: "wisp::guest",
                revision = &*self.revision,
                request = &*self.request_id(),
                dropped_bytes = dropped,
                "guest log truncated: the request wrote more than {MAX_LOG_BYTES_PER_REQUEST} bytes \
                 to stdout and stderr; {dropped} bytes were dropped"
            );
        }
    }
}

impl Drop for LogBudget {
    fn drop(&mut self) {
        self.report_dropped();
    }
}

#[derive(Debug, Clone, Copy)]
pub enum GuestStream {
    Stdout,
    Stderr,
}

/// One guest output stream of one request. Clones share the pending partial line.
#[derive(Clone)]
pub struct GuestLog {
    inner: Arc<Inner>,
}

struct Inner {
    stream: GuestStream,
    budget: Arc<LogBudget>,
    pending: Mutex<Vec<u8>>,
}

impl GuestLog {
    pub fn new(stream: GuestStream, budget: Arc<LogBudget>) -> Self {
        Self {
            inner: Arc::new(Inner {
                stream,
                budget,
                pending: Mutex::new(Vec::new()),
            }),
        }
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let granted = self.inner.budget.take(bytes.len());
        let mut bytes = &bytes[..granted];
        let Ok(mut pending) = self.inner.pending.lock() else {
            return;
        };
        while let Some(newline) = bytes.iter().position(|b| *b == b'\n') {
            pending.extend_from_slice(&bytes[..newline]);
            self.inner.emit(&pending);
            pending.clear();
            bytes = &bytes[newline + 1..];
        }
        pending.extend_from_slice(bytes);
        while pending.len() >= MAX_LINE {
            let rest = pending.split_off(MAX_LINE);
            self.inner.emit(&pending);
            *pending = rest;
        }
    }
}

impl GuestLog {
    /// Logs a last line the guest left without a newline, so it is told under the request
    /// that wrote it (a reused instance goes on to the next request).
    pub fn flush_pending(&self) {
        let Ok(mut pending) = self.inner.pending.lock() else {
            return;
        };
        if !pending.is_empty() {
            let line = std::mem::take(&mut *pending);
            self.inner.emit(&line);
        }
    }
}

impl Inner {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.trim().is_empty() {
            return;
        }
        let request = self.budget.request_id();
        let (revision, request) = (&*self.budget.revision, &*request);
        match self.stream {
            GuestStream::Stdout => {
                tracing::info!(target: "wisp::guest", revision, request, stream = "stdout", "{line}")
            }
            GuestStream::Stderr => {
                tracing::warn!(target: "wisp::guest", revision, request, stream = "stderr", "{line}")
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A last line without a newline is still the guest's output.
        if let Ok(pending) = self.pending.get_mut()
            && !pending.is_empty()
        {
            let pending = std::mem::take(pending);
            self.emit(&pending);
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestLog {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_logs_at_most_its_budget_across_both_streams() {
        let budget = LogBudget::new(Arc::from("rev"), Arc::from("req"));
        let stdout = GuestLog::new(GuestStream::Stdout, budget.clone());
        let stderr = GuestLog::new(GuestStream::Stderr, budget.clone());
        let line = vec![b'x'; 1000];
        for _ in 0..800 {
            stdout.write_bytes(&line);
            stderr.write_bytes(&line);
        }
        assert_eq!(budget.remaining.load(Ordering::Acquire), 0);
        assert_eq!(
            budget.dropped.load(Ordering::Acquire),
            1_600_000 - MAX_LOG_BYTES_PER_REQUEST
        );
    }
}
