//! `wisp controller`'s admission webhook flags, and starting the webhook (`wisp-webhook`) from
//! them.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::Context;
use wisp_webhook::{DEFAULT_SECRET_NAME, DEFAULT_SECRET_NAMESPACE, Options, SecretRef, Webhook};

use crate::listen;

/// The webhook's default address: the port the shipped Service targets.
const DEFAULT_ADDR: &str = "0.0.0.0:8443";

#[derive(clap::Args, Debug, Clone)]
pub struct WebhookArgs {
    /// Where Knative's admission webhooks (defaulting and validation, for a real cluster's API
    /// server) listen, over HTTPS. Every replica serves them, not only the leader. `none` turns
    /// them off: right against `wisp up`, whose API server admits by itself.
    #[arg(long, value_name = "ADDR|none", default_value = DEFAULT_ADDR, value_parser = webhook_addr)]
    webhook_addr: WebhookAddr,
    /// Namespace of the Secret holding the webhook's serving certificate (shared by all
    /// replicas; created when absent, renewed 30 days before expiry).
    #[arg(long, value_name = "NS", default_value = DEFAULT_SECRET_NAMESPACE)]
    webhook_secret_namespace: String,
    /// Name of that Secret.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_SECRET_NAME)]
    webhook_secret_name: String,
    /// A further DNS name or IP the serving certificate covers, besides the `wisp-webhook`
    /// Service's names, `localhost` and 127.0.0.1. Repeatable.
    #[arg(long = "webhook-san", value_name = "NAME")]
    webhook_sans: Vec<String>,
}

/// `--webhook-addr`: an address, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookAddr {
    /// No webhook.
    Off,
    /// Serve on this address.
    On(SocketAddr),
}

fn webhook_addr(input: &str) -> Result<WebhookAddr, String> {
    if input.trim().eq_ignore_ascii_case("none") {
        return Ok(WebhookAddr::Off);
    }
    input.trim().parse().map(WebhookAddr::On).map_err(|_| {
        format!("invalid address {input:?}: write HOST:PORT such as {DEFAULT_ADDR}, or none")
    })
}

/// Starts the webhook unless `--webhook-addr none`, and prints `webhook: https://HOST:PORT`
/// once it serves.
pub async fn start(args: &WebhookArgs, client: kube::Client) -> anyhow::Result<Option<Webhook>> {
    let WebhookAddr::On(addr) = args.webhook_addr else {
        return Ok(None);
    };
    let listener = listen::bind(addr, "--webhook-addr").await?;
    let options = Options {
        secret: SecretRef {
            namespace: args.webhook_secret_namespace.clone(),
            name: args.webhook_secret_name.clone(),
        },
        extra_names: args.webhook_sans.clone(),
        limits: Default::default(),
    };
    let webhook = Webhook::start(client, listener, options).await.context(
        "cannot start the admission webhooks (pass --webhook-addr none when the API server \
             admits Knative resources itself, as wisp up's does)",
    )?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "webhook: https://{}", reachable(webhook.addr()))?;
    out.flush().context("cannot write to stdout")?;
    Ok(Some(webhook))
}

/// The address to announce: a wildcard bind is reached over loopback, which the certificate
/// covers.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, v4.port()))
        }
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, v6.port()))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: WebhookArgs,
    }

    #[test]
    fn defaults_serve_on_8443_with_the_shipped_secret() {
        let args = Cli::parse_from(["wisp-controller"]).args;
        assert_eq!(
            args.webhook_addr,
            WebhookAddr::On(SocketAddr::from(([0, 0, 0, 0], 8443)))
        );
        assert_eq!(args.webhook_secret_namespace, "wisp-system");
        assert_eq!(args.webhook_secret_name, "wisp-webhook-certs");
        assert!(args.webhook_sans.is_empty());
        let args = Cli::parse_from([
            "wisp-controller",
            "--webhook-addr",
            "none",
            "--webhook-san",
            "a.example.com",
            "--webhook-san",
            "10.0.0.1",
        ])
        .args;
        assert_eq!(args.webhook_addr, WebhookAddr::Off);
        assert_eq!(args.webhook_sans, ["a.example.com", "10.0.0.1"]);
    }

    #[test]
    fn addresses_or_none() {
        assert_eq!(
            webhook_addr("127.0.0.1:0"),
            Ok(WebhookAddr::On(SocketAddr::from(([127, 0, 0, 1], 0))))
        );
        assert_eq!(webhook_addr("none"), Ok(WebhookAddr::Off));
        assert_eq!(webhook_addr("None"), Ok(WebhookAddr::Off));
        let error = webhook_addr("8443").expect_err("no host");
        assert!(error.contains("HOST:PORT"), "{error}");
    }

    #[test]
    fn wildcards_are_announced_as_loopback() {
        assert_eq!(
            reachable(SocketAddr::from(([0, 0, 0, 0], 8443))),
            SocketAddr::from(([127, 0, 0, 1], 8443))
        );
        let bound = SocketAddr::from(([10, 0, 0, 7], 8443));
        assert_eq!(reachable(bound), bound);
    }
}
