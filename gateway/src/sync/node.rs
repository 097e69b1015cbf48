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
    /// Ticks left before the stored Node is compared with what was written (`0`: this tick).
    verify_in: u32,
    verify_every: u32,
    log: Log,
}

/// How often the stored Node is read back: a Node deleted behind the node's back, or marked
/// `Ready=Unknown` by a node lifecycle controller while this node was cut off, is written again
/// within this time even though nothing about the node itself changed.
const VERIFY: std::time::Duration = std::time::Duration::from_secs(10);

impl NodeStatus {
    pub(super) fn new(status_interval: std::time::Duration) -> Self {
        let every = VERIFY.as_millis() / status_interval.as_millis().max(1);
        Self {
            phase: Phase::Loading,
            since: now(),
            registered: false,
            written: None,
            verify_in: 0,
            verify_every: u32::try_from(every).unwrap_or(u32::MAX).max(1),
            log: Log::default(),
        }
    }

    /// Forgets what was written when the stored Node no longer says it (gone, or its `Ready`
    /// condition changed by someone else), so this tick writes it again.
    async fn verify(&mut self, shared: &Shared, name: &str) {
        if self.verify_in > 0 {
            self.verify_in -= 1;
            return;
        }
        self.verify_in = self.verify_every;
        let Some(written) = self.written.as_ref() else {
            return;
        };
        let api: Api<Node> = Api::all(shared.client.clone());
        match api.get_opt(name).await {
            Ok(None) => {
                self.registered = false;
                self.written = None;
            }
            Ok(Some(stored)) => {
                let stored = stored
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| c.status);
                if stored.as_deref() != ready_status(written) {
                    self.written = None;
                }
            }
            Err(error) => self.log.warn("cannot read the Node back", &error),
        }
    }

    pub(super) async fn sync(&mut self, shared: &Shared) {
        let phase = shared.options.health.phase();
        if phase != self.phase {
            self.phase = phase;
            self.since = now();
        }
        let info = info(&shared.options);
        self.verify(shared, &info.name).await;
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

/// The `Ready` condition's status in a Node status as written.
fn ready_status(status: &Value) -> Option<&str> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?["status"]
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_ready_status_is_read_back_from_the_status() {
        let status = serde_json::json!({"conditions": [
            {"type": "MemoryPressure", "status": "False"},
            {"type": "Ready", "status": "True"},
        ]});
        assert_eq!(ready_status(&status), Some("True"));
        assert_eq!(ready_status(&serde_json::json!({})), None);
    }

    #[test]
    fn the_node_is_read_back_about_every_ten_seconds() {
        assert_eq!(
            NodeStatus::new(std::time::Duration::from_secs(1)).verify_every,
            10
        );
        assert_eq!(
            NodeStatus::new(std::time::Duration::from_secs(60)).verify_every,
            1
        );
    }
}
