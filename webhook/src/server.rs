//! The HTTPS server kube-apiserver calls: `POST /defaulting` and `POST /validation` with an
//! `AdmissionReview`, plus `GET /healthz`. Bodies are bounded, every request has a deadline,
//! and a malformed review costs only its own request (400).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use wisp_control::admission::ClusterDefaults;

use crate::handler::{self, Hook};

/// The path of the mutating (defaulting) webhook.
pub const DEFAULTING_PATH: &str = "/defaulting";
/// The path of the validating webhook.
pub const VALIDATION_PATH: &str = "/validation";

/// kube-apiserver's own request-body limit; a review carries one or two objects, far smaller.
pub const DEFAULT_MAX_BODY: usize = 3 * 1024 * 1024;
/// A request must be read and answered within this; kube-apiserver gives up on a webhook after
/// its `timeoutSeconds` (10 in the shipped configurations) anyway.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take over the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle HTTP/2 connection is pinged, so dead peers are noticed.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long shutdown waits for in-flight reviews.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Limits of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest review body accepted (413 above).
    pub max_body: usize,
    /// Deadline for reading a review and answering it (408 after).
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: DEFAULT_MAX_BODY,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// A running server; [`Server::shutdown`] stops it.
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    serving: JoinHandle<()>,
}

impl Server {
    /// Serves on `listener` with `tls`, admitting with the `config-defaults` `defaults` holds at
    /// the moment of each review.
    pub fn start(
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        defaults: watch::Receiver<ClusterDefaults>,
        limits: Limits,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let serving = tokio::spawn(serve(
            listener,
            TlsAcceptor::from(tls),
            Arc::new(Context { defaults, limits }),
            stopped,
        ));
        Ok(Self {
            addr,
            stop,
            serving,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits (briefly) for reviews in flight.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.serving.await;
    }
}

/// What every request handler shares.
struct Context {
    defaults: watch::Receiver<ClusterDefaults>,
    limits: Limits,
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    context: Arc<Context>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that connects and then sends nothing must not hold a task and a socket forever.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::warn!(%error, "webhook: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let context = Arc::clone(&context);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "webhook: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "webhook: TLS handshake timed out");
                    return;
                }
            };
            let service = service_fn(move |request| {
                let context = Arc::clone(&context);
                async move { Ok::<_, Infallible>(handle(&context, request).await) }
            });
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "webhook: connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
}

async fn handle(context: &Context, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let hook = match (request.method(), request.uri().path()) {
        (&Method::POST, DEFAULTING_PATH) => Hook::Defaulting,
        (&Method::POST, VALIDATION_PATH) => Hook::Validation,
        (&Method::GET, "/healthz") => return text(StatusCode::OK, "ok".into()),
        (_, DEFAULTING_PATH | VALIDATION_PATH) => {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST an admission.k8s.io/v1 AdmissionReview here".into(),
            );
        }
        (_, path) => {
            return text(
                StatusCode::NOT_FOUND,
                format!(
                    "nothing is served at {path}; the webhooks are POST {DEFAULTING_PATH} and \
                     POST {VALIDATION_PATH}"
                ),
            );
        }
    };
    let limits = context.limits;
    let reviewed = tokio::time::timeout(limits.request_timeout, async {
        let body = read_body(request.into_body(), limits.max_body).await?;
        // Read at the moment of the review, so a change of config-defaults applies to the next
        // admission; copied out so no lock is held while admitting.
        let defaults = *context.defaults.borrow();
        handler::answer(hook, &body, &defaults)
            .map_err(|bad| text(StatusCode::BAD_REQUEST, bad.to_string()))
    })
    .await;
    match reviewed {
        Ok(Ok(review)) => match serde_json::to_vec(&review) {
            Ok(bytes) => {
                let mut response = Response::new(Full::new(Bytes::from(bytes)));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                response
            }
            Err(error) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the answer: {error}"),
            ),
        },
        Ok(Err(refusal)) => refusal,
        Err(_) => text(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the review was not received within {} ms",
                limits.request_timeout.as_millis()
            ),
        ),
    }
}

/// The whole body, or the response that refuses it (413 over `limit`, 400 if it breaks off).
async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Response<Full<Bytes>>> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the review is larger than the limit of {limit} bytes"),
        )),
        Err(error) => Err(text(
            StatusCode::BAD_REQUEST,
            format!("could not read the review: {error}"),
        )),
    }
}

fn text(code: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
