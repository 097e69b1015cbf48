//! What can go wrong while loading or creating the API server's credentials. Every variant
//! names the file involved and says what an operator can do about it, because these errors end
//! up as the single line `wisp` prints before refusing to start.

use std::io;
use std::path::PathBuf;

/// Why the credentials (CA, server certificate, bearer token, kubeconfig) could not be
/// loaded, created or written.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A directory could not be created or its permissions set.
    #[error(
        "cannot create directory {}: {source}; check that its parent exists and is writable",
        path.display()
    )]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// A file exists but could not be read.
    #[error("cannot read {}: {source}; {hint}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
        /// What to do about it, which depends on the file.
        hint: &'static str,
    },
    /// A file could not be written (or atomically moved into place).
    #[error("cannot write {}: {source}; check that its directory is writable", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// A file was read but its content is not what it should be.
    #[error("{} is not usable: {problem}; {hint}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// What to do about it, which depends on the file.
        hint: &'static str,
    },
    /// A configured extra server name is neither an IP address nor a DNS name a TLS client
    /// could check the certificate against.
    #[error(
        "extra server name {name:?} is neither an IP address nor a DNS name; \
         fix or remove it in the configuration"
    )]
    InvalidName {
        /// The name as configured.
        name: String,
    },
    /// A key or certificate could not be generated.
    #[error("cannot generate the {what}: {source}; this is a bug or a broken build of rcgen/ring")]
    Generate {
        /// Which key or certificate.
        what: &'static str,
        /// The underlying failure.
        #[source]
        source: rcgen::Error,
    },
    /// The operating system's random number generator failed.
    #[error(
        "cannot get random bytes for the bearer token: {cause}; the system's RNG is unavailable"
    )]
    Random {
        /// The underlying failure (not a `source`: getrandom is built without `std`, so its
        /// error does not implement `std::error::Error`).
        cause: getrandom::Error,
    },
    /// A freshly issued server certificate does not verify against the CA it was issued by,
    /// which happens when `ca.crt` was replaced by a certificate for another key or name.
    #[error(
        "the server certificate issued from {} does not verify against it: {problem}; \
         remove ca.crt and ca.key in that directory to start a new CA (then rewrite kubeconfigs)",
        ca_path.display()
    )]
    Unverifiable {
        /// The CA certificate.
        ca_path: PathBuf,
        /// Why verification failed.
        problem: String,
    },
    /// rustls refused the server certificate and key.
    #[error("cannot build the TLS configuration from {}: {source}; remove that file and its key to have them re-issued", path.display())]
    Tls {
        /// The server certificate the configuration was built from.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: rustls::Error,
    },
    /// The kubeconfig could not be rendered as YAML.
    #[error("cannot render the kubeconfig for {}: {source}; this is a bug", path.display())]
    Render {
        /// The kubeconfig's destination.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: serde_norway::Error,
    },
}
