//! wisp installed on a genuine control plane ([`KubeEnv`]) as a cluster operator installs it:
//! `deploy/kubernetes/` applied with kubectl, a `wisp controller` and a `wisp node` started
//! with the Deployment's and DaemonSet's arguments and a ServiceAccount token each. No kubelet
//! runs here, so two things a cluster would do are done by hand: the processes start as
//! children instead of in Pods, and the webhook configurations reach the controller at
//! `clientConfig.url` instead of through the `wisp-webhook` Service.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::kube_env::KubeEnv;
use crate::wisp_up::{announced, announced_addr, announcement, repository_root};

/// How long the controller may take to put its CA into the webhook configurations.
const CA_TIMEOUT: Duration = Duration::from_secs(60);

/// The Knative CRDs `deploy/kubernetes/` installs.
const CRDS: [&str; 4] = [
    "crd/services.serving.knative.dev",
    "crd/configurations.serving.knative.dev",
    "crd/revisions.serving.knative.dev",
    "crd/routes.serving.knative.dev",
];

/// The namespace the Deployment and DaemonSet run in.
const SYSTEM_NAMESPACE: &str = "wisp-system";

/// A `wisp` child process, killed when dropped.
pub struct WispChild {
    child: Child,
    lines: Vec<String>,
}

impl WispChild {
    /// Runs `wisp ARGS` with `env` and waits for its `last: …` start-up line.
    fn start(
        wisp: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        last: &str,
        what: &str,
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(wisp)
            .args(args)
            .envs(env.iter().copied())
            .env("WISP_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let lines = announcement(&mut child, last, what)?;
        Ok(Self { child, lines })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for WispChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Applies only the Knative CRDs (`deploy/kubernetes/300-crds.yaml`) and waits until they
/// serve.
pub fn apply_crds(env: &KubeEnv) -> anyhow::Result<()> {
    let crds = deploy_dir().join("300-crds.yaml");
    env.kubectl(&["apply", "--filename", &crds.display().to_string()])?;
    wait_established(env)
}

/// Applies all of `deploy/kubernetes/` (namespaces, RBAC, CRDs, config maps, webhook
/// configurations, the workloads no kubelet will run) and waits for the CRDs.
pub fn install(env: &KubeEnv) -> anyhow::Result<()> {
    env.kubectl(&["apply", "-k", &deploy_dir().display().to_string()])?;
    wait_established(env)
}

fn deploy_dir() -> PathBuf {
    repository_root().join("deploy/kubernetes")
}

fn wait_established(env: &KubeEnv) -> anyhow::Result<()> {
    let mut args = vec!["wait", "--for=condition=Established", "--timeout=60s"];
    args.extend(CRDS);
    env.kubectl(&args).map(drop)
}

/// Sets `knative-serving/config-autoscaler` keys.
pub fn configure_autoscaler(env: &KubeEnv, settings: &[(&str, &str)]) -> anyhow::Result<()> {
    let data: serde_json::Map<String, serde_json::Value> = settings
        .iter()
        .map(|(key, value)| ((*key).to_owned(), serde_json::Value::from(*value)))
        .collect();
    let patch = serde_json::json!({ "data": data }).to_string();
    env.kubectl(&[
        "patch",
        "configmap",
        "config-autoscaler",
        "--namespace",
        "knative-serving",
        "--type",
        "merge",
        "--patch",
        &patch,
    ])
    .map(drop)
}

/// ServiceAccount kubeconfigs of the controller and the node, in a directory of their own.
pub struct Credentials {
    dir: TempDir,
}

impl Credentials {
    pub fn issue(env: &KubeEnv) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot make a credentials directory")?;
        let credentials = Self { dir };
        env.service_account_kubeconfig(
            SYSTEM_NAMESPACE,
            "wisp-controller",
            &credentials.controller(),
        )?;
        env.service_account_kubeconfig(SYSTEM_NAMESPACE, "wisp-node", &credentials.node())?;
        Ok(credentials)
    }

    pub fn controller(&self) -> PathBuf {
        self.dir.path().join("controller.kubeconfig")
    }

    pub fn node(&self) -> PathBuf {
        self.dir.path().join("node.kubeconfig")
    }
}

/// A `wisp controller` as the Deployment runs it (500-controller.yaml), its webhooks on a free
/// loopback port; returns it and the webhook's `https://HOST:PORT`.
pub fn start_controller(
    wisp: &Path,
    credentials: &Credentials,
    identity: &str,
) -> anyhow::Result<(WispChild, String)> {
    let kubeconfig = credentials.controller().display().to_string();
    let controller = WispChild::start(
        wisp,
        &[
            "controller",
            "--kubeconfig",
            &kubeconfig,
            &format!("--identity={identity}"),
            "--webhook-addr=127.0.0.1:0",
        ],
        &[("POD_NAME", identity), ("POD_NAMESPACE", SYSTEM_NAMESPACE)],
        "webhook",
        "wisp controller",
    )?;
    let webhook = announced(&controller.lines, "webhook", "wisp controller")?;
    Ok((controller, webhook))
}

/// A `wisp node` as the DaemonSet runs it (600-node.yaml), on loopback; returns it and its
/// gateway's address.
pub fn start_node(
    wisp: &Path,
    credentials: &Credentials,
    name: &str,
    cache: &Path,
) -> anyhow::Result<(WispChild, SocketAddr)> {
    let kubeconfig = credentials.node().display().to_string();
    let cache = cache.display().to_string();
    let samples = wisp_samples::dir().display().to_string();
    let node = WispChild::start(
        wisp,
        &[
            "node",
            "--kubeconfig",
            &kubeconfig,
            &format!("--name={name}"),
            "--gateway-addr=127.0.0.1:0",
            "--metrics-addr=127.0.0.1:0",
            "--address=127.0.0.1",
            "--allocatable-memory=1536Mi",
            "--cache-dir",
            &cache,
            "--allow-path",
            &samples,
        ],
        &[],
        "metrics",
        "wisp node",
    )?;
    let gateway = announced_addr(&node.lines, "gateway", "wisp node")?;
    Ok((node, gateway))
}

/// Points both webhook configurations at `webhook` (`https://127.0.0.1:PORT`) instead of the
/// `wisp-webhook` Service no kubelet backs here, then waits until the controller has put its
/// CA back into them (before that, the API server cannot trust the webhook and refuses writes).
pub fn point_webhooks_at(env: &KubeEnv, webhook: &str) -> anyhow::Result<()> {
    for (kind, name, path) in [
        (
            "mutatingwebhookconfiguration",
            "webhook.serving.knative.dev",
            "/defaulting",
        ),
        (
            "validatingwebhookconfiguration",
            "validation.webhook.serving.knative.dev",
            "/validation",
        ),
    ] {
        let patch = serde_json::json!([{
            "op": "replace",
            "path": "/webhooks/0/clientConfig",
            "value": {"url": format!("{webhook}{path}")},
        }])
        .to_string();
        env.kubectl(&["patch", kind, name, "--type", "json", "--patch", &patch])?;
        let deadline = Instant::now() + CA_TIMEOUT;
        loop {
            let bundle = env.kubectl(&[
                "get",
                kind,
                name,
                "-o",
                "jsonpath={.webhooks[0].clientConfig.caBundle}",
            ])?;
            if !bundle.trim().is_empty() {
                break;
            }
            if Instant::now() > deadline {
                bail!("no wisp controller put its CA into {kind} {name} in {CA_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

/// Holds the controllers' leader election Lease for a placeholder identity, so a `wisp
/// controller` started afterwards stands by: it serves the admission webhooks (every replica
/// does) but reconciles nothing — the webhook's cost alone, for `bench api`.
pub fn hold_controller_lease(env: &KubeEnv) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?;
    let lease = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "wisp-controller", "namespace": SYSTEM_NAMESPACE},
        "spec": {
            "holderIdentity": "wisp-loadtests-placeholder",
            "leaseDurationSeconds": 86_400,
            "acquireTime": micro_time(now),
            "renewTime": micro_time(now),
        },
    })
    .to_string();
    env.kubectl_with_input(&["apply", "--filename", "-"], Some(&lease))
        .map(drop)
}

/// `since_epoch` as a Kubernetes MicroTime (RFC 3339, UTC, microseconds).
fn micro_time(since_epoch: Duration) -> String {
    let seconds = since_epoch.as_secs();
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since_epoch.subsec_micros()
    )
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_times_are_rfc3339_utc() {
        assert_eq!(
            micro_time(Duration::from_millis(0)),
            "1970-01-01T00:00:00.000000Z"
        );
        // 2026-12-06T06:50:46.5Z
        assert_eq!(
            micro_time(Duration::from_millis(1_796_539_846_500)),
            "2026-12-06T06:50:46.500000Z"
        );
        assert_eq!(
            micro_time(Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000Z"
        );
    }
}
