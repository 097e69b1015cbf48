//! A registry token server for tests, as Docker Hub runs one: the registry answers 401 with
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, the client asks the realm for a token
//! with its basic credentials, and the registry accepts the ES256 JWT this server signs (its
//! certificate, self-signed, is the registry's `rootcertbundle`). The right user is granted the
//! scope asked for; anyone without credentials gets a token granting nothing; a wrong password
//! is refused here, before the registry is ever asked. Shared by `oci/tests/` and `wisp/tests/`
//! (by `#[path]`).

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

/// The `service` the registry names in its challenges and expects as the tokens' audience.
pub const SERVICE: &str = "wisp-test-registry";
/// The `iss` of every token, which the registry trusts.
pub const ISSUER: &str = "wisp-test-token-server";
/// How long a token lasts.
const TOKEN_SECONDS: u64 = 300;

/// One request the realm answered: who asked (`None`: no credentials, `Some(user)`: that
/// username, whether or not the password was right), the scopes asked for and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub user: Option<String>,
    pub scopes: Vec<String>,
    pub status: u16,
}

pub struct TokenServer {
    address: SocketAddr,
    dir: tempfile::TempDir,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Signer {
    key: EcdsaKeyPair,
    certificate_der: Vec<u8>,
    username: String,
    password: String,
    serial: AtomicU64,
    rng: ring::rand::SystemRandom,
}

impl TokenServer {
    /// A token server on its own thread (usable from synchronous and asynchronous tests) that
    /// grants `username` with `password` whatever repository scope it asks for.
    pub fn start(username: &str, password: &str) -> Self {
        let key_pair =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a P-256 key pair");
        let certificate = rcgen::CertificateParams::new(vec![ISSUER.to_owned()])
            .expect("certificate parameters")
            .self_signed(&key_pair)
            .expect("a self-signed certificate");
        let dir = tempfile::tempdir().expect("a directory for the root certificate bundle");
        std::fs::write(dir.path().join("root.pem"), certificate.pem()).expect("the root bundle");
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &rng,
        )
        .expect("ring reads rcgen's key");
        let signer = Arc::new(Signer {
            key,
            certificate_der: certificate.der().to_vec(),
            username: username.to_owned(),
            password: password.to_owned(),
            serial: AtomicU64::new(0),
            rng,
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let address = listener.local_addr().expect("its address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (shutdown, stopped) = tokio::sync::oneshot::channel();
        let served = requests.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the token server");
            runtime.block_on(serve(listener, signer, served, stopped));
        });
        Self {
            address,
            dir,
            requests,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Where the registry sends clients for tokens.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.address)
    }

    /// The registry's `auth:` section trusting this server's tokens.
    pub fn registry_auth_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.realm(),
            self.root_bundle().display()
        )
    }

    pub fn root_bundle(&self) -> PathBuf {
        self.dir.path().join("root.pem")
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    signer: Arc<Signer>,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
        };
        let signer = signer.clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = answer(&signer, &requests, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer<B>(
    signer: &Signer,
    requests: &Mutex<Vec<TokenRequest>>,
    request: &Request<B>,
) -> Response<Full<Bytes>> {
    let query: Vec<(String, String)> =
        form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let scopes: Vec<String> = query
        .iter()
        .filter(|(name, _)| name == "scope")
        .flat_map(|(_, value)| value.split(' ').map(str::to_owned))
        .collect();
    let service = query
        .iter()
        .find(|(name, _)| name == "service")
        .map(|(_, value)| value.as_str());
    let credentials = basic_credentials(request);
    let user = credentials.as_ref().map(|(user, _)| user.clone());
    let (status, body) = if request.uri().path() != "/token" {
        (
            StatusCode::NOT_FOUND,
            r#"{"details":"no such endpoint"}"#.to_owned(),
        )
    } else if service != Some(SERVICE) {
        (
            StatusCode::BAD_REQUEST,
            format!(r#"{{"details":"unknown service {service:?}"}}"#),
        )
    } else {
        match &credentials {
            // As Docker Hub: anonymous clients get a token, granting only what is public (here
            // nothing), and the registry refuses them.
            None => (StatusCode::OK, signer.token("", &[])),
            Some((user, password)) if *user == signer.username && *password == signer.password => {
                (StatusCode::OK, signer.token(user, &scopes))
            }
            Some(_) => (
                StatusCode::UNAUTHORIZED,
                r#"{"details":"incorrect username or password"}"#.to_owned(),
            ),
        }
    };
    requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(TokenRequest {
            user,
            scopes,
            status: status.as_u16(),
        });
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a response")
}

fn basic_credentials<B>(request: &Request<B>) -> Option<(String, String)> {
    let header = request.headers().get("authorization")?.to_str().ok()?;
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

impl Signer {
    /// `{"token": JWT}` granting `scopes` (`repository:NAME:ACTIONS`) to `subject`.
    fn token(&self, subject: &str, scopes: &[String]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs();
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|scope| {
                let mut parts = scope.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                (kind == "repository").then(|| {
                    serde_json::json!({
                        "type": kind,
                        "name": name,
                        "actions": actions.split(',').collect::<Vec<_>>(),
                    })
                })
            })
            .collect();
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [STANDARD.encode(&self.certificate_der)],
        });
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + TOKEN_SECONDS,
            "nbf": now.saturating_sub(1),
            "iat": now,
            "jti": format!("wisp-test-{}", self.serial.fetch_add(1, Ordering::Relaxed)),
            "access": access,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signed.as_bytes())
            .expect("an ES256 signature");
        let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()));
        serde_json::json!({ "token": token, "expires_in": TOKEN_SECONDS }).to_string()
    }
}
