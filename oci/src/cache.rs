//! Blobs kept on disk by digest within a size budget: one file per digest, written whole or
//! not at all, checked against its digest whenever it is read, the least recently used
//! removed when a new one would not fit.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;

use crate::digest::Digest;
use crate::error::OciError;

/// The image cache's budget unless told otherwise.
pub const DEFAULT_IMAGE_CACHE_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// A directory of blobs named by their sha256 (`DIR/sha256/HEX`), shared by every pull on a
/// node, holding at most `budget` bytes of them. A file that does not hash to its name (a
/// disk fault, a hand edit) is removed and fetched again.
///
/// When a new blob would not fit, the least recently used ones are removed first: the time of
/// use is the file's modification time, which wisp sets itself on every write and every read
/// (filesystems' access times are coarse or switched off). Blobs held by a pull in progress
/// ([`BlobCache::hold`]) are never removed. A blob larger than the whole budget, or one that
/// fits only by removing blobs in use, is not kept: the pull that fetched it still gets it.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
    budget: u64,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// How many holds each digest has.
    held: Mutex<HashMap<Digest, usize>>,
    /// One store at a time, so two cannot each make room for themselves in the same space.
    storing: Mutex<()>,
}

/// A blob kept from eviction while it lives.
pub(crate) struct Hold {
    digest: Digest,
    shared: Arc<Shared>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut held = lock(&self.shared.held);
        if let Some(count) = held.get_mut(&self.digest) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.digest);
            }
        }
    }
}

/// One blob on disk, as eviction sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    bytes: u64,
    used: SystemTime,
}

impl BlobCache {
    /// A cache with the default budget, [`DEFAULT_IMAGE_CACHE_BYTES`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_budget(dir, DEFAULT_IMAGE_CACHE_BYTES)
    }

    /// A cache holding at most `budget` bytes of blobs.
    pub fn with_budget(dir: impl Into<PathBuf>, budget: u64) -> Self {
        Self {
            dir: dir.into(),
            budget,
            shared: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    fn blobs_dir(&self) -> PathBuf {
        self.dir.join("sha256")
    }

    /// Keeps `digest` from eviction until the hold is dropped.
    pub(crate) fn hold(&self, digest: Digest) -> Hold {
        *lock(&self.shared.held).entry(digest).or_default() += 1;
        Hold {
            digest,
            shared: self.shared.clone(),
        }
    }

    /// The blob, if present and intact; reading it makes it the most recently used.
    pub async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, OciError> {
        let cache = self.clone();
        let digest = *digest;
        self.blocking(move || cache.get_blocking(&digest)).await
    }

    fn get_blocking(&self, digest: &Digest) -> Result<Option<Bytes>, OciError> {
        let path = self.path(digest);
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.error(&path, error)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|error| self.error(&path, error))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            tracing::warn!(
                path = %path.display(),
                %actual,
                expected = %digest,
                "a cached blob does not match its digest; removing it and fetching it again"
            );
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(self.error(&path, error)),
            }
            return Ok(None);
        }
        if let Err(error) = file.set_modified(SystemTime::now()) {
            // Only the eviction order suffers: the blob may go sooner than it should.
            tracing::debug!(path = %path.display(), %error, "cannot mark a cached blob as used");
        }
        Ok(Some(Bytes::from(bytes)))
    }

    /// Stores a blob already verified against `digest`: written to a temporary file beside its
    /// place and renamed there, so a reader never sees half of it, after removing the least
    /// recently used blobs not in use until it fits. A blob that cannot fit is not kept.
    pub async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), OciError> {
        let cache = self.clone();
        let digest = *digest;
        self.blocking(move || cache.put_blocking(&digest, &bytes))
            .await
    }

    fn put_blocking(&self, digest: &Digest, bytes: &[u8]) -> Result<(), OciError> {
        let size = bytes.len() as u64;
        if size > self.budget {
            tracing::warn!(
                %digest,
                size,
                budget = self.budget,
                "a pulled blob is larger than the whole image cache; it is used without being kept (raise --image-cache-size to keep it)"
            );
            return Ok(());
        }
        let _storing = lock(&self.shared.storing);
        let dir = self.blobs_dir();
        std::fs::create_dir_all(&dir).map_err(|error| self.error(&dir, error))?;
        let name = digest.hex();
        let entries: Vec<Entry> = self
            .entries()?
            .into_iter()
            .filter(|entry| entry.name != name)
            .collect();
        let held: Vec<String> = lock(&self.shared.held).keys().map(Digest::hex).collect();
        let Some(evict) = choose_evictions(entries, &held, size, self.budget) else {
            tracing::warn!(
                %digest,
                size,
                budget = self.budget,
                "the image cache is full of blobs in use; a pulled blob is used without being kept (raise --image-cache-size to keep it)"
            );
            return Ok(());
        };
        for entry in evict {
            let path = dir.join(&entry.name);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::debug!(path = %path.display(), bytes = entry.bytes, "evicted from the image cache")
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(self.error(&path, error)),
            }
        }
        let mut file = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(&dir)
            .map_err(|error| self.error(&dir, error))?;
        file.write_all(bytes)
            .and_then(|()| file.as_file().set_modified(SystemTime::now()))
            .and_then(|()| file.as_file().sync_all())
            .map_err(|error| self.error(file.path(), error))?;
        let path = self.path(digest);
        file.persist(&path)
            .map_err(|error| self.error(&path, error.error))?;
        Ok(())
    }

    /// The blobs on disk (half-written temporary files aside).
    fn entries(&self) -> Result<Vec<Entry>, OciError> {
        let dir = self.blobs_dir();
        let listing = std::fs::read_dir(&dir).map_err(|error| self.error(&dir, error))?;
        let mut entries = Vec::new();
        for item in listing {
            let item = item.map_err(|error| self.error(&dir, error))?;
            let Ok(name) = item.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let metadata = match item.metadata() {
                Ok(metadata) if metadata.is_file() => metadata,
                Ok(_) => continue,
                // Removed meanwhile (by another process sharing the directory).
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(self.error(&item.path(), error)),
            };
            entries.push(Entry {
                name,
                bytes: metadata.len(),
                used: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        Ok(entries)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, OciError> + Send + 'static,
    ) -> Result<T, OciError> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| OciError::Cache {
                path: self.dir.clone(),
                reason: format!("the disk task failed: {error}"),
            })?
    }

    fn error(&self, path: &Path, error: std::io::Error) -> OciError {
        OciError::Cache {
            path: self.dir.clone(),
            reason: format!("{}: {error}", path.display()),
        }
    }
}

