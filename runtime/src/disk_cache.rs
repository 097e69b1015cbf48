//! Precompiled components on disk, keyed by the component's digest and the engine's compatibility
//! hash. An entry is only loaded when its recorded checksum matches: a truncated, corrupted or
//! foreign file is discarded and rebuilt, never handed to the loader.
//!
//! The cache is bounded: after each write, the least recently used entries (by modification
//! time, which a load refreshes) are removed until the cache fits its byte budget again. Writes
//! go to a temporary file that is renamed into place, and the temporary file is removed
//! whenever the write fails; temporary files a crash left behind are removed on open.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::artifact::Digest;
use crate::error::RuntimeError;

/// Bumped when the layout of an entry changes, so older entries are simply never looked at.
const FORMAT: &str = "v1";

/// Prefix of temporary files; a write in progress in another process is younger than
/// [`STALE_TEMPORARY`], so only older ones are cleaned up on open.
const TEMPORARY_PREFIX: &str = ".tmp-";
const STALE_TEMPORARY: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
}

/// A stored entry, and how many older entries were removed to make room for it.
pub struct Stored {
    pub path: PathBuf,
    pub evicted: u64,
}

impl DiskCache {
    /// Opens (creating if needed) the part of `root` that belongs to this exact engine build,
    /// holding at most `max_bytes`.
    pub fn open(root: &Path, engine: &Engine, max_bytes: u64) -> Result<Self, RuntimeError> {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = root.join(format!("{FORMAT}-{:016x}", hasher.finish()));
        std::fs::create_dir_all(&dir).map_err(|error| RuntimeError::Cache {
            path: dir.clone(),
            reason: error.to_string(),
        })?;
        let cache = Self { dir, max_bytes };
        cache.remove_stale_temporaries();
        Ok(cache)
    }

