//! `wisp node`: one data-plane node alone against a Kubernetes API — wisp's own (`wisp up`
//! accepts nodes that join it with the `node.kubeconfig` of its data directory) or a real
//! cluster's. It registers a Node and renews its Lease like a virtual kubelet, reports its
//! replicas as Pods bound to it, and serves the Services of every Route (DESIGN §7).
//!
//! Contract (tests and scripts rely on it): once it serves what the API holds (or two minutes
//! passed), stdout gets `gateway: http://HOST:PORT` and `metrics: http://HOST:PORT`. SIGINT or
//! SIGTERM drains (see [`crate::node_role`]) and exits 0. A name that is not a DNS-1123
//! subdomain exits 2.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::EXIT_BAD_INPUT;
use crate::node_role::{self, NodeArgs};
use crate::{cache_args, kube_client, listen};

/// How long start-up waits for the data plane to load what the API holds before it announces
/// itself anyway (it is not ready until then: `/healthz` 503, Node `Ready=False`).
const INITIAL_SYNC: Duration = Duration::from_secs(120);

#[derive(clap::Args)]
pub struct NodeCmdArgs {
    /// The kubeconfig of the node identity, e.g. `node.kubeconfig` in `wisp up`'s data
    /// directory. Default: `KUBECONFIG`, else the pod's ServiceAccount (in-cluster), else
    /// `~/.kube/config`.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The Node's name (a DNS-1123 subdomain). Default: `NODE_NAME`, else the hostname.
    #[arg(long, env = "NODE_NAME")]
    name: Option<String>,
    #[command(flatten)]
    node: NodeArgs,
}

pub fn run(args: NodeCmdArgs) -> anyhow::Result<ExitCode> {
    let name = match args.name.clone().or_else(hostname) {
        Some(name) => name,
        None => {
            eprintln!(
                "error: this machine has no readable hostname; name the node with --name or \
                 NODE_NAME"
            );
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    if let Err(problem) = validate_node_name(&name) {
        eprintln!(
            "error: node name {name:?} is not valid: {problem}; pass --name (or NODE_NAME) with \
             a DNS-1123 subdomain such as node-1"
        );
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    crate::block_on(node(args, name))
}

async fn node(args: NodeCmdArgs, name: String) -> anyhow::Result<ExitCode> {
    let bound = node_role::bind(&args.node).await?;
    let (gateway_addr, admin_addr) = (bound.gateway_addr, bound.admin_addr);
    let client = kube_client::from_flag_or_environment(
        args.kubeconfig.as_deref(),
        " (e.g. node.kubeconfig in the data directory of wisp up)",
    )
    .await?;
    let stopped = listen::shutdown_on_signal();
    let node = bound.start(&args.node, client, &name, cache_args::default_cache_dir())?;
    if !node.wait_loaded(INITIAL_SYNC).await {
        tracing::warn!(
            "the data plane has not loaded what the API holds after {}s; announcing anyway \
             (not ready until it has)",
            INITIAL_SYNC.as_secs()
        );
    }
    announce(gateway_addr, admin_addr)?;
    node.run(stopped).await?;
    tracing::info!(node = %name, "stopped");
    Ok(ExitCode::SUCCESS)
}

fn announce(gateway: SocketAddr, admin: SocketAddr) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "gateway: http://{gateway}")?;
    writeln!(out, "metrics: http://{admin}")?;
    out.flush().context("cannot write to stdout")?;
    Ok(())
}

/// This machine's hostname, lowercased (Kubernetes names are), if it has a readable one.
fn hostname() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let name = text.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// A Node name must be a DNS-1123 subdomain: at most 253 characters, dot-separated DNS-1123
/// labels.
fn validate_node_name(name: &str) -> Result<(), String> {
    const MAX_SUBDOMAIN: usize = 253;
    if name.len() > MAX_SUBDOMAIN {
        return Err(format!(
            "it is {} characters long; the most is {MAX_SUBDOMAIN}",
            name.len()
        ));
    }
    for label in name.split('.') {
        wisp_api::names::validate_dns1123_label(label).map_err(|problem| {
            if name.contains('.') {
                format!("its part {label:?} is not valid: {problem}")
            } else {
                problem.to_string()
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_dns_1123_subdomains() {
        for good in ["local", "n2", "node-1.zone-a.example.com", "10.0.0.7"] {
            assert_eq!(validate_node_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Node1",
            "-n",
            "n-",
            "a..b",
            "a_b",
            ".a",
            &"a".repeat(254),
        ] {
            assert!(validate_node_name(bad).is_err(), "{bad}");
        }
        assert!(validate_node_name("a.B").unwrap_err().contains("\"B\""));
    }
}
