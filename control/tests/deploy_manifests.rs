//! `deploy/kubernetes/` stays what wisp serves and reads: the CRDs are exactly what `wisp crds`
//! generates from the embedded API server's schemas and registry, every ConfigMap's `_example`
//! documents the defaults wisp's own code applies (and carries Knative's checksum of it), and
//! the kustomization lists every file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use wisp_autoscaler::AutoscalerConfig;
use wisp_control::admission::ClusterDefaults;
use wisp_control::crd;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

fn read(name: &str) -> String {
    let path = deploy_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a YAML stream (empty ones, e.g. a stream of only comments, skipped).
fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .filter(|document| !document.is_null())
        .collect()
}

#[test]
fn the_crds_file_is_what_wisp_crds_generates() {
    let file = documents(&read("300-crds.yaml"));
    let generated = crd::custom_resource_definitions().expect("the CRDs build");
    let name = |crd: &Value| crd["metadata"]["name"].as_str().unwrap_or("?").to_owned();
    assert_eq!(
        file.iter().map(name).collect::<Vec<_>>(),
        generated.iter().map(name).collect::<Vec<_>>(),
        "deploy/kubernetes/300-crds.yaml has other CRDs than the embedded API server serves; \
         regenerate it: {}",
        crd::REGENERATE
    );
    for (in_file, wanted) in file.iter().zip(&generated) {
        assert!(
            in_file == wanted,
            "{} in deploy/kubernetes/300-crds.yaml differs from the schema the embedded API \
             server serves (control/schemas, control/src/registry.rs); regenerate it: {}",
            name(wanted),
            crd::REGENERATE
        );
    }
    // The file is the command's output byte for byte, header included.
    assert_eq!(
        read("300-crds.yaml"),
        crd::manifest().expect("renders"),
        "regenerate deploy/kubernetes/300-crds.yaml: {}",
        crd::REGENERATE
    );
}

#[test]
fn the_kustomization_lists_every_manifest_and_only_those() {
    let kustomization = documents(&read("kustomization.yaml"));
    let listed: Vec<String> = kustomization[0]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(deploy_dir())
        .expect("deploy/kubernetes")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(
        listed, sorted,
        "list the files in name order, as -f applies them"
    );
    for name in &on_disk {
        assert!(listed.contains(name), "{name} is not in kustomization.yaml");
    }
    for name in &listed {
        assert!(
            on_disk.contains(name),
            "{name} is listed in kustomization.yaml but missing"
        );
    }
}

/// `crc32.ChecksumIEEE`, which Knative's `knative.dev/example-checksum` is (as `%08x`).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32_is_the_ieee_one() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

/// A shipped ConfigMap: checks its shape and returns its `_example` as settings.
fn example_of(name: &str) -> BTreeMap<String, String> {
    let file = format!("400-{name}.yaml");
    let docs = documents(&read(&file));
    assert_eq!(docs.len(), 1, "{file}");
    let map = &docs[0];
    assert_eq!(map["kind"], "ConfigMap", "{file}");
    assert_eq!(map["metadata"]["name"], name, "{file}");
    assert_eq!(map["metadata"]["namespace"], "knative-serving", "{file}");
    let data = map["data"].as_object().expect("data");
    // Shipped ConfigMaps set nothing: an operator's `data` is theirs alone.
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["_example"],
        "{file} sets more than _example"
    );
    let example = data["_example"].as_str().expect("_example is text");
    let checksum = format!("{:08x}", crc32(example.as_bytes()));
    assert_eq!(
        map["metadata"]["annotations"]["knative.dev/example-checksum"].as_str(),
        Some(checksum.as_str()),
        "{file}: after editing _example, set knative.dev/example-checksum to {checksum:?}"
    );
    match serde_norway::from_str::<Option<BTreeMap<String, String>>>(example) {
        Ok(settings) => settings.unwrap_or_default(),
        Err(error) => panic!("{file}: _example is not settings (key: \"value\" lines): {error}"),
    }
}

#[test]
fn every_config_map_documents_itself_with_knatives_checksum() {
    for name in [
        "config-autoscaler",
        "config-defaults",
        "config-deployment",
        "config-domain",
        "config-features",
        "config-gc",
        "config-network",
    ] {
        example_of(name);
    }
}

#[test]
fn the_autoscaler_example_is_the_autoscalers_defaults() {
    let example = example_of("config-autoscaler");
    let config = AutoscalerConfig::from_map_strict(&example)
        .unwrap_or_else(|e| panic!("400-config-autoscaler.yaml _example: {e}"));
    assert_eq!(config, AutoscalerConfig::default());
    // Every setting is documented (progress-deadline belongs to config-deployment).
    for key in wisp_autoscaler::config::CONFIG_KEYS {
        if *key != "progress-deadline" {
            assert!(example.contains_key(*key), "{key} is not in the example");
        }
    }
}

#[test]
fn the_defaults_example_is_admissions_defaults() {
    let example = example_of("config-defaults");
    assert_eq!(
        ClusterDefaults::from_data(&example),
        (ClusterDefaults::KNATIVE, vec![])
    );
    assert_eq!(example.len(), 4, "the keys wisp reads, each once");
}

#[test]
fn the_domain_example_sets_the_domain_as_wisp_reads_it() {
    let example = example_of("config-domain");
    assert_eq!(
        wisp_api::knative::domain::default_domain(Some(&example)),
        "example.com"
    );
    // Shipped without a domain, wisp uses its default, as the example says.
    assert_eq!(
        wisp_api::knative::domain::default_domain(Some(&BTreeMap::new())),
        "localhost"
    );
}

#[test]
fn the_deployment_example_is_the_activation_deadline_wisp_uses() {
    let example = example_of("config-deployment");
    let deadline = AutoscalerConfig::from_map(&example).expect("valid");
    assert_eq!(
        deadline.progress_deadline,
        AutoscalerConfig::default().progress_deadline
    );
}