/// Which entries to remove, least recently used first, so that `incoming` more bytes fit in
/// `budget`; entries named in `held` are never chosen. `None` when even removing every
/// entry not held would not make room.
fn choose_evictions(
    mut entries: Vec<Entry>,
    held: &[String],
    incoming: u64,
    budget: u64,
) -> Option<Vec<Entry>> {
    let mut total: u64 = entries.iter().map(|entry| entry.bytes).sum();
    let mut evict = Vec::new();
    entries.sort_by(|a, b| a.used.cmp(&b.used).then_with(|| a.name.cmp(&b.name)));
    let mut candidates = entries
        .into_iter()
        .filter(|entry| !held.contains(&entry.name));
    while total.saturating_add(incoming) > budget {
        let entry = candidates.next()?;
        total -= entry.bytes;
        evict.push(entry);
    }
    Some(evict)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update leaves the map consistent; a panic elsewhere cannot corrupt it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn blob(label: &str, size: usize) -> (Digest, Bytes) {
        let mut bytes = label.as_bytes().to_vec();
        bytes.resize(size, b'.');
        let bytes = Bytes::from(bytes);
        (Digest::of(&bytes), bytes)
    }

    fn kept(cache: &BlobCache, digests: &[Digest]) -> Vec<bool> {
        digests
            .iter()
            .map(|digest| cache.path(digest).exists())
            .collect()
    }

    fn stored_bytes(cache: &BlobCache) -> u64 {
        cache
            .entries()
            .unwrap()
            .iter()
            .map(|entry| entry.bytes)
            .sum()
    }

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

    #[tokio::test]
    async fn the_least_recently_used_blob_goes_first_and_a_read_counts_as_use() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::with_budget(dir.path(), 300);
        let (a, b, c, d, e) = (
            blob("a", 100),
            blob("b", 100),
            blob("c", 100),
            blob("d", 100),
            blob("e", 100),
        );
        for (digest, bytes) in [&a, &b, &c] {
            cache.put(digest, bytes.clone()).await.unwrap();
        }
        // a was written first, but read last: b is now the least recently used.
        assert_eq!(cache.get(&a.0).await.unwrap(), Some(a.1.clone()));
        cache.put(&d.0, d.1.clone()).await.unwrap();
        assert_eq!(
            kept(&cache, &[a.0, b.0, c.0, d.0]),
            [true, false, true, true]
        );
        cache.put(&e.0, e.1.clone()).await.unwrap();
        assert_eq!(
            kept(&cache, &[a.0, b.0, c.0, d.0, e.0]),
            [true, false, false, true, true]
        );
        assert_eq!(cache.get(&b.0).await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_budget_holds_however_many_blobs_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::with_budget(dir.path(), 1000);
        let mut last = Vec::new();
        for index in 0..40 {
            let (digest, bytes) = blob(&format!("blob {index}"), 90 + index * 7);
            cache.put(&digest, bytes.clone()).await.unwrap();
            assert!(stored_bytes(&cache) <= 1000, "after {index}");
            assert_eq!(cache.get(&digest).await.unwrap(), Some(bytes));
            last.push(digest);
        }
        // The newest always fits, and so does the one before it (2 * 363 <= 1000).
        assert!(cache.path(&last[39]).exists() && cache.path(&last[38]).exists());
        assert!(!cache.path(&last[0]).exists());
    }

    #[tokio::test]
    async fn blobs_in_use_are_never_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::with_budget(dir.path(), 200);
        let (a, b, c, d) = (
            blob("a", 100),
            blob("b", 100),
            blob("c", 100),
            blob("d", 100),
        );
        cache.put(&a.0, a.1.clone()).await.unwrap();
        cache.put(&b.0, b.1.clone()).await.unwrap();
        let hold_a = cache.hold(a.0);
        cache.put(&c.0, c.1.clone()).await.unwrap();
        assert_eq!(kept(&cache, &[a.0, b.0, c.0]), [true, false, true]);

        // Only blobs in use are left to evict: the new one is not kept.
        let hold_c = cache.hold(c.0);
        cache.put(&d.0, d.1.clone()).await.unwrap();
        assert_eq!(kept(&cache, &[a.0, c.0, d.0]), [true, true, false]);

        drop(hold_a);
        drop(hold_c);
        cache.put(&d.0, d.1.clone()).await.unwrap();
        assert_eq!(kept(&cache, &[a.0, c.0, d.0]), [false, true, true]);
    }

    #[tokio::test]
    async fn a_blob_larger_than_the_budget_is_not_kept_and_evicts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::with_budget(dir.path(), 150);
        let (a, huge) = (blob("a", 100), blob("huge", 151));
        cache.put(&a.0, a.1.clone()).await.unwrap();
        cache.put(&huge.0, huge.1.clone()).await.unwrap();
        assert_eq!(kept(&cache, &[a.0, huge.0]), [true, false]);
        assert_eq!(cache.get(&huge.0).await.unwrap(), None);
    }

    #[test]
    fn evictions_are_chosen_oldest_first_skipping_held_ones() {
        let at = |seconds| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        let entry = |name: &str, bytes, used| Entry {
            name: name.to_owned(),
            bytes,
            used: at(used),
        };
        let entries = vec![
            entry("new", 10, 30),
            entry("old", 10, 10),
            entry("middle", 10, 20),
        ];
        let names = |chosen: Option<Vec<Entry>>| {
            chosen.map(|chosen| chosen.into_iter().map(|e| e.name).collect::<Vec<_>>())
        };
        assert_eq!(
            names(choose_evictions(entries.clone(), &[], 10, 40)),
            Some(vec![])
        );
        assert_eq!(
            names(choose_evictions(entries.clone(), &[], 15, 40)),
            Some(vec!["old".to_owned()])
        );
        assert_eq!(
            names(choose_evictions(
                entries.clone(),
                &["old".to_owned()],
                15,
                40
            )),
            Some(vec!["middle".to_owned()])
        );
        assert_eq!(
            names(choose_evictions(entries.clone(), &[], 30, 40)),
            Some(vec!["old".to_owned(), "middle".to_owned()])
        );
        assert_eq!(
            names(choose_evictions(entries, &["new".to_owned()], 35, 40)),
            None
        );
    }
}
