//! This node's reports, as it leaves them in Revision and Route `status.annotations` (the
//! contract of [`wisp_api::nodes`]): one entry per node, so nodes never overwrite each other,
//! and the controllers turn the entries of the Ready nodes into conditions and sums. Each
//! function returns the status with only this node's entry changed.

use wisp_api::knative::{RevisionStatus, RouteStatus};
use wisp_api::nodes::{
    RECORDED_DIGEST_KEY, RevisionReport, RevisionState, RouteReport, encode, report_key,
    traffic_hash,
};

use super::failure::Failure;

/// What applying a revision came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Serving, with this `sha256:` digest.
    Ready {
        digest: String,
    },
    Failed(Failure),
}

/// This node's report in `status`, if it made one.
pub fn own_report(status: &RevisionStatus, node: &str) -> Option<RevisionReport> {
    let text = status.annotations.get(&report_key(node))?;
    serde_json::from_str(text).ok()
}

/// `status` with this node's report changed by `change`. A new report starts with no replicas;
/// its state is a placeholder that [`applied`], the only maker of new reports, sets.
fn with_report(
    status: &RevisionStatus,
    node: &str,
    change: impl FnOnce(&mut RevisionReport),
) -> RevisionStatus {
    let mut report = own_report(status, node).unwrap_or(RevisionReport {
        state: RevisionState::Deploying,
        generation: None,
        container: None,
        image_digest: None,
        reason: None,
        message: None,
        actual: 0,
        desired: -1,
        capped: None,
    });
    change(&mut report);
    let mut next = status.clone();
    next.annotations.insert(report_key(node), encode(&report));
    next
}

/// What `outcome` says of the revision of `generation` on this node.
pub fn applied(
    status: &RevisionStatus,
    node: &str,
    generation: Option<i64>,
    container: &str,
    outcome: &Outcome,
) -> RevisionStatus {
    let mut next = with_report(status, node, |report| {
        report.generation = generation;
        report.container = Some(container.to_owned());
        match outcome {
            Outcome::Ready { digest } => {
                report.state = RevisionState::Ready;
                report.image_digest = Some(digest.clone());
                report.reason = None;
                report.message = None;
            }
            Outcome::Failed(failure) => {
                report.state = RevisionState::Failed;
                report.image_digest = None;
                report.reason = Some(failure.reason.to_owned());
                report.message = Some(failure.message.clone());
            }
        }
    });
    // The first bytes that ran are the revision's for good.
    if let Outcome::Ready { digest } = outcome {
        next.annotations
            .entry(RECORDED_DIGEST_KEY.to_owned())
            .or_insert_with(|| digest.clone());
    }
    next
}

/// What this node runs of a revision: its replica counts, and why it runs fewer than it wants
/// while it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replicas {
    /// Ready replicas.
    pub actual: i32,
    /// The autoscaler's desired scale (`-1`: it has no view yet).
    pub desired: i32,
    /// Why fewer run than wanted (the node's memory or replica cap), while it is so.
    pub capped: Option<String>,
}

/// This node's replica counts, and why it runs fewer than wanted, in its report; `None` while
/// this node has not reported on the revision (its first report is the apply's outcome, and
/// counts alone would make a report that says nothing of it).
pub fn replicas(
    status: &RevisionStatus,
    node: &str,
    replicas: &Replicas,
) -> Option<RevisionStatus> {
    own_report(status, node)?;
    Some(with_report(status, node, |report| {
        report.actual = replicas.actual;
        report.desired = replicas.desired;
        report.capped = replicas.capped.clone();
    }))
}

/// `status` with this node's word on the route: it serves the traffic the stored status holds
/// (or cannot, and why).
pub fn route_served(status: &RouteStatus, node: &str, problem: Option<&str>) -> RouteStatus {
    let mut next = status.clone();
    next.annotations
        .insert(report_key(node), route_report(status, problem));
    next
}

/// Whether `status` already carries what [`route_served`] would write: checked for each Route
/// the route sync looks at, so without copying the status.
pub fn route_reported(status: &RouteStatus, node: &str, problem: Option<&str>) -> bool {
    status
        .annotations
        .get(&report_key(node))
        .is_some_and(|written| *written == route_report(status, problem))
}

