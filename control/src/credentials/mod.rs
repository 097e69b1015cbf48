//! The API server's credentials: a private CA, a server certificate it signed, and the bearer
//! token kubectl and kube-rs present, all kept under the data directory; plus the kubeconfig
//! that hands the CA and token to clients.
//!
//! Layout: `<data_dir>/pki/{ca.crt,ca.key,server.crt,server.key}` and `<data_dir>/token`. Keys
//! and the token are created 0600, directories 0700. Each pair is written key first and
//! certificate last, so the certificate's presence marks a complete pair even after a crash.
//! The CA and token are kept for as long as they are readable (existing kubeconfigs stay
//! valid); the server certificate is re-issued from the CA whenever it does not cover the
//! configured names, expires within 30 days, or cannot be read.

pub mod authorization;
mod error;
mod files;
mod kubeconfig;
pub(crate) mod names;
mod token;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use error::CredentialsError;
pub use kubeconfig::{write_kubeconfig, write_kubeconfig_for};

use crate::pki::{self, CaFile, PemPair, Profile, ServerIdentity};
use files::{PUBLIC_FILE, SECRET_FILE, ensure_private_dir, read_optional, write_atomically};
use names::server_identities;

/// The API server's PKI. The CA outlives many server certificates, so kubeconfigs written once
/// keep working for ten years.
pub(crate) const PKI: Profile = Profile {
    ca_common_name: "wisp-ca",
    ca_validity: Duration::from_secs(3650 * 24 * 60 * 60),
    server_common_name: "wisp-apiserver",
    cert_file: "server.crt",
    key_file: "server.key",
};
/// A server certificate is cheap to replace (every start checks it), so it is kept short.
pub(crate) const SERVER_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// How long before expiry a stored server certificate is replaced.
pub(crate) const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The user that requests authenticated by the bearer token act as: what Knative's
/// `serving.knative.dev/creator` and `lastModifier` annotations record, and the user name in
/// written kubeconfigs. It may do everything except write what nodes report (Pods, Nodes).
pub const ADMIN_USER: &str = "wisp-admin";

/// The user of the node token: the data plane (`wisp node`, or the node in `wisp up`)
/// registering its Node and Lease, reporting its replicas as Pods and writing the status of
/// Revisions and Routes, like a kubelet's `system:node:<name>`. It may read everything and
/// write only those ([`authorization::node_may`] is the rule), so a leaked node token cannot
/// change Services.
pub const NODE_USER: &str = "system:node:wisp";

/// Who a request authenticated as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    Admin,
    Node,
}

impl Identity {
    /// The user name recorded in annotations and shown in messages.
    pub fn user(self) -> &'static str {
        match self {
            Identity::Admin => ADMIN_USER,
            Identity::Node => NODE_USER,
        }
    }
}

const CA_HINT: &str = "fix its permissions, or remove pki/ca.crt and pki/ca.key to start a new \
                       CA (kubeconfigs written before must then be rewritten)";
const SERVER_HINT: &str = "fix its permissions or remove it; it is re-issued from the CA";
const TOKEN_HINT: &str = "fix its permissions, or remove it to get a new token (kubeconfigs \
                          written before must then be rewritten)";

/// Everything the API server needs to serve TLS and check bearer tokens. `Debug` shows the
/// certificates but never the server key or the token.
pub struct Credentials {
    ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    token: String,
    node_token: String,
    server_cert_path: PathBuf,
}

impl Credentials {
    /// Loads or creates everything under `data_dir` (created 0700 if missing): the CA and token
    /// are created only if absent; the server certificate is (re-)issued whenever it is missing,
    /// unreadable, does not cover loopback (`127.0.0.1`, `::1`, `localhost`) and every one of
    /// `extra_names` (IP literals as IP SANs, anything else as DNS SANs), or expires within 30
    /// days.
    pub fn load_or_create(
        data_dir: &Path,
        extra_names: &[String],
    ) -> Result<Self, CredentialsError> {
        Self::load_or_create_at(data_dir, extra_names, SystemTime::now())
    }

