//! The serving certificate kept in a Secret that every `wisp controller` replica shares: read
//! it, create it when absent, renew it when [`certs::check`] says so. Replicas race only
//! through the API server's optimistic concurrency: a create that finds the Secret already made
//! (409 AlreadyExists) or a renewal based on a stale resourceVersion (409 Conflict) re-reads
//! and takes what the winner wrote.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use rustls::sign::CertifiedKey;
use wisp_control::pki::ServerIdentity;

use crate::certs::{self, CertBundle};

/// The Secret's keys: the usual ones of a `kubernetes.io/tls` Secret.
const CA_KEY: &str = "ca.crt";
const CERT_KEY: &str = "tls.crt";
const KEY_KEY: &str = "tls.key";

/// How many read-decide-write rounds one [`ensure`] makes before giving up; each lost round
/// means another replica wrote, so the next read almost always finds a good certificate.
const ATTEMPTS: usize = 5;

/// Where the certificate Secret lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// Its namespace (`wisp-system` by default).
    pub namespace: String,
    /// Its name (`wisp-webhook-certs` by default).
    pub name: String,
}

/// Why no certificate could be had from the Secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The API refused or failed.
    #[error(
        "cannot {verb} Secret {namespace}/{name} (the webhook's serving certificate): {problem}"
    )]
    Api {
        /// `read`, `create` or `update`.
        verb: &'static str,
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// What the API said, once (kube's own error repeats the message in its source chain).
        problem: String,
    },
    /// A certificate could not be minted.
    #[error(transparent)]
    Mint(#[from] certs::CertError),
    /// Other writers kept winning.
    #[error(
        "Secret {namespace}/{name} kept changing under us ({ATTEMPTS} attempts); is another \
         writer fighting over it (e.g. replicas with different --webhook-san)?"
    )]
    Contended {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
}

/// A certificate fit to serve, as stored.
#[derive(Debug, Clone)]
pub struct Served {
    /// The Secret's content.
    pub bundle: CertBundle,
    /// The leaf and key for rustls.
    pub key: Arc<CertifiedKey>,
}

/// The certificate in the Secret, created or renewed first if it is absent or unfit for
/// `names` at `now`.
pub async fn ensure(
    api: &Api<Secret>,
    at: &SecretRef,
    names: &[ServerIdentity],
    now: SystemTime,
) -> Result<Served, SecretError> {
    let error = |verb: &'static str| {
        move |source: kube::Error| SecretError::Api {
            verb,
            namespace: at.namespace.clone(),
            name: at.name.clone(),
            problem: describe(&source),
        }
    };
    for _ in 0..ATTEMPTS {
        let stored = api.get_opt(&at.name).await.map_err(error("read"))?;
        let Some(stored) = stored else {
            let bundle = certs::mint(names, now, certs::LEAF_VALIDITY, None)?;
            match api
                .create(&PostParams::default(), &new_secret(at, &bundle))
                .await
            {
                Ok(_) => {
                    tracing::info!(secret = %format!("{}/{}", at.namespace, at.name), "webhook: created the serving certificate");
                    return served(bundle, names, now);
                }
                // Another replica created it first: use theirs.
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(other) => return Err(error("create")(other)),
            }
        };
        let previous = bundle_of(&stored);
        let why = match &previous {
            Some(bundle) => match certs::check(bundle, names, now) {
                Ok(key) => {
                    return Ok(Served {
                        bundle: bundle.clone(),
                        key,
                    });
                }
                Err(why) => why,
            },
            None => format!("it lacks {CA_KEY}, {CERT_KEY} or {KEY_KEY}"),
        };
        tracing::info!(secret = %format!("{}/{}", at.namespace, at.name), reason = %why, "webhook: renewing the serving certificate");
        let bundle = certs::mint(names, now, certs::LEAF_VALIDITY, previous.as_ref())?;
        // The stored resourceVersion makes this a compare-and-swap: a replica that renewed
        // first makes ours a 409, and the next round reads theirs.
        match api
            .replace(&at.name, &PostParams::default(), &renewed(stored, &bundle))
            .await
        {
            Ok(_) => return served(bundle, names, now),
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(other) => return Err(error("update")(other)),
        }
    }
    Err(SecretError::Contended {
        namespace: at.namespace.clone(),
        name: at.name.clone(),
    })
}

