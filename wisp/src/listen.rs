//! What the serving commands share around their listeners: binding with a message that names
//! the flag to change, and one shutdown signal every server waits on.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Binds `addr`; the error names `flag`, the option that chose it.
pub async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; choose another {flag}"))
}

/// A shutdown signal shared by every server of the process: fires on SIGINT or SIGTERM.
pub fn shutdown_on_signal() -> watch::Receiver<bool> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        wisp_gateway::server::shutdown_signal().await;
        let _ = stop.send(true);
    });
    stopped
}

/// Resolves once the shared shutdown signal has fired (or its sender is gone).
pub async fn stopped(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stopped| *stopped).await;
}