    fn load_or_create_at(
        data_dir: &Path,
        extra_names: &[String],
        now: SystemTime,
    ) -> Result<Self, CredentialsError> {
        let names = server_identities(extra_names)?;
        ensure_private_dir(data_dir)?;
        let pki_dir = data_dir.join("pki");
        ensure_private_dir(&pki_dir)?;

        let (ca_pem, ca) = load_or_create_ca(&pki_dir, now)?;
        let token = load_or_create_token(&data_dir.join("token"))?;
        let node_token = load_or_create_token(&data_dir.join("node-token"))?;
        let server_cert_path = pki_dir.join("server.crt");
        let server = load_or_issue_server(&pki_dir, &ca, &names, now)?;
        Ok(Self {
            ca_pem,
            server_chain: server.chain,
            server_key: server.key,
            token,
            node_token,
            server_cert_path,
        })
    }

    /// The CA certificate (PEM) clients must trust: what kubeconfigs carry as
    /// `certificate-authority-data`.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The bearer token, for writing kubeconfigs. Never log it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The bearer token of `identity`. Never log it.
    pub fn token_of(&self, identity: Identity) -> &str {
        match identity {
            Identity::Admin => &self.token,
            Identity::Node => &self.node_token,
        }
    }

    /// A rustls server configuration with the server certificate, offering ALPN `h2` and
    /// `http/1.1`, built on the ring provider explicitly so no process-wide default provider
    /// has to be installed.
    pub fn server_tls_config(&self) -> Result<Arc<ServerConfig>, CredentialsError> {
        let tls = |source| CredentialsError::Tls {
            path: self.server_cert_path.clone(),
            source,
        };
        let mut config = ServerConfig::builder_with_provider(pki::provider())
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_no_client_auth()
            .with_single_cert(self.server_chain.clone(), self.server_key.clone_key())
            .map_err(tls)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Whether an `Authorization` header value is `Bearer <token>` with our token (scheme
    /// case-insensitive, nothing before or after the token), compared in constant time.
    pub fn authorizes(&self, authorization: Option<&[u8]>) -> bool {
        self.authenticate(authorization).is_some()
    }

    /// Who presented `authorization` (the raw header value), if anyone we know. Both tokens are
    /// always compared, so the timing does not tell which one a guess came close to.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Option<Identity> {
        let admin = token::authorizes(&self.token, authorization);
        let node = token::authorizes(&self.node_token, authorization);
        match (admin, node) {
            (true, _) => Some(Identity::Admin),
            (false, true) => Some(Identity::Node),
            (false, false) => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("ca_pem", &self.ca_pem)
            .field("server_chain", &self.server_chain)
            .field("server_key", &"<redacted>")
            .field("token", &"<redacted>")
            .field("node_token", &"<redacted>")
            .field("server_cert_path", &self.server_cert_path)
            .finish()
    }
}

/// The stored CA, or a new one if `ca.crt` does not exist. A `ca.key` without `ca.crt` is the
/// remains of a crash during creation and is replaced.
fn load_or_create_ca(
    pki_dir: &Path,
    now: SystemTime,
) -> Result<(String, pki::Ca), CredentialsError> {
    let cert_path = pki_dir.join("ca.crt");
    let key_path = pki_dir.join("ca.key");
    let corrupt = |file: CaFile, problem: String| CredentialsError::Corrupt {
        path: match file {
            CaFile::Cert => cert_path.clone(),
            CaFile::Key => key_path.clone(),
        },
        problem,
        hint: CA_HINT,
    };
    match read_optional(&cert_path, CA_HINT)? {
        Some(cert) => {
            let key = read_optional(&key_path, CA_HINT)?.ok_or_else(|| {
                corrupt(CaFile::Key, "it is missing while ca.crt exists".to_string())
            })?;
            let ca = pki::load_ca(&PKI, &cert, &key)
                .map_err(|(file, problem)| corrupt(file, problem))?;
            Ok((cert, ca))
        }
        None => {
            let (pems, ca) =
                pki::new_ca(&PKI, now).map_err(|source| CredentialsError::Generate {
                    what: "certificate authority",
                    source,
                })?;
            write_atomically(&key_path, pems.key.as_bytes(), SECRET_FILE)?;
            write_atomically(&cert_path, pems.cert.as_bytes(), PUBLIC_FILE)?;
            tracing::info!(path = %cert_path.display(), "created a new certificate authority");
            Ok((pems.cert, ca))
        }
    }
}

fn load_or_create_token(path: &Path) -> Result<String, CredentialsError> {
    if let Some(text) = read_optional(path, TOKEN_HINT)? {
        return token::parse(&text).map_err(|problem| CredentialsError::Corrupt {
            path: path.to_path_buf(),
            problem,
            hint: TOKEN_HINT,
        });
    }
    let token = token::generate().map_err(|cause| CredentialsError::Random { cause })?;
    write_atomically(path, format!("{token}\n").as_bytes(), SECRET_FILE)?;
    tracing::info!(path = %path.display(), "created a new bearer token");
    Ok(token)
}

/// The stored server certificate if it is still fit (see [`pki::Ca::check_server`]) at
/// `now + 30 days`, otherwise a new one issued from `ca` and stored.
fn load_or_issue_server(
    pki_dir: &Path,
    ca: &pki::Ca,
    names: &[ServerIdentity],
    now: SystemTime,
) -> Result<pki::ServerMaterial, CredentialsError> {
    let cert_path = pki_dir.join("server.crt");
    let key_path = pki_dir.join("server.key");
    let stored = match read_optional(&cert_path, SERVER_HINT)? {
        Some(cert) => read_optional(&key_path, SERVER_HINT)?.map(|key| PemPair { cert, key }),
        None => None,
    };
    let reason = match stored {
        None => "there is none".to_string(),
        Some(stored) => match ca.check_server(&stored, names, now + RENEW_BEFORE) {
            Ok(material) => return Ok(material),
            Err(reason) => reason,
        },
    };

    let issued = ca
        .issue_server(names, now, SERVER_VALIDITY)
        .map_err(|source| CredentialsError::Generate {
            what: "server certificate",
            source,
        })?;
    // Checked before it replaces anything: a stored CA whose subject differs from what this
    // code issues with would otherwise yield certificates no client accepts.
    let material =
        ca.check_server(&issued, names, now)
            .map_err(|problem| CredentialsError::Unverifiable {
                ca_path: pki_dir.join("ca.crt"),
                problem,
            })?;
    write_atomically(&key_path, issued.key.as_bytes(), SECRET_FILE)?;
    write_atomically(&cert_path, issued.cert.as_bytes(), PUBLIC_FILE)?;
    tracing::info!(path = %cert_path.display(), %reason, "issued a new server certificate");
    Ok(material)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn read(path: PathBuf) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn first_start_creates_private_files() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let credentials = Credentials::load_or_create(&data, &[]).unwrap();
        assert_eq!(mode_of(&data), 0o700);
        assert_eq!(mode_of(&data.join("pki")), 0o700);
        for secret in ["pki/ca.key", "pki/server.key", "token"] {
            assert_eq!(mode_of(&data.join(secret)), 0o600, "{secret}");
        }
        assert_eq!(read(data.join("pki/ca.crt")), credentials.ca_pem());
        assert_eq!(read(data.join("token")).trim(), credentials.token());
    }

    #[test]
    fn second_start_keeps_everything() {
        let root = tempfile::tempdir().unwrap();
        let first = Credentials::load_or_create(root.path(), &["wisp.test".into()]).unwrap();
        let server = read(root.path().join("pki/server.crt"));
        let second = Credentials::load_or_create(root.path(), &["wisp.test".into()]).unwrap();
        assert_eq!(first.ca_pem(), second.ca_pem());
        assert_eq!(first.token(), second.token());
        assert_eq!(read(root.path().join("pki/server.crt")), server);
        assert_eq!(first.server_chain, second.server_chain);
    }

    #[test]
    fn new_names_reissue_only_the_server_certificate() {
        let root = tempfile::tempdir().unwrap();
        let first = Credentials::load_or_create(root.path(), &[]).unwrap();
        let extra = ["10.20.30.40".to_string(), "wisp.test".to_string()];
        let second = Credentials::load_or_create(root.path(), &extra).unwrap();
        assert_eq!(first.ca_pem(), second.ca_pem());
        assert_eq!(first.token(), second.token());
        assert_ne!(first.server_chain, second.server_chain);
        // Dropping a name again needs no new certificate: the old one still covers the rest.
        let third = Credentials::load_or_create(root.path(), &extra[..1]).unwrap();
        assert_eq!(second.server_chain, third.server_chain);
    }

    #[test]
    fn a_certificate_near_expiry_is_reissued() {
        let root = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let first = Credentials::load_or_create_at(root.path(), &[], now).unwrap();
        // Eleven months later the one-year certificate is within 30 days of expiry.
        let later = now + Duration::from_secs(340 * 24 * 60 * 60);
        let second = Credentials::load_or_create_at(root.path(), &[], later).unwrap();
        assert_ne!(first.server_chain, second.server_chain);
        assert_eq!(first.ca_pem(), second.ca_pem());
    }

    #[test]
    fn a_corrupt_server_certificate_is_reissued() {
        let root = tempfile::tempdir().unwrap();
        let first = Credentials::load_or_create(root.path(), &[]).unwrap();
        fs::write(root.path().join("pki/server.crt"), "garbage").unwrap();
        let second = Credentials::load_or_create(root.path(), &[]).unwrap();
        assert_ne!(first.server_chain, second.server_chain);
        assert!(read(root.path().join("pki/server.crt")).starts_with("-----BEGIN CERTIFICATE"));
    }

    #[test]
    fn a_missing_server_key_is_reissued() {
        let root = tempfile::tempdir().unwrap();
        Credentials::load_or_create(root.path(), &[]).unwrap();
        fs::remove_file(root.path().join("pki/server.key")).unwrap();
        Credentials::load_or_create(root.path(), &[]).unwrap();
        assert!(root.path().join("pki/server.key").exists());
    }

    #[test]
    fn ca_problems_are_errors_naming_the_file() {
        let root = tempfile::tempdir().unwrap();
        Credentials::load_or_create(root.path(), &[]).unwrap();
        let key = root.path().join("pki/ca.key");
        fs::remove_file(&key).unwrap();
        let err = Credentials::load_or_create(root.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("pki/ca.key"), "{err}");

        fs::write(&key, "not a key").unwrap();
        let err = Credentials::load_or_create(root.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("pki/ca.key"), "{err}");

        let cert = root.path().join("pki/ca.crt");
        fs::write(&cert, "not a certificate").unwrap();
        let err = Credentials::load_or_create(root.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("pki/ca.crt"), "{err}");
    }

    #[test]
    fn an_orphaned_ca_key_is_replaced() {
        let root = tempfile::tempdir().unwrap();
        let pki = root.path().join("pki");
        fs::create_dir_all(&pki).unwrap();
        fs::write(pki.join("ca.key"), "half-written").unwrap();
        Credentials::load_or_create(root.path(), &[]).unwrap();
        assert!(read(pki.join("ca.key")).contains("PRIVATE KEY"));
    }

    #[test]
    fn a_bad_token_file_is_an_error_and_a_good_one_is_used() {
        let root = tempfile::tempdir().unwrap();
        let token = root.path().join("token");
        fs::write(&token, "short\n").unwrap();
        let err = Credentials::load_or_create(root.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("token"), "{err}");

        let chosen = "x".repeat(40);
        fs::write(&token, format!("{chosen}\n")).unwrap();
        let credentials = Credentials::load_or_create(root.path(), &[]).unwrap();
        assert_eq!(credentials.token(), chosen);
    }

    #[test]
    fn invalid_extra_names_are_refused_before_touching_disk() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let err = Credentials::load_or_create(&data, &["*.wild".into()]).unwrap_err();
        assert!(matches!(err, CredentialsError::InvalidName { .. }));
        assert!(!data.exists());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let root = tempfile::tempdir().unwrap();
        let credentials = Credentials::load_or_create(root.path(), &[]).unwrap();
        let debug = format!("{credentials:?}");
        assert!(!debug.contains(credentials.token()));
        assert!(debug.contains("<redacted>"));
        let key = read(root.path().join("pki/server.key"));
        let key_body: String = key.lines().nth(1).unwrap().to_string();
        assert!(!debug.contains(&key_body));
    }

    #[test]
    fn tls_config_offers_h2_and_http1() {
        let root = tempfile::tempdir().unwrap();
        let credentials = Credentials::load_or_create(root.path(), &[]).unwrap();
        let config = credentials.server_tls_config().unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn authorizes_only_the_token() {
        let root = tempfile::tempdir().unwrap();
        let credentials = Credentials::load_or_create(root.path(), &[]).unwrap();
        let good = format!("Bearer {}", credentials.token());
        assert!(credentials.authorizes(Some(good.as_bytes())));
        assert!(!credentials.authorizes(Some(format!("{good}x").as_bytes())));
        assert!(!credentials.authorizes(None));
    }
}
