//! Per-node families and their pre-resolved handle, written by the replica manager.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::buckets;
use super::labels::NodeLabels;
use super::revision::saturating_i64;

fn instantiation_histogram() -> Histogram {
    Histogram::new(buckets::INSTANTIATION.iter().copied())
}

/// The per-node metric families, registered once in the data plane's registry.
#[derive(Debug)]
pub(super) struct NodeFamilies {
    replicas: Family<NodeLabels, Gauge>,
    memory_allocatable: Family<NodeLabels, Gauge>,
    memory_used: Family<NodeLabels, Gauge>,
    instances_started: Family<NodeLabels, Counter>,
    instantiation_duration: Family<NodeLabels, Histogram, fn() -> Histogram>,
    compiled_memory: Family<NodeLabels, Gauge>,
    compiled_evictions: Family<NodeLabels, Counter>,
    compile_cache_evictions: Family<NodeLabels, Counter>,
}

impl NodeFamilies {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let families = Self {
            replicas: Family::default(),
            memory_allocatable: Family::default(),
            memory_used: Family::default(),
            instances_started: Family::default(),
            instantiation_duration: Family::new_with_constructor(instantiation_histogram),
            compiled_memory: Family::default(),
            compiled_evictions: Family::default(),
            compile_cache_evictions: Family::default(),
        };
        registry.register(
            "node_replicas",
            "Replicas running on the node, all revisions together",
            families.replicas.clone(),
        );
        registry.register_with_unit(
            "node_memory_allocatable",
            "Memory the node admits replicas into (the sum of their limits stays within it)",
            Unit::Bytes,
            families.memory_allocatable.clone(),
        );
        registry.register_with_unit(
            "node_memory_used",
            "Sum of the memory limits of the replicas admitted on the node",
            Unit::Bytes,
            families.memory_used.clone(),
        );
        registry.register(
            "node_instances_started",
            "Component instances created on the node",
            families.instances_started.clone(),
        );
        registry.register_with_unit(
            "node_instantiation_duration",
            "Time to create one component instance",
            Unit::Seconds,
            families.instantiation_duration.clone(),
        );
        registry.register_with_unit(
            "node_compiled_components_memory",
            "Compiled component images the node holds in memory, in use or kept for reuse",
            Unit::Bytes,
            families.compiled_memory.clone(),
        );
        registry.register(
            "node_compiled_components_evicted",
            "Unused compiled components dropped from memory to stay within the node's budget",
            families.compiled_evictions.clone(),
        );
        registry.register(
            "node_compile_cache_evicted",
            "Entries removed from the on-disk compile cache to stay within its size",
            families.compile_cache_evictions.clone(),
        );
        families
    }

    pub(super) fn handle(&self, labels: &NodeLabels) -> NodeMetrics {
        NodeMetrics {
            replicas: self.replicas.get_or_create(labels).clone(),
            memory_allocatable: self.memory_allocatable.get_or_create(labels).clone(),
            memory_used: self.memory_used.get_or_create(labels).clone(),
            instances_started: self.instances_started.get_or_create(labels).clone(),
            instantiation_duration: self.instantiation_duration.get_or_create(labels).clone(),
            compiled_memory: self.compiled_memory.get_or_create(labels).clone(),
            compiled_evictions: self.compiled_evictions.get_or_create(labels).clone(),
            compile_cache_evictions: self.compile_cache_evictions.get_or_create(labels).clone(),
        }
    }

    pub(super) fn remove(&self, labels: &NodeLabels) -> bool {
        let mut removed = self.replicas.remove(labels);
        removed |= self.memory_allocatable.remove(labels);
        removed |= self.memory_used.remove(labels);
        removed |= self.instances_started.remove(labels);
        removed |= self.instantiation_duration.remove(labels);
        removed |= self.compiled_memory.remove(labels);
        removed |= self.compiled_evictions.remove(labels);
        removed |= self.compile_cache_evictions.remove(labels);
        removed
    }
}

/// One node's series, resolved once; updates are atomic and allocate nothing. Clones share
/// the series.
#[derive(Clone, Debug)]
pub struct NodeMetrics {
    replicas: Gauge,
    memory_allocatable: Gauge,
    memory_used: Gauge,
    instances_started: Counter,
    instantiation_duration: Histogram,
    compiled_memory: Gauge,
    compiled_evictions: Counter,
    compile_cache_evictions: Counter,
}

/// The loader's totals since the process started, as [`NodeMetrics::set_compiled`] takes them.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompiledTotals {
    pub memory_bytes: u64,
    pub memory_evictions: u64,
    pub disk_evictions: u64,
}

impl NodeMetrics {
    /// Replicas running on the node.
    pub fn set_replicas(&self, replicas: usize) {
        self.replicas.set(saturating_i64(replicas as u64));
    }

    /// The node's admission budget and how much of it admitted replicas hold, in bytes.
    pub fn set_memory(&self, allocatable: u64, used: u64) {
        self.memory_allocatable.set(saturating_i64(allocatable));
        self.memory_used.set(saturating_i64(used));
    }

    /// The compiled components' memory and the evictions so far (totals: the counters catch up).
    pub fn set_compiled(&self, totals: CompiledTotals) {
        self.compiled_memory
            .set(saturating_i64(totals.memory_bytes));
        for (counter, total) in [
            (&self.compiled_evictions, totals.memory_evictions),
            (&self.compile_cache_evictions, totals.disk_evictions),
        ] {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// Counts one instance created in `instantiation`.
    pub fn instance_started(&self, instantiation: Duration) {
        self.instances_started.inc();
        self.instantiation_duration
            .observe(instantiation.as_secs_f64());
    }
}
