//! `wisp serve FILE.yaml`: the data plane (gateway, activator, autoscaler, runtime) serving the
//! Knative Services of a YAML file, with no API server — for trying Services by hand and for
//! benchmarks. `wisp up` is the path with an API server.
//!
//! Nothing starts unless the whole file is good: every problem is reported first (`error: …`
//! lines, exit code 2). Once every revision is applied and both ports listen, stdout gets
//! `gateway: URL`, `metrics: URL` and one `service NAMESPACE/NAME: URL` line per Service.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use wisp_autoscaler::{AutoscalerConfig, SystemClock};
use wisp_gateway::dataplane::{DEFAULT_MEMORY_LIMIT, DataPlane, DataPlaneConfig};
use wisp_gateway::routing::Domain;
use wisp_runtime::{Runtime, RuntimeConfig, SourcePolicy};
use wisp_servefile::{ServePlan, plan};

use crate::EXIT_BAD_INPUT;
use crate::cache_args::CacheArgs;
use crate::load_args::LoadArgs;
use crate::server_args::ServerArgs;
use crate::source_args::SourceArgs;
use crate::{cli_values, host_memory, listen};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// YAML file of Knative Services (apiVersion: serving.knative.dev/v1, kind: Service),
    /// documents separated by `---`. Relative image paths are taken from the file's directory.
    file: PathBuf,
    /// Gateway address; port 0 picks a free port (the `gateway:` line names it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Address of `/metrics` and `/healthz`; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9090")]
    metrics_addr: SocketAddr,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    sources: SourceArgs,
    #[command(flatten)]
    loading: LoadArgs,
    /// Most instances alive at once across all Services (the size of the instance pool).
    #[arg(long, default_value_t = 1000)]
    max_instances: u32,
    /// Memory the node gives to replicas (their memory limits add up to at most this), e.g.
    /// 4Gi. Default: the machine's total memory.
    #[arg(long, value_parser = cli_values::memory)]
    allocatable_memory: Option<u64>,
    /// Domain of the Service hosts: `{name}.{namespace}.{domain}` (`config-domain`).
    #[arg(long, default_value = "localhost", value_parser = domain)]
    domain: Domain,
    /// Requests one revision may hold in the activator while it has no free replica; one more
    /// is answered 503 with `Retry-After`.
    #[arg(long, default_value_t = wisp_activator::throttler::DEFAULT_MAX_QUEUE)]
    max_queue: usize,
    /// A `config-autoscaler` value, e.g. `stable-window=6s` (repeatable).
    #[arg(long = "autoscaler", value_name = "KEY=VALUE")]
    autoscaler: Vec<String>,
    #[command(flatten)]
    server: ServerArgs,
}

fn domain(input: &str) -> Result<Domain, String> {
    Domain::new(input).map_err(|error| format!("{error}; write e.g. example.com"))
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    crate::block_on(serve(args))
}

/// What the arguments and the file say, checked.
struct Settings {
    file: String,
    plan: ServePlan,
    data_plane: DataPlaneConfig,
    sources: SourcePolicy,
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = match settings(&args) {
        Ok(settings) => settings,
        Err(problems) => return Ok(bad_input(&problems)),
    };

    // Bind first: a port in use fails in a moment, not after compiling every component.
    let gateway = listen::bind(args.addr, "--addr").await?;
    let admin = listen::bind(args.metrics_addr, "--metrics-addr").await?;
    let gateway_addr = gateway.local_addr()?;
    let admin_addr = admin.local_addr()?;

    // An instance never holds more than its replica's memory limit, so the pool's slots need
    // be no larger than the largest limit in the file (smaller slots reserve less address space).
    let largest_limit = settings
        .plan
        .services
        .iter()
        .filter_map(|s| s.revision.memory_limit)
        .fold(settings.data_plane.default_memory_limit, u64::max);
    let runtime = Runtime::new(args.loading.apply(RuntimeConfig {
        max_instances: args.max_instances,
        max_memory_per_instance: largest_limit.max(wisp_runtime::MIB),
        cache_dir: args.cache.dir(),
        cache_max_bytes: args.cache.limits.compile_cache_bytes(),
        image_cache_max_bytes: args.cache.limits.image_cache_bytes(),
        sources: settings.sources.clone(),
        ..RuntimeConfig::default()
    }))?;
    let data_plane = DataPlane::new(runtime, settings.data_plane, Arc::new(SystemClock::new()));

    for service in &settings.plan.services {
        if let Err(error) = data_plane.apply_revision(service.revision.clone()).await {
            return Ok(bad_input(&[format!(
                "{}, document {} (service {}): {error}",
                settings.file,
                service.document,
                service.id()
            )]));
        }
    }
    let problems = data_plane.set_routes(settings.plan.routes()).await;
    if !problems.is_empty() {
        let problems: Vec<String> = problems
            .iter()
            .map(|problem| format!("{}: {problem}", settings.file))
            .collect();
        return Ok(bad_input(&problems));
    }
    tracing::info!(
        services = settings.plan.services.len(),
        file = %settings.file,
        allocator = ?data_plane.runtime().allocator(),
        "serving"
    );

