//! From a Knative revision spec (`spec.template.spec` of a Service, or `spec` of a Revision) to
//! the [`RevisionConfig`] the data plane takes, with the checks Knative's admission would make.
//! Shared by `wisp serve` (a services file) and the sync (Revisions from the API), so both read
//! a spec the same way.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use wisp_api::instance_reuse::InstanceReuse;
use wisp_api::quantity::{MIN_REPLICA_MEMORY, MIN_REPLICA_MEMORY_TEXT};
use wisp_api::revision_key::RevisionKey;
use wisp_api::serving::{MAX_CONTAINER_CONCURRENCY, MAX_TIMEOUT_SECONDS, RevisionSpec};
use wisp_runtime::ArtifactSource;

use crate::dataplane::RevisionConfig;

/// Why a spec cannot run: the message names the field (under the caller's prefix) and says what
/// to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// Where a spec sits in its object, for messages: `spec.template.spec` in a Service,
/// `spec` in a Revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecPath<'a>(pub &'a str);

/// The revision `key` runs `spec` with `annotations`; relative image paths are taken from
/// `base_dir`. `service` and `configuration` are left as [`RevisionConfig::new`] guesses them;
/// callers that know the owners set them.
pub fn revision_config(
    key: RevisionKey,
    spec: &RevisionSpec,
    annotations: &BTreeMap<String, String>,
    base_dir: &Path,
    at: SpecPath<'_>,
) -> Result<RevisionConfig, SpecError> {
    let at = at.0;
    let fail = |message: String| Err(SpecError(message));
    let container = match spec.containers.as_slice() {
        [container] => container,
        [] => {
            return fail(format!(
                "{at}.containers is empty; add one container whose image is the component's \
                 path or URL"
            ));
        }
        more => {
            return fail(format!(
                "{at}.containers has {} entries; wisp runs exactly one component per revision, \
                 so keep one container",
                more.len()
            ));
        }
    };
    let image = container.image.trim();
    if image.is_empty() {
        return fail(format!(
            "{at}.containers[0].image is empty; set it to the path or URL of a .wasm component"
        ));
    }
    let component = resolve_image(image, base_dir)?;

    let container_concurrency = match spec.container_concurrency {
        None => 0,
        Some(value) if (0..=MAX_CONTAINER_CONCURRENCY).contains(&value) => value.unsigned_abs(),
        Some(value) => {
            return fail(format!(
                "{at}.containerConcurrency is {value}; it must be from 0 (unlimited) to \
                 {MAX_CONTAINER_CONCURRENCY}"
            ));
        }
    };
    let timeout_seconds = spec.timeout_seconds_or_default();
    if !(1..=MAX_TIMEOUT_SECONDS).contains(&timeout_seconds) {
        return fail(format!(
            "{at}.timeoutSeconds is {timeout_seconds}; it must be from 1 to {MAX_TIMEOUT_SECONDS}"
        ));
    }
    let memory_limit = match container.resources.memory_limit() {
        None => None,
        Some(quantity) => match quantity.memory_bytes() {
            Ok(0) => {
                return fail(format!(
                    "{at}.containers[0].resources.limits.memory is 0; give the replica some \
                     memory, e.g. 128Mi, or remove the limit"
                ));
            }
            // Stored before admission refused it: no component starts in so little.
            Ok(bytes) if bytes < MIN_REPLICA_MEMORY => {
                return fail(format!(
                    "{at}.containers[0].resources.limits.memory is {bytes} B, below the \
                     {MIN_REPLICA_MEMORY_TEXT} a replica needs to hold a WebAssembly component; \
                     set it to {MIN_REPLICA_MEMORY_TEXT} or more, e.g. 128Mi, or remove the limit"
                ));
            }
            Ok(bytes) => Some(bytes),
            Err(error) => {
                return fail(format!(
                    "{at}.containers[0].resources.limits.memory: {error}"
                ));
            }
        },
    };
    if container.ports.len() > 1 {
        return fail(format!(
            "{at}.containers[0].ports has more than one port; Knative allows one"
        ));
    }
    let mut env = Vec::with_capacity(container.env.len());
    for (index, var) in container.env.iter().enumerate() {
        if var.name.is_empty() {
            return fail(format!(
                "{at}.containers[0].env[{index}] has no name; name the variable"
            ));
        }
        if var.value_from.is_some() {
            return fail(format!(
                "env {} uses valueFrom (a ConfigMap or Secret reference), which wisp does not \
                 resolve; give it a literal value",
                var.name
            ));
        }
        env.push((var.name.clone(), var.value.clone().unwrap_or_default()));
    }

    if let Err(errors) = InstanceReuse::from_annotations(annotations) {
        let metadata = format!(
            "{}metadata.annotations",
            at.strip_suffix("spec").unwrap_or("")
        );
        let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return fail(format!("{metadata}: {}", reasons.join("; ")));
    }

    let mut revision = RevisionConfig::new(key, component);
    revision.container_concurrency = u32::try_from(container_concurrency).unwrap_or(u32::MAX);
    revision.timeout = Duration::from_secs(timeout_seconds.unsigned_abs());
    revision.memory_limit = memory_limit;
    revision.env = env;
    revision.annotations = annotations.clone();
    Ok(revision)
}

