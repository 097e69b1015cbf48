//! Precompiled components on disk, keyed by the component's digest and the engine's compatibility
//! hash. An entry is only loaded when its recorded checksum matches: a truncated, corrupted or
//! foreign file is discarded and rebuilt, never handed to the loader.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::artifact::Digest;
use crate::error::RuntimeError;

/// Bumped when the layout of an entry changes, so older entries are simply never looked at.
const FORMAT: &str = "v1";

#[derive(Clone)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// Opens (creating if needed) the part of `root` that belongs to this exact engine build.
    pub fn open(root: &Path, engine: &Engine) -> Result<Self, RuntimeError> {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = root.join(format!("{FORMAT}-{:016x}", hasher.finish()));
        std::fs::create_dir_all(&dir).map_err(|error| RuntimeError::Cache {
            path: dir.clone(),
            reason: error.to_string(),
        })?;
        Ok(Self { dir })
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
            Ok(component) => Some(component),
            Err(error) => self.discard(digest, format!("{error:#}")),
        }
    }

    /// Writes an image and its checksum; each file appears whole or not at all (rename), and
    /// the checksum last, so a crash mid-write leaves an entry that `load` ignores.
    pub fn store(&self, digest: &Digest, image: &[u8]) -> Result<PathBuf, RuntimeError> {
        let path = self.image_path(digest);
        let cache_error = |error: std::io::Error| RuntimeError::Cache {
            path: path.clone(),
            reason: error.to_string(),
        };
        write_atomically(&path, image).map_err(cache_error)?;
        let checksum = hex::encode(Sha256::digest(image));
        write_atomically(&self.checksum_path(digest), checksum.as_bytes()).map_err(cache_error)?;
        Ok(path)
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

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile_in(dir)?;
    temp.1.write_all(bytes)?;
    temp.1.sync_all()?;
    std::fs::rename(&temp.0, path)
}

/// A uniquely named file next to `path`'s final place, so the rename is atomic.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        ".tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}
