//! The data plane's sync against the embedded API server: the test plays the controllers
//! (creates Revisions, writes Routes' status.traffic) and checks what the sync reports back and
//! what the gateway serves.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::oneshot;
use wisp_api::knative::{Revision, Route};
use wisp_api::nodes::{self, RevisionReport, RevisionState, RouteReport};
use wisp_api::revision_key::RevisionKey;
use wisp_autoscaler::{ManualClock, Timestamp};
use wisp_control::apiserver::{ApiServer, ApiServerConfig};
use wisp_gateway::dataplane::{DataPlane, DataPlaneConfig};
use wisp_gateway::sync::{SyncOptions, run};
use wisp_runtime::{MIB, Runtime, RuntimeConfig};

const NS: &str = "default";

struct Cluster {
    server: Option<ApiServer>,
    _dir: tempfile::TempDir,
    client: Client,
    node_client: Client,
    image_dir: std::path::PathBuf,
    data_plane: DataPlane,
    gateway: SocketAddr,
    http: HttpClient<HttpConnector, Empty<Bytes>>,
    sync: Option<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    /// An API server, a data plane serving on loopback, and the sync between them; relative
    /// images resolve against `image_dir`.
    async fn start(image_dir: &Path) -> Self {
        let mut cluster = Self::without_sync(image_dir).await;
        // Not waited for: these tests poll for what they expect.
        let _loaded = cluster.start_sync();
        cluster
    }

    /// The API server and the data plane, not yet synced: what a restart finds.
    async fn without_sync(image_dir: &Path) -> Self {
        let dir = tempfile::tempdir().expect("data dir");
        let config = ApiServerConfig::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
        let server = ApiServer::start(config).await.expect("API server starts");
        let client = client_from(server.kubeconfig()).await;
        let node_client = client_from(server.node_kubeconfig()).await;

        let runtime = Runtime::new(RuntimeConfig {
            max_memory_per_instance: 64 * MIB,
            cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("wisp-gateway-test-cache")),
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        // A clock that never moves: replicas stay up for as long as the test looks at them.
        let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
        let data_plane = DataPlane::new(runtime, DataPlaneConfig::new(1024 * MIB), clock);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let gateway = listener.local_addr().expect("addr");
        let serving = data_plane.clone();
        tokio::spawn(async move { serving.serve(listener, std::future::pending()).await });
        Self {
            server: Some(server),
            _dir: dir,
            client,
            node_client,
            image_dir: image_dir.to_path_buf(),
            data_plane,
            gateway,
            http: HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new()),
            sync: None,
        }
    }

    /// Starts the sync; the receiver fires once what the API held is served.
    fn start_sync(&mut self) -> oneshot::Receiver<()> {
        let (loaded, receiver) = oneshot::channel();
        self.sync = Some(tokio::spawn(run(
            self.data_plane.clone(),
            // The node identity is all a node has.
            self.node_client.clone(),
            SyncOptions {
                node_name: NODE.into(),
                image_base_dir: self.image_dir.clone(),
                status_interval: Duration::from_millis(100),
                address: std::net::IpAddr::from([127, 0, 0, 1]),
                gateway_port: self.gateway.port(),
                lease_duration: Duration::from_secs(40),
                // Ready from the start: these tests do not follow the load.
                health: wisp_gateway::health::Health::serving(),
            },
            loaded,
        )));
        receiver
    }

    fn revisions(&self) -> Api<Revision> {
        Api::namespaced(self.client.clone(), NS)
    }

