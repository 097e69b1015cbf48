//! `wisp up --manifests DIR`: the YAML files of a directory, applied through the API at start-up
//! as `kubectl apply --server-side` would (create, or merge into what is there), so a restart
//! with the same directory changes nothing that is already as written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use serde::Deserialize;
use serde_json::Value;
use wisp_api::knative::{ConditionStatus, Service, condition_types, conditions};

/// The field manager wisp's own applies are recorded under.
const FIELD_MANAGER: &str = "wisp-up";

/// One YAML document of a file in the directory.
#[derive(Debug)]
pub struct Manifest {
    /// `file, document N` for messages.
    pub origin: String,
    pub object: Value,
}

/// Every document of every `*.yaml`/`*.yml` file in `dir` (not recursive), files in name order.
/// Empty documents are skipped; anything unreadable is an error naming the file and document.
pub fn read(dir: &Path) -> anyhow::Result<Vec<Manifest>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read the manifests directory {}; check the --manifests path",
            dir.display()
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e == "yaml" || e == "yml")
        })
        .collect();
    files.sort();
    let mut manifests = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        manifests.extend(parse(&file.display().to_string(), &text)?);
    }
    Ok(manifests)
}

/// The documents of one file's `text`.
pub fn parse(file: &str, text: &str) -> anyhow::Result<Vec<Manifest>> {
    let mut manifests = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let origin = format!("{file}, document {}", index + 1);
        let object =
            Value::deserialize(document).with_context(|| format!("{origin} is not valid YAML"))?;
        if object.is_null() {
            continue;
        }
        let has = |key: &str| object.get(key).and_then(Value::as_str).is_some();
        if !has("apiVersion") || !has("kind") {
            bail!("{origin} has no apiVersion or kind; every document must name its kind");
        }
        if object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_none()
        {
            bail!("{origin} has no metadata.name; wisp applies objects by name");
        }
        manifests.push(Manifest { origin, object });
    }
    Ok(manifests)
}

/// An object applied from the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `services.serving.knative.dev`, `configmaps`, …
    pub resource: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{}/{namespace}/{}", self.resource, self.name),
            None => write!(f, "{}/{}", self.resource, self.name),
        }
    }
}

/// Applies each manifest in order; returns what was applied.
pub async fn apply(client: &kube::Client, manifests: &[Manifest]) -> anyhow::Result<Vec<Applied>> {
    if manifests.is_empty() {
        return Ok(Vec::new());
    }
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .context("cannot discover the API's resources to apply the manifests")?;
    let mut applied = Vec::new();
    for manifest in manifests {
        let object = &manifest.object;
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let Some((resource, capabilities)) = discovery.resolve_gvk(&gvk) else {
            bail!(
                "{}: the API has no kind {kind} in {api_version}; check apiVersion and kind",
                manifest.origin
            );
        };
        let namespace = match capabilities.scope {
            Scope::Cluster => None,
            Scope::Namespaced => Some(
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default")
                    .to_owned(),
            ),
        };
        let api: Api<DynamicObject> = match &namespace {
            None => Api::all_with(client.clone(), &resource),
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        };
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .with_context(|| format!("{}: cannot apply {kind} {name}", manifest.origin))?;
        let qualified = if resource.group.is_empty() {
            resource.plural.clone()
        } else {
            format!("{}.{}", resource.plural, resource.group)
        };
        applied.push(Applied {
            resource: qualified,
            namespace,
            name: name.to_owned(),
        });
    }
    Ok(applied)
}

/// Waits (at most `limit`) until every applied Knative Service has settled — `Ready` True or
/// False for its current generation — so the start-up lines come after the manifests serve.
/// Returns the Services that did not become Ready, with why.
pub async fn wait_for_services(
    client: &kube::Client,
    applied: &[Applied],
    limit: Duration,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut problems = Vec::new();
    for object in applied {
        if object.resource != "services.serving.knative.dev" {
            continue;
        }
        let namespace = object.namespace.as_deref().unwrap_or("default");
        let api: Api<Service> = Api::namespaced(client.clone(), namespace);
        let verdict = loop {
            if let Ok(service) = api.get(&object.name).await
                && let Some(verdict) = settled(&service)
            {
                break verdict;
            }
            if tokio::time::Instant::now() >= deadline {
                break Err(format!("not Ready after {}s", limit.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if let Err(why) = verdict {
            problems.push(format!("service {namespace}/{}: {why}", object.name));
        }
    }
    problems
}

/// `Some(Ok)` once Ready, `Some(Err(message))` once failed, `None` while still deciding.
fn settled(service: &Service) -> Option<Result<(), String>> {
    let status = service.status.as_ref()?;
    if status.observed_generation != service.metadata.generation {
        return None;
    }
    let ready = conditions::get(&status.conditions, condition_types::READY)?;
    match ready.status {
        ConditionStatus::True => Some(Ok(())),
        ConditionStatus::False => Some(Err(format!(
            "{}: {}",
            ready.reason.as_deref().unwrap_or("NotReady"),
            ready.message.as_deref().unwrap_or("")
        ))),
        ConditionStatus::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_read_in_order_and_empty_ones_skipped() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n\
                    apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: b}\n";
        let manifests = parse("x.yaml", text).expect("parses");
        let names: Vec<_> = manifests
            .iter()
            .map(|m| m.object["metadata"]["name"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn a_document_without_a_kind_is_named_in_the_error() {
        let error = parse("x.yaml", "metadata: {name: a}\n").expect_err("no kind");
        assert!(error.to_string().contains("x.yaml, document 1"), "{error}");
    }
}
