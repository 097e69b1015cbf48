//! The Node this data plane reports as: created when missing (or taken over when a Node of its
//! name is already there, e.g. from its previous run), its status written when it changed —
//! usage, and `Ready` following the node's phase. Never on the request path: the data plane is
//! only read here.

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::Value;

use super::pods::{self, NodeInfo};
use super::replicas::{Log, patch_status};
use super::{Shared, SyncOptions, now};
use crate::health::Phase;

/// What the Node says about this node, from the sync's options.
pub(super) fn info(options: &SyncOptions) -> NodeInfo {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    NodeInfo {
        name: options.node_name.clone(),
        address: options.address,
        port: options.gateway_port,
        cpus: u32::try_from(cpus).unwrap_or(u32::MAX),
    }
}

/// The Node as last written.
pub(super) struct NodeStatus {
    /// The phase `Ready` last followed, and when it changed to it.
    phase: Phase,
    since: String,
    /// Whether the Node is known to exist with wisp's labels and taint (this run made it or
    /// took it over).
    registered: bool,
    written: Option<Value>,
    log: Log,
}

impl NodeStatus {
    pub(super) fn new() -> Self {
        Self {
            phase: Phase::Loading,
            since: now(),
            registered: false,
            written: None,
            log: Log::default(),
        }
    }

    pub(super) async fn sync(&mut self, shared: &Shared) {
        let phase = shared.options.health.phase();
        if phase != self.phase {
            self.phase = phase;
            self.since = now();
        }
        let info = info(&shared.options);
        let status = pods::node_status(
            &info,
            &shared.data_plane.node_usage(),
            self.phase,
            &self.since,
        );
        if self.written.as_ref() == Some(&status) {
            return;
        }
        match self.write(shared, &info.name, &status).await {
            Ok(()) => {
                self.written = Some(status);
                self.log.ok();
            }
            Err(error) => self.log.warn("cannot write the Node", &error),
        }
    }

    async fn write(
        &mut self,
        shared: &Shared,
        name: &str,
        status: &Value,
    ) -> Result<(), kube::Error> {
        let api: Api<Node> = Api::all(shared.client.clone());
        if !self.registered {
            if register(&api, name, status).await? {
                self.registered = true;
                return Ok(());
            }
            self.registered = true;
        }
        match patch_status(&api, name, status.clone()).await {
            // Deleted behind our back (a user, a test): made again on the next tick.
            Err(kube::Error::Api(error)) if error.code == 404 => {
                self.registered = false;
                Err(kube::Error::Api(error))
            }
            other => other,
        }
    }
}

/// Makes the Node exist with wisp's labels and taint: creates it, or takes over the one of this
/// name already there (a restart under the same name updates it rather than fail). Whether the
/// status is written too (a server that keeps status on create).
async fn register(api: &Api<Node>, name: &str, status: &Value) -> Result<bool, kube::Error> {
    if let Some(existing) = api.get_opt(name).await? {
        let existing = serde_json::to_value(&existing).map_err(kube::Error::SerdeError)?;
        if let Some(patch) = pods::takeover(name, &existing) {
            tracing::info!(node = name, "taking over the Node of this name");
            api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
        }
        return Ok(false);
    }
    let mut object = pods::node(name);
    object["status"] = status.clone();
    let typed: Node = serde_json::from_value(object).map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &typed).await {
        Ok(created) => Ok(created
            .status
            .as_ref()
            .is_some_and(|s| s.capacity.is_some())),
        // Made between our GET and POST (a previous attempt whose answer was lost).
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}
