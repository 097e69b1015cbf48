//! Keeps the serving CA in the `caBundle` of every webhook of the two webhook configurations.
//! `kubectl apply` of the shipped manifests (which carry no caBundle) resets it, so this is a
//! reconcile loop rather than a one-off write: it runs when either configuration changes (a
//! watch), when the CA changes (a renewal), and every few minutes regardless (in case the watch
//! is not allowed or broke). The CA written is the one in the shared Secret, so replicas agree
//! on it even while one of them has renewed and the others have not re-read the Secret yet.
//! Only `clientConfig.caBundle` is written, so a configuration that
//! calls the webhook by `clientConfig.url` instead of `clientConfig.service` is kept as it is.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

/// The MutatingWebhookConfiguration (and its one webhook) Knative names its defaulting webhook.
pub const MUTATING_CONFIGURATION: &str = "webhook.serving.knative.dev";
/// The ValidatingWebhookConfiguration (and its one webhook); kube-apiserver names this webhook
/// in refusals, so it must be the name the embedded server's messages carry.
pub const VALIDATING_CONFIGURATION: &str = wisp_control::admission::WEBHOOK_NAME;

/// How often the configurations are checked even when no watch event came.
const RESYNC: Duration = Duration::from_secs(300);

/// The webhooks of a configuration: name and current caBundle.
trait Webhooks:
    kube::Resource<DynamicType = ()>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    const KIND: &'static str;
    const NAME: &'static str;
    fn bundles(&self) -> Vec<(&str, Option<&[u8]>)>;
}

impl Webhooks for MutatingWebhookConfiguration {
    const KIND: &'static str = "MutatingWebhookConfiguration";
    const NAME: &'static str = MUTATING_CONFIGURATION;
    fn bundles(&self) -> Vec<(&str, Option<&[u8]>)> {
        self.webhooks
            .iter()
            .flatten()
            .map(|hook| {
                let ca = hook.client_config.ca_bundle.as_ref();
                (hook.name.as_str(), ca.map(|ca| ca.0.as_slice()))
            })
            .collect()
    }
}

impl Webhooks for ValidatingWebhookConfiguration {
    const KIND: &'static str = "ValidatingWebhookConfiguration";
    const NAME: &'static str = VALIDATING_CONFIGURATION;
    fn bundles(&self) -> Vec<(&str, Option<&[u8]>)> {
        self.webhooks
            .iter()
            .flatten()
            .map(|hook| {
                let ca = hook.client_config.ca_bundle.as_ref();
                (hook.name.as_str(), ca.map(|ca| ca.0.as_slice()))
            })
            .collect()
    }
}

/// The strategic merge patch that gives every webhook whose caBundle is not `ca` that CA, or
/// `None` when all already trust it. Webhooks are a list merged by `name` in both
/// configuration kinds, so naming each one patches it in place whatever else it holds.
pub fn patch_for<'a>(
    webhooks: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ca: &[u8],
) -> Option<Value> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(ca);
    let stale: Vec<Value> = webhooks
        .into_iter()
        .filter(|(_, current)| *current != Some(ca))
        .map(|(name, _)| json!({"name": name, "clientConfig": {"caBundle": encoded}}))
        .collect();
    (!stale.is_empty()).then(|| json!({"webhooks": stale}))
}

/// Sets `ca` on both configurations where it is missing; a configuration that does not exist
/// (not applied yet) is skipped.
pub async fn reconcile(client: &Client, ca: &[u8]) -> Result<(), kube::Error> {
    reconcile_one::<MutatingWebhookConfiguration>(client, ca).await?;
    reconcile_one::<ValidatingWebhookConfiguration>(client, ca).await
}

