//! The webhook's serving certificate, as pure functions of a clock: the names it must carry,
//! minting a CA and a leaf with rcgen, and the renewal decision.
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
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, DnsName, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;

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
/// The CA outlives its leaf by a little, so the chain never expires before the leaf does.
const CA_VALIDITY: Duration = Duration::from_secs((365 + 7) * 24 * 60 * 60);
/// A leaf this close to expiry is replaced.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// An API server whose clock is slightly behind ours must not see a certificate "from the
/// future".
const BACKDATE: Duration = Duration::from_secs(60 * 60);

const CA_COMMON_NAME: &str = "wisp-webhook-ca";
const LEAF_COMMON_NAME: &str = "wisp-webhook";

/// A name the certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertName {
    /// A DNS name (lowercase).
    Dns(DnsName<'static>),
    /// An IP address.
    Ip(IpAddr),
}

impl fmt::Display for CertName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name.as_ref()),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl CertName {
    fn server_name(&self) -> ServerName<'static> {
        match self {
            Self::Ip(ip) => ServerName::IpAddress((*ip).into()),
            Self::Dns(name) => ServerName::DnsName(name.clone()),
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if let Ok(ip) = raw.parse::<IpAddr>() {
            return Some(Self::Ip(ip));
        }
        DnsName::try_from(raw.to_ascii_lowercase())
            .ok()
            .map(Self::Dns)
    }
}

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
pub fn names(extra: &[String]) -> Result<Vec<CertName>, CertError> {
    let mut names: Vec<CertName> = Vec::new();
    let all = DEFAULT_NAMES
        .iter()
        .map(|name| (*name).to_owned())
        .chain(extra.iter().cloned());
    for raw in all {
        let name = CertName::parse(&raw).ok_or(CertError::BadName(raw))?;
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

/// The crypto provider used throughout, explicitly, so no process-wide default is needed.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn ca_params(now: SystemTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    // Path length 0: this CA signs the one leaf, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + CA_VALIDITY).into();
    params
}

/// A new CA and a leaf for `names` valid from `now` for `validity`. `previous` (the bundle
/// being replaced, if any) contributes its current CA as the second certificate of `ca`.
pub fn mint(
    names: &[CertName],
    now: SystemTime,
    validity: Duration,
    previous: Option<&CertBundle>,
) -> Result<CertBundle, CertError> {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let ca_params = ca_params(now);
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, LEAF_COMMON_NAME);
    params.subject_alt_names = names
        .iter()
        .map(|name| {
            Ok(match name {
                CertName::Ip(ip) => SanType::IpAddress(*ip),
                CertName::Dns(dns) => SanType::DnsName(dns.as_ref().try_into()?),
            })
        })
        .collect::<Result<_, rcgen::Error>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + validity).into();
    let issuer = Issuer::new(ca_params, &ca_key);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.signed_by(&key, &issuer)?;

    let mut ca = ca_cert.pem();
    if let Some(previous) = previous.and_then(|bundle| first_pem_cert(&bundle.ca)) {
        ca.push_str(&previous);
    }
    Ok(CertBundle {
        ca,
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// The certificate and key of `bundle`, ready to serve, if the leaf is fit to serve for
/// [`RENEW_BEFORE`] more under every one of `names`; otherwise why it must be renewed. Pure:
/// the whole renewal decision.
pub fn check(
    bundle: &CertBundle,
    names: &[CertName],
    now: SystemTime,
) -> Result<Arc<CertifiedKey>, String> {
    let chain = CertificateDer::pem_slice_iter(bundle.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.crt is not PEM: {e}"))?;
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err("tls.crt holds no certificate".into());
    };
    let key = PrivateKeyDer::from_pem_slice(bundle.key.as_bytes())
        .map_err(|e| format!("tls.key is not a PEM private key: {e}"))?;
    let provider = provider();
    let certified = CertifiedKey::from_der(chain.clone(), key, &provider)
        .map_err(|e| format!("tls.key does not belong to tls.crt: {e}"))?;

    let ca = CertificateDer::pem_slice_iter(bundle.ca.as_bytes())
        .next()
        .ok_or_else(|| "ca.crt holds no certificate".to_owned())?
        .map_err(|e| format!("ca.crt is not PEM: {e}"))?;
    let mut roots = RootCertStore::empty();
    roots
        .add(ca)
        .map_err(|e| format!("ca.crt is not a usable CA certificate: {e}"))?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("cannot build a verifier: {e}"))?;
    let horizon = (now + RENEW_BEFORE)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    for name in names {
        verifier
            .verify_server_cert(
                leaf,
                intermediates,
                &name.server_name(),
                &[],
                UnixTime::since_unix_epoch(horizon),
            )
            .map_err(|e| {
                format!(
                    "tls.crt is not valid for {name} {} days from now: {e}",
                    RENEW_BEFORE.as_secs() / 86_400
                )
            })?;
    }
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

    fn default_names() -> Vec<CertName> {
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
