//! Resource types shared by every wisp crate: the Knative Serving v1 objects (Service, Configuration,
//! Revision, Route) with their conditions, and small value types such as revision keys and load stats.
//!
//! This crate does no I/O and holds no behaviour beyond defaults and validation of plain values.

pub mod instance_reuse;
pub mod knative;
pub mod names;
pub mod nodes;
pub mod pull_secrets;
pub mod quantity;
pub mod revision_key;
pub mod serving;
pub mod xorshift;
