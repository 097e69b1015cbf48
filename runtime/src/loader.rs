//! Turning component bytes into a compiled `Component`, once per digest per process: concurrent
//! requests for the same digest wait for one compile, the disk cache spares the compile across
//! restarts, and at most a configured number of compiles run at once.
//!
//! Compiled components stay in memory while anything holds a [`ComponentLease`] on them (a
//! prepared revision does); the others are kept within a byte budget of compiled image, the
//! least recently used evicted first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use tokio::sync::{OnceCell, Semaphore};
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

/// Counters of how components were obtained and let go, for logs, metrics and tests.
#[derive(Debug, Default)]
pub struct LoaderStats {
    pub compiles: AtomicU64,
    pub disk_hits: AtomicU64,
    pub memory_hits: AtomicU64,
    /// Compiled components dropped from memory to stay within the budget.
    pub memory_evictions: AtomicU64,
    /// Entries removed from the on-disk cache to stay within its budget.
    pub disk_evictions: AtomicU64,
    /// Bytes of compiled image held in memory now, in use or not.
    pub memory_bytes: AtomicU64,
}

/// One digest's compiled component, once it is there.
type Slot = OnceCell<Component>;

/// Keeps a compiled component in memory while held: the loader never evicts it. Held by
/// every prepared component (so by every revision that runs it).
pub struct ComponentLease {
    slot: Option<Arc<Slot>>,
    shared: Weak<Shared>,
}

