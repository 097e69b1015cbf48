//! What `wisp push` writes: the CNCF wasm OCI artifact's config and manifest for a component.

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::layout::{self, Descriptor};

/// The annotation naming a layer's file, as `wkg` and ORAS write it.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// The CNCF wasm config (`application/vnd.wasm.config.v0+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    pub created: String,
    pub architecture: String,
    /// `wasip2` for components, `wasip1` for core modules.
    pub os: String,
    pub layer_digests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentInterface>,
}

/// A component's top-level imports and exports, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInterface {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
}

/// What kind of wasm a file is, and its interface when it is a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WasmSummary {
    Component(ComponentInterface),
    CoreModule,
}

/// Reads the outermost imports and exports of a component (nested components and modules
/// are skipped). `Err` says why the bytes are not valid wasm.
pub fn summarize(bytes: &[u8]) -> Result<WasmSummary, String> {
    use wasmparser::{Encoding, Parser, Payload};
    if !layout::has_wasm_magic(bytes) {
        return Err("it does not start with the wasm magic bytes".to_owned());
    }
    let mut depth = 0usize;
    let mut interface = ComponentInterface::default();
    let mut is_component = false;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|error| error.to_string())?;
        match payload {
            Payload::Version { encoding, .. } => {
                if depth == 0 {
                    is_component = encoding == Encoding::Component;
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|error| error.to_string())?;
                    interface.imports.push(import.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|error| error.to_string())?;
                    interface.exports.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(if is_component {
        WasmSummary::Component(interface)
    } else {
        WasmSummary::CoreModule
    })
}

/// An artifact ready to upload: config and layer blobs and the manifest naming them.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub config: Bytes,
    pub layer: Bytes,
    pub manifest: Bytes,
}

impl Artifact {
    pub fn manifest_digest(&self) -> Digest {
        Digest::of(&self.manifest)
    }
}

/// Lays a component out as the CNCF wasm OCI artifact: one `application/wasm` layer annotated
/// with `title`, and a config with its interface.
pub fn artifact(
    component: Bytes,
    summary: &WasmSummary,
    title: Option<&str>,
    created: SystemTime,
) -> Artifact {
    let created = humantime::format_rfc3339_seconds(created).to_string();
    let layer_digest = Digest::of(&component);
    let (os, interface) = match summary {
        WasmSummary::Component(interface) => ("wasip2", Some(interface.clone())),
        WasmSummary::CoreModule => ("wasip1", None),
    };
    let config = WasmConfig {
        created: created.clone(),
        architecture: "wasm".to_owned(),
        os: os.to_owned(),
        layer_digests: vec![layer_digest.to_string()],
        component: interface,
    };
    let config = Bytes::from(serde_json::to_vec(&config).unwrap_or_default());
    let mut layer_annotations = BTreeMap::new();
    if let Some(title) = title {
        layer_annotations.insert(TITLE_ANNOTATION.to_owned(), title.to_owned());
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": layout::OCI_MANIFEST,
        "config": Descriptor {
            media_type: layout::WASM_CONFIG.to_owned(),
            digest: Digest::of(&config).to_string(),
            size: config.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        },
        "layers": [Descriptor {
            media_type: layout::WASM_LAYER.to_owned(),
            digest: layer_digest.to_string(),
            size: component.len() as u64,
            platform: None,
            annotations: layer_annotations,
        }],
        "annotations": { CREATED_ANNOTATION: created },
    });
    Artifact {
        config,
        layer: component,
        manifest: Bytes::from(serde_json::to_vec(&manifest).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &str = r#"(component
        (import "wasi:cli/environment@0.2.0" (instance))
        (core module $m (func (export "f")))
        (component $inner (import "inner-only" (instance)))
        (instance $i (instantiate $inner (with "inner-only" (instance))))
        (export "wasi:http/incoming-handler@0.2.0" (instance $i))
    )"#;

    #[test]
    fn reads_the_outermost_interface_only() {
        let bytes = wat::parse_str(COMPONENT).unwrap();
        assert_eq!(
            summarize(&bytes).unwrap(),
            WasmSummary::Component(ComponentInterface {
                exports: vec!["wasi:http/incoming-handler@0.2.0".into()],
                imports: vec!["wasi:cli/environment@0.2.0".into()],
            })
        );
        let module = wat::parse_str("(module)").unwrap();
        assert_eq!(summarize(&module).unwrap(), WasmSummary::CoreModule);
        assert!(summarize(b"not wasm").is_err());
    }

    #[test]
    fn the_artifact_is_the_cncf_layout() {
        let bytes = Bytes::from(wat::parse_str(COMPONENT).unwrap());
        let summary = summarize(&bytes).unwrap();
        let created = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let artifact = artifact(bytes.clone(), &summary, Some("hello.wasm"), created);
        let manifest: serde_json::Value = serde_json::from_slice(&artifact.manifest).unwrap();
        assert_eq!(manifest["mediaType"], layout::OCI_MANIFEST);
        assert_eq!(manifest["config"]["mediaType"], layout::WASM_CONFIG);
        assert_eq!(
            manifest["config"]["digest"],
            Digest::of(&artifact.config).to_string()
        );
        let layer = &manifest["layers"][0];
        assert_eq!(layer["mediaType"], "application/wasm");
        assert_eq!(layer["digest"], Digest::of(&bytes).to_string());
        assert_eq!(layer["size"], bytes.len());
        assert_eq!(layer["annotations"][TITLE_ANNOTATION], "hello.wasm");
        let config: WasmConfig = serde_json::from_slice(&artifact.config).unwrap();
        assert_eq!(config.created, "2023-11-14T22:13:20Z");
        assert_eq!(config.architecture, "wasm");
        assert_eq!(config.os, "wasip2");
        assert_eq!(config.layer_digests, vec![Digest::of(&bytes).to_string()]);
        let raw: serde_json::Value = serde_json::from_slice(&artifact.config).unwrap();
        assert!(raw.get("layerDigests").is_some(), "{raw}");
        assert_eq!(
            config.component.unwrap().exports,
            vec!["wasi:http/incoming-handler@0.2.0".to_owned()]
        );
        let parsed = layout::Manifest::parse(&artifact.manifest).unwrap();
        let layout::Manifest::Image { config, layers, .. } = parsed else {
            panic!("an image manifest");
        };
        assert_eq!(
            layout::choose_layer(&config, &layers).unwrap().layout,
            layout::Layout::CncfWasm
        );
    }
}
