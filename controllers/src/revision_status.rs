//! A Revision's status from its nodes' reports (pure): conditions, the image digest and the
//! replica sums, as the Revision controller writes them.
//!
//! The rule (README, "Beyond one machine"): only the reports of Ready nodes count. A revision
//! is Ready once its component passed its checks on every Ready node; it is not Ready, with
//! the node named, as soon as one Ready node reports a failure; until every Ready node has
//! reported it is `Unknown` (`Deploying`), except that a revision already Ready stays Ready
//! while a node that joined later catches up. `actualReplicas` and `desiredReplicas` are the
//! sums over the Ready nodes. With no Ready node at all the conditions are left as they are (a
//! restarting single node must not flip every revision to Unknown).

use std::collections::BTreeSet;

use wisp_api::knative::condition_types::{
    ACTIVE, CONTAINER_HEALTHY, READY, REPLICAS_SCHEDULED, RESOURCES_AVAILABLE, UNSCHEDULABLE,
};
use wisp_api::knative::conditions::{self, Condition, ConditionStatus};
use wisp_api::knative::{ContainerStatus, RevisionStatus};
use wisp_api::nodes::{self, RevisionReport, RevisionState};

/// Reason of a revision whose component is being fetched and compiled.
pub(crate) const DEPLOYING: &str = "Deploying";
/// Reason of a revision at zero replicas, as Knative spells it.
pub(crate) const NO_TRAFFIC: &str = "NoTraffic";

const DEPENDENTS: &[&str] = &[RESOURCES_AVAILABLE, CONTAINER_HEALTHY];

/// The nodes as the controllers see them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeView {
    /// Nodes whose `Ready` condition is True.
    pub ready: BTreeSet<String>,
    /// Every wisp node that exists, Ready or not: reports of other nodes are dropped.
    pub known: BTreeSet<String>,
}

/// The status the reports in `current.annotations` imply for a revision of `generation`.
pub(crate) fn next(
    current: &RevisionStatus,
    generation: Option<i64>,
    nodes: &NodeView,
    now: &str,
) -> RevisionStatus {
    let mut next = current.clone();
    next.annotations
        .retain(|key, _| nodes::report_node(key).is_none_or(|node| nodes.known.contains(node)));
    let reports: Vec<(&str, RevisionReport)> = nodes::reports(&current.annotations)
        .filter(|(node, _)| nodes.ready.contains(*node))
        .collect();
    set_replicas(&mut next, &reports, now);
    set_scheduled(&mut next, &reports, now);
    if nodes.ready.is_empty() {
        if conditions::get(&next.conditions, READY).is_none() {
            deploying(
                &mut next,
                "Waiting for a Ready wisp node to load the component.",
                now,
            );
        }
        return next;
    }
    next.observed_generation = generation;
    let current_generation: Vec<&(&str, RevisionReport)> = reports
        .iter()
        .filter(|(_, report)| report.generation == generation)
        .collect();
    let failed: Vec<&(&str, RevisionReport)> = current_generation
        .iter()
        .copied()
        .filter(|(_, report)| report.state == RevisionState::Failed)
        .collect();
    let ready: Vec<&(&str, RevisionReport)> = current_generation
        .iter()
        .copied()
        .filter(|(_, report)| report.state == RevisionState::Ready)
        .collect();
    if let Some((node, report)) = failed.first() {
        let others = match failed.len() - 1 {
            0 => String::new(),
            1 => " (and on 1 other node)".to_owned(),
            n => format!(" (and on {n} other nodes)"),
        };
        let message = format!(
            "{} (on node {node}){others}",
            report
                .message
                .as_deref()
                .unwrap_or("the component cannot run")
        );
        container_failed(
            &mut next,
            report.reason.as_deref().unwrap_or("ContainerUnhealthy"),
            &message,
            now,
        );
    } else if ready.len() == nodes.ready.len()
        || (was_ready(current, generation) && !ready.is_empty())
    {
        for type_ in DEPENDENTS {
            conditions::set(
                &mut next.conditions,
                Condition::new(type_, ConditionStatus::True),
                now,
            );
        }
        if let Some((_, report)) = ready.first() {
            next.container_statuses = vec![ContainerStatus {
                name: report
                    .container
                    .clone()
                    .unwrap_or_else(|| wisp_api::knative::USER_CONTAINER.to_owned()),
                image_digest: pinned_digest(current).or_else(|| report.image_digest.clone()),
            }];
        }
    } else {
        let waiting: Vec<&str> = nodes
            .ready
            .iter()
            .map(String::as_str)
            .filter(|node| !ready.iter().any(|(done, _)| done == node))
            .collect();
        let message = format!(
            "The component is being fetched and compiled (waiting for {} {}).",
            if waiting.len() == 1 { "node" } else { "nodes" },
            waiting.join(", ")
        );
        deploying(&mut next, &message, now);
    }
    conditions::set_ready(&mut next.conditions, DEPENDENTS, now);
    next
}

