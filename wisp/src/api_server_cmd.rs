//! `wisp api-server`: only the Kubernetes-compatible API server, over a data directory — for
//! driving the API with kubectl and kube-rs on its own (the controllers and data plane join it
//! in `wisp up`).
//!
//! Once it listens, stdout gets `api: https://HOST:PORT` and `kubeconfig: PATH`; SIGINT or
//! SIGTERM stops it after in-flight requests.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use wisp_control::apiserver::{ApiServer, ApiServerConfig, ApiServerError};
use wisp_control::data_dir::DataDirError;

use crate::EXIT_BAD_INPUT;

#[derive(clap::Args)]
pub struct ApiServerArgs {
    /// Holds the database (wisp.db), the credentials (pki/, token) and the kubeconfig.
    #[arg(long, default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
    /// Address of the HTTPS API; port 0 picks a free port (the `api:` line names it).
    #[arg(long, default_value = "127.0.0.1:6443")]
    api_addr: SocketAddr,
    /// Another name (DNS name or IP) clients reach the server by, added to its certificate
    /// (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    tls_san: Vec<String>,
    #[command(flatten)]
    limits: crate::api_limits_args::ApiLimitsArgs,
}

/// `~/.wisp`, or `.wisp` when there is no home directory.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".wisp")
}

pub fn run(args: ApiServerArgs) -> anyhow::Result<ExitCode> {
    crate::block_on(serve(args))
}

async fn serve(args: ApiServerArgs) -> anyhow::Result<ExitCode> {
    let mut config = ApiServerConfig::new(&args.data_dir, args.api_addr);
    config.extra_names = args.tls_san;
    args.limits.apply(&mut config);
    let server = match start(config).await? {
        Ok(server) => server,
        Err(code) => return Ok(code),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "api: {}", server.url())?;
    writeln!(stdout, "kubeconfig: {}", server.kubeconfig().display())?;
    stdout.flush()?;
    drop(stdout);
    wisp_gateway::server::shutdown_signal().await;
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Starts the API server; a data directory another process serves is the user's to sort out
/// (exit 2, with that process's pid), anything else an error.
pub async fn start(config: ApiServerConfig) -> anyhow::Result<Result<ApiServer, ExitCode>> {
    let data_dir = config.data_dir.clone();
    match ApiServer::start(config).await {
        Ok(server) => Ok(Ok(server)),
        Err(error @ ApiServerError::DataDir(DataDirError::InUse { .. })) => {
            eprintln!("error: {error}");
            Ok(Err(ExitCode::from(EXIT_BAD_INPUT)))
        }
        Err(error) => Err(error)
            .with_context(|| format!("cannot start the API server in {}", data_dir.display())),
    }
}
