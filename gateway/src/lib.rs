//! The HTTP front door: Host-based routing to routes, traffic splits and tags, and dispatch to
//! replicas or to the activator. It composes runtime, activator and autoscaler into the data
//! plane.
//!
//! Today it holds the pieces every front door needs: the HTTP/1.1 + h2c server loop with
//! graceful shutdown, and request ids. Not here: running wasm (runtime), buffering and load
//! balancing (activator), scaling decisions (autoscaler).

pub mod dataplane;
pub mod metrics;
pub mod request_id;
pub mod routing;
pub mod server;
