//! `wisp controller`: the Knative controllers alone, against any Kubernetes API (wisp's
//! embedded one or a real cluster's), leader-elected through a Lease so that several replicas
//! can run and exactly one reconciles (DESIGN.md §7).
//!
//! Contract: the log (stderr) says `became leader` or `standing by (leader is X)`. SIGINT or
//! SIGTERM stops the controllers, releases the lease (a standby takes over within one retry
//! period) and exits 0. Losing the lease exits 1 at once, as kube-controller-manager does
//! (reference `beyond-one-machine.md` §1.4): a restart is the simplest way to be sure nothing
//! reconciles beside the new leader. `wisp up` runs its in-process controllers through the same
//! election ([`embedded`]), so a `wisp controller` pointed at it stands by.
//!
//! Every replica, leader or not, also serves Knative's admission webhooks for a real cluster's
//! API server ([`webhook_args`]): once they serve, stdout gets `webhook: https://HOST:PORT`.
//! `--webhook-addr none` turns them off (against `wisp up`, which admits by itself).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use wisp_controllers::leader::{Ending, LeaderConfig, LeaderElector};

use crate::webhook_args::{self, WebhookArgs};
use crate::{cli_values, kube_client, listen};

/// The Lease every wisp controller replica competes for.
const LEASE_NAME: &str = "wisp-controller";

/// The lease namespace when `POD_NAMESPACE` is not set (kube-controller-manager's).
const LEASE_NAMESPACE: &str = "kube-system";

/// `wisp up`'s identity. One API server has one `wisp up`, so a fixed identity is unique; and
/// it lets a restarted `wisp up` reclaim its own unexpired lease at once instead of waiting the
/// lease duration for its previous run's lease to lapse.
const EMBEDDED_IDENTITY: &str = "wisp-up";

#[derive(clap::Args)]
pub struct ControllerArgs {
    /// The kubeconfig to reach the API with. Default: `KUBECONFIG`, else the pod's
    /// ServiceAccount (in-cluster), else `~/.kube/config`.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    election: ElectionArgs,
    #[command(flatten)]
    webhook: WebhookArgs,
    /// Registries the Revision controller reaches over plain HTTP when it resolves image tags.
    #[command(flatten)]
    registries: crate::load_args::RegistryArgs,
}

/// Where the leader election Lease is and how this replica takes part in it.
#[derive(clap::Args, Debug, Clone)]
pub struct ElectionArgs {
    /// Namespace of the leader election Lease (default: `POD_NAMESPACE`, else kube-system).
    #[arg(long, value_name = "NS")]
    lease_namespace: Option<String>,
    /// Name of the leader election Lease; every replica must use the same.
    #[arg(long, value_name = "NAME", default_value = LEASE_NAME)]
    lease_name: String,
    /// This replica's identity in the Lease (default: `POD_NAME` or the host name, plus `_` and
    /// a random suffix).
    #[arg(long, value_name = "ID")]
    identity: Option<String>,
    /// How long standbys wait, after the last renewal they saw, before taking over.
    #[arg(long, default_value = "15s", value_parser = cli_values::duration)]
    leader_elect_lease_duration: Duration,
    /// How long the leader retries renewing before it gives up (and exits 1).
    #[arg(long, default_value = "10s", value_parser = cli_values::duration)]
    leader_elect_renew_deadline: Duration,
    /// How long candidates wait between attempts to acquire or renew.
    #[arg(long, default_value = "2s", value_parser = cli_values::duration)]
    leader_elect_retry_period: Duration,
}

impl ElectionArgs {
    /// The election of this replica; the error names the flags to fix.
    fn config(&self) -> anyhow::Result<LeaderConfig> {
        let config = LeaderConfig {
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
            ..LeaderConfig::new(
                self.lease_namespace
                    .clone()
                    .unwrap_or_else(default_namespace),
                self.lease_name.clone(),
                self.identity.clone().unwrap_or_else(default_identity),
            )
        };
        config.validate().context(
            "invalid leader election flags (--lease-namespace, --lease-name, --identity, \
             --leader-elect-lease-duration, --leader-elect-renew-deadline, \
             --leader-elect-retry-period)",
        )?;
        Ok(config)
    }
}

pub fn run(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    crate::block_on(control(args))
}

