//! A genuine kube-apiserver with Knative Serving's API installed the way a cluster operator
//! installs wisp: `scripts/kube-env` starts etcd, kube-apiserver and kube-controller-manager on
//! loopback, `deploy/kubernetes/`'s namespaces and CRDs are applied, and the webhook
//! configurations of `450-webhooks.yaml` point at a `wisp-webhook` server running in this test
//! process (no kubelet runs Pods here, and no `wisp controller` runs: the matrix writes statuses
//! itself and controllers would overwrite them).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use serde::Deserialize as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::watch;
use wisp_control::admission::ClusterDefaults;
use wisp_loadtests::kube_env::{self, KubeEnv};
use wisp_loadtests::wisp_up::repository_root;
use wisp_webhook::certs;
use wisp_webhook::server::{Limits, Server};
use wisp_webhook::tls::{self, CertSlot};

/// How long the installation may take to become effective before the test fails.
const SETTLE: Duration = Duration::from_secs(60);

/// The four Knative Serving CRDs.
const CRDS: [&str; 4] = [
    "crd/services.serving.knative.dev",
    "crd/configurations.serving.knative.dev",
    "crd/revisions.serving.knative.dev",
    "crd/routes.serving.knative.dev",
];

/// The control plane (`wisp-loadtests`' `KubeEnv`, shared with `bench api` and the wisp
/// tests) and the webhook; stopped when dropped (and by `scripts/kube-env`'s watchdog when the
/// test process dies without dropping it).
pub struct Genuine {
    env: KubeEnv,
    webhook: Option<Server>,
}

impl Genuine {
    /// Starts a fresh control plane, installs Knative Serving's API and its admission on it and
    /// waits until both are in effect. `home` is kubectl's home (its discovery cache).
    pub fn start(runtime: &Runtime, home: &Path) -> Self {
        let env = KubeEnv::start().unwrap_or_else(|error| panic!("{error:#}"));
        let (webhook, ca) = runtime.block_on(start_webhook());
        let genuine = Self {
            env,
            webhook: Some(webhook),
        };
        genuine.install(home, &ca);
        genuine
    }

    /// The admin kubeconfig (user `kube-env-admin`, group `system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.env.kubeconfig
    }

    /// Hands the webhook server over for shutdown on the caller's runtime.
    pub fn take_webhook(&mut self) -> Option<Server> {
        self.webhook.take()
    }

    /// Namespaces and CRDs from `deploy/kubernetes/`, then the webhook configurations; returns
    /// once a server-side dry run shows both webhooks admitting (kube-apiserver picks new
    /// configurations up asynchronously).
    fn install(&self, home: &Path, ca: &str) {
        let deploy = repository_root().join("deploy/kubernetes");
        let namespaces = deploy.join("100-namespaces.yaml");
        let crds = deploy.join("300-crds.yaml");
        self.kubectl_ok(
            home,
            &[
                "apply",
                "-f",
                &namespaces.display().to_string(),
                "-f",
                &crds.display().to_string(),
            ],
            None,
        );
        let mut wait = vec!["wait", "--for=condition=Established", "--timeout=60s"];
        wait.extend(CRDS);
        self.kubectl_ok(home, &wait, None);

        let port = self
            .webhook
            .as_ref()
            .expect("webhook running")
            .addr()
            .port();
        let configurations = webhook_configurations(&deploy.join("450-webhooks.yaml"), port, ca);
        self.kubectl_ok(home, &["create", "-f", "-"], Some(&configurations));
        self.await_admission(home);
    }

    /// Polls until defaulting and validation both answer a dry-run create.
    fn await_admission(&self, home: &Path) {
        let probe = "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: \
                     probe\n  namespace: default\nspec:\n  template:\n    spec:\n      \
                     containers:\n      - image: probe\n";
        let invalid = format!("{probe}  traffic:\n  - latestRevision: true\n    percent: 1\n");
        let deadline = Instant::now() + SETTLE;
        loop {
            let defaulted = self.kubectl(
                home,
                &[
                    "create",
                    "--dry-run=server",
                    "-f",
                    "-",
                    "-o",
                    "jsonpath={.spec.traffic[0].percent}",
                ],
                Some(probe),
            );
            let refused = self.kubectl(
                home,
                &["create", "--dry-run=server", "-f", "-"],
                Some(&invalid),
            );
            let defaulting = defaulted.status.success() && defaulted.stdout == b"100";
            let validating = String::from_utf8_lossy(&refused.stderr)
                .contains("admission webhook \"validation.webhook.serving.knative.dev\"");
            if defaulting && validating {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the webhooks never took effect: {defaulted:?} {refused:?}\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs kubectl as the admin.
    fn kubectl(&self, home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        kube_env::kubectl(&self.env.kubeconfig, home, args, stdin).expect("kubectl runs")
    }

    fn kubectl_ok(&self, home: &Path, args: &[&str], stdin: Option<&str>) {
        let output = self.kubectl(home, args, stdin);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
    }

    /// The tail of the control plane's logs, for failure messages.
    fn logs(&self) -> String {
        self.env.logs()
    }
}

/// The webhook server on 127.0.0.1:0 with a freshly minted certificate and Knative's default
/// `config-defaults`; returns it and its CA (PEM).
async fn start_webhook() -> (Server, String) {
    let names = certs::names(&[]).expect("default names");
    let bundle = certs::mint(&names, SystemTime::now(), certs::LEAF_VALIDITY, None).expect("mint");
    let key = certs::check(&bundle, &names, SystemTime::now()).expect("fresh certificate");
    let tls = tls::server_config(CertSlot::new(key)).expect("tls");
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    // The sender may go: the receiver keeps the last value, which is all a static config needs.
    let (_defaults, receiver) = watch::channel(ClusterDefaults::KNATIVE);
    let server = Server::start(listener, tls, receiver, Limits::default()).expect("serve");
    (server, bundle.ca)
}

/// `450-webhooks.yaml`'s two configurations, as a JSON `List`, each webhook's `clientConfig`
/// replaced by `https://127.0.0.1:port/<its path>` trusting `ca`.
fn webhook_configurations(path: &Path, port: u16, ca: &str) -> String {
    let text = std::fs::read_to_string(path).expect("450-webhooks.yaml");
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(ca);
    let mut items = Vec::new();
    for document in serde_norway::Deserializer::from_str(&text) {
        let mut object = Value::deserialize(document).expect("YAML document");
        if !object["kind"]
            .as_str()
            .is_some_and(|kind| kind.ends_with("WebhookConfiguration"))
        {
            continue;
        }
        for webhook in object["webhooks"]
            .as_array_mut()
            .expect("webhooks")
            .iter_mut()
        {
            let path = webhook["clientConfig"]["service"]["path"]
                .as_str()
                .expect("a path")
                .to_owned();
            webhook["clientConfig"] = json!({
                "url": format!("https://127.0.0.1:{port}{path}"),
                "caBundle": ca_bundle,
            });
        }
        items.push(object);
    }
    assert_eq!(items.len(), 2, "two webhook configurations");
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}
