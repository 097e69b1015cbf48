//! The data plane end to end over loopback HTTP: routing, the activator, scaling to and from
//! zero on a simulated autoscaler clock, overload and fault isolation.

mod harness;
mod metrics;
mod overload;
mod replica_cap;
mod routing;
mod scaling;
mod sources;
