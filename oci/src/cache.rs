//! Blobs kept on disk by digest: one file per digest, written whole or not at all, checked
//! against its digest whenever it is read.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::digest::Digest;
use crate::error::OciError;

/// A directory of blobs named by their sha256 (`DIR/sha256/HEX`), shared by every pull on a
/// node. A file that does not hash to its name (a disk fault, a hand edit) is removed and
/// fetched again.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("sha256").join(digest.hex())
    }

    /// The blob, if present and intact.
    pub async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, OciError> {
        let path = self.path(digest);
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.error(&path, error)),
        };
        let actual = Digest::of(&bytes);
        if actual != *digest {
            tracing::warn!(
                path = %path.display(),
                %actual,
                expected = %digest,
                "a cached blob does not match its digest; removing it and fetching it again"
            );
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(self.error(&path, error)),
            }
            return Ok(None);
        }
        Ok(Some(Bytes::from(bytes)))
    }

    /// Stores a blob already verified against `digest`: written to a temporary file beside its
    /// place and renamed there, so a reader never sees half of it.
    pub async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), OciError> {
        let path = self.path(digest);
        let cache = self.clone();
        tokio::task::spawn_blocking(move || cache.put_blocking(&path, &bytes))
            .await
            .map_err(|error| OciError::Cache {
                path: self.dir.clone(),
                reason: format!("the write task failed: {error}"),
            })?
    }

    fn put_blocking(&self, path: &Path, bytes: &[u8]) -> Result<(), OciError> {
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent).map_err(|error| self.error(parent, error))?;
        let mut file = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(parent)
            .map_err(|error| self.error(parent, error))?;
        file.write_all(bytes)
            .and_then(|()| file.as_file().sync_all())
            .map_err(|error| self.error(file.path(), error))?;
        file.persist(path)
            .map_err(|error| self.error(path, error.error))?;
        Ok(())
    }

    fn error(&self, path: &Path, error: std::io::Error) -> OciError {
        OciError::Cache {
            path: self.dir.clone(),
            reason: format!("{}: {error}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_reads_back_and_drops_corrupt_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().join("blobs"));
        let bytes = Bytes::from_static(b"\0asm component");
        let digest = Digest::of(&bytes);
        assert_eq!(cache.get(&digest).await.unwrap(), None);
        cache.put(&digest, bytes.clone()).await.unwrap();
        assert_eq!(cache.get(&digest).await.unwrap(), Some(bytes.clone()));
        let leftovers: Vec<_> = std::fs::read_dir(cache.path(&digest).parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(digest.hex())]);

        std::fs::write(cache.path(&digest), b"tampered").unwrap();
        assert_eq!(cache.get(&digest).await.unwrap(), None);
        assert!(!cache.path(&digest).exists());
    }

    #[tokio::test]
    async fn an_unusable_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let cache = BlobCache::new(&file);
        let bytes = Bytes::from_static(b"x");
        let error = cache.put(&Digest::of(&bytes), bytes).await.unwrap_err();
        assert!(matches!(error, OciError::Cache { .. }), "{error}");
        assert!(error.to_string().contains("not-a-dir"), "{error}");
    }
}
