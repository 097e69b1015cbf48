//! Components fetched from an `http://` URL (a loopback server in the test).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use wisp_runtime::{ArtifactSource, Digest, LoadOrigin, Runtime, RuntimeConfig, RuntimeError};

/// Serves the hello component at `/hello.wasm` and 404 elsewhere; returns the base URL.
async fn serve_component() -> String {
    let bytes = Bytes::from(std::fs::read(wisp_samples::HELLO).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let bytes = bytes.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let bytes = bytes.clone();
                    async move {
                        let mut response = http::Response::new(Full::new(Bytes::new()));
                        if request.uri().path() == "/hello.wasm" {
                            *response.body_mut() = Full::new(bytes);
                        } else {
                            *response.status_mut() = http::StatusCode::NOT_FOUND;
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    base
}

#[tokio::test]
async fn a_component_is_downloaded_checked_and_compiled() {
    let base = serve_component().await;
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let prepared = runtime
        .prepare(&ArtifactSource::parse(&format!("{base}/hello.wasm")))
        .await
        .unwrap();
    assert_eq!(prepared.origin(), LoadOrigin::Compiled);
    let on_disk = std::fs::read(wisp_samples::HELLO).unwrap();
    assert_eq!(
        prepared.digest(),
        Digest::of(&on_disk),
        "the digest is of the downloaded bytes"
    );
}

#[tokio::test]
async fn a_missing_url_is_a_download_error_naming_the_status() {
    let base = serve_component().await;
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let error = runtime
        .prepare(&ArtifactSource::parse(&format!("{base}/nothing.wasm")))
        .await
        .err()
        .unwrap();
    assert!(matches!(error, RuntimeError::Download { .. }), "{error}");
    assert!(error.to_string().contains("404"), "{error}");
}
