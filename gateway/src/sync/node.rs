//! The Node this data plane reports as: created when missing, its status written when it
//! changed. Never on the request path: the data plane is only read here.

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::PostParams;
use serde_json::Value;

use super::pods;
use super::replicas::{Log, patch_status};
use super::{Shared, now};

/// The Node as last written.
pub(super) struct NodeStatus {
    since: String,
    written: Option<Value>,
    log: Log,
}

impl NodeStatus {
    pub(super) fn new() -> Self {
        Self {
            since: now(),
            written: None,
            log: Log::default(),
        }
    }

    pub(super) async fn sync(&mut self, shared: &Shared) {
        let name = &shared.options.node_name;
        let status = pods::node_status(name, &shared.data_plane.node_usage(), &self.since);
        if self.written.as_ref() == Some(&status) {
            return;
        }
        match write_node(shared, name, &status).await {
            Ok(()) => {
                self.written = Some(status);
                self.log.ok();
            }
            Err(error) => self.log.warn("cannot write the Node", &error),
        }
    }
}

async fn write_node(shared: &Shared, name: &str, status: &Value) -> Result<(), kube::Error> {
    let api: Api<Node> = Api::all(shared.node_client.clone());
    if api.get_opt(name).await?.is_none() {
        let mut object = pods::node(name);
        object["status"] = status.clone();
        let typed: Node = serde_json::from_value(object).map_err(kube::Error::SerdeError)?;
        match api.create(&PostParams::default(), &typed).await {
            Ok(created)
                if created
                    .status
                    .as_ref()
                    .is_some_and(|s| s.capacity.is_some()) =>
            {
                return Ok(());
            }
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(error),
        }
    }
    patch_status(&api, name, status.clone()).await
}
