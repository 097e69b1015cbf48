//! Talking to one registry: resolving tags, fetching manifests and blobs within size limits
//! and verified against their digests, and pushing.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;

use crate::bounded::{BoundedBuffer, Bounds, Overrun, Stop};
use crate::credentials::Credentials;
use crate::digest::Digest;
use crate::error::{Context, OciError, TOO_LARGE_BLOB, TOO_LARGE_MANIFEST, status_error};
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
        let user_agent = concat!("wisp/", env!("CARGO_PKG_VERSION"));
        let setup_failed = |error: String| OciError::Registry {
            reference: reference.to_string(),
            registry: reference.registry().to_owned(),
            answer: format!("nothing: the HTTP client could not be set up ({error})"),
        };
        let config = oci_client::client::ClientConfig {
            protocol: oci_client::client::ClientProtocol::HttpsExcept(
                self.settings.insecure_registries.clone(),
            ),
            platform_resolver: None,
            connect_timeout: Some(self.settings.connect_timeout),
            read_timeout: Some(self.settings.read_timeout),
            user_agent,
            ..Default::default()
        };
        let client = oci_client::Client::try_from(config)
            .map_err(|error| setup_failed(error.to_string()))?;
        // Reads go through a client of wisp's own, so their bounds hold before the bytes
        // arrive (oci-client reads manifests and error answers whole); oci-client still finds
        // the way through the registry's authentication and pushes.
        let http = reqwest_oci::Client::builder()
            .connect_timeout(self.settings.connect_timeout)
            .read_timeout(self.settings.read_timeout)
            .user_agent(user_agent)
            .build()
            .map_err(|error| setup_failed(error.to_string()))?;
        let insecure = self.is_insecure(reference.registry());
        let client_reference = reference.to_client();
        Ok(Session {
            client,
            http,
            auth: credentials.to_client(),
            authorization: tokio::sync::OnceCell::new(),
            credentials: credentials.clone(),
            reference: reference.clone(),
            reference_text: reference.to_string(),
            base_url: format!(
                "{}://{}/v2/{}",
                if insecure { "http" } else { "https" },
                client_reference.resolve_registry(),
                client_reference.repository()
            ),
            insecure,
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

/// How one download is read.
struct Read {
    bounds: Bounds,
    /// Stop at the first bytes when they are not the wasm magic.
    must_be_wasm: bool,
    /// What to do when it is too large.
    advice: &'static str,
}

/// The most of an error answer's body read: enough for the distribution API's error envelope.
const MAX_ERROR_BODY_BYTES: u64 = 64 * 1024;

/// One reference's registry, one set of credentials: tokens are fetched once and reused.
pub struct Session {
    client: oci_client::Client,
    http: reqwest_oci::Client,
    auth: oci_client::secrets::RegistryAuth,
    /// The `Authorization` header of reads, found once per session.
    authorization: tokio::sync::OnceCell<Option<http::HeaderValue>>,
    credentials: Credentials,
    reference: ImageReference,
    reference_text: String,
    /// `SCHEME://REGISTRY/v2/REPOSITORY`.
    base_url: String,
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

    fn digest_mismatch(&self, what: String, expected: Digest, actual: Digest) -> OciError {
        OciError::DigestMismatch {
            reference: self.reference.to_string(),
            registry: self.reference.registry().to_owned(),
            what,
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }

    fn overrun(
        &self,
        what: String,
        limit: u64,
        advice: &'static str,
        overrun: Overrun,
    ) -> OciError {
        match overrun {
            Overrun::TooLarge { size } => OciError::TooLarge {
                reference: self.reference.to_string(),
                what,
                size,
                limit,
                advice,
            },
            Overrun::SizeMismatch { expected, actual } => OciError::SizeMismatch {
                reference: self.reference.to_string(),
                registry: self.reference.registry().to_owned(),
                what,
                expected,
                actual,
            },
        }
    }

    /// The digest of the manifest the reference's tag names: the registry's
    /// `Docker-Content-Digest` on a HEAD, else the digest of the manifest itself.
    pub async fn resolve(&self) -> Result<Digest, OciError> {
        let what = format!("manifest {}", self.tag_or_digest());
        let url = self.manifest_url(self.reference.tag().unwrap_or(crate::DEFAULT_TAG));
        let response = self
            .send(http::Method::HEAD, &url, Some(&manifest_accept()), &what)
            .await?;
        if response.status().is_success()
            && let Some(digest) = response
                .headers()
                .get("docker-content-digest")
                .and_then(|value| value.to_str().ok())
                .and_then(Digest::parse)
        {
            return Ok(digest);
        }
        // A HEAD has no body to say what went wrong; the GET does, and gives the digest too.
        self.manifest(None).await.map(|(_, digest)| digest)
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
        self.manifest_sized(digest, None).await
    }

    /// Like [`Session::manifest`], for a manifest an index's descriptor gives as `size` bytes:
    /// over the limit, it is refused without asking the registry; any other size is refused.
    pub async fn manifest_sized(
        &self,
        digest: Option<Digest>,
        size: Option<u64>,
    ) -> Result<(Bytes, Digest), OciError> {
        let expected = digest.or(self.reference.digest());
        let what = match expected {
            Some(digest) => format!("manifest {digest}"),
            None => format!("manifest {}", self.tag_or_digest()),
        };
        let name = match expected {
            Some(digest) => digest.to_string(),
            None => self
                .reference
                .tag()
                .unwrap_or(crate::DEFAULT_TAG)
                .to_owned(),
        };
        let limit = self.settings.max_manifest_bytes;
        let bounds = Bounds {
            limit,
            expected: size,
        };
        let bytes = self
            .download(
                &self.manifest_url(&name),
                Some(&manifest_accept()),
                Read {
                    bounds,
                    must_be_wasm: false,
                    advice: TOO_LARGE_MANIFEST,
                },
                &what,
            )
            .await?;
        let actual = Digest::of(&bytes);
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(self.digest_mismatch(what, expected, actual));
        }
        Ok((bytes, actual))
    }

    /// The blob `descriptor` names, verified against its digest and size; no more than
    /// `limit` bytes are ever held. With `must_be_wasm`, the download stops at the first bytes
    /// when they are not the wasm magic. Only the digest names what is fetched: a manifest's
    /// `urls` would send the request (and nothing else) to another host, which wisp never
    /// wants.
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
        let bounds = Bounds {
            limit,
            expected: Some(descriptor.size),
        };
        let url = format!("{}/blobs/{expected}", self.base_url);
        let bytes = self
            .download(
                &url,
                None,
                Read {
                    bounds,
                    must_be_wasm,
                    advice: TOO_LARGE_BLOB,
                },
                &what,
            )
            .await
            .map_err(|error| match error {
                OciError::NotWasmComponent { reference, .. } => OciError::NotWasmComponent {
                    reference,
                    found: format!(
                        "its only layer ({}) does not start with the wasm magic bytes",
                        descriptor.media_type
                    ),
                },
                error => error,
            })?;
        let actual = Digest::of(&bytes);
        if actual != expected {
            return Err(self.digest_mismatch(what, expected, actual));
        }
        Ok(bytes)
    }

    fn manifest_url(&self, tag_or_digest: &str) -> String {
        format!("{}/manifests/{tag_or_digest}", self.base_url)
    }

    /// A GET of `url` read within `bounds`: refused by a descriptor's size before asking, by
    /// the answer's `Content-Length` before reading, else stopped at the bound.
    async fn download(
        &self,
        url: &str,
        accept: Option<&str>,
        read: Read,
        what: &str,
    ) -> Result<Bytes, OciError> {
        let Read {
            bounds,
            must_be_wasm,
            advice,
        } = read;
        let limit = bounds.limit;
        let overrun = |overrun| self.overrun(what.to_owned(), limit, advice, overrun);
        bounds.check_descriptor().map_err(overrun)?;
        let mut response = self.send(http::Method::GET, url, accept, what).await?;
        if !response.status().is_success() {
            return Err(self.refusal(response, url, what).await);
        }
        let content_length = response.content_length();
        bounds.check_announced(content_length).map_err(overrun)?;
        let mut buffer = BoundedBuffer::new(bounds, must_be_wasm, content_length);
        let stopped = |stop: Stop| match stop {
            Stop::Overrun(over) => overrun(over),
            Stop::NotWasm => OciError::NotWasmComponent {
                reference: self.reference.to_string(),
                found: format!("the {what} does not start with the wasm magic bytes"),
            },
        };
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.context(what.to_owned()).request_failed(&error))?
        {
            buffer.accept(&chunk).map_err(stopped)?;
        }
        buffer.finish().map(Bytes::from).map_err(stopped)
    }

    /// Sends a read with the session's authorization; transport failures are errors, any
    /// answer is returned.
    async fn send(
        &self,
        method: http::Method,
        url: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<reqwest_oci::Response, OciError> {
        let mut request = self.http.request(method, url);
        if let Some(accept) = accept {
            request = request.header(http::header::ACCEPT, accept);
        }
        if let Some(authorization) = self.authorization(what).await? {
            request = request.header(http::header::AUTHORIZATION, authorization.clone());
        }
        request
            .send()
            .await
            .map_err(|error| self.context(what.to_owned()).request_failed(&error))
    }

    /// The `Authorization` of reads: a bearer token when the registry's challenge sends
    /// clients to a token realm (oci-client trades the credentials for one, scoped to pull
    /// this repository), else the basic credentials, else nothing.
    async fn authorization(&self, what: &str) -> Result<Option<&http::HeaderValue>, OciError> {
        self.authorization
            .get_or_try_init(|| async {
                let token = self
                    .client
                    .auth(
                        &self.reference.to_client(),
                        &self.auth,
                        oci_client::RegistryOperation::Pull,
                    )
                    .await
                    .map_err(|error| self.context(what.to_owned()).classify(error))?;
                let value = match (token, &self.credentials) {
                    (Some(token), _) => Some(format!("Bearer {token}")),
                    (None, Credentials::Basic { username, password }) => Some(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD
                            .encode(format!("{username}:{password}"))
                    )),
                    (None, _) => None,
                };
                value
                    .map(|value| {
                        let mut header = http::HeaderValue::from_str(&value).map_err(|_| {
                            OciError::Unauthorized {
                                reference: self.reference.to_string(),
                                registry: self.reference.registry().to_owned(),
                                repository: self.reference.repository().to_owned(),
                                credentials: self.credentials.describe(),
                                answer: "nothing: the credentials or the token the registry \
                                         gave hold characters an HTTP header cannot carry"
                                    .to_owned(),
                            }
                        })?;
                        header.set_sensitive(true);
                        Ok(header)
                    })
                    .transpose()
            })
            .await
            .map(Option::as_ref)
    }

    /// What an answer with an error status means, from at most the first
    /// `MAX_ERROR_BODY_BYTES` of its body.
    async fn refusal(
        &self,
        mut response: reqwest_oci::Response,
        url: &str,
        what: &str,
    ) -> OciError {
        let status = response.status();
        let mut body = Vec::new();
        while (body.len() as u64) < MAX_ERROR_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        body.truncate(usize::try_from(MAX_ERROR_BODY_BYTES).unwrap_or(usize::MAX));
        self.context(what.to_owned())
            .classify(status_error(status, &body, url))
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

/// The manifest media types wisp reads, for `Accept`.
fn manifest_accept() -> String {
    layout::MANIFEST_TYPES.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