async fn control(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    let config = args.election.config()?;
    let client = kube_client::from_flag_or_environment(args.kubeconfig.as_deref(), "").await?;
    tracing::info!(
        identity = %config.identity,
        lease = %format!("{}/{}", config.namespace, config.name),
        "standing for leader election"
    );
    let elector =
        LeaderElector::new(client.clone(), config).context("invalid leader election settings")?;
    let stopped = listen::shutdown_on_signal();
    let webhook = webhook_args::start(&args.webhook, client.clone()).await?;
    match elector
        .run(listen::stopped(stopped), || {
            wisp_controllers::run(client, settings(&args.registries))
        })
        .await
    {
        Ending::Shutdown => {
            // Reviews in flight finish (briefly) before the process goes.
            if let Some(webhook) = webhook {
                webhook.shutdown().await;
            }
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Ending::Lost => {
            tracing::error!(
                "lost the leader election lease; exiting so that nothing reconciles beside \
                 the new leader (restart to stand again)"
            );
            Ok(ExitCode::FAILURE)
        }
        Ending::Finished(()) => {
            anyhow::bail!("the Knative controllers stopped unexpectedly (the log above says why)")
        }
    }
}

/// `wisp up`'s controllers, run only while they hold the same Lease a `wisp controller` would
/// compete for. Resolves (naming what stopped, for `wisp up`'s report) only if leadership is
/// lost or the controllers end; `wisp up` aborts it on shutdown.
pub async fn embedded(
    client: kube::Client,
    registries: crate::load_args::RegistryArgs,
) -> &'static str {
    let config = LeaderConfig::new(default_namespace(), LEASE_NAME, EMBEDDED_IDENTITY);
    let elector = match LeaderElector::new(client.clone(), config) {
        Ok(elector) => elector,
        Err(error) => {
            tracing::error!(%error, "cannot take part in the controllers' leader election");
            return "the Knative controllers' leader election";
        }
    };
    let never = std::future::pending::<()>();
    match elector
        .run(never, || {
            wisp_controllers::run(client, settings(&registries))
        })
        .await
    {
        Ending::Lost => "the Knative controllers (their leader election lease was lost)",
        Ending::Shutdown | Ending::Finished(()) => "the Knative controllers",
    }
}

/// The controllers' settings from the flags.
fn settings(registries: &crate::load_args::RegistryArgs) -> wisp_controllers::Settings {
    wisp_controllers::Settings {
        registry: wisp_oci::RegistrySettings {
            insecure_registries: registries.insecure_registry.clone(),
            ..Default::default()
        },
    }
}

/// `POD_NAMESPACE` (the downward API's), else kube-system.
fn default_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| LEASE_NAMESPACE.to_owned())
}

/// `POD_NAME` or the host name, `_`, and a random suffix (kube-controller-manager's shape), so
/// two replicas on one host, or a restarted one, never share an identity.
fn default_identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(host_name)
        .unwrap_or_else(|| "wisp-controller".to_owned());
    format!("{base}_{}", uuid::Uuid::new_v4())
}

/// The kernel's host name, if it can be read.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ControllerArgs,
    }

    fn parse(args: &[&str]) -> ControllerArgs {
        let mut all = vec!["wisp-controller"];
        all.extend(args);
        Cli::parse_from(all).args
    }

    #[test]
    fn defaults_are_kube_controller_managers() {
        let args = parse(&["--identity", "a", "--lease-namespace", "wisp"]);
        let config = args.election.config().expect("valid");
        assert_eq!(config.namespace, "wisp");
        assert_eq!(config.name, "wisp-controller");
        assert_eq!(config.identity, "a");
        assert_eq!(config.lease_duration, Duration::from_secs(15));
        assert_eq!(config.renew_deadline, Duration::from_secs(10));
        assert_eq!(config.retry_period, Duration::from_secs(2));
        assert!(args.kubeconfig.is_none());
    }

    #[test]
    fn timings_that_do_not_nest_name_the_flags() {
        let args = parse(&[
            "--leader-elect-lease-duration",
            "10s",
            "--leader-elect-renew-deadline",
            "10s",
        ]);
        let message = format!("{:#}", args.election.config().expect_err("refused"));
        assert!(
            message.contains("--leader-elect-lease-duration"),
            "{message}"
        );
        assert!(
            message.contains("must be longer than the renew deadline"),
            "{message}"
        );
    }

    #[test]
    fn default_identities_are_unique_per_process() {
        let one = default_identity();
        let two = default_identity();
        assert_ne!(one, two);
        assert!(one.contains('_'), "{one}");
    }
}
