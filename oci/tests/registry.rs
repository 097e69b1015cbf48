//! wisp-oci against a real registry (Debian's docker-registry on loopback): pushes, tags and
//! digests, indexes, refusals, credentials, deduplicated pulls and the cache.

#[path = "support/registry.rs"]
mod support;
#[path = "support/token_server.rs"]
mod token_server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use support::TestRegistry;
use token_server::{TokenRequest, TokenServer};
use wisp_oci::component::{self, Artifact};
use wisp_oci::layout::{self, Descriptor, Layout, Platform};
use wisp_oci::{
    BlobCache, Credentials, Digest, DockerConfig, ErrorKind, ImageReference, Puller, Registry,
    RegistrySettings,
};

/// A small component, different for every `label`.
fn component(label: &str) -> Bytes {
    let text = format!("(component (import \"wisp:test/{label}\" (instance)))");
    Bytes::from(wat::parse_str(text).expect("a valid component"))
}

fn artifact(bytes: Bytes) -> Artifact {
    let summary = component::summarize(&bytes).expect("wasm");
    component::artifact(bytes, &summary, Some("test.wasm"), SystemTime::now())
}

fn registry_for(test_registry: &TestRegistry) -> Registry {
    Registry::new(RegistrySettings {
        insecure_registries: vec![test_registry.host().to_owned()],
        ..Default::default()
    })
}

fn reference(test_registry: &TestRegistry, rest: &str) -> ImageReference {
    ImageReference::parse(&format!("{}/{rest}", test_registry.host())).expect("a reference")
}

async fn push(registry: &Registry, reference: &ImageReference, bytes: Bytes) -> Digest {
    registry
        .session(reference, &Credentials::Anonymous)
        .unwrap()
        .push_artifact(&artifact(bytes))
        .await
        .expect("push")
}

fn puller(registry: &Registry, cache: &tempfile::TempDir) -> Puller {
    Puller::new(registry.clone(), BlobCache::new(cache.path()))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest: Digest::of(bytes).to_string(),
        size: bytes.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

/// Pushes an image manifest with the given config and layers as they are.
async fn push_image(
    registry: &Registry,
    reference: &ImageReference,
    config: (&str, &[u8]),
    layers: &[(&str, &[u8])],
) -> Digest {
    let session = registry
        .session(reference, &Credentials::Anonymous)
        .unwrap();
    session
        .push_blob(Bytes::copy_from_slice(config.1))
        .await
        .unwrap();
    for (_, bytes) in layers {
        session
            .push_blob(Bytes::copy_from_slice(bytes))
            .await
            .unwrap();
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": layout::OCI_MANIFEST,
        "config": descriptor(config.0, config.1),
        "layers": layers.iter().map(|(media_type, bytes)| descriptor(media_type, bytes)).collect::<Vec<_>>(),
    });
    session
        .push_manifest(Bytes::from(manifest.to_string()), layout::OCI_MANIFEST)
        .await
        .unwrap()
}

