//! The runtime of one node: the engine, the compile cache and the linker, shared by every
//! component and replica the node runs (and the whole-prefix engine, for the components that
//! need it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::admission::InstanceSlots;
use crate::artifact::{Artifact, ArtifactSource, Digest};
use crate::config::{MemoryReset, ReplicaIdentity, ReplicaLimits, RuntimeConfig};
use crate::cpu_share::CpuShares;
use crate::disk_cache::DiskCache;
use crate::engine::{AllocatorKind, EpochTicker, build_engine, build_pooled_engine};
use crate::error::RuntimeError;
use crate::host::{Host, proxy_linker};
use crate::inspect::{WasmKind, classify};
use crate::loader::{ComponentLease, ComponentLoader, LoadOrigin, Loaded, LoaderStats};
use crate::memory_reset::{ResetChoice, ResetState, WholePrefixPre};
use crate::replica::Replica;
use crate::world::{Linked, World};

/// A node's runtime. Cheap to clone; all clones share its engines.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    allocator: AllocatorKind,
    linker: Linker<Host>,
    loader: ComponentLoader,
    fetches: tokio::sync::Semaphore,
    config: RuntimeConfig,
    instance_slots: Arc<InstanceSlots>,
    cpu_shares: CpuShares,
    /// Registry images, their blobs kept by digest under the cache directory (`oci/`), or in a
    /// temporary directory removed with the runtime when there is none.
    puller: wisp_oci::Puller,
    _blob_dir: Option<tempfile::TempDir>,
    _ticker: EpochTicker,
    /// The second engine, whose slots are rewritten whole, built when a component first needs
    /// it (`None` when its instance pool could not be reserved).
    whole_prefix: OnceLock<Option<WholePrefixEngine>>,
    /// Each prepared component's slot-reset choice, by digest, while a revision runs it.
    reset_choices: Mutex<HashMap<Digest, Weak<ResetChoice>>>,
}

