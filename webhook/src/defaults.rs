//! `knative-serving/config-defaults` and `config-autoscaler` (its scale bounds), watched live:
//! every review reads the value current at that moment, so a change of either ConfigMap
//! applies to the next admission, as it does in the embedded API server (which reads them from
//! its store on every write). An absent ConfigMap means Knative's defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wisp_api::knative::{CONFIG_AUTOSCALER, CONFIG_DEFAULTS, SYSTEM_NAMESPACE};
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
    // Both ConfigMaps in one watch of the namespace (a field selector names only one).
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut current = Sources::default();
    // The ConfigMaps seen during a (re)list, applied once the list is complete.
    let mut pending = Sources::default();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => pending = Sources::default(),
            Ok(Event::InitApply(map)) => {
                pending.set(&map.name_any(), map.data);
            }
            Ok(Event::InitDone) => {
                current = std::mem::take(&mut pending);
                apply(&defaults, &current);
                listed.send_replace(true);
            }
            Ok(Event::Apply(map)) => {
                if current.set(&map.name_any(), map.data) {
                    apply(&defaults, &current);
                }
            }
            Ok(Event::Delete(map)) => {
                if current.set(&map.name_any(), None) {
                    apply(&defaults, &current);
                }
            }
            Err(error) => tracing::warn!(
                %error,
                "webhook: watching {SYSTEM_NAMESPACE}/{CONFIG_DEFAULTS} and {CONFIG_AUTOSCALER}"
            ),
        }
    }
}

/// The data of the two ConfigMaps admission reads (`None`: absent, or no data).
#[derive(Default)]
struct Sources {
    defaults: Option<BTreeMap<String, String>>,
    autoscaler: Option<BTreeMap<String, String>>,
}

impl Sources {
    /// Records `name`'s data (or its absence); whether it was one admission reads.
    fn set(&mut self, name: &str, data: Option<BTreeMap<String, String>>) -> bool {
        match name {
            CONFIG_DEFAULTS => self.defaults = data,
            CONFIG_AUTOSCALER => self.autoscaler = data,
            _ => return false,
        }
        true
    }
}

/// Publishes the defaults the ConfigMaps set (Knative's where one is absent), logging what is
/// wrong with them only when the result changes.
fn apply(defaults: &watch::Sender<ClusterDefaults>, sources: &Sources) {
    let empty = BTreeMap::new();
    let (value, mut problems) =
        ClusterDefaults::from_data(sources.defaults.as_ref().unwrap_or(&empty));
    let (value, autoscaler_problems) =
        value.with_autoscaler(sources.autoscaler.as_ref().unwrap_or(&empty));
    problems.extend(autoscaler_problems);
    let changed = defaults.send_if_modified(|current| {
        let changed = *current != value;
        *current = value;
        changed
    });
    if changed {
        for problem in problems {
            tracing::warn!("{problem}");
        }
        tracing::info!(defaults = ?value, "webhook: {CONFIG_DEFAULTS} and {CONFIG_AUTOSCALER} applied");
    }
}
