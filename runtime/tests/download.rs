//! Components fetched from an `http://` URL (a loopback server in the test, which the source
//! policy refuses unless private networks are allowed explicitly).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use wisp_runtime::{
    AllowedHost, ArtifactSource, Digest, LoadOrigin, Refusal, Runtime, RuntimeConfig, RuntimeError,
    SourcePolicy,
};

/// A runtime that may download from `hosts` (any when `None`), loopback allowed.
fn runtime_allowing(hosts: Option<Vec<&str>>) -> Runtime {
    let hosts = hosts.map(|hosts| {
        hosts
            .into_iter()
            .map(|host| AllowedHost::parse(host).unwrap())
            .collect()
    });
    Runtime::new(RuntimeConfig {
        sources: SourcePolicy::restricted(&[], hosts, true).unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn authority(base: &str) -> &str {
    base.trim_start_matches("http://")
}

/// Serves the hello component at `/hello.wasm`, a redirect to it at `/moved.wasm`, a redirect
/// to the same server under the name `localhost` at `/elsewhere.wasm`, and 404 elsewhere;
/// returns the base URL.
async fn serve_component() -> String {
    let bytes = Bytes::from(std::fs::read(wisp_samples::HELLO).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let port = listener.local_addr().unwrap().port();
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
                        let redirect = |response: &mut http::Response<_>, to: String| {
                            *response.status_mut() = http::StatusCode::FOUND;
                            response
                                .headers_mut()
                                .insert(http::header::LOCATION, to.parse().unwrap());
                        };
                        match request.uri().path() {
                            "/hello.wasm" => *response.body_mut() = Full::new(bytes),
                            "/moved.wasm" => redirect(&mut response, "/hello.wasm".into()),
                            "/elsewhere.wasm" => redirect(
                                &mut response,
                                format!("http://localhost:{port}/hello.wasm"),
                            ),
                            _ => *response.status_mut() = http::StatusCode::NOT_FOUND,
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
    let runtime = runtime_allowing(Some(vec![authority(&base)]));
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
    let runtime = runtime_allowing(None);
    let error = runtime
        .prepare(&ArtifactSource::parse(&format!("{base}/nothing.wasm")))
        .await
        .err()
        .unwrap();
    assert!(matches!(error, RuntimeError::Download { .. }), "{error}");
    assert!(error.to_string().contains("404"), "{error}");
}

#[tokio::test]
async fn a_loopback_server_needs_the_explicit_allowance() {
    let base = serve_component().await;
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let error = runtime
        .prepare(&ArtifactSource::parse(&format!("{base}/hello.wasm")))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            &error,
            RuntimeError::NotAllowed {
                refusal: Refusal::PrivateAddress { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("loopback"), "{error}");
    assert!(
        error.to_string().contains("--allow-private-networks"),
        "{error}"
    );
    // The name `localhost` is resolved and refused the same way.
    let port = base.rsplit(':').next().unwrap();
    let error = runtime
        .prepare(&ArtifactSource::parse(&format!(
            "http://localhost:{port}/hello.wasm"
        )))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            &error,
            RuntimeError::NotAllowed {
                refusal: Refusal::PrivateAddress { .. },
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_host_outside_the_allowed_list_is_refused_before_connecting() {
    let base = serve_component().await;
    let runtime = runtime_allowing(Some(vec!["registry.example.com"]));
    let error = runtime
        .prepare(&ArtifactSource::parse(&format!("{base}/hello.wasm")))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            &error,
            RuntimeError::NotAllowed {
                refusal: Refusal::HostNotAllowed { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("registry.example.com"),
        "{error}"
    );
}

#[tokio::test]
async fn a_redirect_within_the_host_is_followed() {
    let base = serve_component().await;
    let runtime = runtime_allowing(Some(vec![authority(&base)]));
    let prepared = runtime
        .prepare(&ArtifactSource::parse(&format!("{base}/moved.wasm")))
        .await
        .unwrap();
    let on_disk = std::fs::read(wisp_samples::HELLO).unwrap();
    assert_eq!(prepared.digest(), Digest::of(&on_disk));
}

#[tokio::test]
async fn a_redirect_to_another_host_is_refused() {
    let base = serve_component().await;
    // Even with every host and loopback allowed: the redirect leaves the host of the URL.
    let runtime = runtime_allowing(None);
    let error = runtime
        .prepare(&ArtifactSource::parse(&format!("{base}/elsewhere.wasm")))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            &error,
            RuntimeError::NotAllowed {
                refusal: Refusal::Redirect { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("localhost"), "{error}");
}
