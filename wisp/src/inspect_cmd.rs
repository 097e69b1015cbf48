//! `wisp inspect REF`: what a registry reference names now: its digest, the manifests' media
//! types and sizes, and the component wisp would run from it (or why none).

use std::fmt::Write as _;
use std::process::ExitCode;

use wisp_oci::component::WasmConfig;
use wisp_oci::layout::{self, Manifest};
use wisp_oci::{ImageReference, Session};

use crate::registry_args::{RegistryArgs, parse_reference};

/// A wasm config larger than this is not read (they are a few hundred bytes).
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The image: REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST].
    pub reference: String,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let reference = parse_reference(&args.reference)?;
    let credentials = args.registry.credentials(&reference)?;
    let registry = args.registry.registry(&reference);
    crate::block_on(async move {
        let digest = registry.resolve(&reference, &credentials).await?;
        let session = registry.session(&reference.pinned(digest), &credentials)?;
        let mut report = String::new();
        let outcome = describe(&session, &reference, &mut report).await;
        print!("{report}");
        outcome?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn describe(
    session: &Session,
    reference: &ImageReference,
    out: &mut String,
) -> anyhow::Result<()> {
    let pinned = session.reference().clone();
    let _ = writeln!(out, "reference: {reference}");
    let _ = writeln!(out, "pinned: {pinned}");
    let mut digest = pinned.digest();
    let mut size = None;
    let mut depth = 0;
    let (config, layers) = loop {
        let (bytes, manifest_digest) = session.manifest_sized(digest, size).await?;
        let manifest = Manifest::parse(&bytes).map_err(|problem| {
            anyhow::anyhow!("{reference}: manifest {manifest_digest}: {problem}")
        })?;
        let _ = writeln!(
            out,
            "manifest: {manifest_digest} {} ({} bytes)",
            manifest.media_type(),
            bytes.len()
        );
        match manifest {
            Manifest::Image { config, layers, .. } => break (config, layers),
            Manifest::Index { manifests, .. } => {
                for entry in &manifests {
                    let platform = entry.platform.as_ref().map_or_else(
                        || "(no platform)".to_owned(),
                        |platform| format!("{}/{}", platform.os, platform.architecture),
                    );
                    let _ = writeln!(
                        out,
                        "  entry: {platform} {} {} ({} bytes)",
                        entry.digest, entry.media_type, entry.size
                    );
                }
                depth += 1;
                let chosen = layout::choose_platform(&manifests)
                    .filter(|_| depth <= 2)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "{reference}: wisp would run nothing: {} (it needs an entry for platform wasip2, wasm or wasip1)",
                            layout::describe_platforms(&manifests)
                        )
                    })?;
                let _ = writeln!(out, "  follows: {}", chosen.digest);
                size = Some(chosen.size);
                digest = Some(layout::descriptor_digest(chosen).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{reference}: the index names {:?}, not a sha256 digest",
                        chosen.digest
                    )
                })?);
            }
        }
    };
    let _ = writeln!(
        out,
        "config: {} {} ({} bytes)",
        config.digest, config.media_type, config.size
    );
    for layer in &layers {
        let title = layer
            .annotations
            .get(wisp_oci::component::TITLE_ANNOTATION)
            .map(|title| format!(" title={title}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "layer: {} {} ({} bytes){title}",
            layer.digest, layer.media_type, layer.size
        );
    }
    let choice = layout::choose_layer(&config, &layers)
        .map_err(|found| anyhow::anyhow!("{reference}: wisp would run nothing: {found}"))?;
    let check = if choice.must_check_magic {
        ", if its bytes start with the wasm magic (checked when pulled)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "runs: layer {} ({} bytes), as {}{check}",
        choice.layer.digest,
        choice.layer.size,
        match choice.layout {
            layout::Layout::CncfWasm => "the CNCF wasm OCI artifact",
            layout::Layout::WasmContentLayer => "a wasm content layer",
            layout::Layout::SingleLayerImage => "a single-layer image",
        }
    );
    if config.media_type == layout::WASM_CONFIG && config.size <= MAX_CONFIG_BYTES {
        let bytes = session.blob(&config, MAX_CONFIG_BYTES, false).await?;
        if let Ok(config) = serde_json::from_slice::<WasmConfig>(&bytes) {
            let _ = writeln!(
                out,
                "platform: {}/{} created {}",
                config.os, config.architecture, config.created
            );
            if let Some(component) = config.component {
                for export in component.exports {
                    let _ = writeln!(out, "export: {export}");
                }
                for import in component.imports {
                    let _ = writeln!(out, "import: {import}");
                }
            }
        }
    }
    Ok(())
}
