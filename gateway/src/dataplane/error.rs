//! Why the data plane refused a revision.

use wisp_api::revision_key::RevisionKey;

#[derive(Debug, thiserror::Error)]
pub enum DataPlaneError {
    /// The component could not be fetched, compiled or linked.
    #[error("revision {}/{}: {source}", .revision.namespace, .revision.name)]
    Component {
        revision: RevisionKey,
        source: wisp_runtime::RuntimeError,
    },
    /// The revision's `autoscaling.knative.dev/*` annotations are invalid.
    #[error("revision {}/{}: {source}", .revision.namespace, .revision.name)]
    Autoscaling {
        revision: RevisionKey,
        source: wisp_autoscaler::ConfigError,
    },
}
