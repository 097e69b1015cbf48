//! The threads that run guests, apart from the API server, the controllers and the sync: the
//! gateway (its connections, the activator and every guest it starts) runs on a runtime of its
//! own, whose threads run at a lower priority than the control plane's. A node full of busy
//! guests then still answers `kubectl`, renews its leases and applies changes on time; the
//! guests get every cycle the control plane leaves.

use anyhow::Context;

/// How much lower the guest threads' priority is (a `nice` increment): enough that a waking
/// control-plane thread runs first, not so much that guests starve while it is busy.
const NICE_INCREMENT: i32 = 5;

/// A multi-thread tokio runtime for guests. Dropping it stops its tasks without waiting.
pub struct GuestRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl GuestRuntime {
    /// One worker thread per core, named `wisp-guest`.
    pub fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("wisp-guest")
            .on_thread_start(lower_this_threads_priority)
            .enable_all()
            .build()
            .context("cannot start the runtime that runs guests")?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for GuestRuntime {
    fn drop(&mut self) {
        // A runtime may not be dropped (blocking) inside another's async context.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // On Linux a nice value belongs to a thread, so this lowers only the calling one.
    // SAFETY: gettid and setpriority take no pointers and only affect this thread.
    let changed = unsafe {
        let tid = libc::gettid();
        let current = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        libc::setpriority(
            libc::PRIO_PROCESS,
            tid as libc::id_t,
            current.saturating_add(NICE_INCREMENT),
        )
    };
    if changed != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the priority of a guest thread; guests share the CPU with the control plane as equals"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn guest_threads_run_at_a_lower_priority() {
        let mine = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let guests = GuestRuntime::start().unwrap();
        let theirs = guests
            .handle()
            .block_on(async {
                tokio::spawn(async {
                    // SAFETY: as above.
                    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
                })
                .await
            })
            .unwrap();
        assert_eq!(theirs, (mine + NICE_INCREMENT).min(19));
    }
}
