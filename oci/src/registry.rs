//! Talking to one registry: resolving tags, fetching manifests and blobs within size limits
//! and verified against their digests, and pushing.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWrite;

use crate::credentials::Credentials;
use crate::digest::Digest;
use crate::error::{Context, OciError};
use crate::layout::{self, Descriptor};
use crate::reference::ImageReference;

/// The largest component wisp runs unless told otherwise: the runtime's component size cap.
pub const DEFAULT_MAX_LAYER_BYTES: u64 = 512 * 1024 * 1024;
/// The largest manifest read: the distribution registry refuses to store larger ones.
pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// How wisp reaches registries.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// `HOST:PORT` (or `HOST`) of registries reached over plain HTTP, written as the image
    /// references write them; every other registry is reached over HTTPS.
    pub insecure_registries: Vec<String>,
    pub max_manifest_bytes: u64,
    /// The largest layer (component) pulled.
    pub max_layer_bytes: u64,
    pub connect_timeout: Duration,
    /// The longest wait for the next bytes of an answer.
    pub read_timeout: Duration,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            max_layer_bytes: DEFAULT_MAX_LAYER_BYTES,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// A handle on registries with one set of settings. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    settings: Arc<RegistrySettings>,
}

impl Registry {
    pub fn new(settings: RegistrySettings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }

    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    pub fn is_insecure(&self, registry: &str) -> bool {
        self.settings
            .insecure_registries
            .iter()
            .any(|insecure| insecure == registry)
    }

    /// A conversation with `reference`'s registry under `credentials`. oci-client keeps the
    /// first credentials it sees per registry, so every set of credentials gets a client of its
    /// own and no tenant ever borrows another's.
    pub fn session(
        &self,
        reference: &ImageReference,
        credentials: &Credentials,
    ) -> Result<Session, OciError> {
        // reqwest is built without a crypto provider of its own; wisp uses ring everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = oci_client::client::ClientConfig {
            protocol: oci_client::client::ClientProtocol::HttpsExcept(
                self.settings.insecure_registries.clone(),
            ),
            platform_resolver: None,
            connect_timeout: Some(self.settings.connect_timeout),
            read_timeout: Some(self.settings.read_timeout),
            user_agent: concat!("wisp/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let client = oci_client::Client::try_from(config).map_err(|error| OciError::Registry {
            reference: reference.to_string(),
            registry: reference.registry().to_owned(),
            answer: format!("nothing: the HTTP client could not be set up ({error})"),
        })?;
        Ok(Session {
            client,
            auth: credentials.to_client(),
            credentials: credentials.clone(),
            reference: reference.clone(),
            reference_text: reference.to_string(),
            insecure: self.is_insecure(reference.registry()),
            settings: self.settings.clone(),
        })
    }

    /// The digest `reference` names now: its own digest when it has one (nothing is asked),
    /// else the digest of the manifest its tag points to (HEAD, falling back to GET).
    pub async fn resolve(
        &self,
        reference: &ImageReference,
        credentials: &Credentials,
    ) -> Result<Digest, OciError> {
        if let Some(digest) = reference.digest() {
            return Ok(digest);
        }
        self.session(reference, credentials)?.resolve().await
    }
}

/// One reference's registry, one set of credentials: tokens are fetched once and reused.
pub struct Session {
    client: oci_client::Client,
    auth: oci_client::secrets::RegistryAuth,
    credentials: Credentials,
    reference: ImageReference,
    reference_text: String,
    insecure: bool,
    settings: Arc<RegistrySettings>,
}

impl Session {
    pub fn reference(&self) -> &ImageReference {
        &self.reference
    }