    fn image_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{}.cwasm", digest.hex()))
    }

    fn checksum_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{}.sha256", digest.hex()))
    }

    /// Loads the precompiled image of `digest`, verifying it first; `None` when there is no
    /// usable entry (an unusable one is removed).
    pub fn load(&self, engine: &Engine, digest: &Digest) -> Option<Component> {
        let image = self.image_path(digest);
        let Ok(expected) = std::fs::read_to_string(self.checksum_path(digest)) else {
            return None;
        };
        let actual = match file_sha256(&image) {
            Ok(actual) => actual,
            Err(error) => return self.discard(digest, format!("unreadable image: {error}")),
        };
        if actual != expected.trim() {
            return self.discard(digest, "image does not match its recorded checksum".into());
        }
        // SAFETY: `deserialize_file` trusts the image to be wasmtime output for this engine. The
        // file lives in the directory of this engine's compatibility hash, was written by
        // `store` from `Engine::precompile_component`, and its bytes were just checked against
        // the checksum recorded when it was written; wasmtime additionally checks the version,
        // target and flags in the image's header.
        match unsafe { Component::deserialize_file(engine, &image) } {
            Ok(component) => {
                touch(&image);
                Some(component)
            }
            Err(error) => self.discard(digest, format!("{error:#}")),
        }
    }

    /// Writes an image and its checksum; each file appears whole or not at all (rename), and
    /// the checksum last, so a crash mid-write leaves an entry that `load` ignores.
    /// Then removes the least recently used other entries beyond the byte budget.
    pub fn store(&self, digest: &Digest, image: &[u8]) -> Result<Stored, RuntimeError> {
        let path = self.image_path(digest);
        let cache_error = |error: std::io::Error| RuntimeError::Cache {
            path: path.clone(),
            reason: error.to_string(),
        };
        write_atomically(&path, image).map_err(cache_error)?;
        let checksum = hex::encode(Sha256::digest(image));
        write_atomically(&self.checksum_path(digest), checksum.as_bytes()).map_err(cache_error)?;
        let evicted = self.evict_beyond_budget(digest);
        Ok(Stored { path, evicted })
    }

    /// Removes the least recently used entries other than `keep` until the cache fits its
    /// budget; how many were removed.
    fn evict_beyond_budget(&self, keep: &Digest) -> u64 {
        let Ok(listing) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let keep = keep.hex();
        let mut total = 0u64;
        let mut candidates = Vec::new();
        for entry in listing.flatten() {
            let path = entry.path();
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            total = total.saturating_add(metadata.len());
            if path.extension().is_some_and(|ext| ext == "cwasm")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                && stem != keep
            {
                let used = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                candidates.push((used, metadata.len(), path));
            }
        }
        candidates.sort();
        let mut evicted = 0;
        for (_, size, image) in candidates {
            if total <= self.max_bytes {
                break;
            }
            // The checksum first: an entry without it is never loaded, so a reader racing
            // this sees no entry rather than half of one.
            let checksum = image.with_extension("sha256");
            let checksum_size = std::fs::metadata(&checksum).map_or(0, |m| m.len());
            let _ = std::fs::remove_file(&checksum);
            if std::fs::remove_file(&image).is_ok() {
                total = total.saturating_sub(size + checksum_size);
                evicted += 1;
                tracing::info!(image = %image.display(), bytes = size, "evicted a compiled component from the compile cache");
            }
        }
        evicted
    }

    fn remove_stale_temporaries(&self) {
        let Ok(listing) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in listing.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > STALE_TEMPORARY);
            if stale
                && entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(TEMPORARY_PREFIX)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn discard(&self, digest: &Digest, reason: String) -> Option<Component> {
        tracing::warn!(
            digest = %digest,
            reason,
            "discarded an unusable entry of the compile cache; compiling again"
        );
        let _ = std::fs::remove_file(self.checksum_path(digest));
        let _ = std::fs::remove_file(self.image_path(digest));
        None
    }
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Marks an entry as just used, for the least-recently-used order.
fn touch(path: &Path) {
    let touched = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now()));
    if let Err(error) = touched {
        tracing::debug!(%error, path = %path.display(), "cannot mark a compile cache entry as used");
    }
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place, so `path`
/// appears whole or not at all. The temporary file is removed if any step fails.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temporary = tempfile::Builder::new()
        .prefix(TEMPORARY_PREFIX)
        .tempfile_in(dir)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    // On failure the error holds the temporary file, which is deleted when it drops.
    temporary.persist(path).map_err(|error| error.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    fn temporaries(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(TEMPORARY_PREFIX)
            })
            .collect()
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let root = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(root.path(), &engine(), u64::MAX).unwrap();
        let digest = Digest::of(b"component");
        // A non-empty directory where the image should go: the rename fails after the bytes
        // were written to the temporary file.
        let blocker = cache.image_path(&digest);
        std::fs::create_dir_all(blocker.join("occupied")).unwrap();
        let error = cache.store(&digest, &[7u8; 4096]).err().unwrap();
        assert!(matches!(error, RuntimeError::Cache { .. }), "{error}");
        assert_eq!(temporaries(&cache.dir), Vec::<PathBuf>::new());
        assert!(!cache.checksum_path(&digest).exists());
    }

    #[test]
    fn the_least_recently_used_entries_go_when_the_budget_is_exceeded() {
        let root = tempfile::tempdir().unwrap();
        // Room for two 1000-byte images with their checksums, not three.
        let cache = DiskCache::open(root.path(), &engine(), 2300).unwrap();
        let [a, b, c] = [b"a", b"b", b"c"].map(|name| Digest::of(name));
        let age = |digest: &Digest, seconds: u64| {
            let file = std::fs::File::options()
                .write(true)
                .open(cache.image_path(digest))
                .unwrap();
            file.set_modified(SystemTime::now() - Duration::from_secs(seconds))
                .unwrap();
        };
        assert_eq!(cache.store(&a, &[1; 1000]).unwrap().evicted, 0);
        assert_eq!(cache.store(&b, &[2; 1000]).unwrap().evicted, 0);
        // `a` was used more recently than `b`.
        age(&a, 10);
        age(&b, 100);
        assert_eq!(cache.store(&c, &[3; 1000]).unwrap().evicted, 1);
        assert!(cache.image_path(&a).exists());
        assert!(!cache.image_path(&b).exists());
        assert!(!cache.checksum_path(&b).exists());
        assert!(cache.image_path(&c).exists(), "the new entry always stays");
    }

    #[test]
    fn an_entry_larger_than_the_whole_budget_is_kept_alone() {
        let root = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(root.path(), &engine(), 10).unwrap();
        let [a, b] = [b"a", b"b"].map(|name| Digest::of(name));
        cache.store(&a, &[1; 100]).unwrap();
        assert_eq!(cache.store(&b, &[2; 100]).unwrap().evicted, 1);
        assert!(cache.image_path(&b).exists());
    }

    #[test]
    fn stale_temporary_files_are_removed_on_open() {
        let root = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(root.path(), &engine(), u64::MAX).unwrap();
        let stale = cache.dir.join(format!("{TEMPORARY_PREFIX}crashed"));
        let fresh = cache.dir.join(format!("{TEMPORARY_PREFIX}writing"));
        std::fs::write(&stale, b"x").unwrap();
        std::fs::write(&fresh, b"x").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(SystemTime::now() - 2 * STALE_TEMPORARY)
            .unwrap();
        DiskCache::open(root.path(), &engine(), u64::MAX).unwrap();
        assert!(!stale.exists());
        assert!(fresh.exists(), "another process may still be writing it");
    }
}
