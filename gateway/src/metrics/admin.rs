//! The admin endpoint: `/metrics` for Prometheus and `/healthz` for liveness probes, on a port
//! of its own so scrapes never share the request path's listener, limits or routing.

use std::future::Future;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use super::DataPlaneMetrics;
use super::encode::CONTENT_TYPE;
use crate::health::{self, Health};
use crate::server::{Server, ServerLimits};

/// Serves the admin endpoint on `listener` until `shutdown` resolves, then lets open scrapes
/// finish. Built on [`crate::server::Server`] (HTTP/1.1, and h2c for free) so the admin port
/// has the same accept-error handling, connection `limits` and graceful shutdown as the data
/// port; its connections count in the `admin` listener's series.
///
/// - `GET /metrics`: 200, the OpenMetrics text of `metrics` ([`super::CONTENT_TYPE`]).
/// - `GET /healthz`: 200 `ok`.
/// - Another method on those paths: 405 with `Allow`. Any other path: 404.
pub async fn serve_admin(
    listener: TcpListener,
    metrics: Arc<DataPlaneMetrics>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    serve_admin_with_health(listener, metrics, Health::serving(), limits, shutdown).await;
}

/// [`serve_admin`] for a node: `/healthz` answers from `health` (200 `ok` only while the node
/// serves; 503 while it loads what the API holds and once it drains, see [`crate::health`]).
pub async fn serve_admin_with_health(
    listener: TcpListener,
    metrics: Arc<DataPlaneMetrics>,
    health: Health,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let server = Server::new(limits).with_metrics(metrics.connections("admin"));
    let handler = move |request: Request<Incoming>, _peer| {
        let response = respond(&metrics, &health, request.method(), request.uri().path());
        async move { response }
    };
    server.serve(listener, handler, shutdown).await;
}

fn respond(
    metrics: &DataPlaneMetrics,
    health: &Health,
    method: &Method,
    path: &str,
) -> Response<String> {
    match path {
        "/metrics" | "/healthz" if method != Method::GET && method != Method::HEAD => {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            response
        }
        "/metrics" => match metrics.encode() {
            Ok(text) => {
                let mut response = Response::new(text);
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(CONTENT_TYPE),
                );
                response
            }
            Err(error) => {
                tracing::error!(%error, "cannot encode metrics");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n")
            }
        },
        "/healthz" => {
            let (status, text) = health::answer(health.phase());
            plain(status, text)
        }
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<String> {
    let mut response = Response::new(body.to_owned());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    use super::*;
    use crate::metrics::RevisionLabels;

    struct Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        }
    }

    /// One HTTP/1.1 request over a fresh loopback connection, read until the server closes.
    async fn request(address: std::net::SocketAddr, method: &str, path: &str) -> Answer {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        let head = format!("{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut raw = String::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut raw))
            .await
            .expect("answer in time")
            .expect("read");
        let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("status line");
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
            .collect();
        Answer {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    #[tokio::test]
    async fn serves_metrics_and_health_and_nothing_else_over_loopback() {
        let metrics = Arc::new(DataPlaneMetrics::new());
        metrics
            .revision(&RevisionLabels::new(
                "default",
                "hello",
                "hello",
                "hello-00001",
            ))
            .cold_start(Duration::from_micros(800));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_admin(
            listener,
            metrics.clone(),
            ServerLimits::default(),
            async {
                let _ = stopped.await;
            },
        ));

        let scrape = request(address, "GET", "/metrics").await;
        assert_eq!(scrape.status, 200);
        assert_eq!(scrape.header("content-type"), Some(CONTENT_TYPE));
        assert!(
            scrape
                .body
                .contains("# TYPE wisp_revision_cold_starts counter\n"),
            "{}",
            scrape.body
        );
        assert!(scrape.body.contains(
            r#"wisp_revision_cold_starts_total{namespace="default",service="hello",configuration="hello",revision="hello-00001"} 1"#
        ));
        assert!(scrape.body.ends_with("# EOF\n"));

        let health = request(address, "GET", "/healthz").await;
        assert_eq!((health.status, health.body.as_str()), (200, "ok"));

        let missing = request(address, "GET", "/nope").await;
        assert_eq!(missing.status, 404);

        let wrong_method = request(address, "POST", "/metrics").await;
        assert_eq!(wrong_method.status, 405);
        assert_eq!(wrong_method.header("allow"), Some("GET, HEAD"));

        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("admin server stops on shutdown")
            .expect("admin server task");
        assert!(
            TcpStream::connect(address).await.is_err(),
            "listener closed after shutdown"
        );
    }
}
