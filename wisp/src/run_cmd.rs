//! `wisp run COMPONENT`: serve one component over HTTP with no control plane — the
//! `wasmtime serve` use case, on wisp's runtime.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use wisp_api::instance_reuse::{self, InstanceReuse};
use wisp_gateway::routing::forwarded;
use wisp_runtime::{
    ArtifactSource, ReplicaIdentity, ReplicaLimits, Runtime, RuntimeConfig, SourcePolicy,
};

use crate::EXIT_BAD_INPUT;
use crate::cache_args::CacheArgs;
use crate::cli_values;
use crate::server_args::ServerArgs;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The component: a path, a file: URL, an http(s):// URL, or an image in an OCI registry
    /// (REGISTRY/REPO[:TAG][@sha256:DIGEST], pulled anonymously; see --insecure-registry).
    component: String,
    /// Address to listen on; port 0 picks a free port (the first line of output names it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Wall-clock limit of one request (504 beyond), e.g. 30s, 1500ms, 5m.
    #[arg(long, default_value = "300s", value_parser = cli_values::duration)]
    timeout: Duration,
    /// Linear memory shared by the requests running at once, e.g. 128Mi, 1Gi.
    #[arg(long, default_value = "256Mi", value_parser = cli_values::memory)]
    memory: u64,
    /// Requests served at once (0 = unlimited); more wait for a free slot.
    #[arg(long, default_value_t = 0)]
    concurrency: u32,
    /// Largest request body accepted (413 beyond), e.g. 10Mi.
    #[arg(long, default_value = "128Mi", value_parser = cli_values::memory)]
    max_body: u64,
    /// Environment variable for the guest (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = cli_values::env_pair)]
    env: Vec<(String, String)>,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registries: crate::load_args::RegistryArgs,
    /// Most instances alive at once (the size of the instance pool).
    #[arg(long, default_value_t = 1000)]
    max_instances: u32,
    #[command(flatten)]
    reuse: ReuseArgs,
    #[command(flatten)]
    reset: crate::load_args::ResetArgs,
    #[command(flatten)]
    server: ServerArgs,
}

/// Instance reuse, named as `wasmtime serve` names it so its users change nothing.
#[derive(clap::Args)]
struct ReuseArgs {
    /// Requests one instance may serve in turn before a fresh one takes over. 1 (the default
    /// for WASIp2 components) gives every request a fresh instance; more keeps guest state
    /// (globals, heap) between requests, which saves the start of a heavy language runtime
    /// (Python, JavaScript) but lets one request see what an earlier one left.
    #[arg(long, value_name = "N", value_parser = reuse_count)]
    max_instance_reuse_count: Option<NonZeroU32>,
    /// Requests one WASIp3 instance may serve at once, at most 100 (WASIp2 instances serve one at
    /// a time).
    #[arg(long, value_name = "N", value_parser = concurrent_reuse_count)]
    max_instance_concurrent_reuse_count: Option<NonZeroU32>,
    /// How long an idle reused instance is kept for the next request (default 1s); a bare
    /// number is seconds, or use s, ms, us, ns.
    #[arg(long, value_name = "DURATION", value_parser = idle_timeout)]
    idle_instance_timeout: Option<Duration>,
}

impl ReuseArgs {
    fn settings(&self) -> InstanceReuse {
        InstanceReuse {
            max_requests: self.max_instance_reuse_count,
            max_concurrent: self.max_instance_concurrent_reuse_count,
            idle_timeout: self.idle_instance_timeout,
        }
    }
}

fn reuse_count(text: &str) -> Result<NonZeroU32, String> {
    instance_reuse::parse_count(text)
}

fn concurrent_reuse_count(text: &str) -> Result<NonZeroU32, String> {
    instance_reuse::parse_concurrent_count(text)
}

fn idle_timeout(text: &str) -> Result<Duration, String> {
    instance_reuse::parse_idle_timeout(text)
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    crate::block_on(serve(args))
}

async fn serve(args: RunArgs) -> anyhow::Result<ExitCode> {
    let server = wisp_gateway::server::Server::new(args.server.limits()?);
    let trusted = Arc::new(args.server.trusted_proxies());
    let cache_dir = args.cache.dir();
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: args.max_instances,
        max_memory_per_instance: args.memory.max(wisp_runtime::MIB),
        cache_dir,
        cache_max_bytes: args.cache.limits.compile_cache_bytes(),
        image_cache_max_bytes: args.cache.limits.image_cache_bytes(),
        // The operator named the component on the command line: any path or URL.
        sources: SourcePolicy::trusting(),
        insecure_registries: args.registries.insecure_registry.clone(),
        memory_reset: args.reset.memory_reset(),
        ..RuntimeConfig::default()
    })?;
    let source = ArtifactSource::parse(&args.component);
    let prepared = match runtime.prepare(&source).await {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}; choose another --addr", args.addr))?;
    let local = listener.local_addr()?;

    let name = component_name(&source);
    let identity = ReplicaIdentity {
        service: name.clone(),
        configuration: name.clone(),
        revision: name,
        env: args.env,
        port: local.port(),
    };
    let replica = prepared.start_replica(
        &identity,
        ReplicaLimits {
            concurrency: Some(args.concurrency).filter(|limit| *limit > 0),
            memory: args.memory,
            timeout: args.timeout,
            max_request_body: args.max_body,
            reuse: args.reuse.settings(),
        },
    );
    tracing::info!(
        digest = %prepared.digest(),
        origin = ?prepared.origin(),
        allocator = ?runtime.allocator(),
        "serving {}", prepared.source_name()
    );
    println!("listening on http://{local}");

    let replica = Arc::new(replica);
    server
        .serve(
            listener,
            move |mut request, peer| {
                let replica = replica.clone();
                // The guest learns who called as behind the gateway: from the peer, or from a
                // trusted proxy's headers.
                let authority = wisp_gateway::routing::authority_of(&request)
                    .unwrap_or("")
                    .to_owned();
                forwarded::apply(request.headers_mut(), peer, "http", &authority, &trusted);
                async move {
                    let request_id = wisp_gateway::request_id::assign(request.headers_mut());
                    let mut response = replica.handle(request, request_id.clone()).await;
                    if let Ok(value) = http::HeaderValue::from_str(&request_id) {
                        response
                            .headers_mut()
                            .insert(wisp_gateway::request_id::HEADER, value);
                    }
                    response
                }
            },
            wisp_gateway::server::shutdown_signal(),
        )
        .await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The guest's `K_SERVICE` and friends: the file name without `.wasm` (an image's last
/// repository component).
fn component_name(source: &ArtifactSource) -> String {
    let text = match source {
        // An image's repository, without registry, tag or digest.
        ArtifactSource::Oci(image) => wisp_oci::ImageReference::parse(image)
            .map_or_else(|_| image.clone(), |image| image.repository().to_owned()),
        other => other.to_string(),
    };
    let file = text.rsplit('/').next().unwrap_or(&text);
    let stem = file.strip_suffix(".wasm").unwrap_or(file);
    if stem.is_empty() {
        "component".into()
    } else {
        stem.into()
    }
}