    let stopped = listen::shutdown_on_signal();
    let autoscaler = tokio::spawn(data_plane.clone().run_autoscaler());
    let admin_server = tokio::spawn(wisp_gateway::metrics::serve_admin(
        admin,
        data_plane.metrics().clone(),
        args.server.limits()?,
        listen::stopped(stopped.clone()),
    ));

    announce(
        &settings.plan,
        &data_plane.domain(),
        gateway_addr,
        admin_addr,
    )?;

    data_plane.serve(gateway, listen::stopped(stopped)).await;
    if let Err(error) = admin_server.await {
        tracing::warn!(%error, "the metrics server ended abnormally");
    }
    autoscaler.abort();
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Reads the file and the flags; every problem found, as lines to print.
fn settings(args: &ServeArgs) -> Result<Settings, Vec<String>> {
    let mut problems = Vec::new();
    let autoscaler = cli_values::key_values("--autoscaler", &args.autoscaler)
        .map_err(|error| format!("{error:#}"))
        .and_then(|map| {
            // Strict: on the command line a misspelt key is a mistake, not another version's.
            AutoscalerConfig::from_map_strict(&map)
                .map_err(|error| format!("--autoscaler: {error}"))
        });
    let autoscaler = autoscaler.map_err(|problem| problems.push(problem)).ok();

    let file = match wisp_servefile::load(&args.file) {
        Ok(file) => file,
        Err(error) => {
            problems.push(error.to_string());
            return Err(problems);
        }
    };
    let sources = args
        .sources
        .serve_policy(&file.base_dir)
        .map_err(|error| problems.push(format!("{error:#}")))
        .ok();
    let plan = match plan(&file, &args.domain) {
        Ok(plan) => Some(plan),
        Err(errors) => {
            problems.extend(errors.iter().map(ToString::to_string));
            None
        }
    };
    let allocatable = args
        .allocatable_memory
        .unwrap_or_else(host_memory::total_bytes);
    if allocatable == 0 {
        problems.push(
            "--allocatable-memory is 0; give replicas some memory, e.g. --allocatable-memory 4Gi"
                .into(),
        );
    }
    if let Some(plan) = &plan {
        for service in &plan.services {
            let (limit, whose) = match service.revision.memory_limit {
                Some(limit) => (limit, "its resources.limits.memory"),
                None => (DEFAULT_MEMORY_LIMIT, "the default memory limit"),
            };
            if limit > allocatable && allocatable > 0 {
                problems.push(format!(
                    "{}, document {} (service {}): {whose} ({}) is more than the node can give \
                     ({}), so no replica could ever start; lower resources.limits.memory or \
                     raise --allocatable-memory",
                    file.name,
                    service.document,
                    service.id(),
                    quantity(limit),
                    quantity(allocatable),
                ));
            }
        }
    }
    match (plan, autoscaler, sources) {
        (Some(plan), Some(autoscaler), Some(sources)) if problems.is_empty() => {
            let mut data_plane = DataPlaneConfig::new(allocatable);
            data_plane.domain = args.domain.clone();
            data_plane.max_queue = args.max_queue;
            data_plane.autoscaler = autoscaler;
            data_plane.trusted_proxies = args.server.trusted_proxies();
            match args.server.limits() {
                Ok(limits) => data_plane.server = limits,
                Err(error) => return Err(vec![format!("{error:#}")]),
            }
            Ok(Settings {
                file: file.name,
                plan,
                data_plane,
                sources,
            })
        }
        _ => Err(problems),
    }
}

/// Bytes as the largest binary suffix that divides them (`128Mi`), for messages.
fn quantity(bytes: u64) -> String {
    const SUFFIXES: [(&str, u64); 4] = [
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    SUFFIXES
        .iter()
        .find(|(_, unit)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map(|(suffix, unit)| format!("{}{suffix}", bytes / unit))
        .unwrap_or_else(|| format!("{bytes} bytes"))
}

fn bad_input(problems: &[String]) -> ExitCode {
    for problem in problems {
        eprintln!("error: {problem}");
    }
    ExitCode::from(EXIT_BAD_INPUT)
}

/// The machine-readable start-up lines on stdout.
fn announce(
    plan: &ServePlan,
    domain: &Domain,
    gateway: SocketAddr,
    admin: SocketAddr,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "gateway: http://{gateway}")?;
    writeln!(out, "metrics: http://{admin}")?;
    for service in &plan.services {
        writeln!(
            out,
            "service {}: http://{}:{}",
            service.id(),
            domain.route_host(&service.namespace, &service.name),
            gateway.port()
        )?;
    }
    out.flush().context("cannot write to stdout")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_for_messages() {
        assert_eq!(quantity(128 << 20), "128Mi");
        assert_eq!(quantity(8 << 30), "8Gi");
        assert_eq!(quantity(1536 << 20), "1536Mi");
        assert_eq!(quantity(1000), "1000 bytes");
        assert_eq!(quantity(0), "0 bytes");
    }
}
