//! Where a component comes from, and its identity: the sha256 of its bytes.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::download::{download, url_host};
use crate::error::RuntimeError;
use crate::source_policy::{Refusal, SourcePolicy};

/// A place a component can be read from: a local file (plain path or `file:` URL), an
/// `http(s)://` URL, or an image in an OCI registry (`REGISTRY/REPO[:TAG][@sha256:DIGEST]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactSource {
    File(PathBuf),
    Url(String),
    /// An image reference as written; parsed when used, so a malformed one fails with its
    /// reason instead of being read as a path.
    Oci(String),
}

impl ArtifactSource {
    /// Reads a container `image`: `file:` and `http(s)://` URLs, registry references (the first
    /// path component is a registry: it has a `.` or a `:port`, or is `localhost`, as docker
    /// reads them; see [`wisp_oci::classify`]), and paths for everything else.
    pub fn parse(reference: &str) -> Self {
        if wisp_oci::classify(reference) == wisp_oci::ImageSource::Registry {
            Self::Oci(reference.to_owned())
        } else if let Some(path) = reference.strip_prefix("file://") {
            Self::File(PathBuf::from(path))
        } else if let Some(path) = reference.strip_prefix("file:") {
            Self::File(PathBuf::from(path))
        } else if reference.starts_with("http://") || reference.starts_with("https://") {
            Self::Url(reference.to_owned())
        } else {
            Self::File(PathBuf::from(reference))
        }
    }

    /// Reads the whole component as `policy` allows, refusing anything larger than `limit`
    /// bytes. Registry images come through `puller` (its own size limit applies) with
    /// `credentials` for their registry, a tag resolved to its digest first.
    pub async fn fetch(
        &self,
        policy: &SourcePolicy,
        puller: &wisp_oci::Puller,
        credentials: &wisp_oci::Credentials,
        limit: u64,
        timeout: Duration,
    ) -> Result<Artifact, RuntimeError> {
        let bytes: bytes::Bytes = match self {
            Self::File(path) => read_file(path, policy, limit).await?.into(),
            Self::Url(url) => download(url, policy, limit, timeout).await?.into(),
            Self::Oci(reference) => {
                self.admit(policy)?;
                pull(reference, puller, credentials, timeout).await?
            }
        };
        Ok(Artifact::new(self.to_string(), bytes))
    }

