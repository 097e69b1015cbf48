//! Demand reporting hooks: how the activator tells the autoscaler about requests without
//! depending on it (DESIGN §2: the activator depends only on `api`).
//!
//! A request counts as demand from the moment it enters the throttler, queue time included
//! (reference §4.3), until its lease is dropped. The gateway implements [`DemandHooks`] over the
//! autoscaler's `RevisionHandle` (`request_entered` → `request_started`, `request_left` →
//! `request_finished`, `poke` → `poke`).

/// Receives a revision's demand events. Called on the request path: keep it cheap and never
/// block; calls are made without the throttler's lock held.
pub trait DemandHooks: Send + Sync + 'static {
    /// A request entered the activator (before it may queue).
    fn request_entered(&self);
    /// A request left: its lease was dropped, or it failed or gave up while queued.
    fn request_left(&self);
    /// A request found the revision with no backend and nobody waiting — the first request of
    /// a cold start: evaluate the autoscaler now rather than at its next tick. Fired once for a
    /// burst at zero (after `request_entered`), and again if a later request finds the queue
    /// empty because everyone before it gave up.
    fn poke(&self) {}
}

impl<T: DemandHooks + ?Sized> DemandHooks for std::sync::Arc<T> {
    fn request_entered(&self) {
        (**self).request_entered();
    }
    fn request_left(&self) {
        (**self).request_left();
    }
    fn poke(&self) {
        (**self).poke();
    }
}

/// Hooks that report nothing (tests, or a revision the autoscaler does not manage).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDemand;

impl DemandHooks for NoDemand {
    fn request_entered(&self) {}
    fn request_left(&self) {}
}