/// Where the data plane finds the component: relative paths are taken from `base_dir` (the
/// manifest's directory, as a Kustomization would, or the node's image directory), URLs,
/// registry images and absolute paths as they are.
pub fn resolve_image(image: &str, base_dir: &Path) -> Result<String, SpecError> {
    match ArtifactSource::parse(image) {
        ArtifactSource::Url(url) | ArtifactSource::Oci(url) => Ok(url),
        ArtifactSource::File(path) if path.is_absolute() => Ok(path.display().to_string()),
        ArtifactSource::File(path) => {
            let joined = base_dir.join(path);
            joined.to_str().map(str::to_owned).ok_or_else(|| {
                SpecError(format!(
                    "the component path {} is not valid UTF-8; move the file or the manifest to \
                     a path that is",
                    joined.display()
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> RevisionSpec {
        serde_json::from_value(json).unwrap()
    }

    fn convert(json: serde_json::Value) -> Result<RevisionConfig, SpecError> {
        revision_config(
            RevisionKey::new("default", "hello-00001"),
            &spec(json),
            &BTreeMap::new(),
            Path::new("/images"),
            SpecPath("spec"),
        )
    }

    #[test]
    fn reads_every_field_and_resolves_relative_images() {
        let config = convert(serde_json::json!({
            "containerConcurrency": 4,
            "timeoutSeconds": 30,
            "containers": [{
                "image": "hello.wasm",
                "env": [{"name": "A", "value": "1"}, {"name": "B"}],
                "resources": {"limits": {"memory": "64Mi"}},
            }],
        }))
        .unwrap();
        assert_eq!(config.component, "/images/hello.wasm");
        assert_eq!(config.container_concurrency, 4);
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.memory_limit, Some(64 << 20));
        assert_eq!(
            config.env,
            vec![("A".into(), "1".into()), ("B".into(), String::new())]
        );
    }

    #[test]
    fn instance_reuse_annotations_are_checked() {
        let spec = spec(serde_json::json!({"containers": [{"image": "hello.wasm"}]}));
        let with = |value: &str| {
            revision_config(
                RevisionKey::new("default", "hello-00001"),
                &spec,
                &BTreeMap::from([(
                    "wisp.dev/max-instance-reuse-count".to_owned(),
                    value.to_owned(),
                )]),
                Path::new("/images"),
                SpecPath("spec.template.spec"),
            )
        };
        assert!(with("64").is_ok());
        assert_eq!(
            with("none").unwrap_err().0,
            "spec.template.metadata.annotations: wisp.dev/max-instance-reuse-count=\"none\": \
             expected a whole number of requests from 1 to 4294967295"
        );
    }

    #[test]
    fn urls_and_absolute_paths_stay_as_they_are() {
        let base = Path::new("/images");
        assert_eq!(
            resolve_image("https://example.com/a.wasm", base).unwrap(),
            "https://example.com/a.wasm"
        );
        assert_eq!(resolve_image("/abs/a.wasm", base).unwrap(), "/abs/a.wasm");
    }

    #[test]
    fn messages_name_the_field_under_the_prefix() {
        let error = convert(serde_json::json!({"containers": []})).unwrap_err();
        assert!(error.0.starts_with("spec.containers is empty"), "{error}");
        let error = convert(serde_json::json!({
            "containerConcurrency": 1001, "containers": [{"image": "a.wasm"}]
        }))
        .unwrap_err();
        assert!(
            error.0.contains("spec.containerConcurrency is 1001"),
            "{error}"
        );
        let error = convert(serde_json::json!({
            "containers": [{"image": "a.wasm", "env": [{"name": "S", "valueFrom": {}}]}]
        }))
        .unwrap_err();
        assert!(error.0.contains("env S uses valueFrom"), "{error}");
    }

    #[test]
    fn a_memory_limit_below_the_minimum_is_refused() {
        let error = convert(serde_json::json!({
            "containers": [{"image": "a.wasm", "resources": {"limits": {"memory": "1"}}}]
        }))
        .unwrap_err();
        assert_eq!(
            error.0,
            "spec.containers[0].resources.limits.memory is 1 B, below the 2Mi a replica needs to \
             hold a WebAssembly component; set it to 2Mi or more, e.g. 128Mi, or remove the limit"
        );
        let ok = convert(serde_json::json!({
            "containers": [{"image": "a.wasm", "resources": {"limits": {"memory": "2Mi"}}}]
        }))
        .unwrap();
        assert_eq!(ok.memory_limit, Some(MIN_REPLICA_MEMORY));
    }
}