#[tokio::test]
async fn pulls_by_tag_and_by_digest_give_the_pushed_bytes() {
    let test_registry = TestRegistry::start();
    let registry = registry_for(&test_registry);
    let cache = tempfile::tempdir().unwrap();
    let bytes = component("hello");
    let tagged = reference(&test_registry, "team/hello:v1");
    let pushed = push(&registry, &tagged, bytes.clone()).await;

    let resolved = registry
        .resolve(&tagged, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(resolved, pushed);
    let pulled = puller(&registry, &cache)
        .pull(&tagged.pinned(resolved), &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(pulled.bytes, bytes);
    assert_eq!(pulled.layer_digest, Digest::of(&bytes));
    assert_eq!(pulled.manifest_digest, pushed);
    assert_eq!(pulled.layout, Layout::CncfWasm);
    assert_eq!(pulled.config_media_type, layout::WASM_CONFIG);
    assert_eq!(pulled.layer_media_type, layout::WASM_LAYER);

    let by_digest =
        ImageReference::parse(&format!("{}/team/hello@{pushed}", test_registry.host())).unwrap();
    assert_eq!(
        registry
            .resolve(&by_digest, &Credentials::Anonymous)
            .await
            .unwrap(),
        pushed
    );
    let fresh_cache = tempfile::tempdir().unwrap();
    let pulled = puller(&registry, &fresh_cache)
        .pull(&by_digest, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(pulled.bytes, bytes);
}

#[tokio::test]
async fn a_tag_pushed_again_resolves_anew_while_the_old_digest_keeps_its_bytes() {
    let test_registry = TestRegistry::start();
    let registry = registry_for(&test_registry);
    let cache = tempfile::tempdir().unwrap();
    let tagged = reference(&test_registry, "hello:v1");
    let first = push(&registry, &tagged, component("first")).await;
    let second = push(&registry, &tagged, component("second")).await;
    assert_ne!(first, second);
    assert_eq!(
        registry
            .resolve(&tagged, &Credentials::Anonymous)
            .await
            .unwrap(),
        second
    );
    let puller = puller(&registry, &cache);
    let old = puller
        .pull(&tagged.pinned(first), &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(old.bytes, component("first"));
    let new = puller
        .pull(&tagged.pinned(second), &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(new.bytes, component("second"));
}

#[tokio::test]
async fn basic_auth_refuses_anonymous_pulls_and_accepts_dockerconfigjson_credentials() {
    let test_registry = TestRegistry::start_with_basic_auth("alice", "s3cret");
    let registry = registry_for(&test_registry);
    let tagged = reference(&test_registry, "private/hello:v1");
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    let secret = format!(
        r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
        test_registry.host()
    );
    let credentials = DockerConfig::parse(secret.as_bytes())
        .unwrap()
        .credentials_for(&tagged);
    assert!(matches!(credentials, Credentials::Basic { .. }));

    let error = registry
        .session(&tagged, &Credentials::Anonymous)
        .unwrap()
        .push_artifact(&artifact(component("private")))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");

    let pushed = registry
        .session(&tagged, &credentials)
        .unwrap()
        .push_artifact(&artifact(component("private")))
        .await
        .unwrap();

    let error = registry
        .resolve(&tagged, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "{tagged}: {} refused access anonymously",
            test_registry.host()
        )) && message.contains("imagePullSecret"),
        "{message}"
    );
    let cache = tempfile::tempdir().unwrap();
    let error = puller(&registry, &cache)
        .pull(&tagged.pinned(pushed), &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");

    let wrong = Credentials::Basic {
        username: "alice".into(),
        password: "wrong".into(),
    };
    let error = registry.resolve(&tagged, &wrong).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    assert!(error.to_string().contains("as user \"alice\""), "{error}");
    assert!(!error.to_string().contains("wrong"), "{error}");

    assert_eq!(
        registry.resolve(&tagged, &credentials).await.unwrap(),
        pushed
    );
    let pulled = puller(&registry, &cache)
        .pull(&tagged.pinned(pushed), &credentials)
        .await
        .unwrap();
    assert_eq!(pulled.bytes, component("private"));
}

#[tokio::test]
async fn bearer_tokens_from_the_realm_push_and_pull_for_the_right_user_only() {
    let tokens = TokenServer::start("alice", "s3cret");
    let test_registry = TestRegistry::start_with_auth_config(&tokens.registry_auth_config());
    let host = test_registry.host().to_owned();
    let registry = registry_for(&test_registry);
    let tagged = reference(&test_registry, "private/hello:v1");
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    let secret = format!(r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#);
    let credentials = DockerConfig::parse(secret.as_bytes())
        .unwrap()
        .credentials_for(&tagged);
    assert!(matches!(credentials, Credentials::Basic { .. }));
    let bytes = component("bearer");

    // Anonymous: the realm hands out a token granting nothing, and the registry refuses it.
    let error = registry
        .session(&tagged, &Credentials::Anonymous)
        .unwrap()
        .push_artifact(&artifact(bytes.clone()))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    let anonymous = tokens.requests();
    assert_eq!(
        anonymous.first(),
        Some(&TokenRequest {
            user: None,
            scopes: vec!["repository:private/hello:pull,push".to_owned()],
            status: 200,
        })
    );
    assert!(
        anonymous
            .iter()
            .all(|request| request.user.is_none() && request.status == 200),
        "{anonymous:?}"
    );

    let pushed = registry
        .session(&tagged, &credentials)
        .unwrap()
        .push_artifact(&artifact(bytes.clone()))
        .await
        .unwrap();
    assert!(
        tokens.requests().contains(&TokenRequest {
            user: Some("alice".to_owned()),
            scopes: vec!["repository:private/hello:pull,push".to_owned()],
            status: 200,
        }),
        "{:?}",
        tokens.requests()
    );

    let error = registry
        .resolve(&tagged, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("{tagged}: {host} refused access anonymously"))
            && message.contains("imagePullSecret"),
        "{message}"
    );
    let cache = tempfile::tempdir().unwrap();
    let error = puller(&registry, &cache)
        .pull(&tagged.pinned(pushed), &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");

    // A wrong password is refused by the realm itself, as Docker Hub does.
    let wrong = Credentials::Basic {
        username: "alice".into(),
        password: "wrong".into(),
    };
    let error = registry.resolve(&tagged, &wrong).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "{tagged}: {host} refused access as user \"alice\""
        )),
        "{message}"
    );
    assert!(!message.contains("wrong"), "{message}");
    assert!(
        tokens.requests().contains(&TokenRequest {
            user: Some("alice".to_owned()),
            scopes: vec!["repository:private/hello:pull".to_owned()],
            status: 401,
        }),
        "{:?}",
        tokens.requests()
    );
    let error = registry
        .session(&tagged, &wrong)
        .unwrap()
        .push_artifact(&artifact(component("intruder")))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    assert!(
        error.to_string().contains("incorrect username or password"),
        "{error}"
    );

    // The right user: by tag, then by digest into an empty cache.
    assert_eq!(
        registry.resolve(&tagged, &credentials).await.unwrap(),
        pushed
    );
    let pulled = puller(&registry, &cache)
        .pull(&tagged.pinned(pushed), &credentials)
        .await
        .unwrap();
    assert_eq!(pulled.bytes, bytes);
    let by_digest = ImageReference::parse(&format!("{host}/private/hello@{pushed}")).unwrap();
    let fresh_cache = tempfile::tempdir().unwrap();
    let pulled = puller(&registry, &fresh_cache)
        .pull(&by_digest, &credentials)
        .await
        .unwrap();
    assert_eq!(pulled.bytes, bytes);
    assert!(
        tokens.requests().contains(&TokenRequest {
            user: Some("alice".to_owned()),
            scopes: vec!["repository:private/hello:pull".to_owned()],
            status: 200,
        }),
        "{:?}",
        tokens.requests()
    );
}

#[tokio::test]
async fn missing_tags_and_unknown_digests_are_not_found() {
    let test_registry = TestRegistry::start();
    let registry = registry_for(&test_registry);
    let cache = tempfile::tempdir().unwrap();
    push(
        &registry,
        &reference(&test_registry, "hello:v1"),
        component("hello"),
    )
    .await;

    let missing = reference(&test_registry, "hello:v9");
    let error = registry
        .resolve(&missing, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "{missing}: {} has no manifest for tag \"v9\" (it answered: ManifestUnknown: manifest unknown); check the repository and tag or digest, and push the component there with `wisp push`",
            test_registry.host()
        )
    );
    let no_repository = reference(&test_registry, "nothing:v1");
    let error = registry
        .resolve(&no_repository, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");

    let zeros = Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
    let wrong = reference(&test_registry, "hello:v1").pinned(zeros);
    let error = puller(&registry, &cache)
        .pull(&wrong, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(
        error.to_string().starts_with(&format!(
            "{wrong}: {} has no manifest {zeros}",
            test_registry.host()
        )),
        "{error}"
    );
}

#[tokio::test]
async fn non_wasm_images_are_refused_naming_their_media_types() {
    let test_registry = TestRegistry::start();
    let registry = registry_for(&test_registry);
    let cache = tempfile::tempdir().unwrap();
    let puller = puller(&registry, &cache);
    let gzip: &[u8] = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03not really a tarball";
    let image_config: &[u8] =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let tar_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    let oci_config = "application/vnd.oci.image.config.v1+json";

    let two_layers = reference(&test_registry, "linux:two");
    let digest = push_image(
        &registry,
        &two_layers,
        (oci_config, image_config),
        &[(tar_gzip, gzip), (tar_gzip, b"second layer")],
    )
    .await;
    let error = puller
        .pull(&two_layers.pinned(digest), &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotWasmComponent, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "found config {oci_config} and layers [{tar_gzip} ({} bytes), {tar_gzip} (12 bytes)]",
            gzip.len()
        )) && message.contains(
            "application/vnd.wasm.config.v0+json with exactly one application/wasm layer"
        ),
        "{message}"
    );

    // One gzip layer could be a mislabelled .wasm: its first bytes decide, and say no.
    let one_layer = reference(&test_registry, "linux:one");
    let digest = push_image(
        &registry,
        &one_layer,
        (oci_config, image_config),
        &[(tar_gzip, gzip)],
    )
    .await;
    let error = puller
        .pull(&one_layer.pinned(digest), &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotWasmComponent, "{error}");
    assert!(
        error.to_string().contains(&format!(
            "its only layer ({tar_gzip}) does not start with the wasm magic bytes"
        )),
        "{error}"
    );
    assert!(
        !cache
            .path()
            .join("sha256")
            .join(Digest::of(gzip).hex())
            .exists()
    );
}

#[tokio::test]
async fn older_wasm_layers_and_single_layer_images_are_pulled() {
    let test_registry = TestRegistry::start();
    let registry = registry_for(&test_registry);
    let cache = tempfile::tempdir().unwrap();
    let puller = puller(&registry, &cache);
    let bytes = component("legacy");

    let legacy = reference(&test_registry, "legacy:v1");
    let digest = push_image(
        &registry,
        &legacy,
        ("application/vnd.wasm.config.v1+json", b"{}"),
        &[(layout::WASM_CONTENT_LAYER, &bytes)],
    )
    .await;
    let pulled = puller
        .pull(&legacy.pinned(digest), &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(
        (pulled.bytes.clone(), pulled.layout),
        (bytes.clone(), Layout::WasmContentLayer)
    );

    let plain = reference(&test_registry, "plain:v1");
    let digest = push_image(
        &registry,
        &plain,
        (
            "application/vnd.oci.image.config.v1+json",
            b"{\"architecture\":\"wasm\",\"os\":\"wasip2\"}",
        ),
        &[("application/vnd.oci.image.layer.v1.tar", &bytes)],
    )
    .await;
    let pulled = puller
        .pull(&plain.pinned(digest), &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(
        (pulled.bytes, pulled.layout),
        (bytes, Layout::SingleLayerImage)
    );
}

#[tokio::test]
async fn an_index_is_followed_to_its_wasip2_entry() {
    let test_registry = TestRegistry::start();
    let registry = registry_for(&test_registry);
    let cache = tempfile::tempdir().unwrap();
    let wasm_image = reference(&test_registry, "multi:wasm");
    let wasm_digest = push(&registry, &wasm_image, component("in-index")).await;
    let linux_image = reference(&test_registry, "multi:linux");
    let linux_digest = push_image(
        &registry,
        &linux_image,
        ("application/vnd.oci.image.config.v1+json", b"{}"),
        &[("application/vnd.oci.image.layer.v1.tar+gzip", b"\x1f\x8b")],
    )
    .await;
    let session = registry
        .session(&wasm_image, &Credentials::Anonymous)
        .unwrap();
    let (wasm_manifest, _) = session.manifest(Some(wasm_digest)).await.unwrap();
    let (linux_manifest, _) = session.manifest(Some(linux_digest)).await.unwrap();
    let entry = |bytes: &[u8], os: &str, architecture: &str| Descriptor {
        platform: Some(Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
        }),
        ..descriptor(layout::OCI_MANIFEST, bytes)
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": layout::OCI_INDEX,
        "manifests": [entry(&linux_manifest, "linux", "amd64"), entry(&wasm_manifest, "wasip2", "wasm")],
    });
    let index_reference = reference(&test_registry, "multi:v1");
    let index_digest = registry
        .session(&index_reference, &Credentials::Anonymous)
        .unwrap()
        .push_manifest(Bytes::from(index.to_string()), layout::OCI_INDEX)
        .await
        .unwrap();
    assert_eq!(
        registry
            .resolve(&index_reference, &Credentials::Anonymous)
            .await
            .unwrap(),
        index_digest
    );
    let pulled = puller(&registry, &cache)
        .pull(
            &index_reference.pinned(index_digest),
            &Credentials::Anonymous,
        )
        .await
        .unwrap();
    assert_eq!(pulled.bytes, component("in-index"));
    assert_eq!(pulled.reference_digest, index_digest);
    assert_eq!(pulled.manifest_digest, wasm_digest);

    let linux_only = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": layout::OCI_INDEX,
        "manifests": [entry(&linux_manifest, "linux", "amd64")],
    });
    let linux_index = reference(&test_registry, "multi:linux-only");
    let digest = registry
        .session(&linux_index, &Credentials::Anonymous)
        .unwrap()
        .push_manifest(Bytes::from(linux_only.to_string()), layout::OCI_INDEX)
        .await
        .unwrap();
    let error = puller(&registry, &cache)
        .pull(&linux_index.pinned(digest), &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotWasmComponent, "{error}");
    assert!(
        error
            .to_string()
            .contains("an image index for platforms linux/amd64"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_registry_says_so_and_how_plain_http_is_allowed() {
    let port = support::unused_port();
    let tagged = ImageReference::parse(&format!("127.0.0.1:{port}/hello:v1")).unwrap();
    let insecure = Registry::new(RegistrySettings {
        insecure_registries: vec![format!("127.0.0.1:{port}")],
        ..Default::default()
    });
    let error = insecure
        .resolve(&tagged, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unreachable, "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "{tagged}: cannot reach 127.0.0.1:{port} over plain HTTP: "
        )) && message.contains("check that the registry is running"),
        "{message}"
    );

    // A registry serving plain HTTP, asked over HTTPS.
    let test_registry = TestRegistry::start();
    let tagged = reference(&test_registry, "hello:v1");
    let error = Registry::default()
        .resolve(&tagged, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unreachable, "{error}");
    assert!(error.to_string().contains("over HTTPS"), "{error}");
    assert!(
        error.to_string().contains("--insecure-registry HOST:PORT"),
        "{error}"
    );
}