async fn reconcile_one<K: Webhooks>(client: &Client, ca: &[u8]) -> Result<(), kube::Error> {
    let api: Api<K> = Api::all(client.clone());
    let Some(configuration) = api.get_opt(K::NAME).await? else {
        tracing::debug!(kind = K::KIND, name = K::NAME, "webhook: not installed yet");
        return Ok(());
    };
    let Some(patch) = patch_for(configuration.bundles(), ca) else {
        return Ok(());
    };
    api.patch(K::NAME, &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    tracing::info!(
        kind = K::KIND,
        name = K::NAME,
        "webhook: set the serving CA as caBundle"
    );
    Ok(())
}

/// Where the CA to trust comes from: the Secret every replica shares, and this replica's own.
pub struct CaSource {
    /// The certificate Secret's API (namespaced).
    pub secrets: Api<Secret>,
    /// The Secret's name.
    pub name: String,
    /// The CA bundle this replica serves under; changes when it renews.
    pub own: watch::Receiver<String>,
    /// Woken when the Secret holds another CA than this replica's, so it re-reads the Secret
    /// now rather than at its next periodic check.
    pub recheck: Arc<Notify>,
}

impl CaSource {
    /// The CA bundle to write: the Secret's, which all replicas converge on (so two replicas
    /// that briefly disagree after a renewal never patch back and forth); this replica's own
    /// when the Secret cannot be read or is gone (it is then recreated by the recheck).
    async fn desired(&mut self) -> String {
        let own = self.own.borrow_and_update().clone();
        let stored = match self.secrets.get_opt(&self.name).await {
            Ok(secret) => secret.as_ref().and_then(crate::secret::bundle_of),
            Err(error) => {
                tracing::debug!(%error, "webhook: cannot read the certificate Secret");
                None
            }
        };
        match stored {
            Some(bundle) if bundle.ca == own => own,
            Some(bundle) => {
                self.recheck.notify_one();
                bundle.ca
            }
            None => {
                self.recheck.notify_one();
                own
            }
        }
    }
}

/// Runs until dropped: reconciles on every change of either configuration, of this replica's
/// CA, and every [`RESYNC`].
pub async fn run(client: Client, mut source: CaSource) {
    let mut mutating = changes::<MutatingWebhookConfiguration>(&client);
    let mut validating = changes::<ValidatingWebhookConfiguration>(&client);
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            Some(()) = mutating.next() => {}
            Some(()) = validating.next() => {}
            changed = source.own.changed() => if changed.is_err() {
                return;
            },
            _ = resync.tick() => {}
        }
        let ca = source.desired().await;
        if let Err(error) = reconcile(&client, ca.as_bytes()).await {
            tracing::warn!(%error, "webhook: cannot set caBundle on the webhook configurations; retrying");
        }
    }
}

/// One item per change of `K`'s configuration (watched by name, so RBAC may be limited to it).
fn changes<K: Webhooks>(client: &Client) -> futures::stream::BoxStream<'static, ()> {
    let api: Api<K> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("metadata.name={}", K::NAME));
    watcher::watcher(api, config)
        .default_backoff()
        .filter_map(|event| async move {
            match event {
                Ok(Event::Apply(_) | Event::InitApply(_)) => Some(()),
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(%error, kind = K::KIND, "webhook: watching the webhook configuration");
                    None
                }
            }
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhook, ServiceReference, WebhookClientConfig,
    };

    use super::*;

    const CA: &[u8] = b"-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n";

    fn hook(name: &str, config: WebhookClientConfig) -> MutatingWebhook {
        MutatingWebhook {
            name: name.into(),
            client_config: config,
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            ..MutatingWebhook::default()
        }
    }

    #[test]
    fn only_webhooks_without_the_ca_are_patched_by_name() {
        let by_service = WebhookClientConfig {
            service: Some(ServiceReference {
                name: "wisp-webhook".into(),
                namespace: "wisp-system".into(),
                path: Some("/defaulting".into()),
                port: Some(443),
            }),
            ..WebhookClientConfig::default()
        };
        // The lead's tests call the webhook by URL on loopback instead of through a Service.
        let by_url = WebhookClientConfig {
            url: Some("https://127.0.0.1:8443/defaulting".into()),
            ca_bundle: Some(ByteString(b"stale".to_vec())),
            ..WebhookClientConfig::default()
        };
        let current = WebhookClientConfig {
            ca_bundle: Some(ByteString(CA.to_vec())),
            ..by_service.clone()
        };
        let configuration = MutatingWebhookConfiguration {
            webhooks: Some(vec![
                hook("a.example.com", by_service),
                hook("b.example.com", by_url),
                hook("c.example.com", current),
            ]),
            ..MutatingWebhookConfiguration::default()
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(CA);
        assert_eq!(
            patch_for(configuration.bundles(), CA),
            Some(json!({"webhooks": [
                {"name": "a.example.com", "clientConfig": {"caBundle": encoded}},
                {"name": "b.example.com", "clientConfig": {"caBundle": encoded}},
            ]}))
        );
    }

    #[test]
    fn nothing_to_patch_when_every_webhook_trusts_the_ca() {
        let trusting = WebhookClientConfig {
            ca_bundle: Some(ByteString(CA.to_vec())),
            url: Some("https://127.0.0.1:1/validation".into()),
            ..WebhookClientConfig::default()
        };
        let configuration = MutatingWebhookConfiguration {
            webhooks: Some(vec![hook("a.example.com", trusting)]),
            ..MutatingWebhookConfiguration::default()
        };
        assert_eq!(patch_for(configuration.bundles(), CA), None);
        assert_eq!(
            patch_for(MutatingWebhookConfiguration::default().bundles(), CA),
            None
        );
    }

    #[test]
    fn the_configuration_names_are_knatives() {
        assert_eq!(MUTATING_CONFIGURATION, "webhook.serving.knative.dev");
        assert_eq!(
            VALIDATING_CONFIGURATION,
            "validation.webhook.serving.knative.dev"
        );
    }
}
