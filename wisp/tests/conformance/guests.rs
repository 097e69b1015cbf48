//! What a revision's guest gets: instance reuse as the revision's explicit choice (a
//! `wisp.dev/` annotation, checked in admission on either API server) and WASIp3 components
//! served beside WASIp2 ones. `counter` and `p3-counter` answer how many requests their instance
//! has taken, so an answer shows whether state carried over.

use crate::cluster::{Kube, image, ksvc, with_annotations};

use super::api::WEBHOOK_DENIED;

/// How long an idle instance is kept in these cases: far longer than the gap between two of a
/// case's requests on a loaded machine. With wasmtime's default of 1 s, the requests that
/// haproxy alternates between two nodes could each find their node's instance already retired,
/// and reuse would not show.
const KEEP_IDLE: (&str, &str) = ("wisp.dev/idle-instance-timeout", "120s");

/// Answers of `n` requests in turn, as numbers.
fn counts(up: &Kube, service: &str, n: usize) -> Vec<u32> {
    (0..n)
        .map(|_| {
            let (status, body) = up.http_get(&up.host(service), "/");
            assert_eq!(status, 200, "{service}: {body}");
            body.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{service} answered {body:?}"))
        })
        .collect()
}

/// By default a WASIp2 revision gives every request a fresh instance; with
/// `wisp.dev/max-instance-reuse-count: "3"` an instance serves up to three requests in turn
/// (on each node the balancer sends them to); a bad value is refused with the field and the fix.
pub fn instance_reuse_is_the_revisions_choice(up: &Kube) {
    up.apply(&ksvc("fresh", &image("counter")));
    up.apply(&with_annotations(
        &ksvc("kept", &image("counter")),
        &[("wisp.dev/max-instance-reuse-count", "3"), KEEP_IDLE],
    ));
    up.wait_ready("ksvc", "fresh");
    let revision = up.wait_ready("ksvc", "kept");
    assert_eq!(revision["status"]["latestReadyRevisionName"], "kept-00001");

    assert_eq!(
        counts(up, "fresh", 4),
        vec![1, 1, 1, 1],
        "no reuse by default"
    );
    let kept = counts(up, "kept", 9);
    assert!(
        kept.iter().all(|n| (1..=3).contains(n)),
        "an instance served more than its 3 requests: {kept:?}"
    );
    assert!(
        kept.iter().any(|n| *n >= 2),
        "no instance was reused: {kept:?}"
    );

    let zero = with_annotations(
        &ksvc("bad", &image("counter")),
        &[("wisp.dev/max-instance-reuse-count", "0")],
    );
    let error = up.kubectl_fails(&["apply", "-f", "-"], Some(&zero));
    assert!(error.contains(WEBHOOK_DENIED), "{error}");
    assert!(
        error.contains(
            "must be at least 1 (1 means a fresh instance per request): \
             spec.template.metadata.annotations.wisp.dev/max-instance-reuse-count"
        ),
        "{error}"
    );
    let typo = with_annotations(
        &ksvc("bad", &image("counter")),
        &[("wisp.dev/max-instances", "2")],
    );
    let error = up.kubectl_fails(&["apply", "-f", "-"], Some(&typo));
    assert!(error.contains("unknown wisp annotation"), "{error}");
    assert!(up.get("ksvc", "bad").is_none(), "nothing refused is stored");
}

/// A WASIp3 component (spin-sdk 7) applied with kubectl serves like any other, with its
/// instances reused by default (only the idle timeout is lengthened, see [`KEEP_IDLE`]) and many
/// requests at once on one instance.
pub fn a_wasip3_component_serves(up: &Kube) {
    up.apply(&with_annotations(
        &ksvc("async", &image("p3-counter")),
        &[KEEP_IDLE],
    ));
    up.wait_ready("ksvc", "async");
    let first = counts(up, "async", 3);
    assert!(first.iter().any(|n| *n >= 2), "not reused: {first:?}");

    let host = up.host("async");
    let answers = up.runtime().block_on(async {
        let calls = (0..16).map(|_| {
            let host = host.clone();
            async move {
                let (status, body) = up.request_async("GET", &host, "/?ms=300").await;
                (status, body)
            }
        });
        futures::future::join_all(calls).await
    });
    for (status, body) in answers {
        assert_eq!(status, 200, "{body}");
    }
}
