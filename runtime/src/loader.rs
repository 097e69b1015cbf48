//! Turning component bytes into a compiled `Component`, once per digest per process: concurrent
//! requests for the same digest wait for one compile, and the disk cache spares the compile
//! across restarts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::OnceCell;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::artifact::{Artifact, Digest};
use crate::disk_cache::DiskCache;
use crate::error::RuntimeError;

/// Where a component came from when it was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOrigin {
    /// Already compiled in this process.
    Memory,
    /// Read from the on-disk cache: no compile.
    Disk,
    /// Compiled now.
    Compiled,
}

/// Counters of how components were obtained, for logs, metrics and tests.
#[derive(Debug, Default)]
pub struct LoaderStats {
    pub compiles: AtomicU64,
    pub disk_hits: AtomicU64,
    pub memory_hits: AtomicU64,
}

pub struct ComponentLoader {
    engine: Engine,
    disk: Option<DiskCache>,
    loaded: Mutex<HashMap<Digest, Arc<OnceCell<Component>>>>,
    stats: LoaderStats,
}

impl ComponentLoader {
    pub fn new(engine: Engine, disk: Option<DiskCache>) -> Self {
        Self {
            engine,
            disk,
            loaded: Mutex::new(HashMap::new()),
            stats: LoaderStats::default(),
        }
    }

    pub fn stats(&self) -> &LoaderStats {
        &self.stats
    }

    pub async fn load(&self, artifact: &Artifact) -> Result<(Component, LoadOrigin), RuntimeError> {
        let cell = {
            let mut loaded = self
                .loaded
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            loaded.entry(artifact.digest).or_default().clone()
        };
        let mut origin = LoadOrigin::Memory;
        let component = cell
            .get_or_try_init(|| async {
                let (component, first_origin) = self.load_uncached(artifact).await?;
                origin = first_origin;
                Ok::<_, RuntimeError>(component)
            })
            .await?
            .clone();
        let counter = match origin {
            LoadOrigin::Memory => &self.stats.memory_hits,
            LoadOrigin::Disk => &self.stats.disk_hits,
            LoadOrigin::Compiled => &self.stats.compiles,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok((component, origin))
    }

    async fn load_uncached(
        &self,
        artifact: &Artifact,
    ) -> Result<(Component, LoadOrigin), RuntimeError> {
        let engine = self.engine.clone();
        let disk = self.disk.clone();
        let artifact = artifact.clone();
        // Compiling is seconds of CPU; keep it off the threads that serve requests.
        tokio::task::spawn_blocking(move || load_or_compile(&engine, disk.as_ref(), &artifact))
            .await
            .map_err(|error| RuntimeError::Engine(format!("the compile task failed: {error}")))?
    }
}

fn load_or_compile(
    engine: &Engine,
    disk: Option<&DiskCache>,
    artifact: &Artifact,
) -> Result<(Component, LoadOrigin), RuntimeError> {
    let started = Instant::now();
    let digest = artifact.digest.to_string();
    if let Some(component) = disk.and_then(|disk| disk.load(engine, &artifact.digest)) {
        tracing::info!(
            digest = %digest,
            source = artifact.source_name,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "loaded the precompiled component from the compile cache"
        );
        return Ok((component, LoadOrigin::Disk));
    }
    let invalid = |error: wasmtime::Error| RuntimeError::Invalid {
        source_name: artifact.source_name.clone(),
        reason: format!("{error:#}"),
    };
    let component = match disk {
        None => Component::new(engine, &artifact.bytes).map_err(invalid)?,
        Some(disk) => {
            let image = engine
                .precompile_component(&artifact.bytes)
                .map_err(invalid)?;
            match disk.store(&artifact.digest, &image) {
                // SAFETY: the image was produced by this engine a moment ago and written by us.
                Ok(path) => unsafe { Component::deserialize_file(engine, &path) },
                Err(error) => {
                    tracing::warn!(%error, "cannot write the compile cache; keeping the component in memory only");
                    // SAFETY: the image was produced by this engine a moment ago.
                    unsafe { Component::deserialize(engine, &image) }
                }
            }
            .map_err(|error| RuntimeError::Engine(format!("{error:#}")))?
        }
    };
    tracing::info!(
        digest = %digest,
        source = artifact.source_name,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "compiled the component"
    );
    Ok((component, LoadOrigin::Compiled))
}
