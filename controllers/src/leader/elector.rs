//! The elector's loops: acquire every retry period (jittered), renew every retry period for at
//! most the renew deadline, release on shutdown — client-go's `acquire`, `renew` and `release`
//! around the pure rules of [`super::decision`].

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use super::decision::{Attempt, Election};
use super::{ConfigError, JITTER_FACTOR, LeaderConfig};

/// How [`LeaderElector::run`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending<T> {
    /// The shutdown future completed; the work (if it ran) was stopped and the lease released.
    Shutdown,
    /// A renewal round failed for the whole renew deadline: the work was dropped at once.
    /// Another candidate may lead already, so the caller must not act as leader any more.
    Lost,
    /// The work ended on its own, with this output; the lease was released.
    Finished(T),
}

/// One candidate for one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderConfig,
    election: Election,
    /// The Lease as last read or written: writing it back carries the `resourceVersion` it was
    /// based on, so a concurrent writer makes our write fail with 409 instead of clobbering.
    cached: Option<Lease>,
    leading: watch::Sender<bool>,
    /// The holder last logged, so standing by is logged once per leader, not per attempt.
    reported: Option<String>,
}

impl LeaderElector {
    /// A candidate; fails if the timings do not nest (see [`LeaderConfig::validate`]).
    pub fn new(client: Client, config: LeaderConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            api: Api::namespaced(client, &config.namespace),
            election: Election::new(config.identity.clone(), config.lease_duration),
            config,
            cached: None,
            leading: watch::Sender::new(false),
            reported: None,
        })
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Whether this candidate leads right now; flips to false the moment leadership ends.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Stands by until this candidate acquires the lease, then runs `lead()` while renewing it.
    ///
    /// The work future is dropped — so its in-flight requests are abandoned — as soon as a
    /// renewal round fails ([`Ending::Lost`]) or `shutdown` completes ([`Ending::Shutdown`],
    /// after which the lease is released so a standby takes over within one retry period).
    pub async fn run<S, F, Fut>(mut self, shutdown: S, lead: F) -> Ending<Fut::Output>
    where
        S: Future<Output = ()>,
        F: FnOnce() -> Fut,
        Fut: Future,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        let acquired = tokio::select! {
            () = self.acquire() => true,
            () = &mut shutdown => false,
        };
        if !acquired {
            // An attempt cut short may still have won the lease on the server.
            self.release().await;
            return Ending::Shutdown;
        }
        tracing::info!(
            identity = %self.config.identity,
            lease = %format!("{}/{}", self.config.namespace, self.config.name),
            "became leader"
        );
        self.reported = Some(self.config.identity.clone());
        self.leading.send_replace(true);

        let mut work = Box::pin(lead());
        let ending = tokio::select! {
            () = self.renew() => Ending::Lost,
            () = &mut shutdown => Ending::Shutdown,
            output = &mut work => Ending::Finished(output),
        };
        // Stop the work before anything else: nothing may be written for it past this point.
        drop(work);
        self.leading.send_replace(false);
        match ending {
            Ending::Lost => {
                tracing::warn!(identity = %self.config.identity, "leaderelection lost");
            }
            Ending::Shutdown | Ending::Finished(_) => {
                self.release().await;
            }
        }
        ending
    }

    /// client-go `acquire`: try now, then every jittered retry period, until we lead.
    async fn acquire(&mut self) {
        loop {
            let attempt =
                tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew()).await;
            if matches!(attempt, Ok(true)) {
                return;
            }
            tokio::time::sleep(jittered(self.config.retry_period, random_unit())).await;
        }
    }

    /// client-go `renew`: every retry period, a round of attempts (retry period apart) that must
    /// succeed within the renew deadline. Returns when a round fails: leadership is lost.
    async fn renew(&mut self) {
        loop {
            let retry = self.config.retry_period;
            let round = tokio::time::timeout(self.config.renew_deadline, async {
                while !self.try_acquire_or_renew().await {
                    tokio::time::sleep(retry).await;
                }
            })
            .await;
            if round.is_err() {
                tracing::warn!(
                    identity = %self.config.identity,
                    deadline = ?self.config.renew_deadline,
                    "failed to renew the lease within the renew deadline"
                );
                return;
            }
            tokio::time::sleep(retry).await;
        }
    }

    /// client-go `tryAcquireOrRenew`: whether we hold the lease after this attempt.
    async fn try_acquire_or_renew(&mut self) -> bool {
        // 1. Fast path: a valid leader writes its cached object without reading it first.
        if let Some(record) = self.election.renewal(Instant::now(), wall_now())
            && let Some(base) = self.cached.clone()
        {
            match self.write(base, record).await {
                Ok(()) => return true,
                Err(error) => {
                    tracing::debug!(%error, "optimistic lease renewal failed; reading it again");
                }
            }
        }
        // 2. Read, or create if there is none.
        let fetched = match self.api.get_opt(&self.config.name).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return self.create().await,
            Err(error) => {
                tracing::warn!(%error, lease = %self.config.name, "cannot read the lease");
                return false;
            }
        };
        // 3–5. Decide on what we read, and write on top of exactly that version.
        let spec = fetched.spec.clone().unwrap_or_default();
        let attempt = self.election.decide(&spec, Instant::now(), wall_now());
        self.cached = Some(fetched.clone());
        match attempt {
            Attempt::Held { holder } => {
                self.report_holder(&holder);
                false
            }
            Attempt::Write(record) => match self.write(fetched, record).await {
                Ok(()) => true,
                Err(error) => {
                    // A 409 here is a lost race with another candidate: routine.
                    tracing::debug!(%error, "cannot write the lease");
                    false
                }
            },
        }
    }

    /// Creates the lease with us as holder.
    async fn create(&mut self) -> bool {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(self.election.initial(wall_now())),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(created) => {
                self.remember(created);
                true
            }
            Err(error) => {
                tracing::debug!(%error, "cannot create the lease");
                false
            }
        }
    }

    /// PUTs `base` (with its `resourceVersion`) carrying `record`.
    async fn write(&mut self, mut base: Lease, record: LeaseSpec) -> Result<(), kube::Error> {
        base.spec = Some(record);
        let written = self
            .api
            .replace(&self.config.name, &PostParams::default(), &base)
            .await?;
        self.remember(written);
        Ok(())
    }

    /// What the server stored is what we observed last (its echo, not our copy: timestamps
    /// come back at microsecond precision, and comparing against them must not see a change).
    fn remember(&mut self, lease: Lease) {
        self.election
            .wrote(lease.spec.clone().unwrap_or_default(), Instant::now());
        self.cached = Some(lease);
    }

    /// client-go `release`: empty the holder if it is still us, retrying lost races, for at most
    /// the renew deadline. Failure only means standbys wait for the lease to expire.
    async fn release(&mut self) {
        let deadline = self.config.renew_deadline;
        let retry = self.config.retry_period;
        let released = tokio::time::timeout(deadline, async {
            loop {
                let (Some(record), Some(base)) =
                    (self.election.release(wall_now()), self.cached.clone())
                else {
                    return;
                };
                match self.write(base, record).await {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::debug!(%error, "cannot release the lease; reading it again");
                        tokio::time::sleep(retry).await;
                        if let Ok(Some(lease)) = self.api.get_opt(&self.config.name).await {
                            let spec = lease.spec.clone().unwrap_or_default();
                            self.election.observe(&spec, Instant::now());
                            self.cached = Some(lease);
                        }
                    }
                }
            }
        })
        .await;
        match released {
            Ok(()) => tracing::info!(identity = %self.config.identity, "released the lease"),
            Err(_) => tracing::warn!(
                "could not release the lease within {deadline:?}; standbys take over when it \
                 expires"
            ),
        }
    }

    fn report_holder(&mut self, holder: &str) {
        if self.reported.as_deref() != Some(holder) {
            tracing::info!(
                identity = %self.config.identity,
                "standing by (leader is {holder})"
            );
            self.reported = Some(holder.to_owned());
        }
    }
}

/// Now, on the wall clock, as the Lease's `acquireTime`/`renewTime` carry it.
fn wall_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// client-go `wait.Jitter(period, 1.2)`: `period` plus up to 1.2 × `period`, scaled by `unit`
/// (a random number in [0, 1)).
fn jittered(period: Duration, unit: f64) -> Duration {
    period + period.mul_f64(JITTER_FACTOR * unit.clamp(0.0, 1.0))
}

/// A random number in [0, 1); 0 (no jitter) if the system has no randomness to give.
fn random_unit() -> f64 {
    // 53 random bits make an f64 in [0, 1) with every value equally likely.
    getrandom::u64().map_or(0.0, |bits| (bits >> 11) as f64 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_client_gos_range() {
        let period = Duration::from_secs(2);
        assert_eq!(jittered(period, 0.0), period);
        assert_eq!(jittered(period, 0.5), Duration::from_millis(3_200));
        assert!(jittered(period, 0.999_999) < Duration::from_millis(4_400));
        assert_eq!(jittered(period, 7.0), Duration::from_millis(4_400));
        for _ in 0..100 {
            let unit = random_unit();
            assert!((0.0..1.0).contains(&unit), "{unit}");
        }
    }
}
