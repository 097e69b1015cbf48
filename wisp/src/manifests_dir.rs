//! `wisp up --manifests DIR`: the YAML files of a directory, applied through the API at start-up
//! as `kubectl apply --server-side` would (create, or merge into what is there), so a restart
//! with the same directory changes nothing that is already as written.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use serde::Deserialize;
use serde_json::Value;

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

/// Applies each manifest in order; returns `kind/name` of each applied object.
pub async fn apply(client: &kube::Client, manifests: &[Manifest]) -> anyhow::Result<Vec<String>> {
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
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Cluster => Api::all_with(client.clone(), &resource),
            Scope::Namespaced => {
                let namespace = object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                Api::namespaced_with(client.clone(), namespace, &resource)
            }
        };
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .with_context(|| format!("{}: cannot apply {kind} {name}", manifest.origin))?;
        applied.push(format!("{}/{name}", resource.plural));
    }
    Ok(applied)
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
