//! `wisp up` against a Service that asks for two billion replicas: the node runs its share, the
//! Revision says why with `ReplicasScheduled=False` (as kubectl shows it), the Pods in the API
//! stay as few as the replicas, another Service starts and serves, and wisp's memory stays
//! bounded. Then `config-autoscaler`'s `max-scale-limit` refuses what exceeds it, through
//! kubectl.

mod cluster;
mod common;

use cluster::{Up, condition, condition_of, image, ksvc, with_annotations};

/// Peak resident memory `wisp up` may reach in this test: the API server, the controllers and a
/// node running six replicas of `hello`, nowhere near what even a millionth of two billion
/// replicas would take.
const PEAK_RSS_BOUND: u64 = 512 * 1024 * 1024;

#[test]
fn a_service_demanding_billions_of_replicas_runs_its_share_and_its_revision_says_why() {
    let up = Up::start(&["--max-replicas", "6", "--max-replicas-per-revision", "4"]);
    up.apply(&with_annotations(
        &ksvc("greedy", &image("hello")),
        &[("autoscaling.knative.dev/min-scale", "2000000000")],
    ));
    let revision = up.wait_for("revision", "greedy-00001", "reported its cap", |revision| {
        condition(revision, "ReplicasScheduled") == Some("False")
    });
    let scheduled = condition_of(&revision, "ReplicasScheduled").expect("the condition");
    assert_eq!(scheduled["reason"], "Unschedulable", "{scheduled}");
    assert_eq!(scheduled["severity"], "Warning", "{scheduled}");
    assert_eq!(
        scheduled["message"],
        "node local runs 4 of the 2000000000 replicas the revision wants: the node runs at most \
         4 replicas of one revision (--max-replicas-per-revision), so that other revisions keep \
         room; lower the revision's autoscaling.knative.dev/min-scale, raise \
         --max-replicas-per-revision, or add nodes",
        "{scheduled}"
    );
    // What runs serves: Ready stays True.
    let revision = up.wait_ready("revision", "greedy-00001");
    assert_eq!(revision["status"]["actualReplicas"], 4, "{revision}");
    assert_eq!(revision["status"]["desiredReplicas"], 2_000_000_000_i64);
    let (status, body) = up.http_get(&up.host("greedy"), "/");
    assert_eq!((status, body.as_str()), (200, "Hello from wisp!\n"));
    // As many Pods as replicas, no more.
    let pods = up.list("pods", Some("serving.knative.dev/revision=greedy-00001"));
    assert_eq!(pods.len(), 4, "{pods:#?}");
    // kubectl shows the reason as a user would read it.
    let printed = up.kubectl(&["get", "revision", "greedy-00001", "-o", "json"]);
    assert!(printed.contains("\"ReplicasScheduled\""), "{printed}");

    // Another Service starts and serves beside it.
    up.apply(&ksvc("polite", &image("hello")));
    up.wait_ready("ksvc", "polite");
    let (status, body) = up.http_get(&up.host("polite"), "/");
    assert_eq!((status, body.as_str()), (200, "Hello from wisp!\n"));
    let polite = up.wait_ready("revision", "polite-00001");
    assert_eq!(condition(&polite, "ReplicasScheduled"), None, "{polite}");

    let peak = up.process.peak_rss();
    eprintln!("wisp up peak resident memory: {} MiB", peak >> 20);
    assert!(peak < PEAK_RSS_BOUND, "peak RSS {} MiB", peak >> 20);

    // The operator sets a max-scale-limit: admission refuses what exceeds it.
    up.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-autoscaler\n  \
         namespace: knative-serving\ndata:\n  max-scale-limit: \"10\"\n  max-scale: \"5\"\n",
    );
    let error = up.kubectl_fails(
        &["apply", "-f", "-"],
        Some(&with_annotations(
            &ksvc("limited", &image("hello")),
            &[("autoscaling.knative.dev/max-scale", "20")],
        )),
    );
    assert!(
        error.contains(
            "expected 1 <= 20 <= 10 (the cluster's max-scale-limit in config-autoscaler is 10; \
             ask for at most 10 replicas, or have the operator raise the limit): \
             spec.template.metadata.annotations.autoscaling.knative.dev/max-scale"
        ),
        "{error}"
    );
    let error = up.kubectl_fails(
        &["apply", "-f", "-"],
        Some(&with_annotations(
            &ksvc("limited", &image("hello")),
            &[("autoscaling.knative.dev/max-scale", "0")],
        )),
    );
    assert!(
        error.contains("max-scale=0 (unlimited), must be less than 10"),
        "{error}"
    );
    let error = up.kubectl_fails(
        &["apply", "-f", "-"],
        Some(&with_annotations(
            &ksvc("limited", &image("hello")),
            &[
                ("autoscaling.knative.dev/min-scale", "50"),
                ("autoscaling.knative.dev/max-scale", "10"),
            ],
        )),
    );
    assert!(error.contains("expected 0 <= 50 <= 10"), "{error}");
    assert!(
        up.get("ksvc", "limited").is_none(),
        "nothing refused is stored"
    );
    up.apply(&with_annotations(
        &ksvc("limited", &image("hello")),
        &[("autoscaling.knative.dev/max-scale", "10")],
    ));
    up.wait_ready("ksvc", "limited");
}
