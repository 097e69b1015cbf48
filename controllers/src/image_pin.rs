//! Which image every node of a Revision pulls (pure): a tag resolved to a digest once, when the
//! Revision is new, as Knative pins `status.containerStatuses[].imageDigest`.
//!
//! The pin is decided here, by the leader's Revision controller, and not by each node: a node
//! that resolved the tag itself could see another push of it than the node beside it (or than
//! itself after a restart), and the Revision would run different bytes on different nodes.
//! One writer, once, and every node and restart pulls what it wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use wisp_api::knative::{Revision, RevisionStatus};
use wisp_api::nodes::PINNED_IMAGE_KEY;
use wisp_oci::{ImageReference, ImageSource, ReferenceError};

/// `config-deployment`'s key of the registries whose tags are run as they are.
pub(crate) const SKIPPING_KEY: &str = "registries-skipping-tag-resolving";
/// Its spelling before Knative 0.20, still read.
const SKIPPING_LEGACY_KEY: &str = "registriesSkippingTagResolving";
/// Knative's default: registries of local development tools, whose images never leave a
/// machine.
const DEFAULT_SKIPPING: &str = "kind.local,ko.local,dev.local";
/// `config-deployment`'s key of the longest wait for one resolution.
pub(crate) const TIMEOUT_KEY: &str = "digest-resolution-timeout";
const TIMEOUT_LEGACY_KEY: &str = "digestResolutionTimeout";
/// Knative's default `digest-resolution-timeout`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What `config-deployment` says about tag resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResolutionSettings {
    /// `HOST[:PORT]` of registries whose tags are not resolved.
    pub skipping: BTreeSet<String>,
    pub timeout: Duration,
}

impl ResolutionSettings {
    /// The settings of `config-deployment`'s `data` (`None`: the ConfigMap is absent). A bad
    /// timeout keeps the default, with the problem returned for the log.
    pub(crate) fn from_config_map(
        data: Option<&BTreeMap<String, String>>,
    ) -> (Self, Option<String>) {
        let get = |key: &str, legacy: &str| {
            data.and_then(|data| data.get(key).or_else(|| data.get(legacy)))
                .map(String::as_str)
        };
        let skipping = get(SKIPPING_KEY, SKIPPING_LEGACY_KEY)
            .unwrap_or(DEFAULT_SKIPPING)
            .split(',')
            .map(str::trim)
            .filter(|host| !host.is_empty())
            .map(str::to_owned)
            .collect();
        let (timeout, problem) = match get(TIMEOUT_KEY, TIMEOUT_LEGACY_KEY) {
            None => (DEFAULT_TIMEOUT, None),
            Some(text) => match humantime::parse_duration(text.trim()) {
                Ok(timeout) if !timeout.is_zero() => (timeout, None),
                _ => (
                    DEFAULT_TIMEOUT,
                    Some(format!(
                        "config-deployment {TIMEOUT_KEY} is {text:?}, not a positive duration \
                         such as 10s; using {}s",
                        DEFAULT_TIMEOUT.as_secs()
                    )),
                ),
            },
        };
        (Self { skipping, timeout }, problem)
    }
}

/// What the Revision controller does about a Revision's image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Nothing: the image is a path or URL, or it is pinned already.
    Nothing,
    /// Decide the pin: the image names a registry and no pin is recorded yet.
    Pin(String),
}

/// The Revision's image when it is a registry image still without its pin.
pub(crate) fn plan(revision: &Revision) -> Plan {
    let pinned = revision
        .status
        .as_ref()
        .is_some_and(|status| status.annotations.contains_key(PINNED_IMAGE_KEY));
    if pinned {
        return Plan::Nothing;
    }
    match image(revision) {
        Some(image) if wisp_oci::classify(&image) == ImageSource::Registry => Plan::Pin(image),
        _ => Plan::Nothing,
    }
}

/// `spec.containers[0].image`, trimmed as the nodes read it.
fn image(revision: &Revision) -> Option<String> {
    revision.spec.image().map(|image| image.trim().to_owned())
}

/// How a registry image gets its pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pinning {
    /// Record this reference as it is: it names a digest, or its registry's tags are not
    /// resolved.
    AsWritten(String),
    /// Ask the registry what the tag names now, then record the reference pinned by it.
    Resolve(ImageReference),
}

