//! `wisp up` over its life: scale to zero and back as kubectl and `/metrics` see it, replicas
//! as Pods on the Node, a restart after SIGKILL serving every Service again, deleting a
//! Service, live `config-domain` changes, `--manifests`, and SIGTERM draining in-flight requests.
//! Scaling and deletion are shared cases (`conformance/lifecycle.rs`), run on a genuine API
//! server too.

mod cluster;
mod common;
mod conformance;

use std::time::{Duration, Instant};

use cluster::{Up, WAIT, image, ksvc};
use conformance::lifecycle::{self, FAST_AUTOSCALER, quick_to_zero};

#[test]
fn scale_to_zero_and_back_shows_in_kubectl_metrics_and_pods() {
    let manifests = tempfile::tempdir().expect("manifests dir");
    std::fs::write(manifests.path().join("10-autoscaler.yaml"), FAST_AUTOSCALER).expect("write");
    std::fs::write(
        manifests.path().join("20-service.yaml"),
        quick_to_zero("early"),
    )
    .expect("write");
    let manifests_arg = manifests.path().display().to_string();
    let up = Up::start(&["--manifests", &manifests_arg]);
    // The start-up lines come once the manifests' Services are Ready: no waiting here.
    let service = up.get("ksvc", "early").expect("applied from --manifests");
    assert_eq!(
        cluster::condition(&service, "Ready"),
        Some("True"),
        "{service}"
    );
    assert_eq!(up.http_get(&up.host("early"), "/").0, 200);
    lifecycle::scale_to_zero_and_back(&up);
}

#[test]
fn restart_after_sigkill_serves_every_service_again() {
    let up = Up::start(&[]);
    let names = ["one", "two", "three"];
    for name in names {
        up.apply(&ksvc(name, &image("hello")));
    }
    for name in names {
        up.wait_ready("ksvc", name);
        assert_eq!(up.http_get(&up.host(name), "/").0, 200);
    }
    let dir = up.kill();
    let up = Up::start_in(dir, &[]);
    // Served from the moment the start-up lines are out: no waiting for Ready first.
    for name in names {
        let (status, body) = up.http_get(&up.host(name), "/");
        assert_eq!(
            (status, body.as_str()),
            (200, "Hello from wisp!\n"),
            "{name}"
        );
    }
    for name in names {
        up.wait_ready("ksvc", name);
        up.wait_ready("revision", &format!("{name}-00001"));
    }
    assert_eq!(
        up.list("revisions", None).len(),
        3,
        "a restart makes no new revisions"
    );
}

#[test]
fn deleting_a_service_removes_its_children_and_its_host() {
    lifecycle::deleting_a_service_removes_its_children_and_its_host(&Up::start(&[]));
}

#[test]
fn a_deleted_replica_pod_is_confirmed_by_its_node_and_made_again() {
    lifecycle::a_deleted_replica_pod_is_confirmed_by_its_node_and_made_again(&Up::start(&[]));
}

#[test]
fn config_domain_changes_urls_and_hosts_live() {
    let up = Up::start(&[]);
    up.apply(&ksvc("dom", &image("hello")));
    up.wait_ready("ksvc", "dom");
    up.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-domain\n  namespace: \
         knative-serving\ndata:\n  example.com: \"\"\n",
    );
    up.wait_for("ksvc", "dom", "moved to example.com", |s| {
        s["status"]["url"] == "http://dom.default.example.com"
    });
    let deadline = Instant::now() + WAIT;
    while up.http_get("dom.default.example.com", "/").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the gateway never served the new domain"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        up.http_get(&up.host("dom"), "/").0,
        404,
        "the old host is gone"
    );
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let mut up = Up::start(&[]);
    up.apply(&ksvc("drain", &image("sleep")));
    up.wait_ready("ksvc", "drain");
    let http = up.http().clone();
    let url = format!(
        "http://{}/?ms=1500&note=drain-request-in-the-guest",
        up.gateway
    );
    let in_flight = up.runtime().spawn(async move {
        let response = http
            .get(url)
            .header("host", "drain.default.localhost")
            .send()
            .await
            .expect("answered");
        (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        )
    });
    // SIGTERM once the request is in the guest (it prints the note), not after a guessed delay.
    let deadline = Instant::now() + WAIT;
    while !up.process.logs().contains("drain-request-in-the-guest") {
        assert!(
            Instant::now() < deadline,
            "the request never reached the guest:\n{}",
            cluster::tail(&up.process.logs())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    up.process.terminate();
    let (status, body) = up.runtime().block_on(in_flight).expect("request task");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("slept_ms"), "{body}");
    let exit = up.process.wait_exit();
    assert!(
        exit.success(),
        "{exit:?}\n{}",
        cluster::tail(&up.process.logs())
    );
}
