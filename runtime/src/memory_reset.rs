//! Choosing, per component, how its pool slots are reset ([`MemoryReset::Auto`]).
//!
//! A slot is reset by rewriting the pages the last instance dirtied, which keeps them mapped
//! and is cheapest for almost every guest. It fails a guest that writes all over a large heap
//! (componentize-py's CPython): wasmtime 48 asks the kernel for at most 32 runs of dirty pages
//! and unmaps the slot past them, so every new instance faults those pages in again, each fault
//! a copy and a TLB shootdown to the other cores. Such a guest is better served by a second
//! engine whose slots rewrite their first 16 MiB whole.
//!
//! Which one a component needs shows in the page faults its fresh WASIp2 instances take on
//! their thread: a steady few (Rust and JavaScript hellos: 0 and about 26 a request) or
//! hundreds (Python hello: about 220). The first [`SAMPLES`] fresh instances are counted; the
//! median decides, since the first instances in never-used slots fault everything in whatever
//! the reset. A component that needs it is then loaded into the whole-prefix engine once,
//! and its replicas start new instances there.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::config::MemoryReset;
use crate::host::Host;
use crate::node::Runtime;

/// Fresh instances counted before the choice.
pub(crate) const SAMPLES: usize = 32;
/// Median page faults per fresh instance from which the whole-prefix reset pays: its copy of
/// 16 MiB costs about what 25–50 faults with their TLB shootdowns do, and the guests between
/// (JavaScript, about 26) measured faster without it.
pub(crate) const FAULTS_FOR_WHOLE_PREFIX: u64 = 100;

/// Where a component's choice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetState {
    /// Counting the page faults of its first fresh instances.
    Counting,
    /// Its slots are reset by rewriting their dirty pages (or, without the pooling allocator,
    /// its instances' memory is unmapped as they go).
    DirtyPages,
    /// It is being loaded into the whole-prefix engine.
    Switching,
    /// Its new instances start in slots rewritten whole (chosen, or the node's setting).
    WholePrefix,
}

/// The fault counts gathered so far; decides once it has [`SAMPLES`] of them.
#[derive(Debug, Default)]
pub(crate) struct Calibration {
    samples: Vec<u64>,
    decided: bool,
}

impl Calibration {
    /// Records one fresh instance's page faults; returns the choice when this sample completes
    /// the count, and never again after.
    pub(crate) fn record(&mut self, faults: u64) -> Option<MemoryReset> {
        if self.decided {
            return None;
        }
        self.samples.push(faults);
        if self.samples.len() < SAMPLES {
            return None;
        }
        self.decided = true;
        self.samples.sort_unstable();
        let median = self.samples[self.samples.len() / 2];
        self.samples = Vec::new();
        Some(if median >= FAULTS_FOR_WHOLE_PREFIX {
            MemoryReset::WholePrefix
        } else {
            MemoryReset::DirtyPages
        })
    }
}

/// The component as the whole-prefix engine runs it.
#[derive(Clone)]
pub(crate) struct WholePrefixPre {
    pub engine: Engine,
    pub pre: ProxyPre<Host>,
}

/// One prepared component's choice, shared by its replicas.
pub(crate) struct ResetChoice {
    runtime: Runtime,
    component: Component,
    source_name: String,
    counting: AtomicBool,
    calibration: Mutex<Calibration>,
    state: Mutex<ResetState>,
    whole_prefix: OnceLock<WholePrefixPre>,
}

impl ResetChoice {
    /// `initial` is [`ResetState::Counting`] when the node leaves the choice to the component,
    /// else what the node's engine does.
    pub(crate) fn new(
        runtime: Runtime,
        component: Component,
        source_name: String,
        initial: ResetState,
    ) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            component,
            source_name,
            counting: AtomicBool::new(initial == ResetState::Counting),
            calibration: Mutex::new(Calibration::default()),
            state: Mutex::new(initial),
            whole_prefix: OnceLock::new(),
        })
    }

    pub(crate) fn state(&self) -> ResetState {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_state(&self, state: ResetState) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    /// Whether fresh instances are still counted.
    pub(crate) fn counting(&self) -> bool {
        self.counting.load(Ordering::Relaxed)
    }

    /// The whole-prefix engine and pre, once the component runs there.
    pub(crate) fn whole_prefix(&self) -> Option<&WholePrefixPre> {
        self.whole_prefix.get()
    }

    /// Records a fresh instance's page faults, and moves the component when the count says so.
    pub(crate) fn record(self: &Arc<Self>, faults: u64) {
        let decided = self
            .calibration
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(faults);
        match decided {
            None => {}
            Some(MemoryReset::WholePrefix) => {
                self.counting.store(false, Ordering::Relaxed);
                self.set_state(ResetState::Switching);
                let choice = self.clone();
                // Loading the compiled component into another engine copies its image: off the
                // request path.
                tokio::task::spawn_blocking(move || choice.switch());
            }
            Some(_) => {
                self.counting.store(false, Ordering::Relaxed);
                self.set_state(ResetState::DirtyPages);
            }
        }
    }

    fn switch(&self) {
        match self
            .runtime
            .load_whole_prefix(&self.component, &self.source_name)
        {
            Ok(loaded) => {
                let _ = self.whole_prefix.set(loaded);
                self.set_state(ResetState::WholePrefix);
                tracing::info!(
                    component = %self.source_name,
                    "its instances write all over a large heap: new ones start in slots reset \
                     whole (--memory-reset whole-prefix)"
                );
            }
            Err(error) => {
                self.set_state(ResetState::DirtyPages);
                tracing::warn!(
                    component = %self.source_name,
                    %error,
                    "cannot load the component into the whole-prefix engine; its slots keep \
                     the dirty-page reset"
                );
            }
        }
    }
}