impl Clone for ComponentLease {
    fn clone(&self) -> Self {
        Self {
            slot: self.slot.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl Drop for ComponentLease {
    fn drop(&mut self) {
        // Let go first, so the component counts as unused when the budget is enforced.
        drop(self.slot.take());
        if let Some(shared) = self.shared.upgrade() {
            shared.evict_beyond_budget();
        }
    }
}

struct Entry {
    slot: Arc<Slot>,
    /// Bytes of compiled image, once compiled.
    cost: u64,
    last_used: u64,
}

struct Memory {
    entries: HashMap<Digest, Entry>,
    clock: u64,
}

struct Shared {
    memory: Mutex<Memory>,
    budget: u64,
    stats: LoaderStats,
}

impl Shared {
    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of `digest` (new if unknown), marked as just used.
    fn slot(&self, digest: Digest) -> Arc<Slot> {
        let mut memory = self.memory();
        memory.clock += 1;
        let now = memory.clock;
        let entry = memory.entries.entry(digest).or_insert_with(|| Entry {
            slot: Arc::default(),
            cost: 0,
            last_used: now,
        });
        entry.last_used = now;
        entry.slot.clone()
    }

    fn record_cost(&self, digest: Digest, slot: &Arc<Slot>, cost: u64) {
        let mut memory = self.memory();
        if let Some(entry) = memory.entries.get_mut(&digest)
            && Arc::ptr_eq(&entry.slot, slot)
            && entry.cost == 0
        {
            entry.cost = cost;
        }
        drop(memory);
        self.evict_beyond_budget();
    }

    /// Drops the least recently used compiled components nobody holds until the rest fit the
    /// budget; components in use are never dropped, even when they alone exceed it.
    fn evict_beyond_budget(&self) {
        let mut memory = self.memory();
        // Forget slots whose load failed or never finished and that nobody waits on.
        memory
            .entries
            .retain(|_, entry| entry.slot.initialized() || Arc::strong_count(&entry.slot) > 1);
        let mut total: u64 = memory.entries.values().map(|entry| entry.cost).sum();
        if total > self.budget {
            let mut unused: Vec<(u64, Digest)> = memory
                .entries
                .iter()
                .filter(|(_, entry)| {
                    entry.slot.initialized() && Arc::strong_count(&entry.slot) == 1
                })
                .map(|(digest, entry)| (entry.last_used, *digest))
                .collect();
            unused.sort();
            for (_, digest) in unused {
                if total <= self.budget {
                    break;
                }
                if let Some(entry) = memory.entries.remove(&digest) {
                    total = total.saturating_sub(entry.cost);
                    self.stats.memory_evictions.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        digest = %digest,
                        bytes = entry.cost,
                        "evicted an unused compiled component from memory"
                    );
                }
            }
        }
        self.stats.memory_bytes.store(total, Ordering::Relaxed);
    }
}

pub struct ComponentLoader {
    engine: Engine,
    disk: Option<DiskCache>,
    shared: Arc<Shared>,
    compiles: Semaphore,
}

/// A loaded component with the lease that keeps it in memory.
pub struct Loaded {
    pub component: Component,
    pub origin: LoadOrigin,
    pub lease: ComponentLease,
}

impl ComponentLoader {
    /// A loader keeping unused compiled components within `budget` bytes and compiling at most
    /// `max_compiles` at once.
    pub fn new(engine: Engine, disk: Option<DiskCache>, budget: u64, max_compiles: usize) -> Self {
        Self {
            engine,
            disk,
            shared: Arc::new(Shared {
                memory: Mutex::new(Memory {
                    entries: HashMap::new(),
                    clock: 0,
                }),
                budget,
                stats: LoaderStats::default(),
            }),
            compiles: Semaphore::new(max_compiles.max(1)),
        }
    }

    pub fn stats(&self) -> &LoaderStats {
        &self.shared.stats
    }

    /// The compiled component of `artifact`: from memory, the disk cache, or compiled now.
    pub async fn load(&self, artifact: &Artifact) -> Result<Loaded, RuntimeError> {
        self.get_or_load(artifact.digest, || self.load_uncached(artifact))
            .await
            .map_err(|failure| match failure {
                LoadFailure::Failed(error) => error,
                LoadFailure::Absent => {
                    RuntimeError::Engine("a component compile produced nothing".into())
                }
            })
    }

    /// The compiled component of `digest` if this process or the disk cache has it, without
    /// its bytes; `None` when it would have to be compiled.
    pub async fn cached(&self, digest: Digest) -> Result<Option<Loaded>, RuntimeError> {
        let Some(disk) = self.disk.clone() else {
            return Ok(self.in_memory(digest));
        };
        let engine = self.engine.clone();
        let found = self
            .get_or_load(digest, || async move {
                let loaded = tokio::task::spawn_blocking(move || disk.load(&engine, &digest))
                    .await
                    .map_err(|error| {
                        LoadFailure::Failed(RuntimeError::Engine(format!(
                            "the cache read task failed: {error}"
                        )))
                    })?;
                loaded
                    .map(|component| (component, LoadOrigin::Disk))
                    .ok_or(LoadFailure::Absent)
            })
            .await;
        match found {
            Ok(loaded) => Ok(Some(loaded)),
            Err(LoadFailure::Absent) => Ok(None),
            Err(LoadFailure::Failed(error)) => Err(error),
        }
    }

    fn in_memory(&self, digest: Digest) -> Option<Loaded> {
        let slot = {
            let memory = self.shared.memory();
            memory.entries.get(&digest)?.slot.clone()
        };
        let component = slot.get()?.clone();
        self.shared.slot(digest);
        self.shared
            .stats
            .memory_hits
            .fetch_add(1, Ordering::Relaxed);
        Some(Loaded {
            component,
            origin: LoadOrigin::Memory,
            lease: self.lease(slot),
        })
    }

    fn lease(&self, slot: Arc<Slot>) -> ComponentLease {
        ComponentLease {
            slot: Some(slot),
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// Runs `load` once per digest among concurrent callers and counts where the component
    /// came from. A failed (or absent) load leaves the slot empty for the next caller.
    async fn get_or_load<F, Fut>(&self, digest: Digest, load: F) -> Result<Loaded, LoadFailure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Component, LoadOrigin), LoadFailure>>,
    {
        let slot = self.shared.slot(digest);
        let mut origin = LoadOrigin::Memory;
        let result = slot
            .get_or_try_init(|| async {
                let (component, first_origin) = load().await?;
                origin = first_origin;
                Ok(component)
            })
            .await;
        let component = match result {
            Ok(component) => component.clone(),
            Err(failure) => {
                drop(slot);
                self.shared.evict_beyond_budget();
                return Err(failure);
            }
        };
        if origin != LoadOrigin::Memory {
            self.shared
                .record_cost(digest, &slot, image_size(&component));
        }
        let counter = match origin {
            LoadOrigin::Memory => &self.shared.stats.memory_hits,
            LoadOrigin::Disk => &self.shared.stats.disk_hits,
            LoadOrigin::Compiled => &self.shared.stats.compiles,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(Loaded {
            component,
            origin,
            lease: self.lease(slot),
        })
    }

    async fn load_uncached(
        &self,
        artifact: &Artifact,
    ) -> Result<(Component, LoadOrigin), LoadFailure> {
        let _permit = self.compiles.acquire().await.map_err(|error| {
            LoadFailure::Failed(RuntimeError::Engine(format!(
                "the compile queue closed: {error}"
            )))
        })?;
        let engine = self.engine.clone();
        let disk = self.disk.clone();
        let artifact = artifact.clone();
        // Compiling is seconds of CPU; keep it off the threads that serve requests.
        let (component, origin, disk_evictions) =
            tokio::task::spawn_blocking(move || load_or_compile(&engine, disk.as_ref(), &artifact))
                .await
                .map_err(|error| RuntimeError::Engine(format!("the compile task failed: {error}")))
                .and_then(|result| result)
                .map_err(LoadFailure::Failed)?;
        self.shared
            .stats
            .disk_evictions
            .fetch_add(disk_evictions, Ordering::Relaxed);
        Ok((component, origin))
    }
}

/// Why a load gave no component: nothing to load from (a cache miss), or a failure.
enum LoadFailure {
    Absent,
    Failed(RuntimeError),
}

/// The bytes of a compiled component's image: what keeping it in memory costs.
fn image_size(component: &Component) -> u64 {
    let range = component.image_range();
    (range.end as usize).saturating_sub(range.start as usize) as u64
}

fn load_or_compile(
    engine: &Engine,
    disk: Option<&DiskCache>,
    artifact: &Artifact,
) -> Result<(Component, LoadOrigin, u64), RuntimeError> {
    let started = Instant::now();
    let digest = artifact.digest.to_string();
    if let Some(component) = disk.and_then(|disk| disk.load(engine, &artifact.digest)) {
        tracing::info!(
            digest = %digest,
            source = artifact.source_name,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "loaded the precompiled component from the compile cache"
        );
        return Ok((component, LoadOrigin::Disk, 0));
    }
    let invalid = |error: wasmtime::Error| RuntimeError::Invalid {
        source_name: artifact.source_name.clone(),
        reason: format!("{error:#}"),
    };
    let mut disk_evictions = 0;
    let component = match disk {
        None => Component::new(engine, &artifact.bytes).map_err(invalid)?,
        Some(disk) => {
            let image = engine
                .precompile_component(&artifact.bytes)
                .map_err(invalid)?;
            match disk.store(&artifact.digest, &image) {
                Ok(stored) => {
                    disk_evictions = stored.evicted;
                    // SAFETY: the image was produced by this engine a moment ago and written by us.
                    unsafe { Component::deserialize_file(engine, &stored.path) }
                }
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
    Ok((component, LoadOrigin::Compiled, disk_evictions))
}
