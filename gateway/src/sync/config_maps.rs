//! Knative's cluster-wide ConfigMaps in `knative-serving`, applied live: `config-domain` to the
//! gateway's domain, `config-autoscaler` to the autoscaler. An absent ConfigMap means Knative's
//! defaults; a bad value is logged and the previous setting kept.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use tokio::sync::watch;
use wisp_api::knative::{CONFIG_AUTOSCALER, CONFIG_DOMAIN, SYSTEM_NAMESPACE};
use wisp_autoscaler::AutoscalerConfig;

use super::Shared;
use crate::routing::{Domain, DomainError};

/// The gateway's domain from `config-domain` (the rule the Route controller uses too).
pub fn domain_from(data: &BTreeMap<String, String>) -> Result<Domain, DomainError> {
    Domain::new(&wisp_api::knative::domain::default_domain(Some(data)))
}

/// Watches the ConfigMaps until dropped. Sets `loaded` once the first list is applied.
pub(super) async fn run(shared: Arc<Shared>, loaded: watch::Sender<bool>) {
    let api: Api<ConfigMap> = Api::namespaced(shared.client.clone(), SYSTEM_NAMESPACE);
    let mut state = Applied::default();
    loop {
        let mut events = watcher::watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut listed: Option<HashSet<String>> = None;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => listed = Some(HashSet::new()),
                Ok(Event::InitApply(map)) => {
                    if let Some(listed) = listed.as_mut() {
                        listed.insert(map.name_any());
                    }
                    state.apply(&shared, &map.name_any(), map.data).await;
                }
                Ok(Event::Apply(map)) => state.apply(&shared, &map.name_any(), map.data).await,
                Ok(Event::Delete(map)) => state.apply(&shared, &map.name_any(), None).await,
                Ok(Event::InitDone) => {
                    let listed = listed.take().unwrap_or_default();
                    for name in [CONFIG_DOMAIN, CONFIG_AUTOSCALER] {
                        if !listed.contains(name) {
                            state.apply(&shared, name, None).await;
                        }
                    }
                    loaded.send_replace(true);
                }
                Err(error) => tracing::warn!(%error, "watching knative-serving ConfigMaps"),
            }
        }
        tokio::time::sleep(super::RESTART_DELAY).await;
    }
}

/// The data last applied of each ConfigMap (`None`: absent, defaults), so events that change
/// nothing (a label, a resync) apply nothing.
#[derive(Default)]
struct Applied {
    domain: Option<Option<BTreeMap<String, String>>>,
    autoscaler: Option<Option<BTreeMap<String, String>>>,
}

impl Applied {
    async fn apply(&mut self, shared: &Shared, name: &str, data: Option<BTreeMap<String, String>>) {
        let slot = match name {
            CONFIG_DOMAIN => &mut self.domain,
            CONFIG_AUTOSCALER => &mut self.autoscaler,
            _ => return,
        };
        if slot.as_ref() == Some(&data) {
            return;
        }
        *slot = Some(data.clone());
        let data = data.unwrap_or_default();
        if name == CONFIG_DOMAIN {
            apply_domain(shared, &data).await;
        } else {
            apply_autoscaler(shared, &data);
        }
    }
}

async fn apply_domain(shared: &Shared, data: &BTreeMap<String, String>) {
    match domain_from(data) {
        Ok(domain) if domain == shared.data_plane.domain() => {}
        Ok(domain) => {
            tracing::info!(
                domain = domain.as_str(),
                "config-domain: gateway domain changed"
            );
            for problem in shared.data_plane.set_domain(domain).await {
                tracing::warn!(%problem, "route not served under the new domain");
            }
        }
        Err(error) => tracing::warn!(
            %error,
            kept = shared.data_plane.domain().as_str(),
            "config-domain: invalid domain, keeping the current one"
        ),
    }
}

fn apply_autoscaler(shared: &Shared, data: &BTreeMap<String, String>) {
    match AutoscalerConfig::from_map(data) {
        Ok(config) => {
            tracing::info!("config-autoscaler applied");
            let autoscaler = shared.data_plane.autoscaler();
            for (revision, error) in autoscaler.update_config(config) {
                tracing::warn!(%revision, %error, "revision keeps its previous scaling settings");
            }
        }
        Err(error) => tracing::warn!(
            %error,
            "config-autoscaler: invalid value, keeping the previous configuration"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_key_with_an_empty_value_is_the_domain() {
        assert_eq!(domain_from(&data(&[])).unwrap().as_str(), "localhost");
        let with_example = data(&[("_example", ""), ("example.com", "")]);
        assert_eq!(domain_from(&with_example).unwrap().as_str(), "example.com");
        // A key with a selector applies to some routes only; it is not the default.
        let selected = data(&[("internal.net", "selector:\n  app: x\n")]);
        assert_eq!(domain_from(&selected).unwrap().as_str(), "localhost");
        assert!(domain_from(&data(&[("not a domain", "")])).is_err());
    }
}
