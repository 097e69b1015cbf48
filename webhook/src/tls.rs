//! The server's TLS: a rustls configuration whose certificate can be swapped while serving, so
//! a renewed certificate takes effect on the next handshake without a restart.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate handshakes present; replaced by [`CertSlot::set`].
#[derive(Debug)]
pub struct CertSlot {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertSlot {
    /// A slot presenting `key`.
    pub fn new(key: Arc<CertifiedKey>) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(key),
        })
    }

    /// Presents `key` from the next handshake on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        // A panic elsewhere while holding the lock cannot leave an `Arc` half-written.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
    }

    /// The certificate presented now.
    pub fn get(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// A server configuration presenting `slot`'s certificate, offering ALPN `h2` and `http/1.1`
/// (kube-apiserver's webhook client speaks HTTP/2 when offered).
pub fn server_config(slot: Arc<CertSlot>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(wisp_control::pki::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(slot);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
