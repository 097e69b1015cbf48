//! Leader election with a `coordination.k8s.io/v1` Lease, by hand after client-go's
//! `leaderelection` package (reference `beyond-one-machine.md` §1.2): several `wisp controller`
//! replicas run, one leads, the others stand by and take over within the lease duration when it
//! stops renewing (at once when it releases on shutdown).
//!
//! [`decision`] holds the pure rules; [`LeaderElector`] does the fetching, writing and waiting.
//! The caller hands [`LeaderElector::run`] the work to do while leading: that future is dropped
//! the moment a renewal round fails (reference §1.4: stop reconciling at once), which is also
//! reported, so the process can exit as kube-controller-manager does.

pub mod decision;
mod elector;

use std::time::Duration;

pub use elector::{Ending, LeaderElector};

/// client-go's `JitterFactor`: acquire attempts are `retryPeriod` apart plus up to 1.2 times
/// that again at random, so standby candidates do not hammer the server in step.
pub const JITTER_FACTOR: f64 = 1.2;

/// Where the lease is and how this candidate takes part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderConfig {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name; every replica of one controller uses the same.
    pub name: String,
    /// This candidate's unique identity (written as `spec.holderIdentity`).
    pub identity: String,
    /// How long standby candidates wait, from the last change they saw, before taking over.
    pub lease_duration: Duration,
    /// How long the leader keeps retrying a renewal before it gives up leading.
    pub renew_deadline: Duration,
    /// How long candidates wait between attempts.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// kube-controller-manager's timings (reference §1.3): 15 s lease, 10 s renew deadline,
    /// 2 s retry period.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Checks client-go's rule `leaseDuration > renewDeadline > 1.2 × retryPeriod`, which keeps
    /// a leader that cannot renew from still acting after a standby may have taken over.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (what, value) in [
            ("namespace", &self.namespace),
            ("name", &self.name),
            ("identity", &self.identity),
        ] {
            if value.is_empty() {
                return Err(ConfigError::Empty(what));
            }
        }
        if self.lease_duration < Duration::from_secs(1) {
            return Err(ConfigError::LeaseTooShort(self.lease_duration));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(ConfigError::LeaseNotLongerThanDeadline {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        if self.retry_period.is_zero()
            || self.renew_deadline <= self.retry_period.mul_f64(JITTER_FACTOR)
        {
            return Err(ConfigError::DeadlineNotLongerThanRetries {
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            });
        }
        Ok(())
    }
}

/// Why a [`LeaderConfig`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The lease namespace, name or the identity is empty.
    #[error("the leader election {0} is empty; give one")]
    Empty(&'static str),
    /// The lease duration is under a second (it is written in whole seconds).
    #[error(
        "the leader election lease duration {0:?} is shorter than 1s (leases count whole seconds); \
         give at least 1s, e.g. 15s"
    )]
    LeaseTooShort(Duration),
    /// `leaseDuration <= renewDeadline`.
    #[error(
        "the leader election lease duration ({lease_duration:?}) must be longer than the renew \
         deadline ({renew_deadline:?}), or a standby could take over while the leader still acts; \
         e.g. 15s and 10s"
    )]
    LeaseNotLongerThanDeadline {
        /// The lease duration given.
        lease_duration: Duration,
        /// The renew deadline given.
        renew_deadline: Duration,
    },
    /// `renewDeadline <= 1.2 × retryPeriod`.
    #[error(
        "the leader election renew deadline ({renew_deadline:?}) must be longer than 1.2 × the \
         retry period ({retry_period:?}, which must not be 0), or the leader gets at most one \
         renewal attempt; e.g. 10s and 2s"
    )]
    DeadlineNotLongerThanRetries {
        /// The renew deadline given.
        renew_deadline: Duration,
        /// The retry period given.
        retry_period: Duration,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lease: u64, deadline: u64, retry: u64) -> LeaderConfig {
        LeaderConfig {
            lease_duration: Duration::from_millis(lease),
            renew_deadline: Duration::from_millis(deadline),
            retry_period: Duration::from_millis(retry),
            ..LeaderConfig::new("kube-system", "wisp-controller", "a")
        }
    }

    #[test]
    fn kube_controller_manager_defaults_are_valid() {
        let defaults = LeaderConfig::new("kube-system", "wisp-controller", "a");
        assert_eq!(defaults.validate(), Ok(()));
        assert_eq!(config(3_000, 2_000, 500).validate(), Ok(()));
    }

    #[test]
    fn timings_must_nest() {
        assert!(matches!(
            config(10_000, 10_000, 2_000).validate(),
            Err(ConfigError::LeaseNotLongerThanDeadline { .. })
        ));
        // 1.2 × 2 s = 2.4 s: a 2.4 s deadline is refused, 2.5 s accepted.
        assert!(matches!(
            config(15_000, 2_400, 2_000).validate(),
            Err(ConfigError::DeadlineNotLongerThanRetries { .. })
        ));
        assert_eq!(config(15_000, 2_500, 2_000).validate(), Ok(()));
        assert!(matches!(
            config(15_000, 10_000, 0).validate(),
            Err(ConfigError::DeadlineNotLongerThanRetries { .. })
        ));
        assert!(matches!(
            config(900, 500, 100).validate(),
            Err(ConfigError::LeaseTooShort(_))
        ));
    }

    #[test]
    fn names_must_be_given() {
        let mut c = LeaderConfig::new("kube-system", "wisp-controller", "");
        assert_eq!(c.validate(), Err(ConfigError::Empty("identity")));
        c.identity = "a".into();
        c.namespace.clear();
        assert_eq!(c.validate(), Err(ConfigError::Empty("namespace")));
    }

    #[test]
    fn errors_say_what_to_do() {
        let message = config(10_000, 10_000, 2_000)
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("must be longer than the renew deadline"),
            "{message}"
        );
        assert!(message.contains("e.g. 15s and 10s"), "{message}");
    }
}
