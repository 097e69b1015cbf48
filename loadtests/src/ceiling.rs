//! The HTTP ceiling: a plain hyper server answering every request with the same text as the
//! `hello` sample, so a benchmark shows how close a wasm server gets to bare HTTP.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub const HELLO_TEXT: &str = "Hello from wisp!\n";

/// Serves forever on `listener`.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_request| async {
                let mut response =
                    http::Response::new(Full::new(Bytes::from_static(HELLO_TEXT.as_bytes())));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain"),
                );
                Ok::<_, Infallible>(response)
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
