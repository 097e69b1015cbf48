//! The file of Knative Services that `wisp serve` runs: read as `kubectl apply -f` would take it
//! (`file`), then checked as Knative's admission would check it and turned into what the data
//! plane takes (`plan`). A library of its own so that the fuzz targets reach the same code the
//! command runs.

pub mod file;
pub mod plan;

pub use file::{ManifestError, ServiceDocument, ServicesFile, load, parse};
pub use plan::{PlannedService, ServePlan, plan};