    /// The policy's verdict on the source as written, without touching the filesystem or the
    /// network: what may be checked before using a compile of it kept from earlier.
    pub fn admit(&self, policy: &SourcePolicy) -> Result<(), RuntimeError> {
        let refused = |refusal: Refusal| RuntimeError::NotAllowed {
            source_name: self.to_string(),
            refusal,
        };
        match self {
            Self::File(path) => policy.place_file(path).map(drop).map_err(refused),
            Self::Url(url) => {
                let (host, port) = url_host(url)?;
                policy.check_host(&host, port).map_err(refused)
            }
            // Any registry, as on Kubernetes; but a loopback, link-local or private address
            // written into the reference only where private networks are allowed. (A name that
            // resolves to one is not caught here: oci-client resolves names itself.)
            Self::Oci(text) => {
                let reference = wisp_oci::ImageReference::parse(text)
                    .map_err(|error| RuntimeError::Pull(Box::new(error.into())))?;
                let host = registry_host(reference.registry());
                let address = if host.eq_ignore_ascii_case("localhost") {
                    Some(std::net::IpAddr::from([127, 0, 0, 1]))
                } else {
                    host.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .ok()
                };
                match address {
                    Some(address) => policy.check_address(host, address).map_err(refused),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The host part of `HOST[:PORT]`.
fn registry_host(registry: &str) -> &str {
    match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    }
}

/// Pulls a registry image: its tag resolved to a digest now, then the component that digest
/// names (from the blob cache when it is there), with `credentials`, within `timeout`.
async fn pull(
    text: &str,
    puller: &wisp_oci::Puller,
    credentials: &wisp_oci::Credentials,
    timeout: Duration,
) -> Result<bytes::Bytes, RuntimeError> {
    let failed = |error: wisp_oci::OciError| RuntimeError::Pull(Box::new(error));
    let reference = wisp_oci::ImageReference::parse(text).map_err(|error| failed(error.into()))?;
    let work = async {
        let digest = puller
            .registry()
            .resolve(&reference, credentials)
            .await
            .map_err(failed)?;
        let pulled = puller
            .pull(&reference.pinned(digest), credentials)
            .await
            .map_err(failed)?;
        tracing::info!(
            image = %reference,
            digest = %pulled.reference_digest,
            layer = %pulled.layer_digest,
            "pulled a component"
        );
        Ok(pulled.bytes)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(failed(wisp_oci::OciError::Unreachable {
            reference: reference.to_string(),
            registry: reference.registry().to_owned(),
            scheme: if puller.registry().is_insecure(reference.registry()) {
                "plain HTTP"
            } else {
                "HTTPS"
            },
            cause: format!("the pull did not finish within {}s", timeout.as_secs()),
            hint: "",
        })),
    }
}

impl fmt::Display for ArtifactSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Url(url) | Self::Oci(url) => f.write_str(url),
        }
    }
}

/// A component's bytes with the name it was loaded under and its digest.
#[derive(Clone)]
pub struct Artifact {
    pub source_name: String,
    pub digest: Digest,
    pub bytes: bytes::Bytes,
}

impl Artifact {
    pub fn new(source_name: String, bytes: impl Into<bytes::Bytes>) -> Self {
        let bytes = bytes.into();
        let digest = Digest::of(&bytes);
        Self {
            source_name,
            digest,
            bytes,
        }
    }
}

/// The sha256 of a component's bytes, shown as `sha256:<hex>` like an OCI digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads `sha256:<64 hex digits>`, as [`Digest`] displays itself.
    pub fn parse(text: &str) -> Option<Self> {
        let hex_digits = text.strip_prefix("sha256:")?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

async fn read_file(
    path: &Path,
    policy: &SourcePolicy,
    limit: u64,
) -> Result<Vec<u8>, RuntimeError> {
    let placed = policy
        .place_file(path)
        .map_err(|refusal| RuntimeError::NotAllowed {
            source_name: path.display().to_string(),
            refusal,
        })?;
    let path = path.to_path_buf();
    let policy = policy.clone();
    // Opening beneath a directory handle is synchronous; keep it off the request threads.
    tokio::task::spawn_blocking(move || read_file_blocking(&path, placed, &policy, limit))
        .await
        .map_err(|error| RuntimeError::Engine(format!("the file read task failed: {error}")))?
}

fn read_file_blocking(
    path: &Path,
    placed: Option<(PathBuf, PathBuf)>,
    policy: &SourcePolicy,
    limit: u64,
) -> Result<Vec<u8>, RuntimeError> {
    let read_error = |error: std::io::Error| RuntimeError::ReadFile {
        path: path.to_path_buf(),
        reason: error.to_string(),
    };
    let file = match placed {
        None => std::fs::File::open(path).map_err(read_error)?,
        Some((directory, beneath)) => open_beneath(&directory, &beneath).map_err(|error| {
            if is_escape(&error) {
                RuntimeError::NotAllowed {
                    source_name: path.display().to_string(),
                    refusal: policy.escape(),
                }
            } else {
                read_error(error)
            }
        })?,
    };
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(RuntimeError::ReadFile {
            path: path.to_path_buf(),
            reason: "it is not a regular file".into(),
        });
    }
    let too_large = || RuntimeError::TooLarge {
        source_name: path.display().to_string(),
        limit,
    };
    if metadata.len() > limit {
        return Err(too_large());
    }
    // The file may grow after the check: never read more than the limit allows.
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Opens `beneath` inside `directory` so that resolving it can never leave the directory —
/// not through `..`, not through a symlink (the kernel's `RESOLVE_BENEATH` where it has it).
fn open_beneath(directory: &Path, beneath: &Path) -> std::io::Result<std::fs::File> {
    let base =
        cap_primitives::fs::open_ambient_dir(directory, cap_primitives::ambient_authority())?;
    let mut options = cap_primitives::fs::OpenOptions::new();
    options.read(true);
    cap_primitives::fs::open(&base, beneath, &options)
}

/// Whether opening failed because the path led out of its directory: cap-primitives reports
/// that as a permission error of its own making, never one from the operating system.
fn is_escape(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::PermissionDenied && error.raw_os_error().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_file_urls_and_http_urls() {
        assert_eq!(
            ArtifactSource::parse("/a/b.wasm"),
            ArtifactSource::File("/a/b.wasm".into())
        );
        assert_eq!(
            ArtifactSource::parse("file:///a/b.wasm"),
            ArtifactSource::File("/a/b.wasm".into())
        );
        assert_eq!(
            ArtifactSource::parse("file:rel/b.wasm"),
            ArtifactSource::File("rel/b.wasm".into())
        );
        assert_eq!(
            ArtifactSource::parse("https://example.test/x.wasm"),
            ArtifactSource::Url("https://example.test/x.wasm".into())
        );
        assert_eq!(
            ArtifactSource::parse("localhost:5000/hello:v1"),
            ArtifactSource::Oci("localhost:5000/hello:v1".into())
        );
        assert_eq!(
            ArtifactSource::parse("ghcr.io/team/hello.wasm"),
            ArtifactSource::File("ghcr.io/team/hello.wasm".into())
        );
        assert_eq!(
            ArtifactSource::parse("samples/hello"),
            ArtifactSource::File("samples/hello".into())
        );
    }

    #[test]
    fn registries_on_private_addresses_need_private_networks() {
        let refused = |image: &str| {
            matches!(
                ArtifactSource::parse(image).admit(&SourcePolicy::default()),
                Err(RuntimeError::NotAllowed { .. })
            )
        };
        assert!(refused("localhost:5000/hello:v1"));
        assert!(refused("127.0.0.1:5000/hello:v1"));
        assert!(refused("10.1.2.3/hello:v1"));
        assert!(!refused("ghcr.io/team/hello:v1"));
        let trusting = SourcePolicy::trusting();
        assert!(
            ArtifactSource::parse("localhost:5000/hello:v1")
                .admit(&trusting)
                .is_ok()
        );
        let error = ArtifactSource::parse("ghcr.io/Team/hello:v1")
            .admit(&trusting)
            .unwrap_err();
        assert!(
            error.to_string().contains("is not an image reference"),
            "{error}"
        );
    }

    #[test]
    fn digests_read_back_as_they_display() {
        let digest = Digest::of(b"x");
        assert_eq!(Digest::parse(&digest.to_string()), Some(digest));
        assert_eq!(Digest::parse("sha256:zz"), None);
        assert_eq!(Digest::parse(&digest.hex()), None);
    }

    #[test]
    fn digest_is_the_sha256_of_the_bytes() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[tokio::test]
    async fn refuses_files_over_the_limit_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.wasm");
        std::fs::write(&path, vec![0u8; 100]).unwrap();
        let source = ArtifactSource::File(path);
        let puller = wisp_oci::Puller::new(
            wisp_oci::Registry::default(),
            wisp_oci::BlobCache::new(dir.path().join("oci")),
        );
        let error = source
            .fetch(
                &SourcePolicy::default(),
                &puller,
                &wisp_oci::Credentials::Anonymous,
                10,
                Duration::from_secs(1),
            )
            .await
            .err()
            .unwrap();
        assert!(matches!(error, RuntimeError::TooLarge { .. }), "{error}");
        let missing = ArtifactSource::File(dir.path().join("missing.wasm"));
        let error = missing
            .fetch(
                &SourcePolicy::default(),
                &puller,
                &wisp_oci::Credentials::Anonymous,
                10,
                Duration::from_secs(1),
            )
            .await
            .err()
            .unwrap();
        assert!(matches!(error, RuntimeError::ReadFile { .. }), "{error}");
    }
}
