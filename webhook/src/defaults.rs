//! `knative-serving/config-defaults`, watched live: every review reads the value current at
//! that moment, so a change of the ConfigMap applies to the next admission, as it does in the
//! embedded API server (which reads it from its store on every write). An absent ConfigMap
//! means Knative's defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wisp_api::knative::{CONFIG_DEFAULTS, SYSTEM_NAMESPACE};
use wisp_control::admission::ClusterDefaults;

/// How long [`watch_config_defaults`] waits for the first list before serving with Knative's
/// defaults (a missing permission must not keep the webhook, and so every Knative write, down).
pub const INITIAL_SYNC: Duration = Duration::from_secs(10);

/// Starts watching `config-defaults`; returns its value as it changes, and the task (abort it
/// to stop). Waits up to `initial_sync` for the first list so the first reviews already use the
/// cluster's values.
pub async fn watch_config_defaults(
    client: Client,
    initial_sync: Duration,
) -> (watch::Receiver<ClusterDefaults>, JoinHandle<()>) {
    let (send, receive) = watch::channel(ClusterDefaults::KNATIVE);
    let (listed, mut first_list) = watch::channel(false);
    let task = tokio::spawn(run(client, send, listed));
    if tokio::time::timeout(initial_sync, first_list.wait_for(|listed| *listed))
        .await
        .is_err()
    {
        tracing::warn!(
            "webhook: could not read {SYSTEM_NAMESPACE}/{CONFIG_DEFAULTS} within {}s; admitting \
             with Knative's defaults until it can be read",
            initial_sync.as_secs()
        );
    }
    (receive, task)
}

async fn run(
    client: Client,
    defaults: watch::Sender<ClusterDefaults>,
    listed: watch::Sender<bool>,
) {
    let api: Api<ConfigMap> = Api::namespaced(client, SYSTEM_NAMESPACE);
    let config = watcher::Config::default().fields(&format!("metadata.name={CONFIG_DEFAULTS}"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    // The data of the ConfigMap seen during a (re)list, applied once the list is complete.
    let mut pending: Option<BTreeMap<String, String>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => pending = None,
            Ok(Event::InitApply(map)) => pending = Some(map.data.unwrap_or_default()),
            Ok(Event::InitDone) => {
                apply(&defaults, pending.take());
                listed.send_replace(true);
            }
            Ok(Event::Apply(map)) => apply(&defaults, Some(map.data.unwrap_or_default())),
            Ok(Event::Delete(_)) => apply(&defaults, None),
            Err(error) => {
                tracing::warn!(%error, "webhook: watching {SYSTEM_NAMESPACE}/{CONFIG_DEFAULTS}")
            }
        }
    }
}

/// Publishes the defaults `data` sets (Knative's when the ConfigMap is absent), logging what
/// is wrong with it only when the result changes.
fn apply(defaults: &watch::Sender<ClusterDefaults>, data: Option<BTreeMap<String, String>>) {
    let (value, problems) = ClusterDefaults::from_data(&data.unwrap_or_default());
    let changed = defaults.send_if_modified(|current| {
        let changed = *current != value;
        *current = value;
        changed
    });
    if changed {
        for problem in problems {
            tracing::warn!("{problem}");
        }
        tracing::info!(defaults = ?value, "webhook: {CONFIG_DEFAULTS} applied");
    }
}
