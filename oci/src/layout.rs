//! Which bytes of an image are the component: reading manifests and indexes, choosing the
//! wasm platform's entry and the one wasm layer. Pure; the registry I/O is elsewhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The manifest types wisp asks a registry for (the distribution registry answers "not found"
/// for a type missing from `Accept`).
pub const MANIFEST_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// The CNCF wasm OCI artifact's config.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The CNCF wasm OCI artifact's layer (and wkg's, and what `wisp push` writes).
pub const WASM_LAYER: &str = "application/wasm";
/// wasm-to-oci's and Spin's component layer.
pub const WASM_CONTENT_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// runwasi's component layer.
pub const COMPONENT_LAYER: &str = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";

/// A content descriptor, as manifests and indexes list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    schema_version: Option<u32>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
}

/// A manifest as wisp reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An image index or manifest list: one manifest per platform.
    Index {
        media_type: String,
        manifests: Vec<Descriptor>,
    },
    /// An image (or artifact) manifest.
    Image {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

impl Manifest {
    /// Reads manifest JSON. `Err` says what is wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let document: Document = serde_json::from_slice(bytes).map_err(|error| {
            format!("the manifest is not valid JSON of a known shape ({error})")
        })?;
        if document.schema_version != Some(2) {
            return Err(format!(
                "the manifest has schemaVersion {}, and only version 2 (OCI and docker v2) is read",
                document
                    .schema_version
                    .map_or_else(|| "missing".to_owned(), |version| version.to_string())
            ));
        }
        match (document.manifests, document.config, document.layers) {
            (Some(manifests), None, None) => Ok(Self::Index {
                media_type: document.media_type.unwrap_or_else(|| OCI_INDEX.to_owned()),
                manifests,
            }),
            (None, Some(config), layers) => Ok(Self::Image {
                media_type: document.media_type.unwrap_or_else(|| OCI_MANIFEST.to_owned()),
                config,
                layers: layers.unwrap_or_default(),
            }),
            _ => Err(
                "the manifest is neither an image manifest (config and layers) nor an index (manifests)"
                    .to_owned(),
            ),
        }
    }

    pub fn media_type(&self) -> &str {
        match self {
            Self::Index { media_type, .. } | Self::Image { media_type, .. } => media_type,
        }
    }
}

/// Picks an index's entry for a wasm platform: `wasip2` first (components), then any entry whose
/// os or architecture is `wasm`, then `wasip1`. `None` when there is none.
pub fn choose_platform(manifests: &[Descriptor]) -> Option<&Descriptor> {
    let rank = |descriptor: &Descriptor| {
        let platform = descriptor.platform.as_ref()?;
        let os = platform.os.to_ascii_lowercase();
        let architecture = platform.architecture.to_ascii_lowercase();
        if os == "wasip2" {
            Some(0)
        } else if os == "wasip1" {
            Some(2)
        } else if os == "wasm" || architecture == "wasm" {
            Some(1)
        } else {
            None
        }
    };
    manifests
        .iter()
        .filter_map(|descriptor| rank(descriptor).map(|rank| (rank, descriptor)))
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, descriptor)| descriptor)
}

/// Describes an index's platforms for a refusal.
pub fn describe_platforms(manifests: &[Descriptor]) -> String {
    let platforms: Vec<String> = manifests
        .iter()
        .map(|descriptor| match &descriptor.platform {
            Some(platform) => format!("{}/{}", platform.os, platform.architecture),
            None => "(no platform)".to_owned(),
        })
        .collect();
    if platforms.is_empty() {
        "an image index with no entries".to_owned()
    } else {
        format!("an image index for platforms {}", platforms.join(", "))
    }
}

/// How an image holds its component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Config `application/vnd.wasm.config.v0+json`, one `application/wasm` layer.
    CncfWasm,
    /// One `application/vnd.wasm.content.layer.v1+wasm` (or runwasi's component) layer.
    WasmContentLayer,
    /// An ordinary image whose only layer is the `.wasm`: `application/wasm`, or any type whose
    /// bytes start with the wasm magic.
    SingleLayerImage,
}

