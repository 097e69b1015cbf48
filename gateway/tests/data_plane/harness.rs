//! A data plane on an ephemeral loopback port with a manual autoscaler clock, and an HTTP
//! client that talks to it by Host header.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;
use wisp_api::revision_key::RevisionKey;
use wisp_autoscaler::{ManualClock, Timestamp};
use wisp_gateway::dataplane::{
    DataPlane, DataPlaneConfig, RevisionConfig, RevisionState, RouteChange,
};
use wisp_gateway::routing::{RouteConfig, TrafficTarget};
use wisp_runtime::{MIB, Runtime, RuntimeConfig};

pub const NS: &str = "default";

/// Settings a test may change before starting.
pub struct Options {
    pub data_plane: DataPlaneConfig,
    pub max_instances: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            data_plane: DataPlaneConfig::new(4096 * MIB),
            max_instances: 200,
        }
    }
}

pub struct Plane {
    pub data_plane: DataPlane,
    pub clock: Arc<ManualClock>,
    pub addr: SocketAddr,
    client: Client<HttpConnector, Empty<Bytes>>,
    _stop: oneshot::Sender<()>,
}

/// One answer, body read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// Compiled components shared by every test in this binary and kept between runs.
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wisp-gateway-test-cache")
}

impl Plane {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// A plane on a node of `node_memory`, each replica reserving `replica_memory`, with at
    /// most `max_instances` instances at once.
    pub async fn start_sized(node_memory: u64, replica_memory: u64, max_instances: u32) -> Self {
        let mut data_plane = DataPlaneConfig::new(node_memory);
        data_plane.default_memory_limit = replica_memory;
        Self::start_with(Options {
            data_plane,
            max_instances,
        })
        .await
    }

    pub async fn start_with(options: Options) -> Self {
        let runtime = Runtime::new(RuntimeConfig {
            max_instances: options.max_instances,
            max_memory_per_instance: 64 * MIB,
            cache_dir: Some(cache_dir()),
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
        let data_plane = DataPlane::new(runtime, options.data_plane, clock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = data_plane.clone();
        tokio::spawn(async move {
            serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build(connector);
        Self {
            data_plane,
            clock,
            addr,
            client,
            _stop: stop,
        }
    }

    /// Applies a revision and a route of the same name as its service sending it all traffic.
    pub async fn serve(&self, revision: RevisionConfig) -> RevisionKey {
        let key = revision.key.clone();
        let service = revision.service.clone();
        self.data_plane
            .apply_revision(revision)
            .await
            .expect("apply revision");
        self.add_route(RouteConfig::new(
            NS,
            service,
            vec![TrafficTarget::new(&key.name, 100)],
        ))
        .await;
        key
    }

    /// [`Plane::serve`], then lets simulated time pass until the revision's initial replica
    /// (Knative's initial-scale 1) is gone, so the next request is a cold start.
    pub async fn serve_at_zero(&self, revision: RevisionConfig) -> RevisionKey {
        let key = self.serve(revision).await;
        self.idle_until_zero(&key).await;
        key
    }

    /// Advances simulated time until the revision has no replica.
    pub async fn idle_until_zero(&self, key: &RevisionKey) -> u64 {
        let mut seconds = 0;
        while self.state(key).ready_replicas > 0 {
            self.advance(1);
            seconds += 1;
            assert!(seconds < 600, "never reached zero: {:?}", self.state(key));
            // The scaler task applies each decision; let it run before looking again.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        seconds
    }

    /// Adds or replaces one route, keeping the others (as the node's route sync does).
    pub async fn add_route(&self, route: RouteConfig) {
        let problems = self
            .data_plane
            .update_routes(vec![RouteChange::Set(route)])
            .await;
        assert!(problems.is_empty(), "route problems: {problems:?}");
    }

    /// Stops serving the route `name`, keeping the others.
    pub async fn remove_route(&self, name: &str) {
        let problems = self
            .data_plane
            .update_routes(vec![RouteChange::Remove {
                namespace: NS.into(),
                name: name.into(),
            }])
            .await;
        assert!(problems.is_empty(), "route problems: {problems:?}");
    }

    pub fn state(&self, key: &RevisionKey) -> RevisionState {
        self.data_plane
            .revision_state(key)
            .expect("revision is applied")
    }

    /// Advances simulated time by whole seconds, one autoscaler step per second.
    pub fn advance(&self, seconds: u64) {
        for _ in 0..seconds {
            self.clock.advance(Duration::from_secs(1));
            self.data_plane.step();
        }
    }

    pub async fn get(&self, host: &str, path_and_query: &str) -> Answer {
        let request = Request::get(format!("http://{}{path_and_query}", self.addr))
            .header(http::header::HOST, host)
            .body(Empty::new())
            .expect("request");
        let response = self.client.request(request).await.expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub fn metrics(&self) -> String {
        self.data_plane.metrics().encode().expect("encode metrics")
    }

    /// Polls `condition` on the revision's state until it holds (no timing assertion: a
    /// generous bound only turns a hang into a failure with the last state shown).
    pub async fn wait_for(
        &self,
        key: &RevisionKey,
        what: &str,
        condition: impl Fn(&RevisionState) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let state = self.state(key);
            if condition(&state) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting for {what}; last state {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// A revision of `component` named `{service}-00001`.
pub fn revision(service: &str, component: &str) -> RevisionConfig {
    RevisionConfig::new(RevisionKey::new(NS, format!("{service}-00001")), component)
}

pub fn annotated(mut revision: RevisionConfig, pairs: &[(&str, &str)]) -> RevisionConfig {
    let annotations: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (format!("autoscaling.knative.dev/{k}"), (*v).to_owned()))
        .collect();
    revision.annotations.extend(annotations);
    revision
}

pub fn host(service: &str) -> String {
    format!("{service}.{NS}.localhost")
}

/// The value of one counter or gauge series in an OpenMetrics text, by name and revision.
pub fn series(metrics: &str, name: &str, revision: &str) -> Option<f64> {
    let needle = format!("revision=\"{revision}\"");
    metrics
        .lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with('{'))
        .find(|line| line.contains(&needle))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}
