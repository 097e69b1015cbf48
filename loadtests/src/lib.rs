//! Load generation and benchmarks for wisp: HTTP load generators with HDR histograms (open loop
//! on a rate schedule without coordinated omission, closed loop, both with a per-second
//! timeline), the peers wisp is measured against (started as processes, found through
//! environment variables or `PATH`), and Markdown reports of the ratios; scenario files, their
//! runner against `wisp up`, and HTML/Markdown reports of a run with SVG charts; the soak
//! (steady and hostile load, rollouts, trips to zero and a `kill -9` at once, every request
//! accounted for).
//!
//! Every target is on loopback: the generator refuses any other address. Speed is measured here,
//! never asserted in tests.

pub mod balancer;
pub mod cases;
pub mod ceiling;
pub mod closed_loop;
pub mod demo;
pub mod freshness;
pub mod generator;
pub mod kube_env;
pub mod kubectl_tool;
pub mod manifests;
pub mod one_shot;
pub mod peers;
pub mod record;
pub mod registry;
pub mod report;
pub mod report_html;
pub mod runner;
pub mod scaling_metrics;
pub mod scenario;
pub mod soak;
pub mod target;
pub mod wisp_on_kube;
pub mod wisp_up;
