//! Registry images as Revisions pin them, driven with the real kubectl against `wisp up` and a
//! real registry on loopback (Debian's docker-registry): a tag is resolved to a digest once per
//! Revision and every load of it (also after a restart, also with the registry gone) pulls that
//! digest; a tag pushed again changes no existing Revision, a new one resolves it anew.

mod cluster;
mod common;
#[path = "../../oci/tests/support/registry.rs"]
mod registry_support;
#[path = "../../oci/tests/support/token_server.rs"]
mod token_server;

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

fn up_with(registry: &TestRegistry, dir: Option<cluster::Stopped>) -> Up {
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

/// The `ContainerHealthy` condition of revision `name`, once it is False.
fn unhealthy(up: &Kube, name: &str) -> (String, String) {
    let revision = up.wait_for("revision", name, "became ContainerHealthy=False", |r| {
        cluster::condition(r, "ContainerHealthy") == Some("False")
    });
    assert_eq!(cluster::condition(&revision, "Ready"), Some("False"));
    let condition = cluster::condition_of(&revision, "ContainerHealthy").expect("the condition");
    (
        condition["reason"].as_str().unwrap_or_default().to_owned(),
        condition["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Pushes an ordinary Linux image (one gzip layer that is not wasm) as `reference`.
fn push_linux_image(reference: &str) {
    use wisp_oci::layout::{self, Descriptor};
    use wisp_oci::{Credentials, Digest, ImageReference, Registry, RegistrySettings};
    let reference = ImageReference::parse(reference).expect("a reference");
    let registry = Registry::new(RegistrySettings {
        insecure_registries: vec![reference.registry().to_owned()],
        ..Default::default()
    });
    let config: &[u8] =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer: &[u8] = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03not really a tarball";
    let descriptor = |media_type: &str, bytes: &[u8]| Descriptor {
        media_type: media_type.to_owned(),
        digest: Digest::of(bytes).to_string(),
        size: bytes.len() as u64,
        platform: None,
        annotations: Default::default(),
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": layout::OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
    });
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let session = registry
            .session(&reference, &Credentials::Anonymous)
            .expect("a session");
        for blob in [config, layer] {
            session
                .push_blob(bytes::Bytes::copy_from_slice(blob))
                .await
                .expect("blob pushed");
        }
        session
            .push_manifest(
                bytes::Bytes::from(manifest.to_string()),
                layout::OCI_MANIFEST,
            )
            .await
            .expect("manifest pushed");
    });
}

#[test]
fn pull_failures_are_precise_revision_conditions_and_heal_when_the_registry_does() {
    let mut registry = TestRegistry::start();
    let host = registry.host().to_owned();
    let repository = format!("{host}/samples/app");
    push("hello", &format!("{repository}:v1"));
    push_linux_image(&format!("{host}/linux/app:v1"));
    let absent = wisp_oci::Digest::of(b"nothing was pushed with this digest");
    let away = format!("127.0.0.1:{}", registry_support::unused_port());

    let up = up_with(&registry, None);
    up.apply(&cluster::ksvc("missing", &format!("{repository}:nope")));
    up.apply(&cluster::ksvc("wrong", &format!("{repository}@{absent}")));
    up.apply(&cluster::ksvc("linux", &format!("{host}/linux/app:v1")));
    up.apply(&cluster::ksvc("away", &format!("{away}/samples/app:v1")));

    let (reason, message) = unhealthy(&up, "missing-00001");
    assert_eq!(reason, "ImagePullBackOff");
    assert!(
        message.starts_with(&format!(
            "Unable to fetch image \"{repository}:nope\": failed to resolve image to digest: \
             {repository}:nope: {host} has no manifest for tag \"nope\" (it answered: "
        )),
        "{message}"
    );

    let (reason, message) = unhealthy(&up, "wrong-00001");
    assert_eq!(reason, "ImagePullBackOff");
    assert!(
        message.starts_with(&format!(
            "Unable to fetch image \"{repository}@{absent}\": {repository}@{absent}: {host} has \
             no manifest {absent} (it answered: "
        )) && message.ends_with("(on node local)"),
        "{message}"
    );

    let (reason, message) = unhealthy(&up, "linux-00001");
    assert_eq!(reason, "InvalidComponent");
    assert!(
        message.contains(
            "is not a wasm component wisp can run: its only layer \
             (application/vnd.oci.image.layer.v1.tar+gzip) does not start with the wasm magic bytes"
        ),
        "{message}"
    );

    let (reason, message) = unhealthy(&up, "away-00001");
    assert_eq!(reason, "ImagePullBackOff");
    assert!(
        message.starts_with(&format!(
            "Unable to fetch image \"{away}/samples/app:v1\": failed to resolve image to digest: \
             {away}/samples/app:v1: cannot reach {away} over HTTPS: "
        )),
        "{message}"
    );

    // A registry that is away, then comes back: the retries heal the revision, no new apply.
    registry.stop();
    up.apply(&cluster::ksvc("later", &format!("{repository}:v1")));
    let (reason, message) = unhealthy(&up, "later-00001");
    assert_eq!(reason, "ImagePullBackOff");
    assert!(
        message.contains(&format!("cannot reach {host} over plain HTTP")),
        "{message}"
    );
    registry.restart();
    serves(&up, "later", HELLO);
}

/// A Service of `image` whose revisions name `secrets` as imagePullSecrets.
fn ksvc_with_secrets(name: &str, image: &str, secrets: &[&str]) -> String {
    let mut yaml = cluster::ksvc(name, image);
    if !secrets.is_empty() {
        yaml.push_str("      imagePullSecrets:\n");
        for secret in secrets {
            yaml.push_str(&format!("      - name: {secret}\n"));
        }
    }
    yaml
}

/// `wisp push COMPONENT REF --insecure --username USER --password-stdin`; returns the digest.
fn push_as(sample: &str, reference: &str, user: &str, password: &str) -> String {
    use std::io::Write as _;

    let mut child = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args([
            "push",
            &image(sample),
            reference,
            "--insecure",
            "--username",
            user,
        ])
        .arg("--password-stdin")
        .env("WISP_LOG", "warn")
        .env("DOCKER_CONFIG", "/nonexistent-wisp-test-docker-config")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("wisp push runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(password.as_bytes())
        .expect("password written");
    let output = child.wait_with_output().expect("wisp push ends");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .strip_prefix("digest: ")
        .expect("the digest")
        .to_owned()
}

#[test]
fn image_pull_secrets_give_credentials_to_the_resolution_and_the_pulls() {
    use std::os::unix::fs::PermissionsExt as _;

    const USER: &str = "puller";
    const PASSWORD: &str = "pull-secret-s3cr3t";
    let registry = TestRegistry::start_with_basic_auth(USER, PASSWORD);
    let host = registry.host().to_owned();
    let tagged = format!("{host}/private/app:v1");
    let push_private = |sample: &str, reference: &str| push_as(sample, reference, USER, PASSWORD);
    let digest = push_private("hello", &tagged);
    // Only ever pulled anonymously: the node's blob cache cannot answer for the registry. The
    // tests of this file share one cache directory and blobs are cached by digest alone, so
    // this is a sample no other test pushes (an `echo` pushed elsewhere in the same second
    // has the same manifest digest, and the cache would serve it).
    let other_digest = push_private("hello-wasi", &format!("{host}/private/other:v1"));
    let other_by_digest = format!("{host}/private/other@{other_digest}");
    let by_digest = format!("{host}/private/app@{digest}");

    let up = up_with(&registry, None);
    // kubectl's own docker-registry secret, through the embedded API server.
    up.kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={host}"),
        &format!("--docker-username={USER}"),
        &format!("--docker-password={PASSWORD}"),
    ]);
    let secret = up.get("secret", "regcred").expect("the secret");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");

    up.apply(&ksvc_with_secrets("anonymous", &tagged, &[]));
    up.apply(&ksvc_with_secrets(
        "authorized",
        &tagged,
        &["missing", "regcred"],
    ));
    // By digest the controller asks the registry nothing: the node's pull needs the secret.
    up.apply(&ksvc_with_secrets("pinned", &by_digest, &["regcred"]));
    up.apply(&ksvc_with_secrets(
        "pinned-anonymous",
        &other_by_digest,
        &[],
    ));
    serves(&up, "authorized", HELLO);
    serves(&up, "pinned", HELLO);
    let authorized = up.wait_ready("revision", "authorized-00001");
    assert_eq!(pin_of(&authorized).0, by_digest);

    let (reason, message) = unhealthy(&up, "anonymous-00001");
    assert_eq!(reason, "ImagePullBackOff");
    assert!(
        message.starts_with(&format!(
            "Unable to fetch image \"{tagged}\": failed to resolve image to digest: {tagged}: \
             {host} refused access anonymously (it answered: "
        )) && message.contains("imagePullSecret of type kubernetes.io/dockerconfigjson"),
        "{message}"
    );
    let (reason, message) = unhealthy(&up, "pinned-anonymous-00001");
    assert_eq!(reason, "ImagePullBackOff");
    assert!(
        message.contains(&format!("{host} refused access anonymously")),
        "{message}"
    );

    // A docker config Secret is checked on every write, and its contents never quoted.
    let refused = up.kubectl_fails(
        &["apply", "-f", "-"],
        Some(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: broken\n\
             type: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"auths\": nope'\n",
        ),
    );
    assert!(
        refused.contains("Secret \"broken\" is invalid: data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": not JSON"),
        "{refused}"
    );
    assert!(!refused.contains("nope"), "{refused}");

    // The node identity may get a Secret by name, never list or watch them.
    let node_kubeconfig = up.data_dir().join("node.kubeconfig");
    let kubectl_home = tempfile::tempdir().expect("a kubectl home");
    let as_node = |args: &[&str]| {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&node_kubeconfig)
            .args(args)
            .env("HOME", kubectl_home.path())
            .env("KUBECACHEDIR", kubectl_home.path().join("cache"))
            .env_remove("KUBECONFIG")
            .output()
            .expect("kubectl runs")
    };
    let got = as_node(&["get", "secret", "regcred", "-n", "default", "-o", "name"]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        "secret/regcred"
    );
    let listed = as_node(&["get", "secrets", "-n", "default"]);
    assert!(!listed.status.success());
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(
        stderr.contains("Forbidden") || stderr.contains("forbidden"),
        "{stderr}"
    );

    // The store's files (which hold the Secrets) are the owner's alone, and no log line holds
    // the password.
    for name in ["wisp.db", "wisp.db-wal", "wisp.db-shm"] {
        let metadata = std::fs::metadata(up.data_dir().join(name)).expect("the store's file");
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600, "{name}");
    }
    assert!(!up.process.logs().contains(PASSWORD));
}

