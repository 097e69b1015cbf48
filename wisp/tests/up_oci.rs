//! Registry images as Revisions pin them, driven with the real kubectl against `wisp up` and a
//! real registry on loopback (Debian's docker-registry): a tag is resolved to a digest once per
//! Revision and every load of it (also after a restart, also with the registry gone) pulls that
//! digest; a tag pushed again changes no existing Revision, a new one resolves it anew.

mod cluster;
mod common;
#[path = "../../oci/tests/support/registry.rs"]
mod registry_support;

use std::process::Command;

use cluster::{Kube, Up, image};
use registry_support::TestRegistry;
use serde_json::Value;

const HELLO: &str = "Hello from wisp!\n";

/// `wisp push COMPONENT REF --insecure`; returns the digest it printed.
fn push(sample: &str, reference: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["push", &image(sample), reference, "--insecure"])
        .env("WISP_LOG", "warn")
        .env("DOCKER_CONFIG", "/nonexistent-wisp-test-docker-config")
        .output()
        .expect("wisp push runs");
    assert!(
        output.status.success(),
        "wisp push failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .trim_end()
        .strip_prefix("digest: ")
        .unwrap_or_else(|| panic!("`digest: sha256:…`, got {stdout:?}"))
        .to_owned()
}

fn up_with(registry: &TestRegistry, dir: Option<tempfile::TempDir>) -> Up {
    let flags = [
        "--insecure-registry",
        registry.host(),
        "--allow-private-networks",
    ];
    match dir {
        Some(dir) => Up::start_in(dir, &flags),
        None => Up::start(&flags),
    }
}

fn pin_of(revision: &Value) -> (&str, &str) {
    (
        revision["status"]["annotations"]["wisp.dev/pinned-image"]
            .as_str()
            .unwrap_or_default(),
        revision["status"]["containerStatuses"][0]["imageDigest"]
            .as_str()
            .unwrap_or_default(),
    )
}

fn serves(up: &Kube, service: &str, body: &str) {
    up.wait_ready("ksvc", service);
    assert_eq!(
        up.http_get(&up.host(service), "/"),
        (200, body.to_owned()),
        "{service}"
    );
}

#[test]
fn a_revision_runs_the_digest_its_tag_named_when_it_was_created() {
    let mut registry = TestRegistry::start();
    let repository = format!("{}/samples/app", registry.host());
    let tagged = format!("{repository}:v1");
    let hello_digest = push("hello", &tagged);
    let by_digest = format!("{repository}@{hello_digest}");

    let up = up_with(&registry, None);
    up.apply(&cluster::ksvc("tagged", &tagged));
    up.apply(&cluster::ksvc("digested", &by_digest));
    serves(&up, "tagged", HELLO);
    serves(&up, "digested", HELLO);
    let first = up.wait_ready("revision", "tagged-00001");
    assert_eq!(pin_of(&first), (by_digest.as_str(), by_digest.as_str()));
    let digested = up.wait_ready("revision", "digested-00001");
    assert_eq!(pin_of(&digested), (by_digest.as_str(), by_digest.as_str()));

    // The tag now names another component: the existing Revision keeps its bytes, also after
    // a restart that loads it again (a node resolving the tag itself would get echo).
    let echo_digest = push("echo", &tagged);
    assert_ne!(echo_digest, hello_digest);
    let dir = up.kill();
    let up = up_with(&registry, Some(dir));
    serves(&up, "tagged", HELLO);
    assert_eq!(
        pin_of(&up.wait_ready("revision", "tagged-00001")),
        (by_digest.as_str(), by_digest.as_str())
    );

    // A new template generation resolves the tag anew.
    up.apply(&format!(
        "{}        env:\n        - name: GENERATION\n          value: \"2\"\n",
        cluster::ksvc("tagged", &tagged)
    ));
    let second = up.wait_ready("revision", "tagged-00002");
    let echo_pin = format!("{repository}@{echo_digest}");
    assert_eq!(pin_of(&second), (echo_pin.as_str(), echo_pin.as_str()));
    up.wait_for("ksvc", "tagged", "routed to tagged-00002", |service| {
        service["status"]["latestReadyRevisionName"] == "tagged-00002"
            && cluster::condition(service, "Ready") == Some("True")
    });
    assert_eq!(up.http_get(&up.host("tagged"), "/"), (200, String::new()));

    // With the registry gone, a restart serves every pulled Revision from the cache.
    registry.stop();
    let dir = up.kill();
    let up = up_with(&registry, Some(dir));
    up.wait_ready("revision", "tagged-00002");
    up.wait_ready("revision", "digested-00001");
    assert_eq!(up.http_get(&up.host("tagged"), "/"), (200, String::new()));
    assert_eq!(
        up.http_get(&up.host("digested"), "/"),
        (200, HELLO.to_owned())
    );
}
