//! `wisp push COMPONENT REF`: publishes a component as the CNCF wasm OCI artifact (config
//! `application/vnd.wasm.config.v0+json` with its imports and exports, one `application/wasm`
//! layer) and prints `digest: sha256:…`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use wisp_oci::component::{self, WasmSummary};

use crate::registry_args::{RegistryArgs, parse_reference};

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// The component to publish (a .wasm file).
    pub component: PathBuf,

    /// Where to publish it: REGISTRY/REPOSITORY[:TAG] (the tag defaults to `latest`).
    pub reference: String,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: PushArgs) -> anyhow::Result<ExitCode> {
    let reference = parse_reference(&args.reference)?;
    anyhow::ensure!(
        reference.digest().is_none(),
        "{reference}: a push names a tag, not a digest (the digest is the result); write REGISTRY/REPOSITORY:TAG"
    );
    let max = wisp_oci::DEFAULT_MAX_LAYER_BYTES;
    let metadata = std::fs::metadata(&args.component)
        .with_context(|| format!("cannot read {}", args.component.display()))?;
    anyhow::ensure!(
        metadata.len() <= max,
        "{} is {} bytes, over the {max}-byte component size cap wisp runs",
        args.component.display(),
        metadata.len()
    );
    let bytes = std::fs::read(&args.component)
        .with_context(|| format!("cannot read {}", args.component.display()))?;
    let summary = component::summarize(&bytes).map_err(|problem| {
        anyhow::anyhow!(
            "{} is not a wasm component ({problem}); build one for wasm32-wasip2 first",
            args.component.display()
        )
    })?;
    if summary == WasmSummary::CoreModule {
        anyhow::bail!(
            "{} is a core wasm module, not a component; wisp runs wasi:http components (build for wasm32-wasip2, or wrap it with `wasm-tools component new`)",
            args.component.display()
        );
    }
    let title = args
        .component
        .file_name()
        .map(|name| name.to_string_lossy().into_owned());
    let artifact = component::artifact(bytes.into(), &summary, title.as_deref(), SystemTime::now());
    let credentials = args.registry.credentials(&reference)?;
    let registry = args.registry.registry(&reference);
    crate::block_on(async move {
        let digest = registry
            .session(&reference, &credentials)?
            .push_artifact(&artifact)
            .await?;
        eprintln!("pushed {reference}");
        println!("digest: {digest}");
        Ok(ExitCode::SUCCESS)
    })
}
