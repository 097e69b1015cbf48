//! Settings of one node's runtime and of the replicas it starts.

use std::path::PathBuf;
use std::time::Duration;

use wisp_api::instance_reuse::InstanceReuse;

use crate::source_policy::SourcePolicy;

/// Node-wide settings: how the engine's instance pool is sized and where compiled components are kept.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Most component instances alive at once on this node (the pool's slot count).
    pub max_instances: u32,
    /// Most linear memory one instance may grow to; also the pool's per-slot memory size.
    pub max_memory_per_instance: u64,
    /// How often each engine's epoch ticker advances its epoch. A busy guest yields to the
    /// scheduler at every tick, so this bounds how late a deadline or a cancel is noticed.
    pub epoch_tick: Duration,
    /// Where precompiled components are kept across restarts; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Linear memory per pool slot kept mapped between instances and reset in place (with
    /// [`MemoryReset::DirtyPages`], only where the kernel can say which pages are dirty;
    /// elsewhere slots are unmapped as usual).
    pub keep_resident: u64,
    /// How a pool slot's linear memory is made pristine for the next instance.
    pub memory_reset: MemoryReset,
    /// Use the pooling allocator when the address space can be reserved (falls back otherwise).
    pub pooling: bool,
    /// Largest component accepted from a file or URL.
    pub max_component_bytes: u64,
    /// How long a component download may take.
    pub fetch_timeout: Duration,
    /// How many threads run guests: the turns revisions share (a revision alone may run this
    /// many guests at once; with others busy, its share of them), see `cpu_share`.
    pub guest_threads: usize,
    /// Which files and URLs components may be read from.
    pub sources: SourcePolicy,
    /// Registries (`HOST:PORT` as image references spell them) reached over plain HTTP; every
    /// other registry over HTTPS.
    pub insecure_registries: Vec<String>,
    /// Components being read or downloaded at once; more wait their turn.
    pub max_concurrent_fetches: usize,
    /// Components being compiled at once (each compile is CPU- and memory-hungry); more wait.
    pub max_concurrent_compiles: usize,
    /// Compiled components kept in memory for revisions that no longer use them, in bytes of
    /// compiled image; the least recently used go first. Components in use always stay.
    pub compiled_memory_budget: u64,
    /// Bytes the on-disk compile cache may hold; the least recently used entries go when a
    /// new one is written.
    pub cache_max_bytes: u64,
    /// Bytes of pulled registry blobs (manifests and layers) kept on disk; the least recently
    /// used go when a new one would not fit.
    pub image_cache_max_bytes: u64,
}

/// How a pool slot's linear memory is made pristine again once its instance is gone. All leave
/// the next instance exactly the component's initial memory; they differ in what that costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MemoryReset {
    /// [`MemoryReset::DirtyPages`] for every component, until the page faults of 32 fresh
    /// instances of a component show that it writes all over a large heap: that one
    /// moves to [`MemoryReset::WholePrefix`] (see `memory_reset`).
    #[default]
    Auto,
    /// Rewrite only the pages the instance wrote, found with `PAGEMAP_SCAN` (Linux 6.7+), and
    /// keep them mapped: the next instance takes no page faults for them. Cheapest for guests
    /// that write little. wasmtime 48 asks the kernel for at most 32 runs of written pages, and
    /// unmaps the slot past the last run it got, so a guest that writes all over a large heap
    /// (CPython) faults those pages in again, one copy-on-write fault each, in every instance.
    DirtyPages,
    /// Rewrite the slot's first [`RuntimeConfig::keep_resident`] bytes whole from the
    /// component's image and keep them mapped; unmap the rest. Costs a copy of that prefix per
    /// instance, on any kernel, but no page faults inside it however the guest wrote: faster
    /// for guests that write across a large heap (componentize-py), slower for small ones.
    WholePrefix,
}

/// The machine's cores, for defaults that scale with it.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Default of [`RuntimeConfig::max_concurrent_fetches`]: downloads wait on the network, so
/// a few per core.
pub fn default_concurrent_fetches() -> usize {
    (cores() * 4).clamp(4, 64)
}

/// Default of [`RuntimeConfig::max_concurrent_compiles`]: one per core (Cranelift also
/// compiles the functions of one component in parallel).
pub fn default_concurrent_compiles() -> usize {
    cores().max(1)
}

pub const DEFAULT_COMPILED_MEMORY_BUDGET: u64 = 512 * MIB;
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 4 * 1024 * MIB;

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_instances: 1000,
            max_memory_per_instance: 512 * MIB,
            epoch_tick: Duration::from_millis(10),
            cache_dir: None,
            keep_resident: 16 * MIB,
            memory_reset: MemoryReset::default(),
            pooling: true,
            max_component_bytes: 512 * MIB,
            fetch_timeout: Duration::from_secs(120),
            guest_threads: std::thread::available_parallelism().map_or(1, usize::from),
            sources: SourcePolicy::default(),
            insecure_registries: Vec::new(),
            max_concurrent_fetches: default_concurrent_fetches(),
            max_concurrent_compiles: default_concurrent_compiles(),
            compiled_memory_budget: DEFAULT_COMPILED_MEMORY_BUDGET,
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            image_cache_max_bytes: wisp_oci::DEFAULT_IMAGE_CACHE_BYTES,
        }
    }
}

/// The resource envelope of one replica: what the instances it runs may use together.
#[derive(Debug, Clone)]
pub struct ReplicaLimits {
    /// Requests served at once; further ones wait for a slot. `None` means unlimited.
    pub concurrency: Option<u32>,
    /// Linear memory shared by all instances the replica runs at once.
    pub memory: u64,
    /// Wall-clock budget of one request, from admission to the end of the guest's work (504 beyond).
    pub timeout: Duration,
    /// Largest request body passed to the guest (413 beyond).
    pub max_request_body: u64,
    /// Whether an instance serves more than one request; by default each gets a fresh one.
    pub reuse: InstanceReuse,
}

impl Default for ReplicaLimits {
    fn default() -> Self {
        Self {
            concurrency: None,
            memory: 256 * MIB,
            timeout: Duration::from_secs(300),
            max_request_body: 128 * MIB,
            reuse: InstanceReuse::default(),
        }
    }
}

/// What the guest sees of where it runs: its environment and the Knative identity variables.
#[derive(Debug, Clone, Default)]
pub struct ReplicaIdentity {
    /// Knative's `K_SERVICE`.
    pub service: String,
    /// Knative's `K_CONFIGURATION`.
    pub configuration: String,
    /// Knative's `K_REVISION`; also the `revision` field of guest log lines.
    pub revision: String,
    /// The container's `env`, in order; later entries win.
    pub env: Vec<(String, String)>,
    /// Knative's `PORT`: the port the front door listens on.
    pub port: u16,
}

pub const MIB: u64 = 1024 * 1024;
