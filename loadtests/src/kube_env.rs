//! A genuine Kubernetes control plane for the benchmarks: etcd, kube-apiserver and
//! kube-controller-manager started on loopback by the repository's `scripts/kube-env` (which
//! builds and caches them once per machine), stopped when dropped — and by the script's watchdog
//! when this process dies without dropping it. Its processes' ids are read from the pid files
//! the script writes, for memory and CPU from `/proc`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::wisp_up::repository_root;

/// The script, relative to the repository root.
pub const SCRIPT: &str = "scripts/kube-env";

/// The processes `scripts/kube-env up` starts, by the names of their pid files.
pub const ETCD: &str = "etcd";
pub const KUBE_APISERVER: &str = "kube-apiserver";
pub const KUBE_CONTROLLER_MANAGER: &str = "kube-controller-manager";

/// A running control plane.
pub struct KubeEnv {
    dir: TempDir,
    /// The admin kubeconfig (a static token in group `system:masters`).
    pub kubeconfig: PathBuf,
    /// kubectl's home and discovery cache, apart from the user's.
    kubectl_home: TempDir,
}

/// `scripts/kube-env` in the repository this binary was built from.
pub fn script() -> anyhow::Result<PathBuf> {
    let path = repository_root().join(SCRIPT);
    if !path.is_file() {
        bail!(
            "{SCRIPT} is missing (looked for {}): the genuine kube-apiserver + etcd are started \
             by it; run from a checkout of the wisp repository",
            path.display()
        );
    }
    Ok(path)
}

impl KubeEnv {
    /// `scripts/kube-env up` in a new temporary directory, owned by this process.
    pub fn start() -> anyhow::Result<Self> {
        let script = script()?;
        let dir = tempfile::tempdir().context("cannot make a directory for kube-env")?;
        let output = Command::new(&script)
            .arg("up")
            .arg(dir.path())
            .args(["--owner-pid", &std::process::id().to_string()])
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", script.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let kubeconfig = stdout
            .lines()
            .find_map(|line| line.strip_prefix("kubeconfig: "))
            .map(PathBuf::from);
        let env = Self {
            dir,
            kubeconfig: kubeconfig.clone().unwrap_or_default(),
            kubectl_home: tempfile::tempdir().context("cannot make a home for kubectl")?,
        };
        if !output.status.success() || kubeconfig.is_none() {
            bail!(
                "{SCRIPT} up did not start a control plane ({}):\n{stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(env)
    }

    /// The pid of process `name` ([`ETCD`], [`KUBE_APISERVER`], …).
    pub fn pid(&self, name: &str) -> anyhow::Result<u32> {
        let path = self.dir.path().join(format!("{name}.pid"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("{} holds no pid: {text:?}", path.display()))
    }

    /// kubectl as the admin, `stdin` fed when given; fails with its stderr when it does.
    pub fn kubectl_with_input(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let output = kubectl(&self.kubeconfig, self.kubectl_home.path(), args, stdin)?;
        if !output.status.success() {
            bail!(
                "kubectl {} failed: {}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim(),
                self.logs()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// kubectl as the admin; its stdout.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.kubectl_with_input(args, None)
    }

    /// Writes a kubeconfig at `path` for ServiceAccount `namespace/name` with a token of its
    /// own from `kubectl create token` (what the kubelet would mount into its Pod), so RBAC
    /// applies as shipped.
    pub fn service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
        path: &Path,
    ) -> anyhow::Result<()> {
        let token = self.kubectl(&[
            "create",
            "token",
            name,
            "--namespace",
            namespace,
            "--duration",
            "24h",
        ])?;
        let admin = std::fs::read_to_string(&self.kubeconfig)
            .with_context(|| format!("cannot read {}", self.kubeconfig.display()))?;
        let server = field(&admin, "server:")?;
        let ca = field(&admin, "certificate-authority-data:")?;
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-env\n  cluster:\n    \
             server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {name}\n  \
             user:\n    token: {}\ncontexts:\n- name: {name}\n  context:\n    cluster: kube-env\n    \
             user: {name}\n    namespace: {namespace}\ncurrent-context: {name}\n",
            token.trim()
        );
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The last lines of the API server's and the controller manager's logs, for errors.
    pub fn logs(&self) -> String {
        [KUBE_APISERVER, KUBE_CONTROLLER_MANAGER]
            .iter()
            .map(|name| {
                let path = self.dir.path().join("logs").join(format!("{name}.log"));
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                format!("--- {name}, last lines\n{}", last_lines(&text, 15))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The state directory (`logs/`, `*.pid`, `kubeconfig`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for KubeEnv {
    fn drop(&mut self) {
        if let Ok(script) = script() {
            let _ = Command::new(script)
                .arg("down")
                .arg(self.dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs kubectl with `kubeconfig` and its home and discovery cache under `home`.
pub fn kubectl(
    kubeconfig: &Path,
    home: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<Output> {
    crate::kubectl_tool::check().map_err(anyhow::Error::msg)?;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("KUBECACHEDIR", home.join("cache"))
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run kubectl (scripts/test-deps installs it)")?;
    if let Some(text) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(text.as_bytes())
            .context("cannot write kubectl's input")?;
    }
    child.wait_with_output().context("kubectl did not finish")
}

/// The last `count` lines of `text`.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// The value after `key` on the first line that has it.
fn field(text: &str, key: &str) -> anyhow::Result<String> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(key))
        .map(|value| value.trim().to_owned())
        .with_context(|| format!("no {key} in the admin kubeconfig"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_fields_are_read_from_their_lines() {
        let text = "clusters:\n- cluster:\n    server: https://127.0.0.1:1\n";
        assert_eq!(field(text, "server:").unwrap(), "https://127.0.0.1:1");
        assert!(field(text, "token:").is_err());
    }

    #[test]
    fn the_script_ships_with_the_repository() {
        assert!(script().is_ok());
    }
}
