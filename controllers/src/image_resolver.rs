//! Pinning a Revision's registry image (the I/O around [`super::image_pin`]): reads
//! `config-deployment`, asks the registry what a tag names now, and says what to record or why
//! it could not.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use wisp_api::knative::{CONFIG_DEPLOYMENT, SYSTEM_NAMESPACE};
use wisp_oci::{Credentials, OciError, Registry};

use super::image_pin::{self, Pinning, ResolutionSettings};

/// The outcome of one attempt to pin an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pinned {
    /// Record this reference: every node pulls it.
    Pin(String),
    /// No pin yet: the condition's reason and message, and whether to try again.
    Failed {
        reason: &'static str,
        message: String,
        retry: bool,
    },
}

/// Resolves tags with the controller's registry settings (`--insecure-registry`).
pub(crate) struct Resolver {
    registry: Registry,
}

impl Resolver {
    pub(crate) fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// The pin of `image` (a registry image) with `credentials` for its registry.
    pub(crate) async fn pin(
        &self,
        client: &Client,
        image: &str,
        credentials: &Credentials,
    ) -> Pinned {
        let settings = deployment_settings(client).await;
        let reference = match image_pin::pinning(image, &settings) {
            Ok(Pinning::AsWritten(pin)) => return Pinned::Pin(pin),
            Ok(Pinning::Resolve(reference)) => reference,
            Err(error) => return failed(image, &OciError::from(error)),
        };
        let resolution = self.registry.resolve(&reference, credentials);
        match tokio::time::timeout(settings.timeout, resolution).await {
            Ok(Ok(digest)) => {
                let pin = reference.pinned(digest).to_string();
                tracing::info!(image, %pin, "resolved the image's tag to a digest");
                Pinned::Pin(pin)
            }
            Ok(Err(error)) => failed(image, &error),
            Err(_) => failed(
                image,
                &OciError::Unreachable {
                    reference: reference.to_string(),
                    registry: reference.registry().to_owned(),
                    scheme: if self.registry.is_insecure(reference.registry()) {
                        "plain HTTP"
                    } else {
                        "HTTPS"
                    },
                    cause: format!(
                        "no answer within {}s (config-deployment {})",
                        settings.timeout.as_secs_f64(),
                        image_pin::TIMEOUT_KEY
                    ),
                    hint: "",
                },
            ),
        }
    }
}

/// The credentials `revision`'s imagePullSecrets give for `image` (anonymous without a match);
/// Secrets that are missing or hold no docker config are logged and passed over, as the
/// kubelet does. Never logs a secret.
pub(crate) async fn pull_credentials(
    client: &Client,
    namespace: &str,
    revision: &wisp_api::knative::Revision,
    image: &str,
) -> Credentials {
    let names = wisp_api::pull_secrets::names(revision);
    let Ok(reference) = wisp_oci::ImageReference::parse(image) else {
        return Credentials::Anonymous;
    };
    if names.is_empty() {
        return Credentials::Anonymous;
    }
    let mut configs = Vec::new();
    for secret in wisp_api::pull_secrets::read(client, namespace, &names).await {
        match secret.map(|secret| {
            let config = wisp_oci::DockerConfig::from_secret(secret.type_.as_deref(), &secret.data);
            (secret.name, config)
        }) {
            Ok((_, Ok(config))) => configs.push(config),
            Ok((name, Err(error))) => {
                tracing::warn!(%namespace, secret = %name, %error, "imagePullSecret passed over");
            }
            Err(problem) => tracing::warn!("{problem}; pulling without it"),
        }
    }
    wisp_oci::DockerConfig::first_match(&configs, &reference)
}

/// Knative's wording for a tag that could not be resolved, so tools matching it still work.
fn failed(image: &str, error: &OciError) -> Pinned {
    let kind = error.kind();
    Pinned::Failed {
        reason: kind.pull_reason(),
        message: format!(
            "Unable to fetch image {image:?}: failed to resolve image to digest: {error}"
        ),
        retry: kind.is_retryable(),
    }
}

/// `config-deployment` as it is now; Knative's defaults when it is absent or cannot be read.
async fn deployment_settings(client: &Client) -> ResolutionSettings {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
    let data = match api.get_opt(CONFIG_DEPLOYMENT).await {
        Ok(map) => map.and_then(|map| map.data),
        Err(error) => {
            tracing::warn!(%error, "cannot read {SYSTEM_NAMESPACE}/{CONFIG_DEPLOYMENT}; using Knative's defaults");
            None
        }
    };
    let (settings, problem) = ResolutionSettings::from_config_map(data.as_ref());
    if let Some(problem) = problem {
        tracing::warn!("{problem}");
    }
    settings
}
