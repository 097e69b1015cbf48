//! Which Kubernetes API `wisp node` and `wisp controller` talk to, and as whom: `--kubeconfig`,
//! else `KUBECONFIG`, else the pod's ServiceAccount (in-cluster config), else
//! `~/.kube/config`.
//!
//! In a pod the ServiceAccount comes before `~/.kube/config` (kube-rs's `Config::infer` has it
//! the other way round): the manifests in `deploy/kubernetes/` grant their RBAC to the
//! ServiceAccount, and a kubeconfig that happens to be in the image must not silently change
//! who the process is. The choice is a pure function ([`choose`]) of the flag and what the
//! environment holds, so it is tested without a cluster.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Where the API and the identity come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A kubeconfig file named on the command line.
    Flag(PathBuf),
    /// The kubeconfig(s) `KUBECONFIG` names.
    KubeconfigEnv,
    /// The ServiceAccount the kubelet mounts (`KUBERNETES_SERVICE_HOST`/`_PORT`, token and CA
    /// under `/var/run/secrets/kubernetes.io/serviceaccount`).
    InCluster,
    /// `~/.kube/config`.
    HomeKubeconfig,
}

/// What [`choose`] reads from the environment.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `KUBECONFIG`.
    pub kubeconfig: Option<OsString>,
    /// `KUBERNETES_SERVICE_HOST`, which the kubelet sets in every container.
    pub service_host: Option<OsString>,
    /// Whether `~/.kube/config` exists.
    pub home_kubeconfig: bool,
}

impl Environment {
    /// This process's environment.
    pub fn current() -> Self {
        let home_kubeconfig = std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".kube").join("config"))
            .is_some_and(|path| path.is_file());
        Self {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            service_host: std::env::var_os("KUBERNETES_SERVICE_HOST"),
            home_kubeconfig,
        }
    }
}

/// The source to use: the flag, else `KUBECONFIG`, else in-cluster, else `~/.kube/config`;
/// `None` when there is none.
pub fn choose(flag: Option<&Path>, env: &Environment) -> Option<Source> {
    let set = |value: &Option<OsString>| value.as_ref().is_some_and(|v| !v.is_empty());
    if let Some(path) = flag {
        Some(Source::Flag(path.to_owned()))
    } else if set(&env.kubeconfig) {
        Some(Source::KubeconfigEnv)
    } else if set(&env.service_host) {
        Some(Source::InCluster)
    } else if env.home_kubeconfig {
        Some(Source::HomeKubeconfig)
    } else {
        None
    }
}

/// Why [`choose`] found nothing, naming both ways to give an API. `hint` follows
/// `--kubeconfig FILE`, e.g. where `wisp up` writes one.
pub fn no_api(hint: &str) -> String {
    format!(
        "no Kubernetes API to talk to: pass --kubeconfig FILE{hint}, or run in a pod with a \
         ServiceAccount (in-cluster config; KUBERNETES_SERVICE_HOST is not set here). \
         KUBECONFIG and ~/.kube/config are read too"
    )
}

/// A client for `source`.
pub async fn client(source: &Source) -> anyhow::Result<kube::Client> {
    let config = match source {
        Source::Flag(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).with_context(|| {
                format!(
                    "cannot read the kubeconfig {}; check --kubeconfig",
                    path.display()
                )
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("the kubeconfig {} is not usable", path.display()))?
        }
        Source::KubeconfigEnv | Source::HomeKubeconfig => {
            kube::Config::from_kubeconfig(&Default::default())
                .await
                .context("the kubeconfig (KUBECONFIG, else ~/.kube/config) is not usable")?
        }
        Source::InCluster => kube::Config::incluster().context(
            "KUBERNETES_SERVICE_HOST is set but the pod's ServiceAccount credentials cannot be \
             read from /var/run/secrets/kubernetes.io/serviceaccount (is \
             automountServiceAccountToken off?); or pass --kubeconfig",
        )?,
    };
    kube::Client::try_from(config).context("cannot build a Kubernetes client")
}

/// The client `--kubeconfig` (`flag`) and this process's environment give.
pub async fn from_flag_or_environment(
    flag: Option<&Path>,
    hint: &str,
) -> anyhow::Result<kube::Client> {
    let source =
        choose(flag, &Environment::current()).ok_or_else(|| anyhow::anyhow!(no_api(hint)))?;
    tracing::debug!(?source, "Kubernetes API");
    client(&source).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(kubeconfig: Option<&str>, service_host: Option<&str>, home: bool) -> Environment {
        Environment {
            kubeconfig: kubeconfig.map(OsString::from),
            service_host: service_host.map(OsString::from),
            home_kubeconfig: home,
        }
    }

    #[test]
    fn the_flag_wins_then_kubeconfig_then_the_service_account_then_home() {
        let flag = Path::new("/data/node.kubeconfig");
        let everything = env(Some("/k"), Some("10.96.0.1"), true);
        assert_eq!(
            choose(Some(flag), &everything),
            Some(Source::Flag(flag.to_owned()))
        );
        assert_eq!(choose(None, &everything), Some(Source::KubeconfigEnv));
        // In a pod the ServiceAccount beats a stray ~/.kube/config in the image.
        assert_eq!(
            choose(None, &env(None, Some("10.96.0.1"), true),),
            Some(Source::InCluster)
        );
        assert_eq!(
            choose(None, &env(None, None, true),),
            Some(Source::HomeKubeconfig)
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        assert_eq!(
            choose(None, &env(Some(""), Some("10.96.0.1"), false),),
            Some(Source::InCluster)
        );
        assert_eq!(choose(None, &env(Some(""), Some(""), false)), None);
    }

    #[test]
    fn without_any_the_error_names_both_ways() {
        assert_eq!(choose(None, &env(None, None, false)), None);
        let message = no_api(" (e.g. node.kubeconfig)");
        assert!(
            message.contains("--kubeconfig FILE (e.g. node.kubeconfig)"),
            "{message}"
        );
        assert!(message.contains("in-cluster config"), "{message}");
        assert!(message.contains("ServiceAccount"), "{message}");
    }
}
