//! Revision and Route status as the data plane reports it (the contract's "data plane sets
//! status"), computed from the stored status so unchanged fields and transition times stay.

use wisp_api::knative::condition_types::{
    ACTIVE, ALL_TRAFFIC_ASSIGNED, CERTIFICATE_PROVISIONED, CONTAINER_HEALTHY, INGRESS_READY, READY,
    RESOURCES_AVAILABLE,
};
use wisp_api::knative::{
    Condition, ConditionStatus, ContainerStatus, RevisionStatus, RouteStatus, conditions,
};

use super::failure::Failure;

/// Reason of a revision whose component is being fetched and compiled.
pub const DEPLOYING: &str = "Deploying";
/// Reason of a revision at zero replicas, as Knative spells it.
pub const NO_TRAFFIC: &str = "NoTraffic";

const REVISION_DEPENDENTS: &[&str] = &[RESOURCES_AVAILABLE, CONTAINER_HEALTHY];
const ROUTE_DEPENDENTS: &[&str] = &[ALL_TRAFFIC_ASSIGNED, INGRESS_READY, CERTIFICATE_PROVISIONED];

/// What applying a revision came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Serving, with this `sha256:` digest.
    Ready {
        digest: String,
    },
    Failed(Failure),
}

/// Whether the stored status already reports on `generation`: a restart re-applies every
/// revision, and one that was Ready (or failed) must not flap through `Deploying`.
pub fn reported(status: &RevisionStatus, generation: Option<i64>) -> bool {
    status.observed_generation == generation
        && conditions::get(&status.conditions, READY)
            .is_some_and(|ready| ready.status != ConditionStatus::Unknown)
}

/// `Ready=Unknown` reason `Deploying`, while the component is prepared.
pub fn deploying(status: &RevisionStatus, generation: Option<i64>, now: &str) -> RevisionStatus {
    let mut next = status.clone();
    next.observed_generation = generation;
    for type_ in REVISION_DEPENDENTS {
        conditions::set(
            &mut next.conditions,
            Condition::new(type_, ConditionStatus::Unknown)
                .because(DEPLOYING, "The component is being fetched and compiled."),
            now,
        );
    }
    conditions::set_ready(&mut next.conditions, REVISION_DEPENDENTS, now);
    next
}

/// The status `outcome` implies for a revision of `generation` whose container is
/// `container_name`.
pub fn applied(
    status: &RevisionStatus,
    generation: Option<i64>,
    container_name: &str,
    outcome: &Outcome,
    now: &str,
) -> RevisionStatus {
    let mut next = status.clone();
    next.observed_generation = generation;
    match outcome {
        Outcome::Ready { digest } => {
            for type_ in REVISION_DEPENDENTS {
                conditions::set(
                    &mut next.conditions,
                    Condition::new(type_, ConditionStatus::True),
                    now,
                );
            }
            next.container_statuses = vec![ContainerStatus {
                name: container_name.to_owned(),
                image_digest: Some(digest.clone()),
            }];
        }
        Outcome::Failed(failure) => {
            // Knative marks the container unhealthy and leaves resources as they were.
            conditions::set(
                &mut next.conditions,
                Condition::new(CONTAINER_HEALTHY, ConditionStatus::False)
                    .because(failure.reason, failure.message.clone()),
                now,
            );
            if conditions::get(&next.conditions, RESOURCES_AVAILABLE).is_none() {
                conditions::set(
                    &mut next.conditions,
                    Condition::new(RESOURCES_AVAILABLE, ConditionStatus::Unknown),
                    now,
                );
            }
            next.container_statuses.clear();
        }
    }
    conditions::set_ready(&mut next.conditions, REVISION_DEPENDENTS, now);
    next
}

/// `actualReplicas`, `desiredReplicas` (left out while the autoscaler has no view, `-1`) and
/// `Active` for the replica counts now.
pub fn replicas(status: &RevisionStatus, actual: i32, desired: i32, now: &str) -> RevisionStatus {
    let mut next = status.clone();
    next.actual_replicas = Some(actual);
    next.desired_replicas = (desired >= 0).then_some(desired);
    let mut active = if actual > 0 {
        Condition::new(ACTIVE, ConditionStatus::True)
    } else if desired > 0 {
        Condition::new(ACTIVE, ConditionStatus::Unknown)
            .because("Activating", "The revision is starting a replica.")
    } else {
        Condition::new(ACTIVE, ConditionStatus::False)
            .because(NO_TRAFFIC, "The target is not receiving traffic.")
    };
    // Not a dependent of Ready: Knative reports it at Info severity.
    active.severity = Some("Info".into());
    conditions::set(&mut next.conditions, active, now);
    next
}

