//! The registry of revisions and the per-revision loop (Knative's `MultiScaler` plus the
//! collector): the data plane registers revisions, feeds request accounting and ready counts,
//! and receives decisions; the loop collects stats every second, evaluates every revision every
//! 2 s, and evaluates at once (a poke) when demand reaches a revision whose desired scale is 0.
//!
//! Locks are `std::sync` and never held across an await (there are no awaits here); the request
//! path touches only its revision's own locks, never the registry's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use wisp_api::revision_key::RevisionKey;

use crate::clock::{Clock, Timestamp};
use crate::config::AutoscalerConfig;
use crate::decider::{Observed, TICK_INTERVAL};
use crate::error::ConfigError;
use crate::reporter::{ConcurrencyReporter, Stat};
use crate::revision::{RevisionState, RevisionView};
use crate::spec::{ResolvedSpec, RevisionSpec};

/// Knative's collector period: stats become 1-second buckets.
pub const COLLECT_INTERVAL: Duration = Duration::from_secs(1);
const CHANGES_CAPACITY: usize = 4096;

/// A changed view, as broadcast to [`Autoscaler::subscribe`]rs.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub key: RevisionKey,
    pub view: RevisionView,
}

/// A revision's view plus the decider's inputs, for tools like the simulator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RevisionStatus {
    pub view: RevisionView,
    pub observed: Option<Observed>,
    pub ready: u32,
}

/// The autoscaler for all revisions of one data plane.
pub struct Autoscaler {
    shared: Arc<Shared>,
    config: RwLock<AutoscalerConfig>,
    revisions: RwLock<HashMap<RevisionKey, Arc<Revision>>>,
    last_tick: Mutex<Option<Timestamp>>,
}

struct Shared {
    clock: Arc<dyn Clock>,
    changes: broadcast::Sender<Decision>,
}

struct Revision {
    key: RevisionKey,
    reporter: Mutex<ConcurrencyReporter>,
    ready: AtomicU32,
    reconcile_wanted: AtomicBool,
    cell: Mutex<Cell>,
    view: watch::Sender<RevisionView>,
}

struct Cell {
    input: RevisionSpec,
    state: RevisionState,
}

/// The data plane's handle on one registered revision; cheap to clone and to call per request.
#[derive(Clone)]
pub struct RevisionHandle {
    revision: Arc<Revision>,
    shared: Arc<Shared>,
}

/// Counts one request as in flight until dropped (see [`RevisionHandle::track_request`]).
pub struct InFlightRequest {
    handle: RevisionHandle,
}

impl Drop for InFlightRequest {
    fn drop(&mut self) {
        self.handle.request_finished();
    }
}

