//! The data plane's typed configuration: the node-wide settings, and one revision as the control
//! plane describes it (the fields of a Knative Revision the data plane acts on).

use std::collections::BTreeMap;
use std::time::Duration;

use wisp_api::instance_reuse::InstanceReuse;
use wisp_api::revision_key::RevisionKey;
use wisp_autoscaler::AutoscalerConfig;

use crate::routing::Domain;
use crate::routing::forwarded::TrustedProxies;
use crate::server::ServerLimits;

/// Knative's default `timeoutSeconds`.
pub const DEFAULT_REVISION_TIMEOUT: Duration = Duration::from_secs(300);
/// Memory limit of a replica whose container sets none (`config-defaults`
/// `revision-memory-limit`, which wisp always fills so node admission can count it).
pub const DEFAULT_MEMORY_LIMIT: u64 = 128 * 1024 * 1024;

/// Node-wide settings of one data plane.
#[derive(Clone, Debug)]
pub struct DataPlaneConfig {
    /// The node's name in metrics and status (a Kubernetes node name).
    pub node_name: String,
    /// `config-domain`: hosts are `{route}.{namespace}.{domain}`.
    pub domain: Domain,
    /// Memory the node admits replicas into: the sum of their memory limits stays within it.
    pub allocatable_memory: u64,
    /// A replica's memory limit when its revision sets none.
    pub default_memory_limit: u64,
    /// Replicas the node runs at most, across all revisions (`--max-replicas`): a revision that
    /// wants more runs what fits and reports why.
    pub max_replicas: usize,
    /// Replicas one revision may hold on this node (`--max-replicas-per-revision`), so a
    /// revision asking for millions leaves room for the others.
    pub max_replicas_per_revision: usize,
    /// Requests one revision may hold in the activator queue; one more gets 503.
    pub max_queue: usize,
    /// Largest request body a replica accepts (413 beyond).
    pub max_request_body: u64,
    /// `config-autoscaler`.
    pub autoscaler: AutoscalerConfig,
    /// Bounds on the gateway's connections (the admin port takes the same).
    pub server: ServerLimits,
    /// Peers whose `Forwarded`/`X-Forwarded-*` headers are kept (the balancer in front).
    pub trusted_proxies: TrustedProxies,
    /// The runtime guests run on when no request carries them — the readiness probe, called
    /// from the sync — so a hostile guest costs the guests' threads, never the control plane's
    /// (`None`: wherever the caller runs, as in tests with one runtime).
    pub guest_runtime: Option<tokio::runtime::Handle>,
}

impl DataPlaneConfig {
    /// Defaults for a node with `allocatable_memory` bytes to give to replicas.
    pub fn new(allocatable_memory: u64) -> Self {
        Self {
            node_name: "local".into(),
            domain: Domain::default(),
            allocatable_memory,
            default_memory_limit: DEFAULT_MEMORY_LIMIT,
            max_replicas: super::node::DEFAULT_MAX_REPLICAS,
            max_replicas_per_revision: super::node::default_max_replicas_per_revision(
                super::node::DEFAULT_MAX_REPLICAS,
            ),
            max_queue: wisp_activator::throttler::DEFAULT_MAX_QUEUE,
            max_request_body: 128 * 1024 * 1024,
            autoscaler: AutoscalerConfig::default(),
            server: ServerLimits::default(),
            trusted_proxies: TrustedProxies::default(),
            guest_runtime: None,
        }
    }
}

