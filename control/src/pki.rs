//! wisp's two small PKIs, as one implementation: the embedded API server's
//! ([`crate::credentials`]: a long-lived CA kept on disk, a server certificate re-issued from
//! it) and the Knative admission webhook's (`wisp-webhook`: a fresh CA per renewal, kept in a
//! Secret). They differ only in data, which a [`Profile`] carries: the subjects, the CA's
//! validity, and how messages name the stored files.
//!
//! Everything is ECDSA P-256 minted with rcgen. A CA has path length 0 and signs only server
//! certificates (`serverAuth`, one SAN per [`ServerIdentity`]). Certificates start an hour in
//! the past, so a peer whose clock is slightly behind ours does not see one "from the future".
//!
//! Stored certificates are judged with rustls' own WebPKI verifier, i.e. exactly the way a
//! client will judge them: chain to the CA, `serverAuth`, every configured name, and validity
//! at a moment in the future (so a certificate about to expire counts as unfit).

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
use rustls::pki_types::{
    CertificateDer, DnsName, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime,
};
use rustls::sign::CertifiedKey;

/// Clients with a clock slightly behind ours must not see a certificate "from the future".
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// What tells one PKI from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The CA's subject CN. Issuing from a CA rebuilds its identity from this value (rcgen can
    /// only read a CA certificate back with its x509-parser feature), so it must be the one
    /// the CA was minted with; a fresh certificate is verified before it is used, which
    /// catches a mismatch.
    pub ca_common_name: &'static str,
    /// How long a CA minted with this profile is valid.
    pub ca_validity: Duration,
    /// The server certificate's subject CN.
    pub server_common_name: &'static str,
    /// How messages name the stored server certificate (a file, or a Secret's key).
    pub cert_file: &'static str,
    /// How messages name the stored server certificate's private key.
    pub key_file: &'static str,
}

/// The crypto provider everything here uses, explicitly, so no process-wide default is needed.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One name a server certificate is for, as a client presents it (`server:` of a kubeconfig,
/// a webhook's `clientConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerIdentity {
    /// Checked against the certificate's IP SANs (what `https://127.0.0.1:6443` needs: Go
    /// and rustls never match an IP against a DNS SAN or the CN).
    Ip(IpAddr),
    /// Checked against the certificate's DNS SANs; lowercase.
    Dns(DnsName<'static>),
}

impl ServerIdentity {
    /// An IP literal as an IP name, anything else as a (lowercased) DNS name; `None` if it is
    /// neither. rustls' own rules decide, so every name put in a certificate is one a client
    /// can check (no wildcards, no empty labels, ASCII only).
    pub fn parse(raw: &str) -> Option<Self> {
        if let Ok(ip) = raw.parse::<IpAddr>() {
            return Some(Self::Ip(ip));
        }
        DnsName::try_from(raw.to_ascii_lowercase())
            .ok()
            .map(Self::Dns)
    }

    /// The name as a TLS client presents it when verifying.
    pub fn server_name(&self) -> ServerName<'static> {
        match self {
            Self::Ip(ip) => ServerName::from(*ip),
            Self::Dns(name) => ServerName::DnsName(name.clone()),
        }
    }
}

impl fmt::Display for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Dns(name) => f.write_str(name.as_ref()),
        }
    }
}

/// A certificate and its private key, both PEM, as stored.
pub struct PemPair {
    /// The certificate (or chain, end-entity first).
    pub cert: String,
    /// The PKCS#8 private key.
    pub key: String,
}

/// A CA that can sign: its certificate and key, known to belong together.
pub struct Ca {
    profile: Profile,
    cert: CertificateDer<'static>,
    key: KeyPair,
}

/// A server certificate chain and key ready for rustls.
pub struct ServerMaterial {
    /// The chain, end-entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The end-entity's private key.
    pub key: PrivateKeyDer<'static>,
}

/// Which of the two CA files a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaFile {
    /// `ca.crt`
    Cert,
    /// `ca.key`
    Key,
}

fn ca_params(profile: &Profile, now: SystemTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, profile.ca_common_name);
    // Path length 0: this CA signs server certificates, never other CAs.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + profile.ca_validity).into();
    params
}