    fn routes(&self) -> Api<Route> {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn create_revision(&self, name: &str, image: &str) {
        let revision: Revision = serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "metadata": {
                "name": name,
                "namespace": NS,
            },
            "spec": {"containers": [{"image": image}]},
        }))
        .expect("revision");
        self.revisions()
            .create(&PostParams::default(), &revision)
            .await
            .expect("create revision");
    }

    /// Waits for this node's report on the revision (the apply's outcome); returns the revision.
    async fn settled(&self, name: &str) -> Revision {
        let api = self.revisions();
        eventually(&format!("revision {name} settles"), || async {
            let revision = api.get(name).await.ok()?;
            (report_of(&revision)?.state != RevisionState::Deploying).then_some(revision)
        })
        .await
    }

    /// Plays the Route controller: a Route whose status.traffic sends everything to `revision`,
    /// IngressReady not yet reconciled.
    async fn route_to(&self, name: &str, revision: &str) {
        self.route_with(name, revision, false).await;
    }

    /// A Route to `revision`, IngressReady (and Ready) True when `ingress_ready`: as stored
    /// by a data plane before a restart.
    async fn route_with(&self, name: &str, revision: &str, ingress_ready: bool) {
        let traffic = json!([{"revisionName": revision, "percent": 100}]);
        self.route_with_traffic(name, traffic, ingress_ready).await;
    }

    /// A Route whose spec and status.traffic are `traffic`.
    async fn route_with_traffic(
        &self,
        name: &str,
        traffic: serde_json::Value,
        ingress_ready: bool,
    ) {
        let route: Route = serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Route",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"traffic": traffic},
        }))
        .expect("route");
        self.routes()
            .create(&PostParams::default(), &route)
            .await
            .expect("create route");
        let t = "2026-01-01T00:00:00Z";
        let ingress = if ingress_ready {
            json!([
                {"type": "IngressReady", "status": "True", "lastTransitionTime": t},
                {"type": "Ready", "status": "True", "lastTransitionTime": t},
            ])
        } else {
            json!([
                {"type": "IngressReady", "status": "Unknown", "reason": "IngressNotConfigured",
                 "message": "Ingress has not yet been reconciled.", "lastTransitionTime": t},
                {"type": "Ready", "status": "Unknown", "reason": "IngressNotConfigured",
                 "message": "Ingress has not yet been reconciled.", "lastTransitionTime": t},
            ])
        };
        let mut conditions = vec![
            json!({"type": "AllTrafficAssigned", "status": "True", "lastTransitionTime": t}),
            json!({"type": "CertificateProvisioned", "status": "True", "reason": "TLSNotEnabled", "lastTransitionTime": t}),
        ];
        conditions.extend(ingress.as_array().cloned().unwrap_or_default());
        let status = json!({"status": {
            "traffic": traffic,
            "conditions": conditions,
        }});
        self.routes()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("route status");
    }

    /// Waits until the sync has taken in every Route event so far: it reports on a new Route
    /// `name` only after it received the events before it, its own reports' echoes included.
    /// Without this, an echo could make a Route look changed and hide what a test checks.
    async fn barrier(&self, routes: &Api<Route>, name: &str, revision: &str) {
        self.route_to(name, revision).await;
        eventually(&format!("the barrier route {name} is reported"), || async {
            serves(&routes.get(name).await.ok()?).then_some(())
        })
        .await;
    }

    async fn config_map(&self, name: &str, data: &[(&str, &str)]) {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), "knative-serving");
        let data: BTreeMap<String, String> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let map = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "knative-serving"},
            "data": data,
        });
        api.patch(
            name,
            &PatchParams::apply("sync-test").force(),
            &Patch::Apply(&map),
        )
        .await
        .expect("apply config map");
    }

    async fn get(&self, host: &str) -> (StatusCode, String) {
        let request = Request::get(format!("http://{}/", self.gateway))
            .header(http::header::HOST, host)
            .body(Empty::new())
            .expect("request");
        let response = self.http.request(request).await.expect("response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn stop(mut self) {
        if let Some(sync) = self.sync.take() {
            sync.abort();
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

async fn client_from(path: &Path) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kubeconfig is usable");
    Client::try_from(config).expect("client")
}

/// Polls `check` until it yields a value (a generous bound turns a hang into a failure).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The name the sync under test reports as.
const NODE: &str = "test-node";

/// This node's report on the revision, if it made one.
fn report_of(revision: &Revision) -> Option<RevisionReport> {
    let status = revision.status.clone()?;
    serde_json::from_str(status.annotations.get(&nodes::report_key(NODE))?).ok()
}

fn ready_of(revision: &Revision) -> RevisionReport {
    report_of(revision).expect("the node's report")
}

/// This node's report on the route.
fn route_report(route: &Route) -> Option<RouteReport> {
    let text = route
        .status
        .as_ref()?
        .annotations
        .get(&nodes::report_key(NODE))?;
    serde_json::from_str(text).ok()
}

/// Whether this node reports serving the route's current traffic.
fn serves(route: &Route) -> bool {
    let Some(status) = route.status.as_ref() else {
        return false;
    };
    let Some(text) = status.annotations.get(&nodes::report_key(NODE)) else {
        return false;
    };
    serde_json::from_str::<RouteReport>(text).is_ok_and(|report| {
        report.problem.is_none()
            && report.serving == nodes::traffic_hash(&status.traffic, status.url.as_deref())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_becomes_ready_and_serves_once_routed() {
    let hello = Path::new(wisp_samples::HELLO);
    let cluster = Cluster::start(hello.parent().expect("samples dir")).await;
    let image = hello.file_name().unwrap().to_str().unwrap();
    let mut versions = cluster
        .revisions()
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch revisions")
        .boxed();
    cluster.create_revision("hello-00001", image).await;

    let revision = cluster.settled("hello-00001").await;
    // The node's first report is the apply's outcome: every version the revision went through
    // up to it carries no report of this node (a "Deploying" one first was a status write per
    // revision that said nothing new).
    let mut reports = Vec::new();
    while reports.last() != Some(&RevisionState::Ready) {
        let event = tokio::time::timeout(Duration::from_secs(30), versions.try_next())
            .await
            .expect("the revision's versions arrive")
            .expect("the watch goes on")
            .expect("the watch is open");
        if let WatchEvent::Added(version) | WatchEvent::Modified(version) = event
            && let Some(report) = report_of(&version)
        {
            reports.push(report.state);
        }
    }
    assert_eq!(reports, [RevisionState::Ready]);
    let ready = ready_of(&revision);
    assert_eq!(ready.state, RevisionState::Ready, "{ready:?}");
    assert_eq!(ready.container.as_deref(), Some("user-container"));
    let digest = ready.image_digest.clone().unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(ready.generation, revision.metadata.generation);

    // Not served until a Route's status.traffic names it.
    let (code, _) = cluster.get("hello.default.localhost").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    cluster.route_to("hello", "hello-00001").await;
    let routes = cluster.routes();
    eventually("the node reports serving the route", || async {
        let route = routes.get("hello").await.ok()?;
        serves(&route).then_some(())
    })
    .await;
    let (code, body) = cluster.get("hello.default.localhost").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body, "Hello from wisp!\n");

    // Replica counts reach the status on the status interval.
    let revisions = cluster.revisions();
    eventually("the node's replica count in its report", || async {
        let revision = revisions.get("hello-00001").await.ok()?;
        (report_of(&revision)?.actual >= 1).then_some(())
    })
    .await;

    // The replica shows as a Pod on this node, and the node as a Node.
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    let pod = eventually("the replica's Pod", || async {
        pods.get_opt("hello-00001-test-node-1").await.ok()?
    })
    .await;
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["serving.knative.dev/revision"], "hello-00001");
    assert_eq!(labels["app"], "hello-00001");
    let owner = &pod.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Revision", revision.metadata.uid.as_deref().unwrap())
    );
    let spec = pod.spec.clone().unwrap();
    assert_eq!(spec.node_name.as_deref(), Some("test-node"));
    assert_eq!(spec.containers[0].name, "user-container");
    let pod_status = pod.status.clone().unwrap();
    assert_eq!(pod_status.phase.as_deref(), Some("Running"));
    assert_eq!(pod_status.pod_ip.as_deref(), Some("127.0.0.1"));
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let node = eventually("the Node", || async {
        nodes.get_opt("test-node").await.ok()?
    })
    .await;
    let taints = node.spec.clone().unwrap().taints.unwrap_or_default();
    assert_eq!(taints[0].key, wisp_api::nodes::TAINT_KEY, "{taints:?}");
    let capacity = node.status.unwrap().capacity.unwrap();
    assert_eq!(capacity["memory"].0, (1024 * MIB).to_string());

    // config-domain changes the hosts live.
    cluster
        .config_map(
            "config-domain",
            &[("_example", "ignored"), ("example.com", "")],
        )
        .await;
    eventually("the new domain serves", || async {
        (cluster.get("hello.default.example.com").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(
        cluster.get("hello.default.localhost").await.0,
        StatusCode::NOT_FOUND
    );

    // config-autoscaler is applied; a bad value keeps the previous configuration.
    cluster
        .config_map(
            "config-autoscaler",
            &[("container-concurrency-target-default", "42")],
        )
        .await;
    let autoscaler = cluster.data_plane.autoscaler().clone();
    eventually("config-autoscaler applied", || async {
        (autoscaler.config().container_concurrency_target_default == 42.0).then_some(())
    })
    .await;
    cluster
        .config_map(
            "config-autoscaler",
            &[
                ("container-concurrency-target-default", "50"),
                ("stable-window", "forever"),
            ],
        )
        .await;
    // ConfigMap events are handled in order: once a later change is served, the bad value
    // was seen (and rejected whole: not even its good key applies).
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "knative-serving");
    maps.delete("config-domain", &DeleteParams::default())
        .await
        .expect("delete config-domain");
    eventually("a later ConfigMap change is applied", || async {
        (cluster.get("hello.default.localhost").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(
        autoscaler.config().container_concurrency_target_default,
        42.0
    );

    // A deleted revision leaves the data plane.
    cluster
        .revisions()
        .delete("hello-00001", &DeleteParams::default())
        .await
        .expect("delete");
    let key = RevisionKey::new(NS, "hello-00001");
    eventually("the revision is removed", || async {
        cluster
            .data_plane
            .revision_state(&key)
            .is_none()
            .then_some(())
    })
    .await;
    cluster.stop().await;
}

/// The sync looks at a Route again when something it depends on changes, not only the Route
/// itself: a Route that names a revision before the revision exists is served and reported
/// once it loads; a Route whose tag host another Route's own host takes reports the conflict,
/// and reports clean once that Route is deleted, though nothing of its own changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_are_reported_again_when_their_revisions_or_neighbours_change() {
    let hello = Path::new(wisp_samples::HELLO);
    let cluster = Cluster::start(hello.parent().expect("samples dir")).await;
    let image = hello.file_name().unwrap().to_str().unwrap();
    let routes = cluster.routes();

    // Programmed before its revision exists (the gateway answers 503, not 404), so only the
    // revision's arrival can bring the report.
    cluster.route_to("late", "late-00001").await;
    eventually("the route is programmed", || async {
        (cluster.get("late.default.localhost").await.0 == StatusCode::SERVICE_UNAVAILABLE)
            .then_some(())
    })
    .await;
    cluster.create_revision("late-00001", image).await;
    eventually("the route that came first is reported", || async {
        serves(&routes.get("late").await.ok()?).then_some(())
    })
    .await;
    assert_eq!(
        cluster.get("late.default.localhost").await.0,
        StatusCode::OK
    );

    // Route `b` tags its revision `a`: its tag host is `a-b.default.localhost`.
    let tagged = json!([{"revisionName": "late-00001", "percent": 100, "tag": "a"}]);
    cluster.route_with_traffic("b", tagged, false).await;
    eventually("the tagged route is reported", || async {
        serves(&routes.get("b").await.ok()?).then_some(())
    })
    .await;
    cluster.barrier(&routes, "after-b", "late-00001").await;
    // Route `a-b` claims the same host as its own, and wins it.
    cluster.route_to("a-b", "late-00001").await;
    let problem = eventually("the conflict is reported on `b`", || async {
        route_report(&routes.get("b").await.ok()?)?.problem
    })
    .await;
    assert!(problem.contains("a-b.default.localhost"), "{problem}");
    cluster
        .barrier(&routes, "after-conflict", "late-00001")
        .await;

    routes
        .delete("a-b", &DeleteParams::default())
        .await
        .expect("delete a-b");
    eventually("`b` reports clean again", || async {
        serves(&routes.get("b").await.ok()?).then_some(())
    })
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_that_cannot_run_say_why() {
    let images = tempfile::tempdir().expect("images dir");
    std::fs::write(images.path().join("text.wasm"), "not a component").expect("write");
    let cluster = Cluster::start(images.path()).await;

    cluster
        .create_revision("missing-00001", "absent.wasm")
        .await;
    cluster.create_revision("text-00001", "text.wasm").await;

    let missing = ready_of(&cluster.settled("missing-00001").await);
    assert_eq!(missing.state, RevisionState::Failed);
    assert_eq!(missing.reason.as_deref(), Some("ContainerMissing"));
    let message = missing.message.unwrap_or_default();
    assert!(
        message.starts_with("Unable to fetch image \"absent.wasm\""),
        "{message}"
    );
    let path = images.path().join("absent.wasm");
    assert!(message.contains(path.to_str().unwrap()), "{message}");

    let text = ready_of(&cluster.settled("text-00001").await);
    assert_eq!(text.state, RevisionState::Failed);
    assert_eq!(text.reason.as_deref(), Some("InvalidComponent"), "{text:?}");

    // The missing file appears: the retry picks it up without a new revision.
    std::fs::copy(wisp_samples::HELLO, &path).expect("copy");
    let revisions = cluster.revisions();
    eventually("the missing revision recovers", || async {
        let revision = revisions.get("missing-00001").await.ok()?;
        (report_of(&revision)?.state == RevisionState::Ready).then_some(())
    })
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_loaded_means_stored_routes_are_served() {
    let hello = Path::new(wisp_samples::HELLO);
    let mut cluster = Cluster::without_sync(hello.parent().expect("samples dir")).await;
    let image = hello.file_name().unwrap().to_str().unwrap();
    // What the database holds after a restart: a revision and a Route already IngressReady.
    cluster.create_revision("hello-00001", image).await;
    cluster.route_with("hello", "hello-00001", true).await;
    assert_eq!(
        cluster.get("hello.default.localhost").await.0,
        StatusCode::NOT_FOUND
    );

    let loaded = cluster.start_sync();
    tokio::time::timeout(Duration::from_secs(30), loaded)
        .await
        .expect("loaded in time")
        .expect("loaded is sent");
    // At once: no polling.
    let (code, body) = cluster.get("hello.default.localhost").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body, "Hello from wisp!\n");
    // The revision's first attempt wrote its status.
    let revision = cluster.revisions().get("hello-00001").await.expect("get");
    assert_eq!(ready_of(&revision).state, RevisionState::Ready);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loaded_fires_with_nothing_to_load() {
    let images = tempfile::tempdir().expect("images dir");
    let mut cluster = Cluster::without_sync(images.path()).await;
    let loaded = cluster.start_sync();
    tokio::time::timeout(Duration::from_secs(30), loaded)
        .await
        .expect("loaded in time")
        .expect("loaded is sent");
    cluster.stop().await;
}
