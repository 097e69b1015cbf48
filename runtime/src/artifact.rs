//! Where a component comes from, and its identity: the sha256 of its bytes.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest as _, Sha256};

use crate::error::RuntimeError;

/// A place a component can be read from: a local file (plain path or `file:` URL) or an
/// `http(s)://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactSource {
    File(PathBuf),
    Url(String),
}

impl ArtifactSource {
    /// Reads a container `image` reference as wisp understands it today.
    pub fn parse(reference: &str) -> Self {
        if let Some(path) = reference.strip_prefix("file://") {
            Self::File(PathBuf::from(path))
        } else if let Some(path) = reference.strip_prefix("file:") {
            Self::File(PathBuf::from(path))
        } else if reference.starts_with("http://") || reference.starts_with("https://") {
            Self::Url(reference.to_owned())
        } else {
            Self::File(PathBuf::from(reference))
        }
    }

    /// Reads the whole component, refusing anything larger than `limit` bytes.
    pub async fn fetch(&self, limit: u64, timeout: Duration) -> Result<Artifact, RuntimeError> {
        let bytes = match self {
            Self::File(path) => read_file(path, limit).await?,
            Self::Url(url) => download(url, limit, timeout).await?,
        };
        Ok(Artifact::new(self.to_string(), bytes))
    }
}

impl fmt::Display for ArtifactSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Url(url) => f.write_str(url),
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
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

async fn read_file(path: &PathBuf, limit: u64) -> Result<Vec<u8>, RuntimeError> {
    let read_error = |error: std::io::Error| RuntimeError::ReadFile {
        path: path.clone(),
        reason: error.to_string(),
    };
    let metadata = tokio::fs::metadata(path).await.map_err(read_error)?;
    if !metadata.is_file() {
        return Err(RuntimeError::ReadFile {
            path: path.clone(),
            reason: "it is not a regular file".into(),
        });
    }
    if metadata.len() > limit {
        return Err(RuntimeError::TooLarge {
            source_name: path.display().to_string(),
            limit,
        });
    }
    tokio::fs::read(path).await.map_err(read_error)
}

async fn download(url: &str, limit: u64, timeout: Duration) -> Result<Vec<u8>, RuntimeError> {
    let failed = |reason: String| RuntimeError::Download {
        url: url.to_owned(),
        reason,
    };
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|error| failed(error.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| failed(error.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("the server answered {status}")));
    }
    let too_large = || RuntimeError::TooLarge {
        source_name: url.to_owned(),
        limit,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(too_large());
    }
    // Read in chunks so a server that lies about (or omits) its length cannot make us hold more
    // than the limit.
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| failed(error.to_string()))?;
        if bytes.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
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
        let error = source
            .fetch(10, Duration::from_secs(1))
            .await
            .err()
            .unwrap();
        assert!(matches!(error, RuntimeError::TooLarge { .. }), "{error}");
        let missing = ArtifactSource::File(dir.path().join("missing.wasm"));
        let error = missing
            .fetch(10, Duration::from_secs(1))
            .await
            .err()
            .unwrap();
        assert!(matches!(error, RuntimeError::ReadFile { .. }), "{error}");
    }
}
