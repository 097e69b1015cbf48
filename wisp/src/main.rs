//! `wisp`: the command line of the wisp serverless pod runtime.
//!
//! It parses arguments and composes the library crates; the behaviour lives in those crates.

mod allocator;
mod api_limits_args;
mod api_server_cmd;
mod autoscaler_cmd;
mod cache_args;
mod cli_values;
mod controller_cmd;
mod crds_cmd;
mod guest_runtime;
mod host_memory;
mod inspect_cmd;
mod kube_client;
mod listen;
mod load_args;
mod manifests_dir;
mod node_cmd;
mod node_role;
mod push_cmd;
mod registry_args;
mod run_cmd;
mod serve_cmd;
mod server_args;
mod source_args;
mod up_cmd;
mod webhook_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for input the user must fix (a bad component, manifest or argument), as clap uses
/// for bad arguments.
pub(crate) const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "wisp",
    version,
    about = "Serverless pods as WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the embedded cluster: Kubernetes API, Knative controllers, gateway and metrics.
    Up(up_cmd::UpArgs),
    /// Serve one wasi:http component over HTTP/1.1 and HTTP/2 (h2c), without a control plane.
    Run(run_cmd::RunArgs),
    /// Serve the Knative Services of a YAML file through the data plane (gateway, activator,
    /// autoscaler), without an API server.
    Serve(serve_cmd::ServeArgs),
    /// Run one data-plane node (gateway, activator, autoscaler, runtime) against a Kubernetes
    /// API: it registers a Node and serves every Service of the cluster.
    Node(node_cmd::NodeCmdArgs),
    /// Run only the Kubernetes-compatible API server (kubectl and kube-rs talk to it).
    ApiServer(api_server_cmd::ApiServerArgs),
    /// Run only the Knative controllers against a Kubernetes API, leader-elected by a Lease.
    Controller(controller_cmd::ControllerArgs),
    /// Print the Knative Serving CRDs a Kubernetes cluster needs for wisp (YAML, to stdout).
    Crds,
    /// Publish a component to an OCI registry as the CNCF wasm artifact; prints its digest.
    Push(push_cmd::PushArgs),
    /// Show what a registry reference names: its digest, media types, sizes and the component
    /// wisp would run.
    Inspect(inspect_cmd::InspectArgs),
    /// Tools around the Knative-compatible autoscaler.
    Autoscaler {
        #[command(subcommand)]
        command: autoscaler_cmd::AutoscalerCommand,
    },
}

fn main() -> ExitCode {
    allocator::return_freed_memory_promptly();
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Up(args) => up_cmd::run(args),
        Command::Run(args) => run_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::ApiServer(args) => api_server_cmd::run(args),
        Command::Controller(args) => controller_cmd::run(args),
        Command::Node(args) => node_cmd::run(args),
        Command::Crds => crds_cmd::run(),
        Command::Push(args) => push_cmd::run(args),
        Command::Inspect(args) => inspect_cmd::run(args),
        Command::Autoscaler { command } => autoscaler_cmd::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a serving command's future on a multi-threaded async runtime.
pub(crate) fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    future: F,
) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}

/// Logs go to stderr so stdout stays machine-readable (`listening on …`, CSV output).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WISP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
