//! Size bounds that hold before the bytes arrive, against a registry that lies: a tiny HTTP
//! server on loopback answering the distribution API's paths with whatever a test tells it,
//! counting what it managed to send. A hostile registry must cost at most the bound.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use wisp_oci::layout::{self, Descriptor, Platform};
use wisp_oci::{
    BlobCache, Credentials, DEFAULT_MAX_MANIFEST_BYTES, Digest, ErrorKind, ImageReference, Puller,
    Registry, RegistrySettings,
};

/// What the lying registry answers on one path.
#[derive(Clone)]
enum Answer {
    /// These bytes, with their true length.
    Bytes(Bytes),
    /// `prefix`, then zeros, `total` bytes in all, sent without a `Content-Length`.
    Unannounced { prefix: Bytes, total: u64 },
    /// `prefix`, then zeros, `total` bytes in all, with `Content-Length: total`.
    Announced { prefix: Bytes, total: u64 },
}

/// Far more than any bound under test: a client that read a body to its end would show it.
const HUGE: u64 = 64 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

struct LyingRegistry {
    host: String,
    /// Body bytes handed to the connection, all paths together.
    sent: Arc<AtomicU64>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl LyingRegistry {
    async fn start(answers: HashMap<String, Answer>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(answers);
        let (counter, log) = (sent.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answers, counter, log) = (answers.clone(), counter.clone(), log.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<_>| {
                        let path = request.uri().path().to_owned();
                        log.lock()
                            .unwrap()
                            .push(format!("{} {path}", request.method()));
                        let response = respond(answers.get(&path).cloned(), counter.clone());
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            host,
            sent,
            requests,
        }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    fn requests(&self, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|request| request.ends_with(&format!(" {path}")))
            .count()
    }

    fn registry(&self) -> Registry {
        Registry::new(RegistrySettings {
            insecure_registries: vec![self.host.clone()],
            ..Default::default()
        })
    }

    fn reference(&self, rest: &str) -> ImageReference {
        ImageReference::parse(&format!("{}/{rest}", self.host)).unwrap()
    }
}

fn respond(
    answer: Option<Answer>,
    counter: Arc<AtomicU64>,
) -> Response<BoxBody<Bytes, Infallible>> {
    let (prefix, total, announce) = match answer {
        None => {
            return Response::builder()
                .status(404)
                .header("content-type", "application/json")
                .body(
                    Full::new(Bytes::from_static(
                        br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
                    ))
                    .boxed(),
                )
                .unwrap();
        }
        Some(Answer::Bytes(bytes)) => {
            counter.fetch_add(bytes.len() as u64, Ordering::SeqCst);
            return Response::builder()
                .header("content-type", layout::OCI_MANIFEST)
                .body(Full::new(bytes).boxed())
                .unwrap();
        }
        Some(Answer::Unannounced { prefix, total }) => (prefix, total, false),
        Some(Answer::Announced { prefix, total }) => (prefix, total, true),
    };
    let chunks = futures::stream::unfold(0u64, move |offset| {
        let prefix = prefix.clone();
        let counter = counter.clone();
        async move {
            if offset >= total {
                return None;
            }
            let chunk = if offset < prefix.len() as u64 {
                prefix.slice(usize::try_from(offset).unwrap()..)
            } else {
                let size = (total - offset).min(CHUNK as u64);
                Bytes::from(vec![0u8; usize::try_from(size).unwrap()])
            };
            counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            let next = offset + chunk.len() as u64;
            Some((Ok::<_, Infallible>(Frame::data(chunk)), next))
        }
    });
    let mut response = Response::builder().header("content-type", layout::OCI_MANIFEST);
    if announce {
        response = response.header("content-length", total);
    }
    response.body(StreamBody::new(chunks).boxed()).unwrap()
}

/// A small component.
fn component() -> Bytes {
    Bytes::from(wat::parse_str("(component)").unwrap())
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

/// A CNCF wasm artifact's manifest naming `layer` and a config.
fn manifest(layer: &[u8]) -> Bytes {
    let config = br#"{"architecture":"wasm","os":"wasip2"}"#;
    Bytes::from(
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": layout::OCI_MANIFEST,
            "config": descriptor(layout::WASM_CONFIG, config),
            "layers": [descriptor(layout::WASM_LAYER, layer)],
        })
        .to_string(),
    )
}

#[tokio::test]
async fn a_manifest_announced_over_the_limit_is_refused_before_its_body_is_read() {
    let lying = LyingRegistry::start(HashMap::from([(
        "/v2/lying/manifests/v1".to_owned(),
        Answer::Announced {
            prefix: Bytes::from_static(b"{"),
            total: HUGE,
        },
    )]))
    .await;
    let reference = lying.reference("lying:v1");
    let error = lying
        .registry()
        .session(&reference, &Credentials::Anonymous)
        .unwrap()
        .manifest(None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLarge, "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "{reference}: the manifest for tag \"v1\" is {HUGE} bytes, over the limit of {DEFAULT_MAX_MANIFEST_BYTES} bytes; a component's manifest is a few hundred bytes and registries store none this large: check that the reference names a wasm component in the registry meant"
        )
    );
    assert!(lying.sent() < HUGE, "{} bytes were sent", lying.sent());
}