/// A poisoned lock means a panic elsewhere mid-update; the autoscaler state is plain numbers
/// that stay usable, so carry on rather than cascade the panic into the request path.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Autoscaler {
    pub fn new(config: AutoscalerConfig, clock: Arc<dyn Clock>) -> Self {
        let (changes, _) = broadcast::channel(CHANGES_CAPACITY);
        Self {
            shared: Arc::new(Shared { clock, changes }),
            config: RwLock::new(config),
            revisions: RwLock::new(HashMap::new()),
            last_tick: Mutex::new(None),
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    pub fn config(&self) -> AutoscalerConfig {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn len(&self) -> usize {
        self.read_revisions().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read_revisions(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<RevisionKey, Arc<Revision>>> {
        self.revisions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts autoscaling a revision, or updates its spec if it is registered already. `ready` is
    /// the number of replicas ready now (a decider created with more than one starts panicking,
    /// so it does not scale down blind).
    pub fn register(
        &self,
        key: RevisionKey,
        spec: RevisionSpec,
        ready: u32,
    ) -> Result<RevisionHandle, ConfigError> {
        let resolved = ResolvedSpec::resolve(&self.config(), &spec)?;
        let mut revisions = self
            .revisions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = revisions.get(&key) {
            let handle = self.handle_for(existing.clone());
            {
                let mut cell = lock(&existing.cell);
                cell.input = spec;
                cell.state.update_spec(resolved);
            }
            existing.reconcile_wanted.store(true, Ordering::Release);
            return Ok(handle);
        }
        let now = self.shared.clock.now();
        let state = RevisionState::new(resolved, ready, now);
        let (view, _) = watch::channel(state.view());
        let revision = Arc::new(Revision {
            key: key.clone(),
            reporter: Mutex::new(ConcurrencyReporter::new()),
            ready: AtomicU32::new(ready),
            reconcile_wanted: AtomicBool::new(false),
            cell: Mutex::new(Cell { input: spec, state }),
            view,
        });
        revisions.insert(key, revision.clone());
        Ok(self.handle_for(revision))
    }

    /// Stops autoscaling a revision. Returns whether it was registered. Existing handles keep
    /// working but are no longer evaluated by the loop.
    pub fn unregister(&self, key: &RevisionKey) -> bool {
        self.revisions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
            .is_some()
    }

    pub fn handle(&self, key: &RevisionKey) -> Option<RevisionHandle> {
        self.read_revisions()
            .get(key)
            .map(|r| self.handle_for(r.clone()))
    }

    fn handle_for(&self, revision: Arc<Revision>) -> RevisionHandle {
        RevisionHandle {
            revision,
            shared: self.shared.clone(),
        }
    }

    pub fn view(&self, key: &RevisionKey) -> Option<RevisionView> {
        self.read_revisions().get(key).map(|r| *r.view.borrow())
    }

    /// Every view change, for all revisions. A receiver that lags gets `RecvError::Lagged` and
    /// should re-read the views it cares about with [`Autoscaler::view`].
    pub fn subscribe(&self) -> broadcast::Receiver<Decision> {
        self.shared.changes.subscribe()
    }

    /// A new `config-autoscaler`. Revisions whose annotations are invalid under it keep their
    /// previous spec; they are returned with the reason.
    pub fn update_config(&self, config: AutoscalerConfig) -> Vec<(RevisionKey, ConfigError)> {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config.clone();
        let mut rejected = Vec::new();
        for revision in self.read_revisions().values() {
            let mut cell = lock(&revision.cell);
            match ResolvedSpec::resolve(&config, &cell.input) {
                Ok(resolved) => cell.state.update_spec(resolved),
                Err(e) => rejected.push((revision.key.clone(), e)),
            }
            revision.reconcile_wanted.store(true, Ordering::Release);
        }
        rejected
    }

    /// One second of the loop: collect stats, and every [`TICK_INTERVAL`] evaluate every
    /// revision. The driver calls this each second; tests call it on simulated time.
    pub fn step(&self, now: Timestamp) {
        self.collect(now);
        let due = {
            let mut last = lock(&self.last_tick);
            // Every second step: a real interval wakes a little late by a varying amount, so two
            // steps apart can be a hair under 2 s; demanding a full 2 s would skip to every third.
            let due = last.is_none_or(|t| now - t >= TICK_INTERVAL - COLLECT_INTERVAL / 2);
            if due {
                *last = Some(now);
            }
            due
        };
        if due {
            self.tick(now);
        }
    }

    /// The collector pass: turn each revision's request accounting into a 1-second bucket,
    /// poke revisions at zero that see demand, and run reconciles that came due (re-queues,
    /// ready-count changes, spec changes).
    pub fn collect(&self, now: Timestamp) {
        for revision in self.read_revisions().values() {
            let reported = lock(&revision.reporter).report(now);
            let ready = revision.ready.load(Ordering::Acquire);
            // Idle replicas still report zeros (Knative scrapes them); an idle revision at zero
            // reports nothing, so its window empties and the decider holds at zero.
            let stat = reported.or((ready > 0).then_some(Stat::default()));
            let view = {
                let mut cell = lock(&revision.cell);
                let poke = match stat {
                    Some(stat) => {
                        cell.state.record(now, stat);
                        cell.state.at_zero() && stat.concurrency != 0.0
                    }
                    None => false,
                };
                let wanted = revision.reconcile_wanted.swap(false, Ordering::AcqRel);
                let requeued = cell.state.requeue_at().is_some_and(|t| t <= now);
                if poke {
                    Some(cell.state.evaluate(now, ready))
                } else if wanted || requeued {
                    Some(cell.state.reconcile(now, ready))
                } else {
                    None
                }
            };
            if let Some(view) = view {
                revision.publish(&self.shared.changes, view);
            }
        }
    }

    /// The decider pass: evaluate every revision.
    pub fn tick(&self, now: Timestamp) {
        for revision in self.read_revisions().values() {
            let ready = revision.ready.load(Ordering::Acquire);
            let view = lock(&revision.cell).state.evaluate(now, ready);
            revision.publish(&self.shared.changes, view);
        }
    }
}

impl RevisionHandle {
    pub fn key(&self) -> &RevisionKey {
        &self.revision.key
    }

    /// A request for this revision arrived (at the gateway or in the activator queue: queued
    /// time counts as demand). If the revision is at zero this evaluates at once, so a cold start
    /// waits for no tick.
    pub fn request_started(&self) {
        let now = self.shared.clock.now();
        let first_sight = lock(&self.revision.reporter).request_in(now);
        if let Some(stat) = first_sight {
            self.record_at(now, stat);
        }
    }

    /// A request finished, failed or gave up waiting.
    pub fn request_finished(&self) {
        let now = self.shared.clock.now();
        lock(&self.revision.reporter).request_out(now);
    }

    /// [`RevisionHandle::request_started`] now, and `request_finished` when the guard drops.
    pub fn track_request(&self) -> InFlightRequest {
        self.request_started();
        InFlightRequest {
            handle: self.clone(),
        }
    }

    /// Records a stat measured elsewhere (e.g. another node's accounting) into the current
    /// second, poking the revision if it is at zero — Knative's `collector.Record` + `Poke`.
    pub fn record(&self, stat: Stat) {
        self.record_at(self.shared.clock.now(), stat);
    }

    fn record_at(&self, now: Timestamp, stat: Stat) {
        let ready = self.ready();
        let view = {
            let mut cell = lock(&self.revision.cell);
            cell.state.record(now, stat);
            (cell.state.at_zero() && stat.concurrency != 0.0)
                .then(|| cell.state.evaluate(now, ready))
        };
        if let Some(view) = view {
            self.publish(view);
        }
    }

    /// Evaluates now if the revision's desired scale is 0 and it has data (the poke without a
    /// new stat).
    pub fn poke(&self) {
        let now = self.shared.clock.now();
        let ready = self.ready();
        let view = {
            let mut cell = lock(&self.revision.cell);
            cell.state
                .at_zero()
                .then(|| cell.state.evaluate(now, ready))
        };
        if let Some(view) = view {
            self.publish(view);
        }
    }

    /// The number of replicas ready to serve. The state change is reconciled on the next
    /// collector pass (within a second).
    pub fn set_ready(&self, ready: u32) {
        let previous = self.revision.ready.swap(ready, Ordering::AcqRel);
        if previous != ready {
            self.revision
                .reconcile_wanted
                .store(true, Ordering::Release);
        }
    }

    /// Requests of this revision in flight now, queued ones included.
    pub fn in_flight(&self) -> u32 {
        lock(&self.revision.reporter).in_flight()
    }

    pub fn ready(&self) -> u32 {
        self.revision.ready.load(Ordering::Acquire)
    }

    pub fn view(&self) -> RevisionView {
        *self.revision.view.borrow()
    }

    /// The view and what the decider last observed.
    pub fn status(&self) -> RevisionStatus {
        let cell = lock(&self.revision.cell);
        RevisionStatus {
            view: cell.state.view(),
            observed: cell.state.last_observed(),
            ready: self.ready(),
        }
    }

    /// This revision's view, updated on every change (no polling).
    pub fn subscribe(&self) -> watch::Receiver<RevisionView> {
        self.revision.view.subscribe()
    }

    fn publish(&self, view: RevisionView) {
        self.revision.publish(&self.shared.changes, view);
    }
}

impl Revision {
    fn publish(&self, changes: &broadcast::Sender<Decision>, view: RevisionView) {
        let changed = self.view.send_if_modified(|current| {
            if *current == view {
                false
            } else {
                *current = view;
                true
            }
        });
        if changed {
            // No subscribers is fine: the per-revision watch keeps the latest view.
            let _ = changes.send(Decision {
                key: self.key.clone(),
                view,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::collections::BTreeMap;

    fn setup() -> (Arc<ManualClock>, Autoscaler) {
        let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
        let autoscaler = Autoscaler::new(AutoscalerConfig::default(), clock.clone());
        (clock, autoscaler)
    }

    fn annotated(key: &str, value: &str) -> RevisionSpec {
        let mut annotations = BTreeMap::new();
        annotations.insert(format!("autoscaling.knative.dev/{key}"), value.to_string());
        RevisionSpec {
            annotations,
            ..RevisionSpec::default()
        }
    }

    #[test]
    fn register_twice_updates_the_spec_and_keeps_one_entry() {
        let (clock, autoscaler) = setup();
        let key = RevisionKey::new("ns", "r");
        autoscaler
            .register(key.clone(), RevisionSpec::default(), 0)
            .unwrap();
        let handle = autoscaler
            .register(key.clone(), annotated("min-scale", "3"), 0)
            .unwrap();
        assert_eq!(autoscaler.len(), 1);
        autoscaler.step(clock.now());
        assert_eq!(handle.view().replicas, 3);
        assert!(autoscaler.unregister(&key));
        assert!(autoscaler.is_empty());
        assert!(!autoscaler.unregister(&key));
    }

    #[test]
    fn invalid_annotations_are_rejected_at_registration() {
        let (_, autoscaler) = setup();
        let err = autoscaler
            .register(
                RevisionKey::new("ns", "r"),
                annotated("max-scale", "many"),
                0,
            )
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("autoscaling.knative.dev/max-scale")
        );
        assert!(autoscaler.is_empty());
    }

    #[test]
    fn changes_are_broadcast_once_per_change() {
        let (clock, autoscaler) = setup();
        let mut changes = autoscaler.subscribe();
        let handle = autoscaler
            .register(RevisionKey::new("ns", "r"), annotated("min-scale", "2"), 0)
            .unwrap();
        autoscaler.step(clock.now());
        let decision = changes.try_recv().unwrap();
        assert_eq!(decision.view.replicas, 2);
        assert_eq!(handle.view(), decision.view);
        // Nothing changed: nothing is sent.
        autoscaler.step(clock.now());
        assert!(changes.try_recv().is_err());
    }

    #[test]
    fn every_second_step_ticks_despite_timer_jitter() {
        let (clock, autoscaler) = setup();
        let handle = autoscaler
            .register(RevisionKey::new("ns", "r"), RevisionSpec::default(), 1)
            .unwrap();
        // Demand before the first tick (it pokes an evaluation; the windows keep the stat).
        clock.set(Timestamp::from_millis(0));
        handle.record(Stat {
            concurrency: 100.0,
            requests: 0.0,
        });
        // A real interval wakes a little late, by a varying amount.
        for millis in [1, 1_000, 2_000] {
            clock.set(Timestamp::from_millis(millis));
            autoscaler.step(clock.now());
        }
        // The step at 2.000 s is the second after the tick at 0.001 s: it ticks, and the decider
        // sees buckets 100, 0, 0.
        let observed = handle.status().observed.unwrap();
        assert!((observed.stable - 100.0 / 3.0).abs() < 1e-5, "{observed:?}");
    }

    #[test]
    fn the_first_request_to_a_revision_created_at_zero_starts_it_at_once() {
        let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
        let config = AutoscalerConfig {
            allow_zero_initial_scale: true,
            ..AutoscalerConfig::default()
        };
        let autoscaler = Autoscaler::new(config, clock.clone());
        let handle = autoscaler
            .register(
                RevisionKey::new("ns", "r"),
                annotated("initial-scale", "0"),
                0,
            )
            .unwrap();
        assert_eq!(handle.view().replicas, 0);
        assert_eq!(handle.view().desired_scale, -1, "no decision yet");
        // No tick: the request itself pokes the decider.
        let _request = handle.track_request();
        assert_eq!(handle.view().replicas, 1);
    }

    #[test]
    fn config_update_keeps_the_old_spec_of_revisions_it_invalidates() {
        let (_, autoscaler) = setup();
        let key = RevisionKey::new("ns", "r");
        autoscaler
            .register(key.clone(), annotated("max-scale", "50"), 0)
            .unwrap();
        let config = AutoscalerConfig {
            max_scale_limit: 10,
            max_scale: 5,
            ..AutoscalerConfig::default()
        };
        let rejected = autoscaler.update_config(config);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].0, key);
        assert_eq!(autoscaler.config().max_scale_limit, 10);
    }
}