/// An engine whose pool slots are reset by rewriting their first `keep_resident` bytes whole,
/// with its own linker and epoch ticker, for the components that write all over a large heap.
struct WholePrefixEngine {
    engine: Engine,
    linker: Linker<Host>,
    _ticker: EpochTicker,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let (engine, allocator) = build_engine(&config)?;
        let disk = match &config.cache_dir {
            Some(dir) => Some(DiskCache::open(dir, &engine, config.cache_max_bytes)?),
            None => None,
        };
        let linker = proxy_linker(&engine)?;
        let (blob_dir, temporary_blob_dir) = match &config.cache_dir {
            Some(dir) => (dir.join("oci"), None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("wisp-oci-")
                    .tempdir()
                    .map_err(|error| RuntimeError::Cache {
                        path: std::env::temp_dir(),
                        reason: format!("cannot create a directory for pulled images: {error}"),
                    })?;
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        let puller = wisp_oci::Puller::new(
            wisp_oci::Registry::new(wisp_oci::RegistrySettings {
                insecure_registries: config.insecure_registries.clone(),
                max_layer_bytes: config.max_component_bytes,
                ..Default::default()
            }),
            wisp_oci::BlobCache::with_budget(blob_dir, config.image_cache_max_bytes),
        );
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick);
        Ok(Self {
            inner: Arc::new(Inner {
                loader: ComponentLoader::new(
                    engine.clone(),
                    disk,
                    config.compiled_memory_budget,
                    config.max_concurrent_compiles,
                ),
                fetches: tokio::sync::Semaphore::new(config.max_concurrent_fetches.max(1)),
                allocator,
                linker,
                instance_slots: InstanceSlots::new(config.max_instances),
                cpu_shares: CpuShares::new(config.guest_threads),
                puller,
                _blob_dir: temporary_blob_dir,
                config,
                _ticker: ticker,
                whole_prefix: OnceLock::new(),
                reset_choices: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn allocator(&self) -> AllocatorKind {
        self.inner.allocator
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The node's instance slots: how many instances run now, of how many.
    pub fn instance_slots(&self) -> &InstanceSlots {
        &self.inner.instance_slots
    }

    pub fn loader_stats(&self) -> &LoaderStats {
        self.inner.loader.stats()
    }

    /// Fetches a component as the node's source policy allows, checks it, compiles it (or
    /// finds it compiled) and links it.
    pub async fn prepare(
        &self,
        source: &ArtifactSource,
    ) -> Result<PreparedComponent, RuntimeError> {
        self.prepare_recorded(source, None, &wisp_oci::Credentials::Anonymous)
            .await
    }

    /// Like [`Runtime::prepare`] for a revision that recorded the digest of the bytes it was
    /// created with: it runs exactly those bytes. When their compile is in memory or in the
    /// compile cache it is used without reading the source again (the source need not even
    /// exist any more; the policy's verdict on its name still applies). Otherwise the source is
    /// read, and bytes with another digest are refused with [`RuntimeError::SourceChanged`].
    /// A registry image is pulled with `credentials` (a revision's imagePullSecrets).
    pub async fn prepare_recorded(
        &self,
        source: &ArtifactSource,
        recorded: Option<Digest>,
        credentials: &wisp_oci::Credentials,
    ) -> Result<PreparedComponent, RuntimeError> {
        let config = &self.inner.config;
        if let Some(expected) = recorded {
            source.admit(&config.sources)?;
            if let Some(loaded) = self.inner.loader.cached(expected).await? {
                return self.finish(loaded, expected, source.to_string());
            }
        }
        let artifact = {
            let _permit = self.inner.fetches.acquire().await.map_err(|error| {
                RuntimeError::Engine(format!("the fetch queue closed: {error}"))
            })?;
            source
                .fetch(
                    &config.sources,
                    &self.inner.puller,
                    credentials,
                    config.max_component_bytes,
                    config.fetch_timeout,
                )
                .await?
        };
        if let Some(expected) = recorded
            && artifact.digest != expected
        {
            return Err(RuntimeError::SourceChanged {
                source_name: artifact.source_name,
                expected,
                found: artifact.digest,
            });
        }
        self.prepare_artifact(artifact).await
    }

    /// Like [`Runtime::prepare`], for bytes already in hand.
    pub async fn prepare_artifact(
        &self,
        artifact: Artifact,
    ) -> Result<PreparedComponent, RuntimeError> {
        let source_name = artifact.source_name.clone();
        match classify(&artifact.bytes) {
            WasmKind::Component => {}
            WasmKind::NotWasm => return Err(RuntimeError::NotWasm { source_name }),
            WasmKind::CoreModule => return Err(RuntimeError::CoreModule { source_name }),
            WasmKind::UnknownVersion => {
                return Err(RuntimeError::UnknownWasmVersion { source_name });
            }
        }
        let loaded = self.inner.loader.load(&artifact).await?;
        self.finish(loaded, artifact.digest, source_name)
    }

    fn finish(
        &self,
        loaded: Loaded,
        digest: Digest,
        source_name: String,
    ) -> Result<PreparedComponent, RuntimeError> {
        let pre = Self::link(&self.inner.linker, &loaded.component, &source_name)?;
        let pooling = self.inner.allocator == AllocatorKind::Pooling;
        let reset = match self.inner.config.memory_reset {
            // Only WASIp2 instances are counted: a WASIp3 one serves many requests at once, and
            // its toolchains (spin-sdk) build small guests.
            MemoryReset::Auto if pooling && matches!(pre, Linked::P2(_)) => ResetState::Counting,
            MemoryReset::WholePrefix if pooling => ResetState::WholePrefix,
            _ => ResetState::DirtyPages,
        };
        let reset = self.reset_choice(digest, || {
            ResetChoice::new(
                self.clone(),
                loaded.component.clone(),
                source_name.clone(),
                reset,
            )
        });
        Ok(PreparedComponent {
            runtime: self.clone(),
            digest,
            source_name,
            origin: loaded.origin,
            pre,
            reset,
            _lease: loaded.lease,
        })
    }

    /// The slot-reset choice of the component with `digest`, shared by every revision that runs
    /// it on this node while one does: counted once, moved once.
    fn reset_choice(
        &self,
        digest: Digest,
        make: impl FnOnce() -> Arc<ResetChoice>,
    ) -> Arc<ResetChoice> {
        let mut choices = self
            .inner
            .reset_choices
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(choice) = choices.get(&digest).and_then(Weak::upgrade) {
            return choice;
        }
        // Components no revision runs any more are forgotten here, so the map holds no more
        // entries than the node has prepared components.
        choices.retain(|_, choice| choice.strong_count() > 0);
        let choice = make();
        choices.insert(digest, Arc::downgrade(&choice));
        choice
    }

    /// `component` (compiled for the node's engine) loaded into the whole-prefix engine, which
    /// is built on first use. Blocking: it copies the compiled image.
    pub(crate) fn load_whole_prefix(
        &self,
        component: &Component,
        source_name: &str,
    ) -> Result<WholePrefixPre, RuntimeError> {
        let Some(target) = self
            .inner
            .whole_prefix
            .get_or_init(|| self.build_whole_prefix())
        else {
            return Err(RuntimeError::Engine(
                "the second instance pool, for slots reset whole, could not be set up (see the \
                 warning before)"
                    .into(),
            ));
        };
        let image = component
            .serialize()
            .map_err(|error| RuntimeError::Engine(format!("{error:#}")))?;
        // SAFETY: the bytes are this process's own serialization of a component compiled by
        // an engine with the same compiler settings, just made: nothing else could alter them.
        let moved = unsafe { Component::deserialize(&target.engine, &image) }
            .map_err(|error| RuntimeError::Engine(format!("{error:#}")))?;
        match Self::link(&target.linker, &moved, source_name)? {
            Linked::P2(pre) => Ok(WholePrefixPre { pre }),
            Linked::P3(_) => Err(RuntimeError::Engine(
                "a WASIp3 component keeps the dirty-page reset".into(),
            )),
        }
    }

    fn build_whole_prefix(&self) -> Option<WholePrefixEngine> {
        let config = RuntimeConfig {
            memory_reset: MemoryReset::WholePrefix,
            ..self.inner.config.clone()
        };
        let built = build_pooled_engine(&config).and_then(|engine| {
            let linker = proxy_linker(&engine)?;
            Ok((engine, linker))
        });
        let (engine, linker) = match built {
            Ok(built) => built,
            Err(error) => {
                tracing::warn!(
                    %error,
                    "cannot reserve a second instance pool for the components that write all \
                     over a large heap; they keep the dirty-page reset (lower --max-instances \
                     or the memory per instance so that two pools fit, or pass \
                     --memory-reset dirty-pages)"
                );
                return None;
            }
        };
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick);
        if !ticker.is_running() {
            // Its guests would have no deadlines: components stay where they are.
            tracing::warn!(
                "cannot start the epoch ticker of the whole-prefix engine; components keep the \
                 dirty-page reset"
            );
            return None;
        }
        Some(WholePrefixEngine {
            engine,
            linker,
            _ticker: ticker,
        })
    }

    /// Memory slots of the whole-prefix engine's pool kept warm for a next instance (none
    /// before a component has moved there). Shows that moved components run there.
    #[doc(hidden)]
    pub fn whole_prefix_warm_slots(&self) -> u32 {
        self.inner
            .whole_prefix
            .get()
            .and_then(Option::as_ref)
            .and_then(|target| target.engine.pooling_allocator_metrics())
            .map_or(0, |metrics| metrics.unused_warm_memories())
    }

    /// Links `component` with `linker`, for the engine the linker belongs to.
    fn link(
        linker: &Linker<Host>,
        component: &Component,
        source_name: &str,
    ) -> Result<Linked, RuntimeError> {
        let engine = linker.engine();
        let component_type = component.component_type();
        let exports: Vec<&str> = component_type
            .exports(engine)
            .map(|(name, _)| name)
            .collect();
        let exports_world = |world: World| {
            exports
                .iter()
                .find(|name| name.starts_with(world.handler_export()))
                .copied()
        };
        // A component exporting both is served as WASIp3, as `wasmtime serve` does.
        let p3_export = exports_world(World::WasiP3);
        if p3_export.is_none() && exports_world(World::WasiP2).is_none() {
            return Err(RuntimeError::MissingHandler {
                source_name: source_name.to_owned(),
                exports: if exports.is_empty() {
                    "nothing".into()
                } else {
                    exports.join(", ")
                },
            });
        }
        let instance_pre =
            linker
                .instantiate_pre(component)
                .map_err(|error| RuntimeError::Link {
                    source_name: source_name.to_owned(),
                    reason: format!("{error:#}"),
                })?;
        let invalid = |reason: String| RuntimeError::Invalid {
            source_name: source_name.to_owned(),
            reason,
        };
        match p3_export {
            Some(export) => ServicePre::new(instance_pre)
                .map(Linked::P3)
                .map_err(|error| {
                    if export.contains("-rc") || export.contains("-draft") {
                        invalid(format!(
                            "it exports {export}, a WASIp3 release candidate; wisp runs the \
                             released wasi:http@0.3.0 — rebuild the component against it \
                             (e.g. spin-sdk 7 or wasip3 0.7)"
                        ))
                    } else {
                        invalid(format!("{error:#}"))
                    }
                }),
            None => ProxyPre::new(instance_pre)
                .map(Linked::P2)
                .map_err(|error| invalid(format!("{error:#}"))),
        }
    }
}

/// A component compiled and linked for this node, from which replicas start in microseconds.
#[derive(Clone)]
pub struct PreparedComponent {
    runtime: Runtime,
    digest: Digest,
    source_name: String,
    origin: LoadOrigin,
    pre: Linked,
    /// How its slots are reset, chosen once for all its replicas.
    reset: Arc<ResetChoice>,
    /// Keeps the compiled component in the loader's memory while this (or a clone) lives.
    _lease: ComponentLease,
}

impl PreparedComponent {
    pub fn digest(&self) -> Digest {
        self.digest
    }

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The `wasi:http` world the component serves.
    pub fn world(&self) -> World {
        self.pre.world()
    }

    /// How its instances' memory slots are reset, and whether that is still being chosen.
    pub fn memory_reset(&self) -> ResetState {
        self.reset.state()
    }

    /// Whether this preparation compiled, read the disk cache, or found the component in memory.
    pub fn origin(&self) -> LoadOrigin {
        self.origin
    }

    /// Starts a replica: no compiling or linking, just a new envelope around the shared
    /// pre-instantiated component.
    pub fn start_replica(&self, identity: &ReplicaIdentity, limits: ReplicaLimits) -> Replica {
        let revision: Arc<str> = Arc::from(identity.revision.as_str());
        let cpu_share = self.runtime.inner.cpu_shares.of(&revision);
        Replica::new(
            self.pre.clone(),
            self.reset.clone(),
            identity,
            limits,
            self.runtime.inner.config.max_memory_per_instance,
            self.runtime.inner.instance_slots.clone(),
            cpu_share,
        )
    }
}
