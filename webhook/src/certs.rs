//! The webhook's serving certificate, as pure functions of a clock: the names it must carry,
//! what the Secret holds, minting, and the renewal decision. Minting and judging are
//! [`wisp_control::pki`]'s, shared with the embedded API server; only the data and the bundle
//! are the webhook's own.
//!
//! Every renewal mints a new CA with the leaf, so no CA private key is ever stored: the Secret
//! holds only what serving needs. To keep replicas that still serve the previous leaf trusted
//! until they re-read the Secret, `ca.crt` carries the new CA followed by the one before it,
//! and that whole bundle is what the webhook configurations trust.
//!
//! A stored certificate is judged with rustls' WebPKI verifier, i.e. the way the API server
//! will judge it: it chains to the current CA, is for `serverAuth`, covers every name, and is
//! still valid [`RENEW_BEFORE`] from now.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::sign::CertifiedKey;
use wisp_control::pki::{self, PemPair, Profile, ServerIdentity};

/// The names every serving certificate has: the Service `wisp-webhook` in `wisp-system` under
/// each name a cluster resolves it by, and loopback for an API server that calls the webhook
/// by `clientConfig.url` on the same machine (tests, single-node setups).
pub const DEFAULT_NAMES: &[&str] = &[
    "wisp-webhook",
    "wisp-webhook.wisp-system",
    "wisp-webhook.wisp-system.svc",
    "wisp-webhook.wisp-system.svc.cluster.local",
    "localhost",
    "127.0.0.1",
];

/// How long a leaf is valid. Renewal is automatic, so a year keeps Secret writes rare.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// A leaf this close to expiry is replaced.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The webhook's PKI. The CA outlives its leaf by a little, so the chain never expires before
/// the leaf does; the stored pair is named by its keys in the Secret.
const PKI: Profile = Profile {
    ca_common_name: "wisp-webhook-ca",
    ca_validity: Duration::from_secs((365 + 7) * 24 * 60 * 60),
    server_common_name: "wisp-webhook",
    cert_file: "tls.crt",
    key_file: "tls.key",
};

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A `--webhook-san` value is neither an IP address nor a DNS name.
    #[error("{0:?} is neither an IP address nor a DNS name; check --webhook-san")]
    BadName(String),
    /// rcgen refused (it should not, with the parameters used here).
    #[error("cannot mint the webhook certificate: {0}")]
    Mint(#[from] rcgen::Error),
    /// A freshly minted certificate failed its own check (a bug, not an input problem).
    #[error("the webhook certificate just minted is not usable: {0}")]
    Unusable(String),
}

