//! Choosing, per component, how its pool slots are reset ([`MemoryReset::Auto`]).
//!
//! Where the kernel has `PAGEMAP_SCAN` (Linux 6.7+), a slot is reset by rewriting the pages the
//! last instance dirtied, which keeps them mapped and is cheapest for almost every guest. It
//! fails a guest that writes all over a large heap (componentize-py's CPython): wasmtime 48 asks
//! the kernel for at most 32 runs of dirty pages and unmaps the slot past them, so every new
//! instance faults those pages in again, each fault a copy and a TLB shootdown to the other
//! cores. Such a guest is better served by a second engine whose slots rewrite their first
//! `keep_resident` bytes (16 MiB) whole.
//!
//! Which one a component needs shows in the page faults its fresh WASIp2 instances take on
//! their thread: a steady few (Rust and JavaScript hellos: 0 and about 26 a request) or
//! hundreds (Python hello: about 220). [`SAMPLES`] fresh instances that answered are counted,
//! and their lower quartile decides. An instance in a slot new to the component faults its
//! whole heap in whatever the reset, so it says nothing about the reset: one that makes more of
//! the component's instances alive at once than ever before (their stores, reused ones
//! included) is not counted, and the quartile tolerates the rest (wasmtime hands each thread
//! slots from its own shard of the pool first, so a new slot can also come with no rise). A
//! component that needs it is then loaded into the whole-prefix engine once, and the replicas
//! of every revision running it start new instances there.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::config::MemoryReset;
use crate::host::Host;
use crate::node::Runtime;

/// Fresh instances counted before the choice.
pub(crate) const SAMPLES: usize = 32;
/// Page faults per fresh instance (the samples' lower quartile) from which the whole-prefix reset
/// pays: its copy of 16 MiB costs about what 25–50 faults with their TLB shootdowns do, and the
/// guests between (JavaScript, about 26) measured faster without it.
pub(crate) const FAULTS_FOR_WHOLE_PREFIX: u64 = 100;

/// Where a component's choice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetState {
    /// Counting the page faults of its fresh instances.
    Counting,
    /// Its slots are reset by rewriting their dirty pages (unmapped instead where the kernel
    /// lacks `PAGEMAP_SCAN`, and without the pooling allocator its instances' memory goes with
    /// them).
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
    /// Instances (stores) of the component alive now, and the most ever alive at once: an
    /// instance that raises the most takes a slot the component has not used before.
    alive: usize,
    most_alive: usize,
}

/// What the count concluded: the reset, and the faults it was chosen on (the samples' lower
/// quartile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    pub reset: MemoryReset,
    pub faults: u64,
}

impl Calibration {
    /// An instance of the component starts; returns whether its slot is new to the component
    /// (its faults are then not a sample).
    pub(crate) fn start(&mut self) -> bool {
        self.alive += 1;
        let new_slot = self.alive > self.most_alive;
        self.most_alive = self.most_alive.max(self.alive);
        new_slot
    }

    /// An instance of the component is gone, and its slot with it.
    pub(crate) fn end(&mut self) {
        self.alive = self.alive.saturating_sub(1);
    }

    /// Records one fresh instance's page faults; returns the choice when this sample completes
    /// the count, and never again after.
    pub(crate) fn record(&mut self, faults: u64) -> Option<Decision> {
        if self.decided {
            return None;
        }
        self.samples.push(faults);
        if self.samples.len() < SAMPLES {
            return None;
        }
        self.decided = true;
        self.samples.sort_unstable();
        // A sample from a slot new to the component only ever reads high: the lower quartile
        // holds while three in four samples are such.
        let faults = self.samples[(self.samples.len() - 1) / 4];
        self.samples = Vec::new();
        let reset = if faults >= FAULTS_FOR_WHOLE_PREFIX {
            MemoryReset::WholePrefix
        } else {
            MemoryReset::DirtyPages
        };
        Some(Decision { reset, faults })
    }
}

/// The component as the whole-prefix engine runs it.
#[derive(Clone)]
pub(crate) struct WholePrefixPre {
    pub pre: ProxyPre<Host>,
}

/// What moving the component needs, taken when the count ends so that a replica does not keep
/// the whole runtime alive.
struct MoveSource {
    runtime: Runtime,
    component: Component,
}

