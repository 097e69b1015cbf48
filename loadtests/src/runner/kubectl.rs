//! The cluster set-up a scenario needs, done with the real kubectl (as a user would): the
//! `config-autoscaler` ConfigMap, manifests, and waiting for Services to be Ready.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::RunError;

/// How long a Service may take to become Ready (a first compile included).
const READY_TIMEOUT: &str = "180s";

/// kubectl aimed at one cluster.
pub struct Kubectl {
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(kubeconfig: PathBuf) -> Self {
        Self { kubeconfig }
    }

    /// `kubectl apply -f PATH`.
    pub async fn apply_file(&self, path: &Path) -> Result<(), RunError> {
        let path = path.display().to_string();
        self.run(&format!("apply -f {path}"), &["apply", "-f", &path], None)
            .await
    }

    /// One `kubectl apply -f -` of every object of `manifests`; `what` names them in errors.
    pub async fn apply_all(
        &self,
        what: &str,
        manifests: &[serde_json::Value],
    ) -> Result<(), RunError> {
        // A YAML stream of JSON documents: kubectl would validate a `List` against an OpenAPI
        // schema of `List` that the API server need not serve.
        let stream = manifests
            .iter()
            .map(serde_json::Value::to_string)
            .collect::<Vec<_>>()
            .join("\n---\n");
        self.run(
            &format!("apply {what}"),
            &["apply", "-f", "-"],
            Some(stream),
        )
        .await
    }

    /// Applies `knative-serving/config-autoscaler` with `data`.
    pub async fn apply_config_autoscaler(
        &self,
        data: &BTreeMap<String, String>,
    ) -> Result<(), RunError> {
        let manifest = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"},
            "data": data,
        });
        self.run(
            "apply config-autoscaler",
            &["apply", "-f", "-"],
            Some(manifest.to_string()),
        )
        .await
    }

    /// Waits until the Knative Services `names` of `namespace` are all Ready (one kubectl for
    /// them all: a scenario may have many).
    pub async fn wait_ready(&self, namespace: &str, names: &[&str]) -> Result<(), RunError> {
        let timeout = format!("--timeout={READY_TIMEOUT}");
        let services: Vec<String> = names.iter().map(|name| format!("ksvc/{name}")).collect();
        let what = match names {
            [one] => format!("{namespace}/{one}"),
            _ => format!("{} Services in {namespace}", names.len()),
        };
        let mut args = vec!["wait", "-n", namespace];
        args.extend(services.iter().map(String::as_str));
        args.extend(["--for=condition=Ready", &timeout]);
        self.run(&format!("wait for {what} to be Ready"), &args, None)
            .await
    }

    async fn run(
        &self,
        action: &str,
        args: &[&str],
        stdin: Option<String>,
    ) -> Result<(), RunError> {
        let failed = |message: String| RunError::Kubectl {
            action: action.to_owned(),
            message,
        };
        crate::kubectl_tool::check().map_err(failed)?;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| {
                failed(format!(
                    "cannot run kubectl ({error}); {}",
                    crate::kubectl_tool::HOW_TO_GET
                ))
            })?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .await
                .map_err(|error| failed(error.to_string()))?;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|error| failed(error.to_string()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(failed(
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            ))
        }
    }
}
