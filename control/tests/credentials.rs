//! The credentials as clients meet them: real TLS handshakes against the generated CA and
//! server certificate, kube-rs and the real kubectl using the written kubeconfig unchanged,
//! and the bearer token check in front of a tiny HTTPS server.

use std::convert::Infallible;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use wisp_control::credentials::{Credentials, write_kubeconfig};

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn client_config(roots: RootCertStore) -> Arc<ClientConfig> {
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    Arc::new(config)
}

fn trusting(ca_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    client_config(roots)
}

/// Accepts TLS connections and answers each with one line, until the test ends.
async fn echo_server(credentials: &Credentials) -> SocketAddr {
    let acceptor = TlsAcceptor::from(credentials.server_tls_config().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"hello\n").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

async fn handshake(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &'static str,
) -> Result<String, std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from(name).unwrap();
    let mut tls = TlsConnector::from(config).connect(server_name, tcp).await?;
    let mut greeting = String::new();
    tls.read_to_string(&mut greeting).await?;
    Ok(greeting)
}

#[test]
fn files_are_private_and_survive_restarts() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let first = Credentials::load_or_create(&data, &[]).unwrap();
    assert_eq!(mode_of(&data), 0o700);
    assert_eq!(mode_of(&data.join("pki")), 0o700);
    for secret in ["pki/ca.key", "pki/server.key", "token"] {
        assert_eq!(mode_of(&data.join(secret)), 0o600, "{secret}");
    }
    let kubeconfig = data.join("kubeconfig");
    write_kubeconfig(&kubeconfig, "https://127.0.0.1:6443", &first).unwrap();
    assert_eq!(mode_of(&kubeconfig), 0o600);

    let second = Credentials::load_or_create(&data, &[]).unwrap();
    assert_eq!(first.ca_pem(), second.ca_pem());
    assert_eq!(first.token(), second.token());

    let server_crt = fs::read(data.join("pki/server.crt")).unwrap();
    let third = Credentials::load_or_create(&data, &["wisp.example".into()]).unwrap();
    assert_eq!(first.ca_pem(), third.ca_pem());
    assert_eq!(first.token(), third.token());
    assert_ne!(fs::read(data.join("pki/server.crt")).unwrap(), server_crt);
}

#[test]
fn corrupt_server_certificate_is_reissued_and_unreadable_ca_key_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let first = Credentials::load_or_create(root.path(), &[]).unwrap();
    fs::write(root.path().join("pki/server.crt"), "not PEM at all").unwrap();
    let second = Credentials::load_or_create(root.path(), &[]).unwrap();
    assert_eq!(first.ca_pem(), second.ca_pem());
    let reissued = fs::read_to_string(root.path().join("pki/server.crt")).unwrap();
    assert!(reissued.starts_with("-----BEGIN CERTIFICATE-----"));

    // A directory in its place is unreadable even when the tests run as root.
    let ca_key = root.path().join("pki/ca.key");
    fs::remove_file(&ca_key).unwrap();
    fs::create_dir(&ca_key).unwrap();
    let err = Credentials::load_or_create(root.path(), &[]).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("pki/ca.key"), "{message}");
    assert!(message.contains("cannot read"), "{message}");
}

#[tokio::test]
async fn tls_handshake_trusts_only_our_ca() {
    let root = tempfile::tempdir().unwrap();
    let credentials = Credentials::load_or_create(root.path(), &["wisp.example".into()]).unwrap();
    let addr = echo_server(&credentials).await;
    let ours = trusting(credentials.ca_pem());

    for name in ["127.0.0.1", "localhost", "wisp.example"] {
        let greeting = handshake(addr, ours.clone(), name).await;
        assert_eq!(greeting.unwrap(), "hello\n", "{name}");
    }

    let err = handshake(addr, ours.clone(), "elsewhere.example")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");

    let nobody = client_config(RootCertStore::empty());
    let err = handshake(addr, nobody, "127.0.0.1").await.unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    // Another installation's CA has the same subject, so the chain is built and then fails on
    // the signature rather than on the issuer's name.
    let other_root = tempfile::tempdir().unwrap();
    let other = Credentials::load_or_create(other_root.path(), &[]).unwrap();
    let err = handshake(addr, trusting(other.ca_pem()), "127.0.0.1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("BadSignature"), "{err}");
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn failure(code: StatusCode, reason: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        code,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason,
            "code": code.as_u16(),
        }),
    )
}