    fn context(&self, what: String) -> Context<'_> {
        Context {
            reference: self.reference_text(),
            registry: self.reference.registry(),
            repository: self.reference.repository(),
            credentials: self.credentials.describe(),
            insecure: self.insecure,
            what,
        }
    }

    fn reference_text(&self) -> &str {
        &self.reference_text
    }

    /// The digest of the manifest the reference's tag names.
    pub async fn resolve(&self) -> Result<Digest, OciError> {
        let what = format!("manifest {}", self.tag_or_digest());
        let text = self
            .client
            .fetch_manifest_digest(&self.reference.to_client(), &self.auth)
            .await
            .map_err(|error| self.context(what.clone()).classify(error))?;
        Digest::parse(&text).ok_or_else(|| OciError::Registry {
            reference: self.reference.to_string(),
            registry: self.reference.registry().to_owned(),
            answer: format!("the digest {text:?} for the {what}, which is not a sha256 digest"),
        })
    }

    fn tag_or_digest(&self) -> String {
        match (self.reference.digest(), self.reference.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => format!("for tag {tag:?}"),
            (None, None) => String::new(),
        }
    }

    /// The manifest `digest` (or, with `None`, the one the reference names), verified and
    /// within the manifest size limit.
    pub async fn manifest(&self, digest: Option<Digest>) -> Result<(Bytes, Digest), OciError> {
        let reference = match digest {
            Some(digest) => self.reference.pinned(digest),
            None => self.reference.clone(),
        };
        let what = match digest.or(reference.digest()) {
            Some(digest) => format!("manifest {digest}"),
            None => format!("manifest {}", self.tag_or_digest()),
        };
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&reference.to_client(), &self.auth, &layout::MANIFEST_TYPES)
            .await
            .map_err(|error| self.context(what.clone()).classify(error))?;
        if bytes.len() as u64 > self.settings.max_manifest_bytes {
            return Err(OciError::TooLarge {
                reference: self.reference.to_string(),
                what,
                size: bytes.len().to_string(),
                limit: self.settings.max_manifest_bytes,
            });
        }
        let actual = Digest::of(&bytes);
        if let Some(expected) = reference.digest()
            && expected != actual
        {
            return Err(OciError::DigestMismatch {
                reference: self.reference.to_string(),
                registry: self.reference.registry().to_owned(),
                what,
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok((bytes, actual))
    }

    /// The blob `descriptor` names, verified against its digest; no more than `limit` bytes
    /// are ever held. With `must_be_wasm`, the download stops at the first bytes when they are
    /// not the wasm magic.
    pub async fn blob(
        &self,
        descriptor: &Descriptor,
        limit: u64,
        must_be_wasm: bool,
    ) -> Result<Bytes, OciError> {
        let what = format!("blob {} ({})", descriptor.digest, descriptor.media_type);
        let expected = layout::descriptor_digest(descriptor).ok_or_else(|| OciError::Registry {
            reference: self.reference.to_string(),
            registry: self.reference.registry().to_owned(),
            answer: format!(
                "a manifest naming {:?}, which is not a sha256 digest",
                descriptor.digest
            ),
        })?;
        let too_large = |size: String| OciError::TooLarge {
            reference: self.reference.to_string(),
            what: what.clone(),
            size,
            limit,
        };
        if descriptor.size > limit {
            return Err(too_large(descriptor.size.to_string()));
        }
        // Only the digest goes to oci-client: a manifest's `urls` would send the request (and
        // nothing else) to another host, which wisp never wants.
        let target = oci_client::manifest::OciDescriptor {
            media_type: descriptor.media_type.clone(),
            digest: descriptor.digest.clone(),
            size: i64::try_from(descriptor.size).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let mut sink = CappedSink::new(limit, must_be_wasm, descriptor.size);
        let result = self
            .client
            .pull_blob(&self.reference.to_client(), &target, &mut sink)
            .await;
        if sink.exceeded {
            return Err(too_large(format!("more than {limit}")));
        }
        if sink.not_wasm {
            return Err(OciError::NotWasmComponent {
                reference: self.reference.to_string(),
                found: format!(
                    "its only layer ({}) does not start with the wasm magic bytes",
                    descriptor.media_type
                ),
            });
        }
        result.map_err(|error| self.context(what.clone()).classify(error))?;
        let bytes = Bytes::from(sink.bytes);
        let actual = Digest::of(&bytes);
        if actual != expected {
            return Err(OciError::DigestMismatch {
                reference: self.reference.to_string(),
                registry: self.reference.registry().to_owned(),
                what,
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Uploads a blob unless the repository has it already; returns its digest.
    pub async fn push_blob(&self, bytes: Bytes) -> Result<Digest, OciError> {
        let digest = Digest::of(&bytes);
        let what = format!("blob upload {digest}");
        let client_reference = self.reference.to_client();
        let present = self
            .client
            .blob_exists(&client_reference, &digest.to_string())
            .await
            .map_err(|error| self.context(what.clone()).classify(error))?;
        if !present {
            self.client
                .push_blob(&client_reference, bytes, &digest.to_string())
                .await
                .map_err(|error| self.context(what.clone()).classify(error))?;
        }
        Ok(digest)
    }

    /// Uploads a manifest under the reference's tag (or its digest) and returns the digest of
    /// exactly the bytes sent.
    pub async fn push_manifest(&self, bytes: Bytes, media_type: &str) -> Result<Digest, OciError> {
        let digest = Digest::of(&bytes);
        let content_type = http_header(media_type).ok_or_else(|| OciError::Registry {
            reference: self.reference.to_string(),
            registry: self.reference.registry().to_owned(),
            answer: format!("nothing: {media_type:?} is not a valid media type"),
        })?;
        self.client
            .push_manifest_raw(&self.reference.to_client(), bytes, content_type)
            .await
            .map_err(|error| {
                self.context(format!("manifest upload {digest}"))
                    .classify(error)
            })?;
        Ok(digest)
    }

    /// Publishes an artifact under the reference's tag: both blobs, then the manifest.
    /// Returns the manifest's digest.
    pub async fn push_artifact(
        &self,
        artifact: &crate::component::Artifact,
    ) -> Result<Digest, OciError> {
        self.authorize_push().await?;
        self.push_blob(artifact.config.clone()).await?;
        self.push_blob(artifact.layer.clone()).await?;
        self.push_manifest(artifact.manifest.clone(), layout::OCI_MANIFEST)
            .await
    }

    /// Makes sure the credentials may push before any upload (oci-client asks for a
    /// `pull,push` token when the registry uses tokens).
    pub async fn authorize_push(&self) -> Result<(), OciError> {
        self.client
            .auth(
                &self.reference.to_client(),
                &self.auth,
                oci_client::RegistryOperation::Push,
            )
            .await
            .map(drop)
            .map_err(|error| self.context("push access".to_owned()).classify(error))
    }
}

fn http_header(value: &str) -> Option<http::HeaderValue> {
    http::HeaderValue::from_str(value).ok()
}

/// A buffer that refuses to grow past a limit, and optionally refuses bytes that do not begin
/// with the wasm magic; refusing aborts the download.
struct CappedSink {
    bytes: Vec<u8>,
    limit: u64,
    must_be_wasm: bool,
    exceeded: bool,
    not_wasm: bool,
}

impl CappedSink {
    fn new(limit: u64, must_be_wasm: bool, expected_size: u64) -> Self {
        let capacity = usize::try_from(expected_size.min(limit)).unwrap_or(0);
        Self {
            bytes: Vec::with_capacity(capacity),
            limit,
            must_be_wasm,
            exceeded: false,
            not_wasm: false,
        }
    }

    fn accept(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.bytes.len() as u64 + buf.len() as u64 > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("the blob is over the size limit"));
        }
        self.bytes.extend_from_slice(buf);
        if self.must_be_wasm {
            let seen = self.bytes.len().min(4);
            if self.bytes[..seen] != b"\0asm"[..seen] {
                self.not_wasm = true;
                return Err(std::io::Error::other("the blob is not wasm"));
            }
        }
        Ok(())
    }
}

impl AsyncWrite for CappedSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        Poll::Ready(this.accept(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sink_stops_at_its_limit() {
        let mut sink = CappedSink::new(5, false, 0);
        sink.accept(b"abc").unwrap();
        sink.accept(b"de").unwrap();
        assert!(sink.accept(b"f").is_err());
        assert!(sink.exceeded);
        assert_eq!(sink.bytes, b"abcde");
    }

    #[test]
    fn the_sink_refuses_non_wasm_at_the_first_bytes() {
        let mut sink = CappedSink::new(100, true, 0);
        sink.accept(b"\0a").unwrap();
        sink.accept(b"sm\x0d\0").unwrap();
        assert!(!sink.not_wasm);
        let mut sink = CappedSink::new(100, true, 0);
        assert!(sink.accept(b"\x1f\x8b").is_err());
        assert!(sink.not_wasm);
    }

    #[test]
    fn only_listed_registries_are_insecure() {
        let registry = Registry::new(RegistrySettings {
            insecure_registries: vec!["localhost:5000".into()],
            ..Default::default()
        });
        assert!(registry.is_insecure("localhost:5000"));
        assert!(!registry.is_insecure("localhost:5001"));
        assert!(!registry.is_insecure("ghcr.io"));
    }
}