fn route_report(status: &RouteStatus, problem: Option<&str>) -> String {
    encode(&RouteReport {
        serving: traffic_hash(&status.traffic, status.url.as_deref()),
        problem: problem.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::failure::CONTAINER_MISSING;
    use wisp_api::knative::TrafficTarget;

    #[test]
    fn a_first_report_is_the_outcome_with_the_digest() {
        let start = RevisionStatus::default();
        let outcome = Outcome::Ready {
            digest: "sha256:ab".into(),
        };
        let done = applied(&start, "a", Some(1), "user-container", &outcome);
        let report = own_report(&done, "a").unwrap();
        assert_eq!(report.state, RevisionState::Ready);
        assert_eq!(report.image_digest.as_deref(), Some("sha256:ab"));
        assert_eq!(done.annotations[RECORDED_DIGEST_KEY], "sha256:ab");
        // Another node's bytes never replace the recorded digest.
        let other = Outcome::Ready {
            digest: "sha256:cd".into(),
        };
        let by_b = applied(&done, "b", Some(1), "user-container", &other);
        assert_eq!(by_b.annotations[RECORDED_DIGEST_KEY], "sha256:ab");
        assert_eq!(
            own_report(&by_b, "b").unwrap().image_digest.as_deref(),
            Some("sha256:cd")
        );
        // Applying again (a restart) changes nothing, so nothing is written.
        assert_eq!(
            applied(&done, "a", Some(1), "user-container", &outcome),
            done
        );
    }

    #[test]
    fn a_failure_is_reported_with_reason_and_message() {
        let failure = Failure {
            reason: CONTAINER_MISSING,
            message: "Unable to fetch image \"a.wasm\": gone".into(),
            transient: true,
        };
        let failed = applied(
            &RevisionStatus::default(),
            "a",
            Some(1),
            "user-container",
            &Outcome::Failed(failure),
        );
        let report = own_report(&failed, "a").unwrap();
        assert_eq!(report.state, RevisionState::Failed);
        assert_eq!(report.reason.as_deref(), Some(CONTAINER_MISSING));
        assert!(report.message.unwrap().contains("a.wasm"));
    }

    #[test]
    fn replica_counts_keep_the_rest_of_the_report_and_other_nodes() {
        let ready = applied(
            &RevisionStatus::default(),
            "b",
            Some(1),
            "user-container",
            &Outcome::Ready {
                digest: "sha256:0".into(),
            },
        );
        let counts = |actual, desired| Replicas {
            actual,
            desired,
            capped: None,
        };
        let ready = applied(
            &ready,
            "a",
            Some(1),
            "user-container",
            &Outcome::Ready {
                digest: "sha256:0".into(),
            },
        );
        let scaled = replicas(&ready, "b", &counts(2, 3)).unwrap();
        let scaled = replicas(&scaled, "a", &counts(1, 1)).unwrap();
        let b = own_report(&scaled, "b").unwrap();
        assert_eq!((b.state, b.actual, b.desired), (RevisionState::Ready, 2, 3));
        assert_eq!(own_report(&scaled, "a").unwrap().actual, 1);
        // A node that has not reported its outcome yet writes no counts: they would make a
        // report that says nothing of how the apply went.
        assert_eq!(replicas(&scaled, "c", &counts(1, 1)), None);
        let capped = Replicas {
            capped: Some("node b runs 2 of the 9 replicas the revision wants: …".into()),
            ..counts(2, 9)
        };
        let capped_status = replicas(&scaled, "b", &capped).unwrap();
        let report = own_report(&capped_status, "b").unwrap();
        assert_eq!(report.capped, capped.capped);
        // Once every wanted replica runs the note goes.
        let cleared = replicas(&capped_status, "b", &counts(9, 9)).unwrap();
        assert_eq!(own_report(&cleared, "b").unwrap().capped, None);
    }

    #[test]
    fn a_route_report_names_the_traffic_it_serves() {
        let status = RouteStatus {
            traffic: vec![TrafficTarget {
                revision_name: Some("hello-00001".into()),
                percent: Some(100),
                ..TrafficTarget::default()
            }],
            url: Some("http://hello.default.localhost".into()),
            ..RouteStatus::default()
        };
        let served = route_served(&status, "a", None);
        let report: RouteReport =
            serde_json::from_str(&served.annotations[&report_key("a")]).unwrap();
        assert_eq!(
            report.serving,
            traffic_hash(&status.traffic, status.url.as_deref())
        );
        assert_eq!(report.problem, None);
        assert!(!route_reported(&status, "a", None));
        assert!(route_reported(&served, "a", None));
        assert!(!route_reported(&served, "b", None), "another node's report");
        assert!(!route_reported(&served, "a", Some("no such revision")));
        let moved = RouteStatus {
            url: Some("http://hello.team.localhost".into()),
            ..served.clone()
        };
        assert!(!route_reported(&moved, "a", None), "the traffic moved on");
    }
}