#[tokio::test]
async fn layers_over_the_limit_are_refused_before_download() {
    let test_registry = TestRegistry::start();
    let registry = registry_for(&test_registry);
    let tagged = reference(&test_registry, "big:v1");
    let bytes = component("big");
    let digest = push(&registry, &tagged, bytes.clone()).await;
    let small = Registry::new(RegistrySettings {
        insecure_registries: vec![test_registry.host().to_owned()],
        max_layer_bytes: bytes.len() as u64 - 1,
        ..Default::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let error = puller(&small, &cache)
        .pull(&tagged.pinned(digest), &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLarge, "{error}");
    assert!(
        error.to_string().contains(&format!(
            "is {} bytes, over the limit of {} bytes",
            bytes.len(),
            bytes.len() - 1
        )),
        "{error}"
    );
    let blob_path = format!("/v2/big/blobs/{}", Digest::of(&bytes));
    assert_eq!(test_registry.requests("GET", &blob_path), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pulls_of_one_digest_fetch_it_once() {
    let test_registry = TestRegistry::start();
    let registry = registry_for(&test_registry);
    let cache = tempfile::tempdir().unwrap();
    let tagged = reference(&test_registry, "shared:v1");
    let bytes = component("shared");
    let digest = push(&registry, &tagged, bytes.clone()).await;
    let puller = Arc::new(puller(&registry, &cache));
    let pulls = (0..8).map(|_| {
        let puller = puller.clone();
        let pinned = tagged.pinned(digest);
        tokio::spawn(async move { puller.pull(&pinned, &Credentials::Anonymous).await })
    });
    for pull in futures::future::join_all(pulls).await {
        assert_eq!(pull.unwrap().unwrap().bytes, bytes);
    }
    let blob_path = format!("/v2/shared/blobs/{}", Digest::of(&bytes));
    let manifest_path = format!("/v2/shared/manifests/{digest}");
    assert_eq!(
        test_registry.requests("GET", &blob_path),
        1,
        "{}",
        test_registry.log()
    );
    assert_eq!(
        test_registry.requests("GET", &manifest_path),
        1,
        "{}",
        test_registry.log()
    );
}

#[tokio::test]
async fn the_cache_serves_pinned_pulls_with_the_registry_stopped() {
    let mut test_registry = TestRegistry::start();
    let registry = registry_for(&test_registry);
    let cache = tempfile::tempdir().unwrap();
    let tagged = reference(&test_registry, "cached:v1");
    let bytes = component("cached");
    let digest = push(&registry, &tagged, bytes.clone()).await;
    let pinned = tagged.pinned(digest);
    puller(&registry, &cache)
        .pull(&pinned, &Credentials::Anonymous)
        .await
        .unwrap();
    test_registry.stop();

    // A new puller (a restarted node) over the same directory.
    let pulled = puller(&registry, &cache)
        .pull(&pinned, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(pulled.bytes, bytes);
    let error = registry
        .resolve(&tagged, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unreachable, "{error}");

    // A damaged cached layer is not used: with the registry gone, the pull fails.
    let layer = BlobCache::new(cache.path()).path(&Digest::of(&bytes));
    std::fs::write(&layer, b"\0asm damaged").unwrap();
    let error = puller(&registry, &cache)
        .pull(&pinned, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unreachable, "{error}");
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_digest_is_refused_and_not_cached() {
    let test_registry = TestRegistry::start();
    let registry = registry_for(&test_registry);
    let cache = tempfile::tempdir().unwrap();
    let tagged = reference(&test_registry, "tampered:v1");
    let bytes = component("tampered");
    let digest = push(&registry, &tagged, bytes.clone()).await;
    // Corrupt the layer in the registry's own storage: it serves whatever the file holds.
    let layer = Digest::of(&bytes);
    let hex = layer.hex();
    let data = test_registry
        .storage()
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(&hex)
        .join("data");
    let mut tampered = bytes.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    std::fs::write(&data, &tampered).unwrap();

    let error = puller(&registry, &cache)
        .pull(&tagged.pinned(digest), &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DigestMismatch, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&layer.to_string())
            && message.contains(&Digest::of(&tampered).to_string()),
        "{message}"
    );
    assert!(!BlobCache::new(cache.path()).path(&layer).exists());
}

/// Bytes of blobs a cache directory holds.
fn cached_bytes(cache: &std::path::Path) -> u64 {
    std::fs::read_dir(cache.join("sha256"))
        .map(|listing| {
            listing
                .map(|entry| entry.unwrap().metadata().unwrap().len())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_bounded_cache_evicts_the_least_recently_pulled_and_pulls_it_again() {
    let test_registry = TestRegistry::start();
    let registry = registry_for(&test_registry);
    let (first, second) = (component("first"), component("second"));
    let first_tag = reference(&test_registry, "lru/first:v1");
    let second_tag = reference(&test_registry, "lru/second:v1");
    let first_pin = first_tag.pinned(push(&registry, &first_tag, first.clone()).await);
    let second_pin = second_tag.pinned(push(&registry, &second_tag, second.clone()).await);
    // What each pull keeps (its manifest and its layer), measured in unbounded caches.
    let mut sizes = Vec::new();
    for pin in [&first_pin, &second_pin] {
        let unbounded = tempfile::tempdir().unwrap();
        puller(&registry, &unbounded)
            .pull(pin, &Credentials::Anonymous)
            .await
            .unwrap();
        sizes.push(cached_bytes(unbounded.path()));
    }
    // Room for either pull's blobs, never both.
    let budget = sizes[0].max(sizes[1]);
    assert!(sizes[0] + sizes[1] > budget);
    let dir = tempfile::tempdir().unwrap();
    let bounded = Puller::new(registry.clone(), BlobCache::with_budget(dir.path(), budget));
    let first_layer = format!("/v2/lru/first/blobs/{}", Digest::of(&first));
    let gets_before = test_registry.requests("GET", &first_layer);

    bounded
        .pull(&first_pin, &Credentials::Anonymous)
        .await
        .unwrap();
    bounded
        .pull(&first_pin, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(
        test_registry.requests("GET", &first_layer),
        gets_before + 1,
        "a cached pull asks nothing"
    );
    bounded
        .pull(&second_pin, &Credentials::Anonymous)
        .await
        .unwrap();
    assert!(cached_bytes(dir.path()) <= budget);
    assert!(!bounded.cache().path(&Digest::of(&first)).exists());
    assert!(bounded.cache().path(&Digest::of(&second)).exists());

    let pulled = bounded
        .pull(&first_pin, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(pulled.bytes, first);
    assert_eq!(test_registry.requests("GET", &first_layer), gets_before + 2);
    assert!(cached_bytes(dir.path()) <= budget);
    assert!(bounded.cache().path(&Digest::of(&first)).exists());
}
