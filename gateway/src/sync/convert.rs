//! A Revision object as the data plane takes it.

use std::path::Path;

use kube::ResourceExt;
use wisp_api::knative::{Revision, USER_CONTAINER, labels};
use wisp_api::revision_key::RevisionKey;

use super::failure::Failure;
use super::spec::{SpecError, SpecPath, revision_config};
use crate::dataplane::RevisionConfig;

/// What the sync needs of one Revision besides its [`RevisionConfig`].
#[derive(Clone, Debug, PartialEq)]
pub struct Converted {
    pub config: RevisionConfig,
    /// `containers[0].name`, defaulted as Knative does: `containerStatuses[].name`.
    pub container_name: String,
    /// `containers[0].image` as written: failure messages quote it.
    pub image: String,
    /// `containers[0].readinessProbe.httpGet.path` (`/` when the probe names no path): asked
    /// once the component is ready, and the revision is Ready only if it answers 2xx.
    pub readiness_path: Option<String>,
}

/// The key of a Revision (its namespace defaulted as the API defaults it).
pub fn revision_key(revision: &Revision) -> RevisionKey {
    RevisionKey::new(
        revision.namespace().unwrap_or_else(|| "default".into()),
        revision.name_any(),
    )
}

/// Converts a Revision: its spec through [`revision_config`] (relative images under
/// `image_base_dir`), its owners from its labels.
pub fn convert(revision: &Revision, image_base_dir: &Path) -> Result<Converted, Failure> {
    let spec = revision.spec.typed().map_err(|error| {
        Failure::spec(&SpecError(format!(
            "spec cannot be read: {error}; fix the Configuration's template"
        )))
    })?;
    let mut config = revision_config(
        revision_key(revision),
        &spec,
        revision.annotations(),
        image_base_dir,
        SpecPath("spec"),
    )
    .map_err(|error| Failure::spec(&error))?;
    let labels = revision.labels();
    if let Some(configuration) = labels.get(labels::CONFIGURATION) {
        config.configuration.clone_from(configuration);
        // A Configuration without a Service: Knative leaves K_SERVICE empty, wisp names the
        // Configuration so metrics still group its revisions.
        config.service.clone_from(configuration);
    }
    if let Some(service) = labels.get(labels::SERVICE) {
        config.service.clone_from(service);
    }
    config.recorded_digest = recorded_digest(revision);
    if let Some(pin) = pinned_image(revision) {
        config.component = pin.to_owned();
    }
    let container = spec.containers.first();
    let container_name = container
        .map(|c| c.name.as_str())
        .filter(|name| !name.is_empty())
        .unwrap_or(USER_CONTAINER)
        .to_owned();
    let image = container
        .map(|c| c.image.trim().to_owned())
        .unwrap_or_default();
    let readiness_path = revision
        .spec
        .fields
        .get("containers")
        .and_then(|containers| containers.get(0))
        .and_then(|container| container.pointer("/readinessProbe/httpGet"))
        .map(|http_get| {
            let path = http_get.get("path").and_then(|p| p.as_str()).unwrap_or("/");
            if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            }
        });
    Ok(Converted {
        config,
        container_name,
        image,
        readiness_path,
    })
}

/// The image reference the leader pinned a registry image to (see
/// [`wisp_api::nodes::PINNED_IMAGE_KEY`]), else the `REPO@sha256:…` Knative's own controller
/// writes into `containerStatuses[].imageDigest` (a node joined to a cluster with Knative).
fn pinned_image(revision: &Revision) -> Option<&str> {
    annotation_or_image_digest(revision, wisp_api::nodes::PINNED_IMAGE_KEY, |digest| {
        digest.contains("@sha256:")
    })
}

/// The status annotation `key`, else the first container's `imageDigest` when `fits` it: a pin
/// (`REPO@sha256:…`) and the bytes' digest share that field on revisions written before either
/// annotation.
fn annotation_or_image_digest<'a>(
    revision: &'a Revision,
    key: &str,
    fits: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    let status = revision.status.as_ref()?;
    status
        .annotations
        .get(key)
        .or_else(|| {
            status
                .container_statuses
                .first()?
                .image_digest
                .as_ref()
                .filter(|digest| fits(digest))
        })
        .map(String::as_str)
}

/// Whether the revision names a registry image whose pin is not recorded yet: no node loads
/// it before then, so that every node (and every restart) pulls the one digest the leader
/// resolved, never a tag pushed again in between.
pub fn awaiting_pin(revision: &Revision) -> bool {
    let image = revision.spec.image().map(str::trim);
    image.is_some_and(|image| wisp_oci::classify(image) == wisp_oci::ImageSource::Registry)
        && pinned_image(revision).is_none()
}

/// The digest recorded for the revision's bytes: the annotation the first node wrote, else the
/// `imageDigest` of a revision from before it was written.
fn recorded_digest(revision: &Revision) -> Option<wisp_runtime::Digest> {
    // Knative's `REPO@sha256:…` pins an image, not the component's bytes.
    let text =
        annotation_or_image_digest(revision, wisp_api::nodes::RECORDED_DIGEST_KEY, |digest| {
            !digest.contains('@')
        })?;
    let digest = wisp_runtime::Digest::parse(text);
    if digest.is_none() {
        tracing::warn!(
            revision = %revision_key(revision),
            recorded = text,
            "the recorded image digest is not sha256:<hex>; ignoring it"
        );
    }
    digest
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn revision(labels: &[(&str, &str)], spec: serde_json::Value) -> Revision {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "metadata": {
                "name": "hello-00001",
                "namespace": "team",
                "labels": labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
                "annotations": {"autoscaling.knative.dev/min-scale": "1"},
            },
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn owners_come_from_the_labels() {
        let converted = convert(
            &revision(
                &[(labels::SERVICE, "svc"), (labels::CONFIGURATION, "cfg")],
                serde_json::json!({"containers": [{"name": "web", "image": "a.wasm"}]}),
            ),
            Path::new("/img"),
        )
        .unwrap();
        assert_eq!(
            converted.config.key,
            RevisionKey::new("team", "hello-00001")
        );
        assert_eq!(converted.config.service, "svc");
        assert_eq!(converted.config.configuration, "cfg");
        assert_eq!(converted.config.component, "/img/a.wasm");
        assert_eq!(
            converted.config.annotations["autoscaling.knative.dev/min-scale"],
            "1"
        );
        assert_eq!(converted.container_name, "web");
        assert_eq!(converted.image, "a.wasm");

        let bare = convert(
            &revision(
                &[(labels::CONFIGURATION, "cfg")],
                serde_json::json!({"containers": [{"image": "a.wasm"}]}),
            ),
            Path::new("/img"),
        )
        .unwrap();
        assert_eq!(bare.config.service, "cfg");
        assert_eq!(bare.container_name, USER_CONTAINER);
    }

    #[test]
    fn a_bad_spec_is_an_invalid_spec_failure() {
        let failure = convert(
            &revision(&[], serde_json::json!({"containers": []})),
            Path::new("/img"),
        )
        .unwrap_err();
        assert_eq!(failure.reason, super::super::failure::INVALID_SPEC);
        let failure = convert(
            &revision(&[], serde_json::json!({"containers": "nope"})),
            Path::new("/img"),
        )
        .unwrap_err();
        assert!(
            failure.message.starts_with("spec cannot be read"),
            "{}",
            failure.message
        );
    }
}
