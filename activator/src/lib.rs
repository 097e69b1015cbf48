//! The activator: a per-revision throttler that buffers requests while a revision lacks capacity,
//! balances them across replicas, and reports demand (including queued requests) to the autoscaler.
//!
//! It is generic over a backend trait and knows nothing of WebAssembly.