/// Mints a new self-signed CA (ECDSA P-256, CN and validity from `profile`, valid from `now`):
/// the PEM to store or hand out, and the CA ready to sign.
pub fn new_ca(profile: &Profile, now: SystemTime) -> Result<(PemPair, Ca), rcgen::Error> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = ca_params(profile, now).self_signed(&key)?;
    let pems = PemPair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    };
    let ca = Ca {
        profile: *profile,
        cert: cert.der().clone(),
        key,
    };
    Ok((pems, ca))
}

/// Reads a stored CA of `profile` back; on failure says which file is at fault and why.
pub fn load_ca(profile: &Profile, cert_pem: &str, key_pem: &str) -> Result<Ca, (CaFile, String)> {
    let cert = single_cert(cert_pem).map_err(|problem| (CaFile::Cert, problem))?;
    let mut roots = RootCertStore::empty();
    roots
        .add(cert.clone())
        .map_err(|e| (CaFile::Cert, format!("not a usable CA certificate: {e}")))?;
    let key = KeyPair::from_pem(key_pem)
        .map_err(|e| (CaFile::Key, format!("not a PEM private key: {e}")))?;
    let key_der = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
    CertifiedKey::from_der(vec![cert.clone()], key_der, &provider())
        .map_err(|e| (CaFile::Key, format!("does not belong to ca.crt: {e}")))?;
    Ok(Ca {
        profile: *profile,
        cert,
        key,
    })
}

impl Ca {
    /// Issues a server certificate for `names` with a fresh ECDSA P-256 key, valid from
    /// `now` for `validity`.
    pub fn issue_server(
        &self,
        names: &[ServerIdentity],
        now: SystemTime,
        validity: Duration,
    ) -> Result<PemPair, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, self.profile.server_common_name);
        params.subject_alt_names = names
            .iter()
            .map(|name| {
                Ok(match name {
                    ServerIdentity::Ip(ip) => SanType::IpAddress(*ip),
                    ServerIdentity::Dns(dns) => SanType::DnsName(dns.as_ref().try_into()?),
                })
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + validity).into();

        let issuer = Issuer::new(ca_params(&self.profile, now), &self.key);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(PemPair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// [`check_server`] against this CA, at `at` ("then" in messages).
    pub fn check_server(
        &self,
        stored: &PemPair,
        names: &[ServerIdentity],
        at: SystemTime,
    ) -> Result<ServerMaterial, String> {
        check_server(&self.profile, &self.cert, stored, names, at, "then")
    }
}

/// The stored server certificate and key if they belong together, chain to `ca`, are valid
/// for server authentication under every one of `names`, and are still valid at `at`;
/// otherwise why not, naming the files as `profile` does and the moment as `when`.
pub fn check_server(
    profile: &Profile,
    ca: &CertificateDer<'static>,
    stored: &PemPair,
    names: &[ServerIdentity],
    at: SystemTime,
    when: &str,
) -> Result<ServerMaterial, String> {
    let (cert_file, key_file) = (profile.cert_file, profile.key_file);
    let chain = CertificateDer::pem_slice_iter(stored.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{cert_file} is not PEM: {e}"))?;
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(format!("{cert_file} holds no certificate"));
    };
    let key = PrivateKeyDer::from_pem_slice(stored.key.as_bytes())
        .map_err(|e| format!("{key_file} is not a PEM private key: {e}"))?;
    let provider = provider();
    CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider)
        .map_err(|e| format!("{key_file} does not belong to {cert_file}: {e}"))?;

    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| format!("ca.crt is not a usable CA certificate: {e}"))?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("cannot build a verifier: {e}"))?;
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    for name in names {
        verifier
            .verify_server_cert(
                leaf,
                intermediates,
                &name.server_name(),
                &[],
                UnixTime::since_unix_epoch(since_epoch),
            )
            .map_err(|e| format!("{cert_file} is not valid for {name} {when}: {e}"))?;
    }
    Ok(ServerMaterial { chain, key })
}