/// The layer to run, and whether its bytes must be checked for the wasm magic before it is
/// accepted (its media type does not say it is wasm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub layout: Layout,
    pub layer: Descriptor,
    pub must_check_magic: bool,
}

/// Chooses the component layer of an image manifest, or says (naming the media types found) why
/// there is none.
pub fn choose_layer(config: &Descriptor, layers: &[Descriptor]) -> Result<Choice, String> {
    let found = || describe_image(config, layers);
    let wasm_typed = |layer: &Descriptor| {
        layer.media_type == WASM_LAYER
            || layer.media_type == WASM_CONTENT_LAYER
            || layer.media_type == COMPONENT_LAYER
    };
    if config.media_type == WASM_CONFIG {
        return match layers {
            [layer] if layer.media_type == WASM_LAYER => Ok(Choice {
                layout: Layout::CncfWasm,
                layer: layer.clone(),
                must_check_magic: false,
            }),
            _ => Err(format!(
                "{}; a CNCF wasm artifact must have exactly one {WASM_LAYER} layer",
                found()
            )),
        };
    }
    match layers {
        [layer]
            if layer.media_type == WASM_CONTENT_LAYER || layer.media_type == COMPONENT_LAYER =>
        {
            Ok(Choice {
                layout: Layout::WasmContentLayer,
                layer: layer.clone(),
                must_check_magic: false,
            })
        }
        [layer] if layer.media_type == WASM_LAYER => Ok(Choice {
            layout: Layout::SingleLayerImage,
            layer: layer.clone(),
            must_check_magic: false,
        }),
        [layer] => Ok(Choice {
            layout: Layout::SingleLayerImage,
            layer: layer.clone(),
            must_check_magic: true,
        }),
        [] => Err(format!("{}; it has no layer", found())),
        layers if layers.iter().any(wasm_typed) => Err(format!(
            "{}; several layers (a Spin application, perhaps) are not one component",
            found()
        )),
        _ => Err(found()),
    }
}

/// `config TYPE, layers [TYPE (SIZE bytes), …]`.
pub fn describe_image(config: &Descriptor, layers: &[Descriptor]) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|layer| format!("{} ({} bytes)", layer.media_type, layer.size))
        .collect();
    format!(
        "found config {} and layers [{}]",
        config.media_type,
        layers.join(", ")
    )
}

/// The digest a descriptor names, if it is a sha256 one.
pub fn descriptor_digest(descriptor: &Descriptor) -> Option<Digest> {
    Digest::parse(&descriptor.digest)
}