/// One component's choice on a node, shared by the revisions that run it and their replicas.
pub(crate) struct ResetChoice {
    source: Mutex<Option<MoveSource>>,
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
        let counting = initial == ResetState::Counting;
        Arc::new(Self {
            source: Mutex::new(counting.then_some(MoveSource { runtime, component })),
            source_name,
            counting: AtomicBool::new(counting),
            calibration: Mutex::new(Calibration::default()),
            state: Mutex::new(initial),
            whole_prefix: OnceLock::new(),
        })
    }

    /// Ties a new instance's store to the count: the store holds the returned watch for its
    /// life, and the instance's faults are a sample unless its slot is new to the component.
    pub(crate) fn watch_new_instance(self: &Arc<Self>) -> (SlotWatch, bool) {
        let new_slot = self.calibration().start();
        (SlotWatch(self.clone()), !new_slot)
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

    fn calibration(&self) -> std::sync::MutexGuard<'_, Calibration> {
        self.calibration
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a fresh instance's page faults, and moves the component when the count says so.
    fn record(self: &Arc<Self>, faults: u64) {
        let Some(decision) = self.calibration().record(faults) else {
            return;
        };
        self.counting.store(false, Ordering::Relaxed);
        let source = self
            .source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match (decision.reset, source) {
            (MemoryReset::WholePrefix, Some(source)) => {
                self.set_state(ResetState::Switching);
                let choice = self.clone();
                // Loading the compiled component into another engine copies its image: off the
                // request path.
                tokio::task::spawn_blocking(move || choice.switch(source, decision));
            }
            _ => {
                self.set_state(ResetState::DirtyPages);
                tracing::debug!(
                    component = %self.source_name,
                    faults_per_instance = decision.faults,
                    "its instances write little: their slots keep the dirty-page reset"
                );
            }
        }
    }

    fn switch(&self, source: MoveSource, decision: Decision) {
        let MoveSource { runtime, component } = source;
        match runtime.load_whole_prefix(&component, &self.source_name) {
            Ok(loaded) => {
                let _ = self.whole_prefix.set(loaded);
                self.set_state(ResetState::WholePrefix);
                tracing::info!(
                    component = %self.source_name,
                    faults_per_instance = decision.faults,
                    "its fresh instances fault their heap in: new ones start in slots reset \
                     whole (--memory-reset whole-prefix)"
                );
            }
            Err(error) => {
                self.set_state(ResetState::DirtyPages);
                tracing::warn!(
                    component = %self.source_name,
                    %error,
                    "cannot move the component to slots reset whole; its slots keep the \
                     dirty-page reset (pass --memory-reset dirty-pages to not try)"
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

/// Elsewhere there is no per-thread count: nothing is sampled, and components keep the
/// dirty-page reset.
#[cfg(not(target_os = "linux"))]
fn thread_minor_faults() -> Option<u64> {
    None
}

/// Held by a store of the component while its choice is made; says when its slot is given back.
pub(crate) struct SlotWatch(Arc<ResetChoice>);

impl Drop for SlotWatch {
    fn drop(&mut self) {
        self.0.calibration().end();
    }
}

/// A fresh instance's first request, counting the page faults its polls take on their threads.
/// The total is a sample when `served` says the work did what a request does (instantiated,
/// handled, answered); not when the work is dropped midway (a client that left says nothing
/// about the guest), nor when a thread's count could not be read.
pub(crate) struct CountFaults<F, P> {
    inner: Pin<Box<F>>,
    faults: Option<u64>,
    served: P,
    choice: Option<Arc<ResetChoice>>,
}

impl<F, P> CountFaults<F, P> {
    pub(crate) fn new(inner: F, choice: Arc<ResetChoice>, served: P) -> Self {
        Self {
            inner: Box::pin(inner),
            faults: Some(0),
            served,
            choice: Some(choice),
        }
    }
}

impl<F: Future, P: Fn(&F::Output) -> bool + Unpin> Future for CountFaults<F, P> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let before = thread_minor_faults();
        let poll = self.inner.as_mut().poll(cx);
        self.faults = match (self.faults, before, thread_minor_faults()) {
            (Some(total), Some(before), Some(after)) => Some(total + after.saturating_sub(before)),
            _ => None,
        };
        if let Poll::Ready(output) = &poll
            && let Some(choice) = self.choice.take()
            && let Some(faults) = self.faults
            && (self.served)(output)
        {
            choice.record(faults);
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
            .map(|faults| calibration.record(faults).map(|decision| decision.reset))
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
    fn instances_in_slots_new_to_the_component_are_told_apart() {
        let mut calibration = Calibration::default();
        // A burst of 20 at once: each takes a slot of its own for the first time.
        let burst: Vec<bool> = (0..20).map(|_| calibration.start()).collect();
        assert!(burst.iter().all(|new_slot| *new_slot));
        for _ in 0..20 {
            calibration.end();
        }
        // The next ones reuse those slots, up to as many at once as before.
        let again: Vec<bool> = (0..20).map(|_| calibration.start()).collect();
        assert!(again.iter().all(|new_slot| !*new_slot));
        // One more at once than ever is a new slot again.
        assert!(calibration.start());
    }

    fn final_decision(samples: impl IntoIterator<Item = u64>) -> Option<Decision> {
        let mut calibration = Calibration::default();
        samples
            .into_iter()
            .filter_map(|faults| calibration.record(faults))
            .last()
    }

    #[test]
    fn samples_from_new_slots_decide_nothing_alone() {
        // Samples from new slots the count did not tell apart read a whole heap faulted in
        // (4000); up to three in four of them, the guest's own faults still decide.
        let polluted = |own: u64, new_slots: usize| {
            std::iter::repeat_n(4000, new_slots)
                .chain(std::iter::repeat_n(own, SAMPLES - new_slots))
        };
        for (own, new_slots, reset) in [
            (26, SAMPLES * 3 / 4, MemoryReset::DirtyPages),
            (220, 4, MemoryReset::WholePrefix),
        ] {
            assert_eq!(
                final_decision(polluted(own, new_slots)),
                Some(Decision { reset, faults: own }),
                "{own} faults, {new_slots} samples from new slots"
            );
        }
    }

    #[test]
    fn the_choice_is_made_once() {
        let decisions = decide(std::iter::repeat_n(500, SAMPLES * 2));
        assert_eq!(decisions.iter().filter(|d| d.is_some()).count(), 1);
    }

    #[test]
    fn this_threads_faults_are_counted() {
        const PAGES: usize = 64;
        let before = thread_minor_faults().expect("getrusage(RUSAGE_THREAD) on Linux");
        let length = PAGES * 4096;
        // A fresh anonymous mapping: each page's first write is a fault of this thread.
        // SAFETY: a private anonymous mapping, written within its length, then unmapped.
        unsafe {
            let region = libc::mmap(
                std::ptr::null_mut(),
                length,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(region, libc::MAP_FAILED);
            for page in 0..PAGES {
                region.cast::<u8>().add(page * 4096).write_volatile(1);
            }
            libc::munmap(region, length);
        }
        let after = thread_minor_faults().expect("getrusage(RUSAGE_THREAD) on Linux");
        assert!(after >= before + PAGES as u64, "{before} → {after}");
    }
}
