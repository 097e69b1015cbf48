//! The Kubernetes-compatible API server: HTTPS with a bearer token, discovery, OpenAPI,
//! server-side Tables, CRUD with Knative admission, watches and garbage collection over the
//! [`crate::store`]. `shared/reference/kubernetes-api.md` is its specification; each module
//! says which part it implements.
//!
//! [`ApiServer::start`] loads (or creates) the data directory's credentials and database,
//! makes sure the standard namespaces exist, binds, writes the kubeconfig with the bound
//! address, and serves until [`ApiServer::shutdown`].

pub mod body;
pub mod core;
pub mod gc;
pub mod handlers;
pub mod limits;
pub mod metadata;
pub mod metrics;
pub mod objects;
pub mod paging;
pub mod patch;
pub mod path;
pub mod protobuf;
pub mod query;
pub mod respond;
pub mod secrets;
pub mod selection;
pub mod status;
pub mod version;
pub mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::credentials::{self, Credentials, CredentialsError};
use crate::data_dir::{DataDirError, DataDirLock};
use crate::registry;
use crate::store::{Store, StoreError, StoreOptions};

use handlers::Context;
use limits::{Class, Inflight, RequestLimits};
use objects::{Objects, WriteOptions};

/// Namespaces every cluster has; `knative-serving` holds Knative's ConfigMaps and
/// `kube-node-lease` the nodes' heartbeat Leases.
pub const STANDARD_NAMESPACES: &[&str] = &[
    "default",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "knative-serving",
];

/// Namespaces the real server refuses to delete (403), whatever the request.
pub const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// How long a client may take over the TLS handshake before its connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How often an idle HTTP/2 connection is pinged.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// Concurrent streams (requests and watches) one HTTP/2 connection may open by default:
/// kube-apiserver's since the HTTP/2 rapid-reset fixes (its `--http2-max-streams-per-connection`
/// of 0 means 100, the Go client's own default), so one connection cannot hold thousands of
/// requests. kube-rs and client-go multiplex every watch of a process over one connection; a
/// client needing more opens another connection, as Go's and hyper's clients do.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 100;

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ApiServerConfig {
    /// Holds the database, the credentials and the kubeconfig.
    pub data_dir: PathBuf,
    /// Address to bind (port 0 picks a free one).
    pub addr: SocketAddr,
    /// Extra names (DNS or IP) the server certificate covers besides loopback.
    pub extra_names: Vec<String>,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Interval of watch bookmarks (when the client allows them).
    pub bookmark_interval: Duration,
    /// Store tuning.
    pub store: StoreOptions,
    /// Requests in flight and their time limit.
    pub limits: RequestLimits,
    /// Concurrent HTTP/2 streams per connection (at least 1).
    pub max_streams_per_connection: u32,
}

impl ApiServerConfig {
    /// Defaults for serving `data_dir` on `addr`.
    pub fn new(data_dir: impl Into<PathBuf>, addr: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            addr,
            extra_names: Vec::new(),
            max_body: body::DEFAULT_MAX_BODY,
            bookmark_interval: Duration::from_secs(60),
            store: StoreOptions::default(),
            limits: RequestLimits::default(),
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
        }
    }
}

/// Why the API server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    /// Another process serves the data directory, or it cannot be locked.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The TLS material or token could not be loaded or created.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The database could not be opened.
    #[error("cannot open the API server's database: {0}")]
    Store(#[from] StoreError),
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; choose another --api-addr (port 0 picks a free one)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The standard namespaces could not be created.
    #[error("cannot create the standard namespaces: {0}")]
    Bootstrap(status::ApiError),
}

/// A running API server.
pub struct ApiServer {
    addr: SocketAddr,
    kubeconfig: PathBuf,
    node_kubeconfig: PathBuf,
    objects: Objects,
    stop: signal::Sender<bool>,
    serving: JoinHandle<()>,
    /// Held until the server is dropped (or the process dies).
    _lock: DataDirLock,
}