/// One revision, as the data plane needs it. Knative Revisions are immutable apart from their
/// metadata, so applying a revision again with only new annotations updates its autoscaling;
/// any other change replaces it.
#[derive(Clone, Debug, PartialEq)]
pub struct RevisionConfig {
    /// Namespace and revision name.
    pub key: RevisionKey,
    /// The owning Service (`serving.knative.dev/service` label), for `K_SERVICE` and metrics.
    pub service: String,
    /// The owning Configuration, for `K_CONFIGURATION` and metrics.
    pub configuration: String,
    /// `containers[0].image`: a path, `file:` URL or `http(s)://` URL of the component.
    pub component: String,
    /// `spec.containerConcurrency`; 0 means unlimited.
    pub container_concurrency: u32,
    /// `spec.timeoutSeconds`: the deadline of a request, activator queue time included.
    pub timeout: Duration,
    /// `resources.limits.memory`; `None` takes the data plane's default.
    pub memory_limit: Option<u64>,
    /// `containers[0].env`.
    pub env: Vec<(String, String)>,
    /// `metadata.annotations` (the `autoscaling.knative.dev/*` keys are read).
    pub annotations: BTreeMap<String, String>,
    /// The digest of the bytes the revision was created with, once recorded: it runs those
    /// bytes or none (see [`wisp_runtime::Runtime::prepare_recorded`]). Not part of the spec:
    /// recording it changes nothing the revision runs.
    pub recorded_digest: Option<wisp_runtime::Digest>,
    /// What a registry image is pulled with (from the revision's imagePullSecrets). Not part
    /// of the spec either: new credentials change nothing the revision runs.
    pub pull_credentials: wisp_oci::Credentials,
}

impl RevisionConfig {
    /// A revision of `component` with Knative's defaults, owned by a service named like the
    /// revision without its `-NNNNN` suffix.
    pub fn new(key: RevisionKey, component: impl Into<String>) -> Self {
        let owner = owner_name(&key.name).to_owned();
        Self {
            key,
            service: owner.clone(),
            configuration: owner,
            component: component.into(),
            container_concurrency: 0,
            timeout: DEFAULT_REVISION_TIMEOUT,
            memory_limit: None,
            env: Vec::new(),
            annotations: BTreeMap::new(),
            recorded_digest: None,
            pull_credentials: wisp_oci::Credentials::Anonymous,
        }
    }

    /// Whether `other` differs from this revision only in annotations it can take live
    /// (autoscaling), or the digest recorded for it. Instance reuse is fixed for a replica's
    /// life, so a change there makes a new revision entry.
    pub(crate) fn same_spec(&self, other: &RevisionConfig) -> bool {
        let reuse = |config: &RevisionConfig| InstanceReuse::from_annotations(&config.annotations);
        reuse(self) == reuse(other)
            && Self {
                annotations: BTreeMap::new(),
                recorded_digest: None,
                pull_credentials: wisp_oci::Credentials::Anonymous,
                ..self.clone()
            } == Self {
                annotations: BTreeMap::new(),
                recorded_digest: None,
                pull_credentials: wisp_oci::Credentials::Anonymous,
                ..other.clone()
            }
    }
}

/// `hello-00001` → `hello`; a name without a numeric suffix is its own owner.
fn owner_name(revision: &str) -> &str {
    match revision.rsplit_once('-') {
        Some((owner, suffix))
            if !owner.is_empty()
                && !suffix.is_empty()
                && suffix.bytes().all(|b| b.is_ascii_digit()) =>
        {
            owner
        }
        _ => revision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_the_revision_name_without_its_generation() {
        assert_eq!(owner_name("hello-00001"), "hello");
        assert_eq!(owner_name("my-app-00012"), "my-app");
        assert_eq!(owner_name("custom"), "custom");
        assert_eq!(owner_name("custom-v2"), "custom-v2");
        assert_eq!(owner_name("-00001"), "-00001");
    }

    #[test]
    fn annotation_changes_keep_the_spec() {
        let base = RevisionConfig::new(RevisionKey::new("default", "a-00001"), "a.wasm");
        let mut annotated = base.clone();
        annotated
            .annotations
            .insert("autoscaling.knative.dev/min-scale".into(), "1".into());
        assert!(base.same_spec(&annotated));
        let mut other = base.clone();
        other.container_concurrency = 1;
        assert!(!base.same_spec(&other));
        let mut reused = base.clone();
        reused
            .annotations
            .insert("wisp.dev/max-instance-reuse-count".into(), "8".into());
        assert!(
            !base.same_spec(&reused),
            "reuse is fixed for a replica's life"
        );
    }
}
