//! The webhook as `wisp controller` runs it: the certificate from the shared Secret, the HTTPS
//! server, and the three loops that keep it right — the certificate (re-read and renewed), the
//! webhook configurations' caBundle, and `config-defaults` with `config-autoscaler`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use wisp_control::pki::ServerIdentity;

use crate::ca_bundle::{self, CaSource};
use crate::certs;
use crate::defaults;
use crate::secret::{self, SecretRef};
use crate::server::{Limits, Server};
use crate::tls::{self, CertSlot};

/// How often each replica re-reads the Secret regardless: to renew a certificate coming due.
/// One another replica renewed is picked up sooner, as soon as the caBundle loop sees it.
const CERT_RECHECK: Duration = Duration::from_secs(300);

/// What `wisp controller`'s flags choose.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Secret holding the serving certificate.
    pub secret: SecretRef,
    /// Names the certificate covers besides [`certs::DEFAULT_NAMES`] (`--webhook-san`).
    pub extra_names: Vec<String>,
    /// Body and time limits of the server.
    pub limits: Limits,
}

/// Why the webhook could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A `--webhook-san` is not a name.
    #[error(transparent)]
    Names(#[from] certs::CertError),
    /// The certificate Secret could not be read or written.
    #[error(transparent)]
    Secret(#[from] secret::SecretError),
    /// rustls refused the configuration.
    #[error("cannot configure the webhook's TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The listener has no address.
    #[error("the webhook listener has no address: {0}")]
    Listener(#[from] std::io::Error),
}

/// The webhook serving; [`Webhook::shutdown`] stops it.
pub struct Webhook {
    server: Server,
    loops: Vec<JoinHandle<()>>,
}

impl Webhook {
    /// Gets the serving certificate (creating or renewing the Secret if needed), starts serving
    /// on `listener` and starts the loops. Fails only on what a restart would not fix by itself
    /// soon: no permission on the Secret, a bad `--webhook-san`.
    pub async fn start(
        client: Client,
        listener: TcpListener,
        options: Options,
    ) -> Result<Self, StartError> {
        let names = certs::names(&options.extra_names)?;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &options.secret.namespace);
        let served = secret::ensure(&secrets, &options.secret, &names, SystemTime::now()).await?;
        let slot = CertSlot::new(Arc::clone(&served.key));
        let tls = tls::server_config(Arc::clone(&slot))?;
        let (ca_sender, own_ca) = watch::channel(served.bundle.ca.clone());
        let recheck = Arc::new(Notify::new());

        let (defaults, defaults_loop) =
            defaults::watch_config_defaults(client.clone(), defaults::INITIAL_SYNC).await;
        let server = Server::start(listener, tls, defaults, options.limits)?;
        let loops = vec![
            defaults_loop,
            tokio::spawn(ca_bundle::run(
                client.clone(),
                CaSource {
                    secrets: secrets.clone(),
                    name: options.secret.name.clone(),
                    own: own_ca,
                    recheck: Arc::clone(&recheck),
                },
            )),
            tokio::spawn(keep_certificate(
                secrets,
                options.secret,
                names,
                served.bundle,
                slot,
                ca_sender,
                recheck,
            )),
        ];
        Ok(Self { server, loops })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Stops the loops and the server (reviews in flight finish first, briefly).
    pub async fn shutdown(self) {
        for task in &self.loops {
            task.abort();
        }
        self.server.shutdown().await;
    }
}

/// Every [`CERT_RECHECK`], and at once when `recheck` is notified (the Secret was seen to
/// change): the Secret's certificate, renewed when due; served from the next handshake on and
/// its CA published for the caBundle when it changed. Failures are logged and the current
/// certificate kept (it is still valid for at least the renewal margin).
async fn keep_certificate(
    secrets: Api<Secret>,
    at: SecretRef,
    names: Vec<ServerIdentity>,
    mut current: certs::CertBundle,
    slot: Arc<CertSlot>,
    ca: watch::Sender<String>,
    recheck: Arc<Notify>,
) {
    let mut every = tokio::time::interval(CERT_RECHECK);
    // The first tick is immediate; the certificate was just read.
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = recheck.notified() => {}
        }
        match secret::ensure(&secrets, &at, &names, SystemTime::now()).await {
            Ok(served) if served.bundle != current => {
                tracing::info!("webhook: serving the renewed certificate");
                slot.set(served.key);
                ca.send_replace(served.bundle.ca.clone());
                current = served.bundle;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "webhook: keeping the current certificate"),
        }
    }
}