/// The pinned `REGISTRY/REPO@sha256:…` of a registry image, as Knative's `imageDigest` gives
/// it; `None` for paths, URLs and images run by tag.
fn pinned_digest(status: &RevisionStatus) -> Option<String> {
    status
        .annotations
        .get(nodes::PINNED_IMAGE_KEY)
        .filter(|pin| pin.contains("@sha256:"))
        .cloned()
}

/// `current` when the revision's image could not be pinned: `ContainerHealthy=False` with
/// `reason` and `message` (what the registry answered), `Ready=False`. No node loads it until
/// a retry pins it; then [`next`] takes over.
pub(crate) fn pin_failed(
    current: &RevisionStatus,
    generation: Option<i64>,
    reason: &str,
    message: &str,
    now: &str,
) -> RevisionStatus {
    let mut next = current.clone();
    next.observed_generation = generation;
    container_failed(&mut next, reason, message, now);
    conditions::set_ready(&mut next.conditions, DEPENDENTS, now);
    next
}

/// `ContainerHealthy=False` with `reason` and `message`, `ResourcesAvailable` Unknown unless
/// already known, and no container status: a failure whether a node or the pin reported it.
fn container_failed(next: &mut RevisionStatus, reason: &str, message: &str, now: &str) {
    conditions::set(
        &mut next.conditions,
        Condition::new(CONTAINER_HEALTHY, ConditionStatus::False).because(reason, message),
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

fn was_ready(status: &RevisionStatus, generation: Option<i64>) -> bool {
    status.observed_generation == generation && conditions::is_true(&status.conditions, READY)
}

fn deploying(status: &mut RevisionStatus, message: &str, now: &str) {
    for type_ in DEPENDENTS {
        conditions::set(
            &mut status.conditions,
            Condition::new(type_, ConditionStatus::Unknown).because(DEPLOYING, message),
            now,
        );
    }
    conditions::set_ready(&mut status.conditions, DEPENDENTS, now);
}

/// `ReplicasScheduled`: `False` (severity Warning, not a dependent of `Ready`: the replicas that
/// run keep serving) while a Ready node runs fewer replicas than its autoscaler wants, with that
/// node's reason; removed once every node runs what it wants.
fn set_scheduled(status: &mut RevisionStatus, reports: &[(&str, RevisionReport)], now: &str) {
    let capped: Vec<&str> = reports
        .iter()
        .filter_map(|(_, report)| report.capped.as_deref())
        .collect();
    let Some(first) = capped.first() else {
        status.conditions.retain(|c| c.type_ != REPLICAS_SCHEDULED);
        return;
    };
    let others = match capped.len() - 1 {
        0 => String::new(),
        1 => " (and 1 other node is capped too)".to_owned(),
        n => format!(" (and {n} other nodes are capped too)"),
    };
    let mut condition = Condition::new(REPLICAS_SCHEDULED, ConditionStatus::False)
        .because(UNSCHEDULABLE, format!("{first}{others}"));
    condition.severity = Some("Warning".into());
    conditions::set(&mut status.conditions, condition, now);
}

/// `actualReplicas` and `desiredReplicas` as sums over the reports (desired left out while no
/// node's autoscaler has a view), and `Active` from them.
fn set_replicas(status: &mut RevisionStatus, reports: &[(&str, RevisionReport)], now: &str) {
    let actual: i32 = reports.iter().map(|(_, r)| r.actual.max(0)).sum();
    let viewed: Vec<i32> = reports
        .iter()
        .map(|(_, r)| r.desired)
        .filter(|desired| *desired >= 0)
        .collect();
    let desired = (!viewed.is_empty()).then(|| viewed.iter().sum::<i32>());
    status.actual_replicas = Some(actual);
    status.desired_replicas = desired;
    let mut active = if actual > 0 {
        Condition::new(ACTIVE, ConditionStatus::True)
    } else if desired.unwrap_or(0) > 0 {
        Condition::new(ACTIVE, ConditionStatus::Unknown)
            .because("Activating", "The revision is starting a replica.")
    } else {
        Condition::new(ACTIVE, ConditionStatus::False)
            .because(NO_TRAFFIC, "The target is not receiving traffic.")
    };
    // Not a dependent of Ready: Knative reports it at Info severity.
    active.severity = Some("Info".into());
    conditions::set(&mut status.conditions, active, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use wisp_api::nodes::{encode, report_key};

    const T0: &str = "2026-01-01T00:00:00Z";

    fn report(state: RevisionState, actual: i32, desired: i32) -> RevisionReport {
        RevisionReport {
            state,
            generation: Some(1),
            container: Some("user-container".into()),
            image_digest: (state == RevisionState::Ready).then(|| "sha256:ab".into()),
            reason: (state == RevisionState::Failed).then(|| "ContainerMissing".into()),
            message: (state == RevisionState::Failed).then(|| "cannot read a.wasm".into()),
            actual,
            desired,
            capped: None,
        }
    }

    fn status_with(reports: &[(&str, RevisionReport)]) -> RevisionStatus {
        RevisionStatus {
            annotations: reports
                .iter()
                .map(|(node, r)| (report_key(node), encode(r)))
                .collect(),
            ..RevisionStatus::default()
        }
    }

    fn view(ready: &[&str], known: &[&str]) -> NodeView {
        NodeView {
            ready: ready.iter().map(|n| (*n).to_owned()).collect(),
            known: known.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    fn ready_condition(status: &RevisionStatus) -> Condition {
        conditions::get(&status.conditions, READY).cloned().unwrap()
    }

    #[test]
    fn a_pinned_image_is_the_image_digest_and_a_failed_pin_is_not_ready() {
        let pin = "r.io/app@sha256:12";
        let mut current = status_with(&[("a", report(RevisionState::Ready, 1, 1))]);
        current
            .annotations
            .insert(nodes::PINNED_IMAGE_KEY.to_owned(), pin.to_owned());
        let next = next(&current, Some(1), &view(&["a"], &["a"]), T0);
        assert_eq!(
            next.container_statuses[0].image_digest.as_deref(),
            Some(pin)
        );
        // Run by tag (a registry whose tags are not resolved): the bytes' digest.
        current
            .annotations
            .insert(nodes::PINNED_IMAGE_KEY.to_owned(), "r.io/app:v1".to_owned());
        let by_tag = super::next(&current, Some(1), &view(&["a"], &["a"]), T0);
        assert_eq!(
            by_tag.container_statuses[0].image_digest.as_deref(),
            Some("sha256:ab")
        );

        let failed = pin_failed(
            &RevisionStatus::default(),
            Some(2),
            "ImagePullBackOff",
            "Unable to fetch image",
            T0,
        );
        assert_eq!(failed.observed_generation, Some(2));
        let healthy = conditions::get(&failed.conditions, CONTAINER_HEALTHY).unwrap();
        assert_eq!(healthy.status, ConditionStatus::False);
        assert_eq!(healthy.reason.as_deref(), Some("ImagePullBackOff"));
        let ready = ready_condition(&failed);
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(ready.message.as_deref(), Some("Unable to fetch image"));
    }

    #[test]
    fn ready_once_every_ready_node_passed_its_checks() {
        let nodes = view(&["a", "b"], &["a", "b"]);
        let one = status_with(&[("a", report(RevisionState::Ready, 1, 1))]);
        let waiting = next(&one, Some(1), &nodes, T0);
        let ready = ready_condition(&waiting);
        assert_eq!(ready.status, ConditionStatus::Unknown);
        assert!(ready.message.unwrap().contains("waiting for node b"));

        let both = status_with(&[
            ("a", report(RevisionState::Ready, 1, 1)),
            ("b", report(RevisionState::Ready, 2, 3)),
        ]);
        let done = next(&both, Some(1), &nodes, T0);
        assert!(conditions::is_true(&done.conditions, READY));
        assert_eq!(
            done.container_statuses[0].image_digest.as_deref(),
            Some("sha256:ab")
        );
        assert_eq!(
            (done.actual_replicas, done.desired_replicas),
            (Some(3), Some(4))
        );
        assert!(conditions::is_true(&done.conditions, ACTIVE));
    }

    #[test]
    fn a_failure_on_one_node_names_that_node() {
        let nodes = view(&["a", "b", "c"], &["a", "b", "c"]);
        let status = status_with(&[
            ("a", report(RevisionState::Ready, 0, 0)),
            ("b", report(RevisionState::Failed, 0, 0)),
            ("c", report(RevisionState::Failed, 0, 0)),
        ]);
        let failed = next(&status, Some(1), &nodes, T0);
        let ready = ready_condition(&failed);
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(ready.reason.as_deref(), Some("ContainerMissing"));
        assert_eq!(
            ready.message.as_deref(),
            Some("cannot read a.wasm (on node b) (and on 1 other node)")
        );
        assert!(failed.container_statuses.is_empty());
    }

    #[test]
    fn only_ready_nodes_count_and_vanished_nodes_are_forgotten() {
        let status = status_with(&[
            ("a", report(RevisionState::Ready, 2, 2)),
            ("b", report(RevisionState::Failed, 5, 5)),
            ("gone", report(RevisionState::Ready, 7, 7)),
        ]);
        // b's lease lapsed (known, not Ready); "gone" was deleted.
        let next = next(&status, Some(1), &view(&["a"], &["a", "b"]), T0);
        assert!(conditions::is_true(&next.conditions, READY));
        assert_eq!(
            (next.actual_replicas, next.desired_replicas),
            (Some(2), Some(2))
        );
        assert!(next.annotations.contains_key(&report_key("b")));
        assert!(!next.annotations.contains_key(&report_key("gone")));
    }

    #[test]
    fn a_ready_revision_stays_ready_while_a_new_node_catches_up() {
        let nodes = view(&["a"], &["a"]);
        let status = status_with(&[("a", report(RevisionState::Ready, 0, -1))]);
        let ready = next(&status, Some(1), &nodes, T0);
        assert!(conditions::is_true(&ready.conditions, READY));
        assert_eq!(ready.desired_replicas, None);
        let joined = next(&ready, Some(1), &view(&["a", "b"], &["a", "b"]), T0);
        assert!(conditions::is_true(&joined.conditions, READY));
        // Nothing changed: nothing to write.
        assert_eq!(
            next(&joined, Some(1), &view(&["a", "b"], &["a", "b"]), T0),
            joined
        );
    }

    #[test]
    fn a_capped_node_is_a_warning_that_leaves_ready_alone() {
        let nodes = view(&["a", "b"], &["a", "b"]);
        let capped = "node b runs 5 of the 2000000000 replicas the revision wants: the node runs \
                      at most 5 replicas across all revisions (--max-replicas)";
        let status = status_with(&[
            ("a", report(RevisionState::Ready, 3, 3)),
            (
                "b",
                RevisionReport {
                    capped: Some(capped.into()),
                    ..report(RevisionState::Ready, 5, 2_000_000_000)
                },
            ),
        ]);
        let next_status = next(&status, Some(1), &nodes, T0);
        assert!(conditions::is_true(&next_status.conditions, READY));
        let scheduled = conditions::get(&next_status.conditions, REPLICAS_SCHEDULED)
            .cloned()
            .expect("the condition");
        assert_eq!(scheduled.status, ConditionStatus::False);
        assert_eq!(scheduled.reason.as_deref(), Some(UNSCHEDULABLE));
        assert_eq!(scheduled.message.as_deref(), Some(capped));
        assert_eq!(scheduled.severity.as_deref(), Some("Warning"));

        // Every node runs what it wants again: the condition goes.
        let relieved = status_with(&[
            ("a", report(RevisionState::Ready, 3, 3)),
            ("b", report(RevisionState::Ready, 5, 5)),
        ]);
        let relieved = RevisionStatus {
            conditions: next_status.conditions.clone(),
            ..relieved
        };
        let cleared = next(&relieved, Some(1), &nodes, T0);
        assert!(conditions::get(&cleared.conditions, REPLICAS_SCHEDULED).is_none());
        assert!(conditions::is_true(&cleared.conditions, READY));
    }

    #[test]
    fn with_no_ready_node_the_conditions_stay() {
        let nodes = view(&["a"], &["a"]);
        let status = status_with(&[("a", report(RevisionState::Ready, 1, 1))]);
        let ready = next(&status, Some(1), &nodes, T0);
        let restarting = next(&ready, Some(1), &view(&[], &["a"]), T0);
        assert!(conditions::is_true(&restarting.conditions, READY));
        assert_eq!(restarting.actual_replicas, Some(0));
        let fresh = next(&RevisionStatus::default(), Some(1), &view(&[], &[]), T0);
        assert_eq!(ready_condition(&fresh).reason.as_deref(), Some(DEPLOYING));
    }
}