impl ApiServer {
    /// Starts serving; returns once the socket is bound and the kubeconfig written.
    pub async fn start(config: ApiServerConfig) -> Result<Self, ApiServerError> {
        let lock = DataDirLock::acquire(&config.data_dir)?;
        let credentials = Credentials::load_or_create(&config.data_dir, &config.extra_names)?;
        let store_path = config.data_dir.join("wisp.db");
        let store_options = config.store.clone();
        let store =
            tokio::task::spawn_blocking(move || Store::open_with(store_path, store_options))
                .await
                .map_err(|_| StoreError::Aborted)??;
        let (collector, queue) = gc::Collector::new();
        let objects = Objects::new(store, collector);
        bootstrap(&objects)
            .await
            .map_err(ApiServerError::Bootstrap)?;
        tokio::spawn(gc::run(objects.clone(), queue));

        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| ApiServerError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ApiServerError::Bind {
                addr: config.addr,
                source,
            })?;
        let reachable = reachable(addr);
        let kubeconfig = config.data_dir.join("kubeconfig");
        credentials::write_kubeconfig(&kubeconfig, &format!("https://{reachable}"), &credentials)?;
        let node_kubeconfig = config.data_dir.join("node.kubeconfig");
        credentials::write_kubeconfig_for(
            &node_kubeconfig,
            &format!("https://{reachable}"),
            &credentials,
            credentials::Identity::Node,
        )?;
        let acceptor = TlsAcceptor::from(credentials.server_tls_config()?);
        let (stop, stopped) = signal::channel(false);
        let context = Arc::new(Context {
            objects: objects.clone(),
            credentials,
            max_body: config.max_body,
            bookmark_interval: config.bookmark_interval,
            shutdown: stopped.clone(),
            server_address: reachable.to_string(),
            metrics: metrics::ApiMetrics::default(),
        });
        let limits = Limits {
            inflight: Inflight::new(config.limits),
            max_streams_per_connection: config.max_streams_per_connection.max(1),
        };
        let serving = tokio::spawn(serve(listener, acceptor, context, limits, stopped));
        tracing::info!(%addr, kubeconfig = %kubeconfig.display(), "API server listening");
        Ok(Self {
            addr,
            kubeconfig,
            node_kubeconfig,
            objects,
            stop,
            serving,
            _lock: lock,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://host:port` clients use.
    pub fn url(&self) -> String {
        format!("https://{}", reachable(self.addr))
    }

    /// The kubeconfig written for this server.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubeconfig of the node identity (writes only Pods and Nodes), for the data plane.
    pub fn node_kubeconfig(&self) -> &Path {
        &self.node_kubeconfig
    }

    /// The object operations, for in-process callers (controllers, the node reporter).
    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// Stops accepting, ends open watches and waits (briefly) for in-flight requests.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.serving.await;
    }
}

/// The address to give clients: a wildcard bind is reached over loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], v4.port()))
        }
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, v6.port()))
        }
        other => other,
    }
}

/// Creates the standard namespaces that do not exist yet.
async fn bootstrap(objects: &Objects) -> Result<(), status::ApiError> {
    let namespaces = registry::lookup("", "v1", "namespaces")
        .ok_or_else(|| status::ApiError::internal("the namespaces resource is not registered"))?;
    let options = WriteOptions {
        user: "system:apiserver".into(),
        ..WriteOptions::default()
    };
    for name in STANDARD_NAMESPACES {
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match objects.create(namespaces, None, object, &options).await {
            Ok(_) => {}
            Err(error) if error.reason == "AlreadyExists" => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// What bounds the requests of every connection.
struct Limits {
    inflight: Inflight,
    max_streams_per_connection: u32,
}

/// Answers one request within the caps and the time limit of [`limits`].
async fn limited(
    context: Arc<Context>,
    inflight: Inflight,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<respond::Body> {
    let class = Class::of(
        request.method(),
        request.uri().path(),
        request.uri().query(),
    );
    if class == Class::LongRunning {
        return handlers::handle(context, request).await;
    }
    // As on kube-apiserver, a request is authenticated before it is counted: anyone without
    // the token is answered 401 at once and cannot take the clients' slots.
    let token = request.headers().get(http::header::AUTHORIZATION);
    let anonymous = context
        .credentials
        .authenticate(token.map(|value| value.as_bytes()))
        .is_none();
    let refused = |error: status::ApiError| {
        let (verb, resource) = handlers::verb_and_resource(&request);
        let response = respond::error(&error);
        context.metrics.count(metrics::RequestLabels {
            verb,
            resource,
            code: response.status().as_u16(),
        });
        response
    };
    let timeout = match inflight.timeout_for(request.uri().query()) {
        Ok(timeout) => timeout,
        Err(error) => return refused(error),
    };
    let _slot = if anonymous {
        None
    } else {
        match inflight.admit(class) {
            Ok(slot) => Some(slot),
            Err(error) => {
                tracing::debug!(path = %request.uri().path(), "refused: too many requests in flight");
                return refused(error);
            }
        }
    };
    let (verb, resource) = handlers::verb_and_resource(&request);
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(timeout, handlers::handle(Arc::clone(&context), request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%verb, %path, ?timeout, "request timed out and was abandoned");
            let response = respond::error(&inflight.timed_out(timeout));
            context.metrics.count(metrics::RequestLabels {
                verb,
                resource,
                code: response.status().as_u16(),
            });
            response
        }
    }
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    context: Arc<Context>,
    limits: Limits,
    mut stopped: signal::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that connects and then sends nothing (or trickles headers) must not hold a task
    // and a socket forever; HTTP/2 connections are pinged so dead peers are noticed.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
        .max_concurrent_streams(limits.max_streams_per_connection);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let context = Arc::clone(&context);
        let inflight = limits.inflight.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = service_fn(move |request| {
                let context = Arc::clone(&context);
                let inflight = inflight.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(limited(context, inflight, request).await)
                }
            });
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
}
