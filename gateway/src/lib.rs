//! The HTTP front door and the data plane behind it: Host-based routing to routes, traffic
//! splits and tags, and dispatch through each revision's activator throttler to its replicas,
//! which the autoscaler's decisions start and stop within the node's memory.
//!
//! Modules: [`dataplane`] composes runtime, activator and autoscaler into the request path and
//! the scaling loop, configured through a typed interface (revisions, routes) that `wisp serve`
//! feeds from a YAML file and the control plane will feed from watches; [`routing`] is the pure
//! route table; [`metrics`] the Prometheus series and admin endpoint; [`server`] the HTTP/1.1 +
//! h2c serve loop with graceful shutdown; [`request_id`] request ids; [`health`] whether the node
//! should get traffic (`/healthz`, the Node's `Ready`).
//!
//! Not here: running wasm (runtime), buffering and load-balancing policy (activator), scaling
//! decisions (autoscaler), Kubernetes objects (control).

pub mod dataplane;
pub mod health;
pub mod metrics;
pub mod request_id;
pub mod routing;
pub mod server;
pub mod sync;
