//! The decisions of client-go's `tryAcquireOrRenew` and `release` (reference
//! `beyond-one-machine.md` §1.2), as plain functions of what this candidate observed, its
//! identity and the two clocks. No I/O: the elector fetches and writes, this says what to write.
//!
//! Expiry is judged from `observed_at`, the candidate's own monotonic clock reading when it last
//! saw the record change, never from `renewTime` in the object: the holder's wall clock may be
//! skewed against ours, but both clocks tick at the same rate.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

/// What one candidate knows about the lease: the last record it saw or wrote, and when.
#[derive(Debug, Clone)]
pub struct Election {
    identity: String,
    lease_duration_seconds: i32,
    observed: Option<Observed>,
}

/// A record and the monotonic time it was first seen (or written) in that form.
#[derive(Debug, Clone)]
struct Observed {
    record: LeaseSpec,
    at: Instant,
}

/// What to do with a fetched lease.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Another holder's lease has not expired in our observation: wait.
    Held {
        /// The holder.
        holder: String,
    },
    /// Write this record (a PUT carrying the fetched `resourceVersion`).
    Write(LeaseSpec),
}

impl Election {
    /// A candidate that has seen nothing yet. `lease_duration` is written in whole seconds.
    pub fn new(identity: impl Into<String>, lease_duration: Duration) -> Self {
        Self {
            identity: identity.into(),
            lease_duration_seconds: i32::try_from(lease_duration.as_secs()).unwrap_or(i32::MAX),
            observed: None,
        }
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Whether the last record seen or written names us as the holder (client-go `IsLeader`).
    pub fn is_leader(&self) -> bool {
        self.holder() == Some(self.identity.as_str())
    }

    /// The holder of the last record seen, if any (empty means free).
    pub fn holder(&self) -> Option<&str> {
        self.observed
            .as_ref()
            .and_then(|o| o.record.holder_identity.as_deref())
            .filter(|h| !h.is_empty())
    }

    /// Whether the observed record's lease runs past `now`, counted from when we saw it.
    pub fn lease_valid(&self, now: Instant) -> bool {
        self.observed.as_ref().is_some_and(|o| {
            let seconds = u64::try_from(o.record.lease_duration_seconds.unwrap_or(0)).unwrap_or(0);
            o.at + Duration::from_secs(seconds) > now
        })
    }

    /// The fast path: a leader whose lease is still valid renews its cached record without a
    /// GET. None when the slow path is needed.
    pub fn renewal(&self, now: Instant, wall: MicroTime) -> Option<LeaseSpec> {
        if !(self.is_leader() && self.lease_valid(now)) {
            return None;
        }
        let old = &self.observed.as_ref()?.record;
        Some(LeaseSpec {
            acquire_time: old.acquire_time.clone(),
            lease_transitions: old.lease_transitions,
            ..self.fresh(wall)
        })
    }

    /// The record to CREATE when no lease exists yet.
    pub fn initial(&self, wall: MicroTime) -> LeaseSpec {
        LeaseSpec {
            lease_transitions: Some(0),
            ..self.fresh(wall)
        }
    }

    /// Steps 3–5 of the slow path on a fetched record: remember it (restarting our expiry
    /// clock only if it changed), then either wait for a valid foreign lease or take it.
    pub fn decide(&mut self, fetched: &LeaseSpec, now: Instant, wall: MicroTime) -> Attempt {
        self.observe(fetched, now);
        let holder = fetched.holder_identity.as_deref().unwrap_or_default();
        if !holder.is_empty() && self.lease_valid(now) && !self.is_leader() {
            return Attempt::Held {
                holder: holder.to_owned(),
            };
        }
        let transitions = fetched.lease_transitions.unwrap_or(0);
        let record = if self.is_leader() {
            LeaseSpec {
                acquire_time: fetched.acquire_time.clone(),
                lease_transitions: Some(transitions),
                ..self.fresh(wall)
            }
        } else {
            LeaseSpec {
                lease_transitions: Some(transitions.saturating_add(1)),
                ..self.fresh(wall)
            }
        };
        Attempt::Write(record)
    }

    /// The release record (client-go `ReleaseOnCancel`): no holder, a one-second lease, the
    /// transitions kept. None when we do not hold the lease, so there is nothing to release.
    pub fn release(&self, wall: MicroTime) -> Option<LeaseSpec> {
        if !self.is_leader() {
            return None;
        }
        let old = &self.observed.as_ref()?.record;
        Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(wall.clone()),
            renew_time: Some(wall),
            lease_transitions: old.lease_transitions,
            ..LeaseSpec::default()
        })
    }

    /// A record we wrote (or the server's echo of it) is what we observed last, as of `now`.
    pub fn wrote(&mut self, record: LeaseSpec, now: Instant) {
        self.observed = Some(Observed { record, at: now });
    }

    /// Remembers `fetched` unless it equals the last record observed (client-go compares the
    /// raw records), so an unchanged record keeps counting down from when it first appeared.
    pub fn observe(&mut self, fetched: &LeaseSpec, now: Instant) {
        if self.observed.as_ref().map(|o| &o.record) != Some(fetched) {
            self.wrote(fetched.clone(), now);
        }
    }

    /// Holder = us, our lease duration, acquired and renewed at `wall`.
    fn fresh(&self, wall: MicroTime) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.lease_duration_seconds),
            acquire_time: Some(wall.clone()),
            renew_time: Some(wall),
            ..LeaseSpec::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall(seconds: i64) -> MicroTime {
        MicroTime(k8s_openapi::jiff::Timestamp::from_second(1_780_000_000 + seconds).unwrap())
    }

    fn held_by(holder: &str, renewed: i64, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(wall(0)),
            renew_time: Some(wall(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    fn election() -> Election {
        Election::new("b", Duration::from_secs(15))
    }

    #[test]
    fn a_new_lease_names_us_with_no_transitions() {
        let e = election();
        let record = e.initial(wall(5));
        assert_eq!(record.holder_identity.as_deref(), Some("b"));
        assert_eq!(record.lease_duration_seconds, Some(15));
        assert_eq!(record.acquire_time, Some(wall(5)));
        assert_eq!(record.renew_time, Some(wall(5)));
        assert_eq!(record.lease_transitions, Some(0));
        assert!(!e.is_leader() && e.release(wall(5)).is_none());
    }

    #[test]
    fn a_foreign_lease_blocks_until_it_is_unchanged_for_its_duration() {
        let start = Instant::now();
        let mut e = election();
        let lease = held_by("a", 0, 2);
        assert_eq!(
            e.decide(&lease, start, wall(0)),
            Attempt::Held { holder: "a".into() }
        );
        // Still the same record 14 s later: still held.
        let later = start + Duration::from_secs(14);
        assert!(matches!(
            e.decide(&lease, later, wall(14)),
            Attempt::Held { .. }
        ));
        // 15 s after we first saw it: expired; we take it over with one more transition.
        let expired = start + Duration::from_secs(15);
        let Attempt::Write(record) = e.decide(&lease, expired, wall(15)) else {
            panic!("an expired lease is taken");
        };
        assert_eq!(record.holder_identity.as_deref(), Some("b"));
        assert_eq!(record.lease_transitions, Some(3));
        assert_eq!(record.acquire_time, Some(wall(15)));
        assert_eq!(record.renew_time, Some(wall(15)));
    }

    #[test]
    fn a_renewal_restarts_our_expiry_clock_whatever_renew_time_says() {
        let start = Instant::now();
        let mut e = election();
        e.decide(&held_by("a", 0, 0), start, wall(0));
        // The holder renewed at 10 s, with a wall clock an hour behind: we only see a change.
        let renewed = held_by("a", -3600, 0);
        let at = start + Duration::from_secs(10);
        assert!(matches!(
            e.decide(&renewed, at, wall(10)),
            Attempt::Held { .. }
        ));
        let before_expiry = start + Duration::from_secs(24);
        assert!(matches!(
            e.decide(&renewed, before_expiry, wall(24)),
            Attempt::Held { .. }
        ));
        assert!(matches!(
            e.decide(&renewed, start + Duration::from_secs(25), wall(25)),
            Attempt::Write(_)
        ));
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let start = Instant::now();
        let mut e = election();
        let released = LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            lease_transitions: Some(4),
            ..LeaseSpec::default()
        };
        let Attempt::Write(record) = e.decide(&released, start, wall(0)) else {
            panic!("a free lease is taken");
        };
        assert_eq!(record.lease_transitions, Some(5));
        let empty = LeaseSpec {
            holder_identity: Some(String::new()),
            ..released
        };
        assert!(matches!(
            election().decide(&empty, start, wall(0)),
            Attempt::Write(_)
        ));
    }

    #[test]
    fn the_leader_renews_keeping_acquire_time_and_transitions() {
        let start = Instant::now();
        let mut e = election();
        e.wrote(held_by("b", 0, 3), start);
        assert!(e.is_leader());
        let soon = start + Duration::from_secs(2);
        let fast = e.renewal(soon, wall(2)).expect("fast path while valid");
        assert_eq!(fast.acquire_time, Some(wall(0)));
        assert_eq!(fast.renew_time, Some(wall(2)));
        assert_eq!(fast.lease_transitions, Some(3));
        // The slow path keeps them too, even if our own lease has lapsed in our eyes.
        let late = start + Duration::from_secs(20);
        assert!(
            e.renewal(late, wall(20)).is_none(),
            "no fast path once expired"
        );
        let Attempt::Write(slow) = e.decide(&held_by("b", 0, 3), late, wall(20)) else {
            panic!("our own lease is renewed");
        };
        assert_eq!(slow.acquire_time, Some(wall(0)));
        assert_eq!(slow.lease_transitions, Some(3));
    }

    #[test]
    fn losing_the_record_to_another_holder_ends_leadership() {
        let start = Instant::now();
        let mut e = election();
        e.wrote(held_by("b", 0, 3), start);
        let taken = held_by("a", 16, 4);
        assert_eq!(
            e.decide(&taken, start + Duration::from_secs(16), wall(16)),
            Attempt::Held { holder: "a".into() }
        );
        assert!(!e.is_leader());
        assert_eq!(e.holder(), Some("a"));
        assert!(
            e.renewal(start + Duration::from_secs(17), wall(17))
                .is_none()
        );
        assert!(e.release(wall(17)).is_none(), "nothing of ours to release");
    }

    #[test]
    fn release_empties_the_holder_and_shortens_the_lease() {
        let start = Instant::now();
        let mut e = election();
        e.wrote(held_by("b", 0, 3), start);
        let record = e.release(wall(9)).expect("the leader releases");
        assert_eq!(record.holder_identity, None);
        assert_eq!(record.lease_duration_seconds, Some(1));
        assert_eq!(record.acquire_time, Some(wall(9)));
        assert_eq!(record.renew_time, Some(wall(9)));
        assert_eq!(record.lease_transitions, Some(3));
        e.wrote(record, start);
        assert!(!e.is_leader());
    }

    #[test]
    fn lease_duration_is_written_in_whole_seconds() {
        let e = Election::new("b", Duration::from_millis(3_900));
        assert_eq!(e.initial(wall(0)).lease_duration_seconds, Some(3));
        assert_eq!(e.identity(), "b");
    }
}
