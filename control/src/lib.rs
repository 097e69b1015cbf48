//! The control plane: the Kubernetes-compatible API server that kubectl and kube-rs talk to,
//! with Knative admission, and the controllers that turn Services into Configurations, Revisions
//! and Routes. It talks to the data plane only through the Kubernetes API.
//!
//! Today it holds the API server's storage layer, [`store`]: objects in SQLite with a global
//! resourceVersion, an event log and watches; the [`registry`] of served resources (names,
//! short names, verbs, status subresources, printer columns); and [`discovery`], the pure
//! builders of the legacy and aggregated discovery documents with `Accept` negotiation. The
//! HTTP server, admission and controllers are still to come; this crate is not the data plane
//! (see `wisp-gateway`).

pub mod admission;
pub mod credentials;
pub mod discovery;
pub mod field_error;
pub mod jsonpath;
pub mod openapi;
pub mod registry;
pub mod schema;
pub mod selectors;
pub mod store;
pub mod table;