#[test]
fn a_bearer_token_registry_takes_wisp_push_and_serves_services_with_a_pull_secret() {
    const USER: &str = "tokenuser";
    const PASSWORD: &str = "token-s3cr3t";
    let tokens = token_server::TokenServer::start(USER, PASSWORD);
    let registry = TestRegistry::start_with_auth_config(&tokens.registry_auth_config());
    let host = registry.host().to_owned();
    let tagged = format!("{host}/tokens/app:v1");
    let digest = push_as("hello", &tagged, USER, PASSWORD);
    assert!(
        tokens.requests().contains(&token_server::TokenRequest {
            user: Some(USER.to_owned()),
            scopes: vec!["repository:tokens/app:pull,push".to_owned()],
            status: 200,
        }),
        "{:?}",
        tokens.requests()
    );

    let up = up_with(&registry, None);
    up.kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "tokencred",
        &format!("--docker-server={host}"),
        &format!("--docker-username={USER}"),
        &format!("--docker-password={PASSWORD}"),
    ]);
    up.apply(&ksvc_with_secrets("bearer", &tagged, &["tokencred"]));
    up.apply(&ksvc_with_secrets("bearer-anonymous", &tagged, &[]));
    serves(&up, "bearer", HELLO);
    let revision = up.wait_ready("revision", "bearer-00001");
    assert_eq!(pin_of(&revision).0, format!("{host}/tokens/app@{digest}"));
    // The resolution and the node's pull traded the Secret's credentials for pull tokens.
    assert!(
        tokens.requests().contains(&token_server::TokenRequest {
            user: Some(USER.to_owned()),
            scopes: vec!["repository:tokens/app:pull".to_owned()],
            status: 200,
        }),
        "{:?}",
        tokens.requests()
    );

    let (reason, message) = unhealthy(&up, "bearer-anonymous-00001");
    assert_eq!(reason, "ImagePullBackOff");
    assert!(
        message.starts_with(&format!(
            "Unable to fetch image \"{tagged}\": failed to resolve image to digest: {tagged}: \
             {host} refused access anonymously (it answered: "
        )),
        "{message}"
    );
    assert!(!up.process.logs().contains(PASSWORD));
}