/// How `image` is pinned under `settings`.
pub(crate) fn pinning(
    image: &str,
    settings: &ResolutionSettings,
) -> Result<Pinning, ReferenceError> {
    let reference = ImageReference::parse(image)?;
    if reference.digest().is_some() || settings.skipping.contains(reference.registry()) {
        return Ok(Pinning::AsWritten(image.to_owned()));
    }
    Ok(Pinning::Resolve(reference))
}

/// `status` with `pin` recorded.
pub(crate) fn pinned(status: &RevisionStatus, pin: &str) -> RevisionStatus {
    let mut next = status.clone();
    next.annotations
        .insert(PINNED_IMAGE_KEY.to_owned(), pin.to_owned());
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn revision(image: &str, pin: Option<&str>) -> Revision {
        let mut status = serde_json::json!({});
        if let Some(pin) = pin {
            status = serde_json::json!({"annotations": {PINNED_IMAGE_KEY: pin}});
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "metadata": {"name": "a-00001", "namespace": "default"},
            "spec": {"containers": [{"image": image}]},
            "status": status,
        }))
        .unwrap()
    }

    fn defaults() -> ResolutionSettings {
        ResolutionSettings::from_config_map(None).0
    }

    #[test]
    fn only_registry_images_without_a_pin_are_pinned() {
        assert_eq!(
            plan(&revision(" localhost:5000/hello:v1 ", None)),
            Plan::Pin("localhost:5000/hello:v1".into())
        );
        assert_eq!(
            plan(&revision("localhost:5000/hello:v1", Some("x"))),
            Plan::Nothing
        );
        assert_eq!(plan(&revision("hello.wasm", None)), Plan::Nothing);
        assert_eq!(
            plan(&revision("https://example.com/a.wasm", None)),
            Plan::Nothing
        );
    }

    #[test]
    fn tags_are_resolved_digests_and_skipped_registries_kept() {
        let settings = defaults();
        assert!(matches!(
            pinning("localhost:5000/hello:v1", &settings),
            Ok(Pinning::Resolve(reference)) if reference.to_string() == "localhost:5000/hello:v1"
        ));
        let by_digest = format!("localhost:5000/hello@sha256:{HEX}");
        assert_eq!(
            pinning(&by_digest, &settings),
            Ok(Pinning::AsWritten(by_digest.clone()))
        );
        assert_eq!(
            pinning("ko.local/hello:v1", &settings),
            Ok(Pinning::AsWritten("ko.local/hello:v1".into()))
        );
        assert!(pinning("localhost:5000/Hello", &settings).is_err());
    }

    #[test]
    fn config_deployment_sets_the_skipped_registries_and_timeout() {
        let data = BTreeMap::from([
            (
                SKIPPING_KEY.to_owned(),
                " localhost:5000 , registry.local ,".to_owned(),
            ),
            (TIMEOUT_KEY.to_owned(), "30s".to_owned()),
        ]);
        let (settings, problem) = ResolutionSettings::from_config_map(Some(&data));
        assert_eq!(problem, None);
        assert_eq!(
            settings.skipping,
            BTreeSet::from(["localhost:5000".to_owned(), "registry.local".to_owned()])
        );
        assert_eq!(settings.timeout, Duration::from_secs(30));
        assert!(matches!(
            pinning("ko.local/hello:v1", &settings),
            Ok(Pinning::Resolve(_))
        ));

        let legacy = BTreeMap::from([(SKIPPING_LEGACY_KEY.to_owned(), "old.local".to_owned())]);
        let (settings, _) = ResolutionSettings::from_config_map(Some(&legacy));
        assert_eq!(settings.skipping, BTreeSet::from(["old.local".to_owned()]));

        let defaults = defaults();
        assert_eq!(defaults.timeout, DEFAULT_TIMEOUT);
        assert!(defaults.skipping.contains("kind.local"));
    }

    #[test]
    fn a_bad_timeout_keeps_the_default_and_says_so() {
        let data = BTreeMap::from([(TIMEOUT_KEY.to_owned(), "0s".to_owned())]);
        let (settings, problem) = ResolutionSettings::from_config_map(Some(&data));
        assert_eq!(settings.timeout, DEFAULT_TIMEOUT);
        assert!(problem.unwrap().contains("digest-resolution-timeout"));
    }

    #[test]
    fn the_pin_is_recorded_in_the_status_annotations() {
        let status = pinned(&RevisionStatus::default(), "r/x@sha256:1");
        assert_eq!(
            status.annotations.get(PINNED_IMAGE_KEY).map(String::as_str),
            Some("r/x@sha256:1")
        );
    }
}