/// Minor page faults of the calling thread so far.
#[cfg(target_os = "linux")]
fn thread_minor_faults() -> Option<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given, which points at one.
    let status = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if status != 0 {
        return None;
    }
    // SAFETY: the call succeeded, so it filled the struct (and zeroed memory is a valid one).
    let usage = unsafe { usage.assume_init() };
    u64::try_from(usage.ru_minflt).ok()
}

#[cfg(not(target_os = "linux"))]
fn thread_minor_faults() -> Option<u64> {
    None
}

/// A fresh instance's work, counting the page faults its polls take on their threads; the
/// total goes to the component's choice when the work completes (not when it is dropped
/// midway: a client that left says nothing about the guest).
pub(crate) struct CountFaults<F> {
    inner: Pin<Box<F>>,
    faults: u64,
    choice: Option<Arc<ResetChoice>>,
}

impl<F> CountFaults<F> {
    pub(crate) fn new(inner: F, choice: Arc<ResetChoice>) -> Self {
        Self {
            inner: Box::pin(inner),
            faults: 0,
            choice: Some(choice),
        }
    }
}

impl<F: Future> Future for CountFaults<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let before = thread_minor_faults();
        let poll = self.inner.as_mut().poll(cx);
        if let (Some(before), Some(after)) = (before, thread_minor_faults()) {
            self.faults += after.saturating_sub(before);
        }
        if poll.is_ready()
            && let Some(choice) = self.choice.take()
        {
            choice.record(self.faults);
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(samples: impl IntoIterator<Item = u64>) -> Vec<Option<MemoryReset>> {
        let mut calibration = Calibration::default();
        samples
            .into_iter()
            .map(|faults| calibration.record(faults))
            .collect()
    }

    #[test]
    fn nothing_is_decided_before_the_last_sample() {
        let decisions = decide(std::iter::repeat_n(500, SAMPLES - 1));
        assert!(decisions.iter().all(Option::is_none));
    }

    #[test]
    fn a_heap_writer_moves_and_a_small_guest_stays() {
        // Python: about 220 faults a fresh instance; Rust: none; JavaScript: about 26.
        for (faults, expected) in [
            (220, MemoryReset::WholePrefix),
            (0, MemoryReset::DirtyPages),
            (26, MemoryReset::DirtyPages),
        ] {
            let decisions = decide(std::iter::repeat_n(faults, SAMPLES));
            assert_eq!(decisions.last(), Some(&Some(expected)), "{faults} faults");
        }
    }

    #[test]
    fn first_instances_in_new_slots_do_not_decide_alone() {
        // Eight connections at once: eight instances fault a whole new slot in (thousands of
        // faults), then the slots are reused and the guest's own count shows.
        let samples = std::iter::repeat_n(4000, 8).chain(std::iter::repeat_n(26, SAMPLES - 8));
        assert_eq!(decide(samples).last(), Some(&Some(MemoryReset::DirtyPages)));
    }

    #[test]
    fn the_choice_is_made_once() {
        let decisions = decide(std::iter::repeat_n(500, SAMPLES * 2));
        assert_eq!(decisions.iter().filter(|d| d.is_some()).count(), 1);
    }

    #[test]
    fn this_threads_faults_are_counted() {
        let Some(before) = thread_minor_faults() else {
            return;
        };
        // Touch fresh pages: each first write is a fault of this thread.
        let mut pages = vec![0_u8; 64 * 4096];
        for page in pages.chunks_mut(4096) {
            page[0] = 1;
        }
        std::hint::black_box(&pages);
        let after = thread_minor_faults().unwrap_or(before);
        assert!(after > before, "{before} → {after}");
    }
}
