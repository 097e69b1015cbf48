//! Guest stdout and stderr, turned into `tracing` events one line at a time and tagged with the
//! revision and request that wrote them.

use std::io;
use std::pin::Pin;
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
    revision: Arc<str>,
    request_id: Arc<str>,
    pending: Mutex<Vec<u8>>,
}

impl GuestLog {
    pub fn new(stream: GuestStream, revision: Arc<str>, request_id: Arc<str>) -> Self {
        Self {
            inner: Arc::new(Inner {
                stream,
                revision,
                request_id,
                pending: Mutex::new(Vec::new()),
            }),
        }
    }

    fn write_bytes(&self, mut bytes: &[u8]) {
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

impl Inner {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.trim().is_empty() {
            return;
        }
        let (revision, request) = (&*self.revision, &*self.request_id);
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