/// Exactly one certificate in `pem`.
fn single_cert(pem: &str) -> Result<CertificateDer<'static>, String> {
    let mut certs = CertificateDer::pem_slice_iter(pem.as_bytes());
    let first = match certs.next() {
        Some(Ok(cert)) => cert,
        Some(Err(e)) => return Err(format!("not PEM: {e}")),
        None => return Err("holds no certificate".to_string()),
    };
    match certs.next() {
        None => Ok(first),
        Some(_) => Err("holds more than one certificate".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::names::server_identities;
    use crate::credentials::{PKI, RENEW_BEFORE, SERVER_VALIDITY};

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn ca(now: SystemTime) -> (PemPair, Ca) {
        let (pems, _) = new_ca(&PKI, now).unwrap();
        let ca = load_ca(&PKI, &pems.cert, &pems.key).unwrap();
        (pems, ca)
    }

    #[test]
    fn a_fresh_server_certificate_passes_the_check() {
        let now = SystemTime::now();
        let (_, ca) = ca(now);
        let names = server_identities(&["10.9.8.7".into(), "wisp.test".into()]).unwrap();
        let server = ca.issue_server(&names, now, SERVER_VALIDITY).unwrap();
        let material = ca
            .check_server(&server, &names, now + RENEW_BEFORE)
            .unwrap();
        assert_eq!(material.chain.len(), 1);
    }

    #[test]
    fn names_not_in_the_certificate_fail_the_check() {
        let now = SystemTime::now();
        let (_, ca) = ca(now);
        let server = ca
            .issue_server(&server_identities(&[]).unwrap(), now, SERVER_VALIDITY)
            .unwrap();
        let wider = server_identities(&["wisp.test".into()]).unwrap();
        let err = ca.check_server(&server, &wider, now).err().unwrap();
        assert!(err.contains("wisp.test"), "{err}");
    }

    #[test]
    fn a_certificate_close_to_expiry_fails_the_check() {
        let now = SystemTime::now();
        let (_, ca) = ca(now);
        let names = server_identities(&[]).unwrap();
        let server = ca.issue_server(&names, now, 10 * DAY).unwrap();
        assert!(ca.check_server(&server, &names, now).is_ok());
        assert!(
            ca.check_server(&server, &names, now + RENEW_BEFORE)
                .is_err()
        );
    }

    #[test]
    fn a_certificate_from_another_ca_fails_the_check() {
        let now = SystemTime::now();
        let (_, ca) = ca(now);
        let (_, other) = self::ca(now);
        let names = server_identities(&[]).unwrap();
        let server = other.issue_server(&names, now, SERVER_VALIDITY).unwrap();
        assert!(ca.check_server(&server, &names, now).is_err());
    }

    #[test]
    fn a_key_of_another_certificate_fails_the_check() {
        let now = SystemTime::now();
        let (_, ca) = ca(now);
        let names = server_identities(&[]).unwrap();
        let a = ca.issue_server(&names, now, SERVER_VALIDITY).unwrap();
        let b = ca.issue_server(&names, now, SERVER_VALIDITY).unwrap();
        let mixed = PemPair {
            cert: a.cert,
            key: b.key,
        };
        let err = ca.check_server(&mixed, &names, now).err().unwrap();
        assert!(err.contains("does not belong"), "{err}");
    }

    #[test]
    fn garbage_fails_the_check() {
        let now = SystemTime::now();
        let (_, ca) = ca(now);
        let names = server_identities(&[]).unwrap();
        let good = ca.issue_server(&names, now, SERVER_VALIDITY).unwrap();
        let garbage = PemPair {
            cert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            key: good.key,
        };
        assert!(ca.check_server(&garbage, &names, now).is_err());
    }

    #[test]
    fn stored_ca_problems_name_the_file() {
        let now = SystemTime::now();
        let (pems, _) = ca(now);
        let (other, _) = ca(now);
        assert_eq!(
            load_ca(&PKI, "junk", &pems.key).err().unwrap().0,
            CaFile::Cert
        );
        assert_eq!(
            load_ca(&PKI, &pems.cert, "junk").err().unwrap().0,
            CaFile::Key
        );
        let (file, problem) = load_ca(&PKI, &pems.cert, &other.key).err().unwrap();
        assert_eq!(file, CaFile::Key);
        assert!(problem.contains("does not belong"), "{problem}");
        let two = format!("{}{}", pems.cert, other.cert);
        assert_eq!(
            load_ca(&PKI, &two, &pems.key).err().unwrap().0,
            CaFile::Cert
        );
    }
}