/// `IngressReady=True` and `Ready` recomputed, once the gateway serves the route's traffic.
pub fn ingress_ready(status: &RouteStatus, now: &str) -> RouteStatus {
    let mut next = status.clone();
    conditions::set(
        &mut next.conditions,
        Condition::new(INGRESS_READY, ConditionStatus::True),
        now,
    );
    conditions::set_ready(&mut next.conditions, ROUTE_DEPENDENTS, now);
    next
}

/// `IngressReady=False` with the gateway's reason for not serving the route.
pub fn ingress_failed(status: &RouteStatus, message: &str, now: &str) -> RouteStatus {
    let mut next = status.clone();
    conditions::set(
        &mut next.conditions,
        Condition::new(INGRESS_READY, ConditionStatus::False)
            .because("IngressNotConfigured", message),
        now,
    );
    conditions::set_ready(&mut next.conditions, ROUTE_DEPENDENTS, now);
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::failure::CONTAINER_MISSING;

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-01T00:00:01Z";

    fn ready_of(status: &RevisionStatus) -> Condition {
        conditions::get(&status.conditions, READY).cloned().unwrap()
    }

    #[test]
    fn deploying_then_ready_with_the_digest() {
        let start = RevisionStatus::default();
        assert!(!reported(&start, Some(1)));
        let deploying = deploying(&start, Some(1), T0);
        let ready = ready_of(&deploying);
        assert_eq!(ready.status, ConditionStatus::Unknown);
        assert_eq!(ready.reason.as_deref(), Some(DEPLOYING));
        assert!(!reported(&deploying, Some(1)));

        let outcome = Outcome::Ready {
            digest: "sha256:ab".into(),
        };
        let done = applied(&deploying, Some(1), "user-container", &outcome, T1);
        assert!(conditions::is_true(&done.conditions, READY));
        assert!(conditions::is_true(&done.conditions, CONTAINER_HEALTHY));
        assert_eq!(
            done.container_statuses[0].image_digest.as_deref(),
            Some("sha256:ab")
        );
        assert_eq!(done.observed_generation, Some(1));
        assert!(reported(&done, Some(1)));
        // Applying again (a restart) changes nothing, so nothing is written.
        assert_eq!(
            applied(&done, Some(1), "user-container", &outcome, T1),
            done
        );
    }

    #[test]
    fn failure_is_ready_false_with_reason_and_message() {
        let failure = Failure {
            reason: CONTAINER_MISSING,
            message: "Unable to fetch image \"a.wasm\": gone".into(),
            transient: true,
        };
        let failed = applied(
            &deploying(&RevisionStatus::default(), Some(1), T0),
            Some(1),
            "user-container",
            &Outcome::Failed(failure),
            T1,
        );
        let ready = ready_of(&failed);
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(ready.reason.as_deref(), Some(CONTAINER_MISSING));
        assert!(ready.message.unwrap().contains("a.wasm"));
        assert!(failed.container_statuses.is_empty());
        assert!(reported(&failed, Some(1)));
    }

    #[test]
    fn replica_counts_and_active() {
        let scaled = replicas(&RevisionStatus::default(), 2, 3, T0);
        assert_eq!(
            (scaled.actual_replicas, scaled.desired_replicas),
            (Some(2), Some(3))
        );
        assert!(conditions::is_true(&scaled.conditions, ACTIVE));
        let idle = replicas(&scaled, 0, -1, T1);
        assert_eq!(idle.desired_replicas, None);
        let active = conditions::get(&idle.conditions, ACTIVE).unwrap();
        assert_eq!(active.reason.as_deref(), Some(NO_TRAFFIC));
        // Active never decides Ready.
        assert!(conditions::get(&idle.conditions, READY).is_none());
    }

    #[test]
    fn ingress_ready_recomputes_route_ready() {
        let mut status = RouteStatus::default();
        for type_ in [ALL_TRAFFIC_ASSIGNED, CERTIFICATE_PROVISIONED] {
            conditions::set(
                &mut status.conditions,
                Condition::new(type_, ConditionStatus::True),
                T0,
            );
        }
        conditions::set(
            &mut status.conditions,
            Condition::new(INGRESS_READY, ConditionStatus::Unknown).because(
                "IngressNotConfigured",
                "Ingress has not yet been reconciled.",
            ),
            T0,
        );
        conditions::set_ready(&mut status.conditions, ROUTE_DEPENDENTS, T0);
        assert!(!conditions::is_true(&status.conditions, READY));
        let ready = ingress_ready(&status, T1);
        assert!(conditions::is_true(&ready.conditions, READY));
        let failed = ingress_failed(&status, "traffic percents sum to 90, not 100", T1);
        assert_eq!(
            conditions::get(&failed.conditions, READY).unwrap().status,
            ConditionStatus::False
        );
    }
}
