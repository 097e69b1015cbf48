//! The wasm pod runtime: runs standard `wasi:http` components (WASIp2 `proxy` and WASIp3
//! `service` worlds, told apart by their exports) with instant start and hard isolation.
//!
//! One [`Runtime`] per node holds the wasmtime engine (pooling allocator, copy-on-write memory
//! images, an epoch ticker; a second engine whose pool slots are reset whole for the components
//! that write all over a large heap, see `memory_reset`), the compile cache (once per digest per
//! process, precompiled images on disk) and the linker. [`Runtime::prepare`] turns a component
//! reference into a [`PreparedComponent`]; [`PreparedComponent::start_replica`] makes a
//! [`Replica`], the resource envelope that serves requests — each WASIp2 request in a fresh
//! instance unless the revision chose instance reuse, WASIp3 requests on instances each driven
//! by a task of its own.
//!
//! Not here: HTTP listening, routing, queueing across replicas and scaling decisions — those
//! belong to the gateway, activator and autoscaler.

mod address_class;
mod admission;
mod artifact;
mod body;
mod charged_http;
mod config;
mod cpu_share;
mod disk_cache;
mod download;
mod engine;
mod error;
mod gather;
mod guest_log;
mod host;
mod inspect;
mod limits;
mod loader;
mod memory_reset;
mod node;
mod outcome;
mod p3_instances;
mod pool;
mod replica;
mod response;
mod source_policy;
mod world;

pub use admission::{InstanceSlots, Shed};
pub use artifact::{Artifact, ArtifactSource, Digest};
pub use config::{
    DEFAULT_CACHE_MAX_BYTES, DEFAULT_COMPILED_MEMORY_BUDGET, MIB, MemoryReset, ReplicaIdentity,
    ReplicaLimits, RuntimeConfig, default_concurrent_compiles, default_concurrent_fetches,
};
pub use engine::AllocatorKind;
pub use error::RuntimeError;
pub use limits::{HostMemoryExceeded, MemoryRefusal};
pub use loader::{LoadOrigin, LoaderStats};
pub use memory_reset::ResetState;
pub use node::{PreparedComponent, Runtime};
pub use outcome::RequestOutcome;
pub use replica::{BodyError, InstanceUse, Replica, RequestTimings};
pub use response::{ResponseBody, plain_response};
pub use source_policy::{AllowedHost, PolicyError, Refusal, SourcePolicy};
pub use world::World;