#[tokio::test]
async fn a_manifest_without_a_length_is_read_no_further_than_the_limit() {
    let lying = LyingRegistry::start(HashMap::from([(
        "/v2/lying/manifests/v1".to_owned(),
        Answer::Unannounced {
            prefix: Bytes::from_static(b"{"),
            total: HUGE,
        },
    )]))
    .await;
    let reference = lying.reference("lying:v1");
    let registry = lying.registry();
    let error = registry
        .session(&reference, &Credentials::Anonymous)
        .unwrap()
        .manifest(None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLarge, "{error}");
    assert!(
        error.to_string().starts_with(&format!(
            "{reference}: the manifest for tag \"v1\" is more than {DEFAULT_MAX_MANIFEST_BYTES} bytes, over the limit of {DEFAULT_MAX_MANIFEST_BYTES} bytes; "
        )),
        "{error}"
    );
    assert!(lying.sent() < HUGE, "{} bytes were sent", lying.sent());

    // Resolving the tag reads the same manifest when the HEAD gives no digest.
    let error = registry
        .resolve(&reference, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLarge, "{error}");
    assert!(lying.sent() < 2 * HUGE, "{} bytes were sent", lying.sent());
}

#[tokio::test]
async fn a_manifest_an_index_gives_as_too_large_is_never_asked_for() {
    let entry = Digest::of(b"a manifest never fetched");
    let big = DEFAULT_MAX_MANIFEST_BYTES + 1;
    let index = Bytes::from(
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": layout::OCI_INDEX,
            "manifests": [{
                "mediaType": layout::OCI_MANIFEST,
                "digest": entry.to_string(),
                "size": big,
                "platform": Platform { architecture: "wasm".into(), os: "wasip2".into() },
            }],
        })
        .to_string(),
    );
    let index_digest = Digest::of(&index);
    let entry_path = format!("/v2/lying/manifests/{entry}");
    let lying = LyingRegistry::start(HashMap::from([
        (
            format!("/v2/lying/manifests/{index_digest}"),
            Answer::Bytes(index),
        ),
        (
            entry_path.clone(),
            Answer::Announced {
                prefix: Bytes::new(),
                total: HUGE,
            },
        ),
    ]))
    .await;
    let reference = lying.reference(&format!("lying@{index_digest}"));
    let cache = tempfile::tempdir().unwrap();
    let error = Puller::new(lying.registry(), BlobCache::new(cache.path()))
        .pull(&reference, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLarge, "{error}");
    assert!(
        error.to_string().starts_with(&format!(
            "{reference}: the manifest {entry} is {big} bytes, over the limit of {DEFAULT_MAX_MANIFEST_BYTES} bytes; "
        )),
        "{error}"
    );
    assert_eq!(lying.requests(&entry_path), 0);
}

/// A registry serving a true manifest (by digest) for `component()` and `layer` as its layer.
async fn with_layer_answer(layer: impl FnOnce(Bytes) -> Answer) -> (LyingRegistry, Digest, Bytes) {
    let bytes = component();
    let manifest = manifest(&bytes);
    let manifest_digest = Digest::of(&manifest);
    let lying = LyingRegistry::start(HashMap::from([
        (
            format!("/v2/lying/manifests/{manifest_digest}"),
            Answer::Bytes(manifest),
        ),
        (
            format!("/v2/lying/blobs/{}", Digest::of(&bytes)),
            layer(bytes.clone()),
        ),
    ]))
    .await;
    (lying, manifest_digest, bytes)
}

#[tokio::test]
async fn a_layer_announced_longer_than_its_descriptor_is_refused_before_its_body_is_read() {
    let (lying, manifest_digest, bytes) = with_layer_answer(|bytes| Answer::Announced {
        prefix: bytes,
        total: HUGE,
    })
    .await;
    let reference = lying.reference(&format!("lying@{manifest_digest}"));
    let cache = tempfile::tempdir().unwrap();
    let error = Puller::new(lying.registry(), BlobCache::new(cache.path()))
        .pull(&reference, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DigestMismatch, "{error}");
    let layer = Digest::of(&bytes);
    assert_eq!(
        error.to_string(),
        format!(
            "{reference}: {} sent {HUGE} bytes for the blob {layer} ({}), which its descriptor gives as {} bytes; the registry or something between serves corrupt or substituted content, so it was not used",
            lying.host,
            layout::WASM_LAYER,
            bytes.len()
        )
    );
    assert!(lying.sent() < HUGE, "{} bytes were sent", lying.sent());
    assert!(!BlobCache::new(cache.path()).path(&layer).exists());
}

#[tokio::test]
async fn a_layer_longer_than_its_descriptor_is_read_no_further_than_the_descriptor_says() {
    let (lying, manifest_digest, bytes) = with_layer_answer(|bytes| Answer::Unannounced {
        prefix: bytes,
        total: HUGE,
    })
    .await;
    let reference = lying.reference(&format!("lying@{manifest_digest}"));
    let cache = tempfile::tempdir().unwrap();
    let error = Puller::new(lying.registry(), BlobCache::new(cache.path()))
        .pull(&reference, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DigestMismatch, "{error}");
    let layer = Digest::of(&bytes);
    assert_eq!(
        error.to_string(),
        format!(
            "{reference}: {} sent more than {size} bytes for the blob {layer} ({}), which its descriptor gives as {size} bytes; the registry or something between serves corrupt or substituted content, so it was not used",
            lying.host,
            layout::WASM_LAYER,
            size = bytes.len()
        )
    );
    assert!(lying.sent() < HUGE, "{} bytes were sent", lying.sent());
    assert!(!BlobCache::new(cache.path()).path(&layer).exists());
}

#[tokio::test]
async fn a_true_layer_from_the_same_server_is_pulled() {
    let (lying, manifest_digest, bytes) = with_layer_answer(Answer::Bytes).await;
    let reference = lying.reference(&format!("lying@{manifest_digest}"));
    let cache = tempfile::tempdir().unwrap();
    let pulled = Puller::new(lying.registry(), BlobCache::new(cache.path()))
        .pull(&reference, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(pulled.bytes, bytes);
}