/// Whether bytes begin as every wasm binary does.
pub fn has_wasm_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(media_type: &str, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: Digest::of(media_type.as_bytes()).to_string(),
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }

    fn for_platform(os: &str, architecture: &str) -> Descriptor {
        Descriptor {
            platform: Some(Platform {
                architecture: architecture.to_owned(),
                os: os.to_owned(),
            }),
            ..descriptor(OCI_MANIFEST, 100)
        }
    }

    #[test]
    fn reads_manifests_and_indexes_with_or_without_media_type() {
        let image = br#"{"schemaVersion": 2, "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": "sha256:00", "size": 2}, "layers": []}"#;
        let manifest = Manifest::parse(image).unwrap();
        assert_eq!(manifest.media_type(), OCI_MANIFEST);
        assert!(matches!(manifest, Manifest::Image { .. }));
        let index = br#"{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json", "manifests": []}"#;
        let manifest = Manifest::parse(index).unwrap();
        assert_eq!(manifest.media_type(), DOCKER_MANIFEST_LIST);
        assert!(
            Manifest::parse(br#"{"schemaVersion": 1, "fsLayers": []}"#)
                .unwrap_err()
                .contains("schemaVersion 1")
        );
        assert!(
            Manifest::parse(b"<html>")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            Manifest::parse(br#"{"schemaVersion": 2}"#)
                .unwrap_err()
                .contains("neither")
        );
    }

    #[test]
    fn index_entries_prefer_wasip2_then_wasm_then_wasip1() {
        let linux = for_platform("linux", "amd64");
        let wasip1 = for_platform("wasip1", "wasm");
        let wasm = for_platform("unknown", "wasm");
        let wasip2 = for_platform("wasip2", "wasm");
        assert_eq!(choose_platform(std::slice::from_ref(&linux)), None);
        assert_eq!(
            choose_platform(&[linux.clone(), wasip1.clone()]),
            Some(&wasip1)
        );
        assert_eq!(
            choose_platform(&[wasip1.clone(), wasm.clone(), linux.clone()]),
            Some(&wasm)
        );
        assert_eq!(
            choose_platform(&[wasip1, wasm, wasip2.clone(), linux.clone()]),
            Some(&wasip2)
        );
        assert_eq!(
            describe_platforms(&[linux, descriptor(OCI_MANIFEST, 1)]),
            "an image index for platforms linux/amd64, (no platform)"
        );
    }

    #[test]
    fn accepts_the_cncf_artifact_with_exactly_one_wasm_layer() {
        let config = descriptor(WASM_CONFIG, 10);
        let layer = descriptor(WASM_LAYER, 1000);
        let choice = choose_layer(&config, std::slice::from_ref(&layer)).unwrap();
        assert_eq!(choice.layout, Layout::CncfWasm);
        assert_eq!(choice.layer, layer);
        assert!(!choice.must_check_magic);
        let error = choose_layer(&config, &[layer.clone(), layer.clone()]).unwrap_err();
        assert!(error.contains("exactly one application/wasm"), "{error}");
        let error = choose_layer(&config, &[descriptor(WASM_CONTENT_LAYER, 5)]).unwrap_err();
        assert!(
            error.contains("config application/vnd.wasm.config.v0+json")
                && error.contains("application/vnd.wasm.content.layer.v1+wasm (5 bytes)"),
            "{error}"
        );
    }

    #[test]
    fn accepts_older_wasm_layers_and_single_layer_images() {
        let image_config = descriptor("application/vnd.oci.image.config.v1+json", 10);
        let legacy_config = descriptor("application/vnd.wasm.config.v1+json", 2);
        let choice = choose_layer(&legacy_config, &[descriptor(WASM_CONTENT_LAYER, 9)]).unwrap();
        assert_eq!(choice.layout, Layout::WasmContentLayer);
        let choice = choose_layer(&image_config, &[descriptor(WASM_LAYER, 9)]).unwrap();
        assert_eq!(choice.layout, Layout::SingleLayerImage);
        assert!(!choice.must_check_magic);
        let tar = descriptor("application/vnd.oci.image.layer.v1.tar", 9);
        let choice = choose_layer(&image_config, std::slice::from_ref(&tar)).unwrap();
        assert_eq!(choice.layout, Layout::SingleLayerImage);
        assert!(choice.must_check_magic);
    }

    #[test]
    fn refuses_other_images_naming_what_it_found() {
        let image_config = descriptor("application/vnd.oci.image.config.v1+json", 10);
        let gzip = descriptor("application/vnd.oci.image.layer.v1.tar+gzip", 7);
        let error = choose_layer(&image_config, &[gzip.clone(), gzip.clone()]).unwrap_err();
        assert_eq!(
            error,
            "found config application/vnd.oci.image.config.v1+json and layers [application/vnd.oci.image.layer.v1.tar+gzip (7 bytes), application/vnd.oci.image.layer.v1.tar+gzip (7 bytes)]"
        );
        let error = choose_layer(&image_config, &[]).unwrap_err();
        assert!(error.ends_with("it has no layer"), "{error}");
        let spin = [
            descriptor(WASM_CONTENT_LAYER, 5),
            descriptor("application/vnd.fermyon.spin.application.v1+config", 3),
        ];
        let error = choose_layer(&image_config, &spin).unwrap_err();
        assert!(error.contains("Spin"), "{error}");
    }

    #[test]
    fn wasm_magic() {
        assert!(has_wasm_magic(b"\0asm\x0d\0\x01\0"));
        assert!(!has_wasm_magic(b"\x1f\x8b\x08"));
        assert!(!has_wasm_magic(b""));
    }
}
