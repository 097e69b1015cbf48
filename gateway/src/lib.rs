//! The HTTP front door: Host-based routing to routes, traffic splits and tags, and dispatch to
//! replicas or to the activator. It composes runtime, activator and autoscaler into the data plane.