/// Answers `GET /version` for holders of the token, 401 for everyone else, 404 elsewhere.
fn answer(credentials: &Credentials, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if !credentials.authorizes(authorization) {
        return failure(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    if request.uri().path() != "/version" {
        return failure(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    json_response(
        StatusCode::OK,
        json!({
            "major": "1", "minor": "32", "gitVersion": "v1.32.0-wisp",
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
            "platform": "linux/amd64",
        }),
    )
}

async fn version_server(credentials: Arc<Credentials>) -> SocketAddr {
    let acceptor = TlsAcceptor::from(credentials.server_tls_config().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let credentials = credentials.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |request: Request<Incoming>| {
                    let response = answer(&credentials, &request);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

async fn kube_version(kubeconfig: &Path) -> Result<String, kube::Error> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config)?;
    Ok(client.apiserver_version().await?.git_version)
}

/// A copy of the kubeconfig at `path` with the token replaced.
fn with_wrong_token(path: &Path, credentials: &Credentials) -> std::path::PathBuf {
    let yaml = fs::read_to_string(path).unwrap();
    let wrong = "f".repeat(credentials.token().len());
    assert_ne!(wrong, credentials.token());
    let wrong_path = path.with_file_name("wrong-kubeconfig");
    fs::write(&wrong_path, yaml.replace(credentials.token(), &wrong)).unwrap();
    wrong_path
}

#[tokio::test]
async fn kube_rs_uses_the_kubeconfig_as_written() {
    let root = tempfile::tempdir().unwrap();
    let credentials =
        Arc::new(Credentials::load_or_create(&root.path().join("data"), &[]).unwrap());
    let addr = version_server(credentials.clone()).await;

    for host in ["127.0.0.1", "localhost"] {
        let path = root.path().join(format!("kubeconfig-{host}"));
        let url = format!("https://{host}:{}", addr.port());
        write_kubeconfig(&path, &url, &credentials).unwrap();
        assert_eq!(kube_version(&path).await.unwrap(), "v1.32.0-wisp", "{host}");

        let wrong = with_wrong_token(&path, &credentials);
        match kube_version(&wrong).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 401, "{status:?}"),
            other => panic!("expected a 401, got {other:?}"),
        }
    }
}

fn kubectl(kubeconfig: &Path, home: &Path) -> std::process::Output {
    wisp_loadtests::kubectl_tool::command_or_fail()
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["version", "-o", "json", "--request-timeout=20s"])
        // Keeps kubectl's discovery cache and any real kubeconfig of the machine out of it.
        .env("HOME", home)
        .env("KUBECACHEDIR", home.join("cache"))
        .env_remove("KUBECONFIG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"))
}

#[tokio::test]
async fn kubectl_uses_the_kubeconfig_as_written() {
    let root = tempfile::tempdir().unwrap();
    let credentials =
        Arc::new(Credentials::load_or_create(&root.path().join("data"), &[]).unwrap());
    let addr = version_server(credentials.clone()).await;
    let path = root.path().join("kubeconfig");
    write_kubeconfig(
        &path,
        &format!("https://127.0.0.1:{}", addr.port()),
        &credentials,
    )
    .unwrap();

    let home = root.path().to_path_buf();
    let run = {
        let (path, home) = (path.clone(), home.clone());
        tokio::task::spawn_blocking(move || kubectl(&path, &home))
    };
    let output = run.await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let version: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        version["serverVersion"]["gitVersion"], "v1.32.0-wisp",
        "{stdout}"
    );

    let wrong = with_wrong_token(&path, &credentials);
    let output = tokio::task::spawn_blocking(move || kubectl(&wrong, &home))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("You must be logged in"), "{stderr}");
}