/// What went wrong in a person's words: the API's message (with what to do about a refusal),
/// else the client's error.
fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if status.code == 403 => format!(
            "{}; the controller's ServiceAccount needs get, create and update on it \
             (deploy/kubernetes/200-controller-rbac.yaml)",
            status.message
        ),
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}

/// A bundle just minted, checked the way a stored one is (so a minting bug fails loudly here
/// rather than in the API server's handshake).
fn served(
    bundle: CertBundle,
    names: &[ServerIdentity],
    now: SystemTime,
) -> Result<Served, SecretError> {
    match certs::check(&bundle, names, now) {
        Ok(key) => Ok(Served { bundle, key }),
        Err(why) => Err(SecretError::Mint(certs::CertError::Unusable(why))),
    }
}

/// The certificate in a stored Secret, if it has all three keys as UTF-8.
pub fn bundle_of(secret: &Secret) -> Option<CertBundle> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| {
        data.get(key)
            .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok())
    };
    Some(CertBundle {
        ca: text(CA_KEY)?,
        cert: text(CERT_KEY)?,
        key: text(KEY_KEY)?,
    })
}

fn data_of(bundle: &CertBundle) -> BTreeMap<String, ByteString> {
    [
        (CA_KEY, &bundle.ca),
        (CERT_KEY, &bundle.cert),
        (KEY_KEY, &bundle.key),
    ]
    .into_iter()
    .map(|(key, pem)| (key.to_owned(), ByteString(pem.as_bytes().to_vec())))
    .collect()
}

/// A new Secret holding `bundle`.
pub fn new_secret(at: &SecretRef, bundle: &CertBundle) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(at.name.clone()),
            namespace: Some(at.namespace.clone()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "wisp-controller".to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(data_of(bundle)),
        ..Secret::default()
    }
}

/// `stored` with its certificate replaced by `bundle`; its metadata (resourceVersion, labels,
/// anything an operator added) and type are kept, and other keys too.
fn renewed(mut stored: Secret, bundle: &CertBundle) -> Secret {
    let mut data = stored.data.take().unwrap_or_default();
    data.extend(data_of(bundle));
    stored.data = Some(data);
    // `stringData` is write-only; a stale copy would overwrite what we just set.
    stored.string_data = None;
    stored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> SecretRef {
        SecretRef {
            namespace: "wisp-system".into(),
            name: "wisp-webhook-certs".into(),
        }
    }

    #[test]
    fn a_secret_round_trips_its_bundle() {
        let names = certs::names(&[]).expect("valid");
        let bundle =
            certs::mint(&names, SystemTime::now(), certs::LEAF_VALIDITY, None).expect("minted");
        let secret = new_secret(&at(), &bundle);
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(bundle_of(&secret), Some(bundle));
    }

    #[test]
    fn a_renewal_keeps_metadata_type_and_other_keys() {
        let names = certs::names(&[]).expect("valid");
        let now = SystemTime::now();
        let old = certs::mint(&names, now, certs::LEAF_VALIDITY, None).expect("minted");
        let new = certs::mint(&names, now, certs::LEAF_VALIDITY, Some(&old)).expect("minted");
        let mut stored = new_secret(&at(), &old);
        stored.metadata.resource_version = Some("42".into());
        stored.type_ = Some("Opaque".into());
        if let Some(data) = stored.data.as_mut() {
            data.insert("note".into(), ByteString(b"keep".to_vec()));
        }
        let written = renewed(stored, &new);
        assert_eq!(written.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(written.type_.as_deref(), Some("Opaque"));
        assert_eq!(bundle_of(&written), Some(new));
        let data = written.data.unwrap_or_default();
        assert_eq!(data.get("note"), Some(&ByteString(b"keep".to_vec())));
    }

    #[test]
    fn a_secret_missing_a_key_has_no_bundle() {
        let names = certs::names(&[]).expect("valid");
        let bundle =
            certs::mint(&names, SystemTime::now(), certs::LEAF_VALIDITY, None).expect("minted");
        let mut secret = new_secret(&at(), &bundle);
        if let Some(data) = secret.data.as_mut() {
            data.remove(KEY_KEY);
        }
        assert_eq!(bundle_of(&secret), None);
        assert_eq!(bundle_of(&Secret::default()), None);
    }
}