/// [`DEFAULT_NAMES`] plus `extra`, without repeats.
pub fn names(extra: &[String]) -> Result<Vec<ServerIdentity>, CertError> {
    let mut names: Vec<ServerIdentity> = Vec::new();
    let all = DEFAULT_NAMES
        .iter()
        .map(|name| (*name).to_owned())
        .chain(extra.iter().cloned());
    for raw in all {
        // Surrounding blanks are forgiven here (unlike the API server's names): a SAN list is
        // often pasted.
        let name = ServerIdentity::parse(raw.trim()).ok_or(CertError::BadName(raw))?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// What the Secret holds, PEM throughout.
#[derive(Clone, PartialEq, Eq)]
pub struct CertBundle {
    /// `ca.crt`: the CA that signed the leaf, then possibly the previous one. The webhook
    /// configurations' `caBundle`.
    pub ca: String,
    /// `tls.crt`: the leaf.
    pub cert: String,
    /// `tls.key`: the leaf's private key. Never log it.
    pub key: String,
}

impl fmt::Debug for CertBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertBundle")
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A new CA and a leaf for `names` valid from `now` for `validity`. `previous` (the bundle
/// being replaced, if any) contributes its current CA as the second certificate of `ca`.
pub fn mint(
    names: &[ServerIdentity],
    now: SystemTime,
    validity: Duration,
    previous: Option<&CertBundle>,
) -> Result<CertBundle, CertError> {
    // The CA's key is dropped at the end: the next renewal mints a new CA anyway.
    let (ca_pems, ca) = pki::new_ca(&PKI, now)?;
    let leaf = ca.issue_server(names, now, validity)?;
    let mut ca = ca_pems.cert;
    if let Some(previous) = previous.and_then(|bundle| first_pem_cert(&bundle.ca)) {
        ca.push_str(&previous);
    }
    Ok(CertBundle {
        ca,
        cert: leaf.cert,
        key: leaf.key,
    })
}

/// The certificate and key of `bundle`, ready to serve, if the leaf is fit to serve for
/// [`RENEW_BEFORE`] more under every one of `names`; otherwise why it must be renewed. Pure:
/// the whole renewal decision.
pub fn check(
    bundle: &CertBundle,
    names: &[ServerIdentity],
    now: SystemTime,
) -> Result<Arc<CertifiedKey>, String> {
    // The leaf chains to the first CA of the bundle, the one minted with it.
    let ca = CertificateDer::pem_slice_iter(bundle.ca.as_bytes())
        .next()
        .ok_or_else(|| "ca.crt holds no certificate".to_owned())?
        .map_err(|e| format!("ca.crt is not PEM: {e}"))?;
    let stored = PemPair {
        cert: bundle.cert.clone(),
        key: bundle.key.clone(),
    };
    let when = format!("{} days from now", RENEW_BEFORE.as_secs() / 86_400);
    let material = pki::check_server(&PKI, &ca, &stored, names, now + RENEW_BEFORE, &when)?;
    let certified = CertifiedKey::from_der(material.chain, material.key, &pki::provider())
        .map_err(|e| format!("tls.key does not belong to tls.crt: {e}"))?;
    Ok(Arc::new(certified))
}

/// The first certificate of a PEM bundle, as PEM, if it has one.
fn first_pem_cert(pem: &str) -> Option<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find("-----BEGIN CERTIFICATE-----")?;
    let end = start + pem[start..].find(END)? + END.len();
    Some(format!("{}\n", &pem[start..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn default_names() -> Vec<ServerIdentity> {
        names(&[]).expect("the defaults are valid names")
    }

    #[test]
    fn the_default_names_and_extra_ones_without_repeats() {
        let names = names(&[
            "Webhook.Example.com".into(),
            "10.1.2.3".into(),
            "localhost".into(),
        ])
        .expect("valid");
        let shown: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "wisp-webhook",
                "wisp-webhook.wisp-system",
                "wisp-webhook.wisp-system.svc",
                "wisp-webhook.wisp-system.svc.cluster.local",
                "localhost",
                "127.0.0.1",
                "webhook.example.com",
                "10.1.2.3",
            ]
        );
        let bad = super::names(&["not a name".into()]).expect_err("refused");
        assert!(bad.to_string().contains("--webhook-san"), "{bad}");
    }

    #[test]
    fn a_fresh_certificate_serves_under_every_name() {
        let now = SystemTime::now();
        let names = names(&["webhook.example.com".into()]).expect("valid");
        let bundle = mint(&names, now, LEAF_VALIDITY, None).expect("minted");
        assert!(check(&bundle, &names, now).is_ok());
        // The check is a real one: a name the leaf lacks fails it.
        let wider = super::names(&["elsewhere.example.com".into()]).expect("valid");
        let why = check(&bundle, &wider, now).expect_err("lacks a name");
        assert!(why.contains("elsewhere.example.com"), "{why}");
    }

    #[test]
    fn a_leaf_within_30_days_of_expiry_is_renewed() {
        let now = SystemTime::now();
        let names = default_names();
        let bundle = mint(&names, now, 40 * DAY, None).expect("minted");
        assert!(check(&bundle, &names, now).is_ok());
        assert!(check(&bundle, &names, now + 9 * DAY).is_ok());
        let why = check(&bundle, &names, now + 11 * DAY).expect_err("due");
        assert!(why.contains("30 days from now"), "{why}");
        let yearly = mint(&names, now, LEAF_VALIDITY, None).expect("minted");
        assert!(check(&yearly, &names, now + 334 * DAY).is_ok());
        assert!(check(&yearly, &names, now + 336 * DAY).is_err());
    }

    #[test]
    fn broken_or_mismatched_bundles_are_renewed() {
        let now = SystemTime::now();
        let names = default_names();
        let a = mint(&names, now, LEAF_VALIDITY, None).expect("minted");
        let b = mint(&names, now, LEAF_VALIDITY, None).expect("minted");
        let other_key = CertBundle {
            key: b.key.clone(),
            ..a.clone()
        };
        assert!(check(&other_key, &names, now).is_err());
        let other_ca = CertBundle {
            ca: b.ca.clone(),
            ..a.clone()
        };
        assert!(check(&other_ca, &names, now).is_err());
        let garbage = CertBundle {
            cert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            ..a.clone()
        };
        assert!(check(&garbage, &names, now).is_err());
        let empty = CertBundle {
            ca: String::new(),
            ..a
        };
        assert!(check(&empty, &names, now).is_err());
    }

    #[test]
    fn a_renewal_keeps_the_previous_ca_trusted_beside_the_new_one() {
        let now = SystemTime::now();
        let names = default_names();
        let first = mint(&names, now, LEAF_VALIDITY, None).expect("minted");
        let second = mint(&names, now, LEAF_VALIDITY, Some(&first)).expect("minted");
        let third = mint(&names, now, LEAF_VALIDITY, Some(&second)).expect("minted");
        let count = |pem: &str| pem.matches("BEGIN CERTIFICATE").count();
        assert_eq!(count(&first.ca), 1);
        assert_eq!(count(&second.ca), 2);
        assert!(
            second.ca.ends_with(&first.ca),
            "the old CA follows the new one"
        );
        // Only one generation back is kept.
        assert_eq!(count(&third.ca), 2);
        assert!(
            third
                .ca
                .contains(&first_pem_cert(&second.ca).expect("a CA"))
        );
        assert!(!third.ca.contains(&first.ca));
        // The leaf chains to the first CA of the bundle.
        assert!(check(&second, &names, now).is_ok());
    }

    #[test]
    fn debug_hides_the_key() {
        let bundle = mint(&default_names(), SystemTime::now(), DAY, None).expect("minted");
        let shown = format!("{bundle:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
