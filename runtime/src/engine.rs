//! A node's wasmtime `Engine`: instance pool, copy-on-write memory images, how a pool slot is
//! reset, and the epoch ticker that gives every guest running in it its deadline checks. A node
//! has one, and a second whose slots are reset whole once a component needs it
//! (`memory_reset`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::{MemoryReset, RuntimeConfig};
use crate::error::RuntimeError;

/// Which instance allocator the engine ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatorKind {
    Pooling,
    OnDemand,
}

/// Core instances, tables and memories one component instance may hold: the main module plus the
/// small shim and fixup modules that component tooling adds (componentize-py brings a few more).
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const TABLES_PER_COMPONENT: u32 = 8;
const MEMORIES_PER_COMPONENT: u32 = 2;
/// How many of those the pool provides per component slot on average: most guests use about
/// three core instances, two tables and one memory.
const POOLED_CORE_INSTANCES_PER_SLOT: u32 = 4;
const POOLED_TABLES_PER_SLOT: u32 = 4;
const POOLED_MEMORIES_PER_SLOT: u32 = 2;
/// Table bytes kept mapped per slot between instances (function tables of std guests are small).
const TABLE_KEEP_RESIDENT: usize = 1 << 20;

/// Builds the engine, preferring the pooling allocator and falling back to on-demand allocation
/// when the pool's address space cannot be reserved (small `ulimit -v`, 32-bit hosts, low
/// overcommit limits).
pub fn build_engine(config: &RuntimeConfig) -> Result<(Engine, AllocatorKind), RuntimeError> {
    if config.pooling {
        match build_pooled_engine(config) {
            Ok(engine) => return Ok((engine, AllocatorKind::Pooling)),
            Err(error) => tracing::warn!(
                error = %format!("{error:#}"),
                "cannot reserve the address space of the instance pool; falling back to on-demand \
                 allocation (instantiation will be slower; lower --max-instances or the memory per \
                 instance to use the pool)"
            ),
        }
    }
    let engine = Engine::new(&engine_config(None))
        .map_err(|error| RuntimeError::Engine(format!("{error:#}")))?;
    Ok((engine, AllocatorKind::OnDemand))
}

/// An engine with the pooling allocator, or the error that kept its pool from being reserved.
pub fn build_pooled_engine(config: &RuntimeConfig) -> Result<Engine, RuntimeError> {
    Engine::new(&engine_config(Some(pool_config(config))))
        .map_err(|error| RuntimeError::Engine(format!("{error:#}")))
}

fn engine_config(pool: Option<PoolingAllocationConfig>) -> Config {
    let mut engine = Config::new();
    engine.wasm_component_model(true);
    engine.epoch_interruption(true);
    engine.memory_init_cow(true);
    if let Some(pool) = pool {
        engine.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    engine
}

fn pool_config(config: &RuntimeConfig) -> PoolingAllocationConfig {
    let instances = config.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(POOLED_CORE_INSTANCES_PER_SLOT))
        .total_memories(instances.saturating_mul(POOLED_MEMORIES_PER_SLOT))
        .total_tables(instances.saturating_mul(POOLED_TABLES_PER_SLOT))
        .total_stacks(instances)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_memory_size(usize::try_from(config.max_memory_per_instance).unwrap_or(usize::MAX));
    let keep_resident = usize::try_from(config.keep_resident).unwrap_or(usize::MAX);
    match config.memory_reset {
        // Reset a freed slot by rewriting only its dirty pages (found with PAGEMAP_SCAN, Linux
        // 6.7+) instead of unmapping them: the next instance then takes no page faults, and the
        // machine no TLB shootdowns, for memory the last one touched. Without PAGEMAP_SCAN the
        // whole resident prefix would be rewritten on every reset, which costs small guests
        // more than it saves, so slots are then unmapped as usual.
        MemoryReset::Auto | MemoryReset::DirtyPages => {
            pool.pagemap_scan(Enabled::Auto);
            if PoolingAllocationConfig::is_pagemap_scan_available() {
                pool.linear_memory_keep_resident(keep_resident)
                    .table_keep_resident(TABLE_KEEP_RESIDENT);
            }
        }
        // No scan: the copy covers every page of the prefix however scattered the guest's
        // writes were.
        MemoryReset::WholePrefix => {
            pool.pagemap_scan(Enabled::No)
                .linear_memory_keep_resident(keep_resident)
                .table_keep_resident(TABLE_KEEP_RESIDENT);
        }
    }
    pool
}

/// Advances an engine's epoch at a fixed period from one thread for all its guests (a ticker
/// per request was wasmtime's own 100× slowdown, issue 11814). Stops when dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine, period: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("wisp-epoch".into())
            .spawn({
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(period);
                        engine.increment_epoch();
                    }
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!(
                "cannot start the epoch ticker thread; guest deadlines will not be enforced"
            );
        }
        Self { stop, thread }
    }

    /// Whether its thread started (guests of its engine get deadlines and turns only then).
    pub fn is_running(&self) -> bool {
        self.thread.is_some()
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
