//! The certificate authority and the server certificate: minting them with rcgen, reading them
//! back, and deciding whether a stored server certificate is still good enough to serve.
//!
//! Stored certificates are judged with rustls' own WebPKI verifier, i.e. exactly the way a
//! client will judge them: chain to our CA, `serverAuth`, every configured name, and validity
//! at a moment in the future (so a certificate about to expire counts as unfit).

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
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::sign::CertifiedKey;

use super::names::ServerIdentity;

/// The CA outlives many server certificates, so kubeconfigs written once keep working.
pub(crate) const CA_VALIDITY: Duration = Duration::from_secs(3650 * 24 * 60 * 60);
/// A server certificate is cheap to replace (every start checks it), so it is kept short.
pub(crate) const SERVER_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// How long before expiry a stored server certificate is replaced.
pub(crate) const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Clients with a clock slightly behind ours must not see a certificate "from the future".
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// The CA's subject. Issuing from a stored CA rebuilds its identity from these same values
/// (rcgen can only read a CA certificate back with its x509-parser feature), and the fresh
/// certificate is verified against the stored CA before it is used.
const CA_COMMON_NAME: &str = "wisp-ca";
const SERVER_COMMON_NAME: &str = "wisp-apiserver";

/// The crypto provider everything here uses, explicitly, so no process-wide default is needed.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate and its private key, both PEM, as written to disk.
pub(crate) struct PemPair {
    /// The certificate.
    pub(crate) cert: String,
    /// The PKCS#8 private key.
    pub(crate) key: String,
}

/// A CA that can sign: its certificate and key, known to belong together.
pub(crate) struct Ca {
    cert: CertificateDer<'static>,
    key: KeyPair,
}

/// A server certificate chain and key ready for rustls.
pub(crate) struct ServerMaterial {
    /// The chain, end-entity first.
    pub(crate) chain: Vec<CertificateDer<'static>>,
    /// The end-entity's private key.
    pub(crate) key: PrivateKeyDer<'static>,
}

/// Which of the two CA files a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CaFile {
    /// `ca.crt`
    Cert,
    /// `ca.key`
    Key,
}

fn ca_params(now: SystemTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    // Path length 0: this CA signs server certificates, never other CAs.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + CA_VALIDITY).into();
    params
}

/// Mints a new self-signed CA (ECDSA P-256, CN `wisp-ca`, valid [`CA_VALIDITY`] from `now`).
pub(crate) fn new_ca(now: SystemTime) -> Result<PemPair, rcgen::Error> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = ca_params(now).self_signed(&key)?;
    Ok(PemPair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Reads a stored CA back; on failure says which file is at fault and why.
pub(crate) fn load_ca(cert_pem: &str, key_pem: &str) -> Result<Ca, (CaFile, String)> {
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
    Ok(Ca { cert, key })
}

impl Ca {
    /// Issues a server certificate for `names` with a fresh ECDSA P-256 key, valid from
    /// `now` for `validity`.
    pub(crate) fn issue_server(
        &self,
        names: &[ServerIdentity],
        now: SystemTime,
        validity: Duration,
    ) -> Result<PemPair, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, SERVER_COMMON_NAME);
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

        let issuer = Issuer::new(ca_params(now), &self.key);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(PemPair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// The stored server certificate and key if they belong together, chain to this CA, are
    /// valid for `server:` authentication under every one of `names`, and are still valid at
    /// `at`; otherwise why not.
    pub(crate) fn check_server(
        &self,
        stored: &PemPair,
        names: &[ServerIdentity],
        at: SystemTime,
    ) -> Result<ServerMaterial, String> {
        let chain = CertificateDer::pem_slice_iter(stored.cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("server.crt is not PEM: {e}"))?;
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err("server.crt holds no certificate".to_string());
        };
        let key = PrivateKeyDer::from_pem_slice(stored.key.as_bytes())
            .map_err(|e| format!("server.key is not a PEM private key: {e}"))?;
        let provider = provider();
        CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider)
            .map_err(|e| format!("server.key does not belong to server.crt: {e}"))?;

        let mut roots = RootCertStore::empty();
        roots
            .add(self.cert.clone())
            .map_err(|e| format!("the CA certificate is not usable: {e}"))?;
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
                .map_err(|e| format!("not valid for {name} then: {e}"))?;
        }
        Ok(ServerMaterial { chain, key })
    }
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

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn ca(now: SystemTime) -> (PemPair, Ca) {
        let pems = new_ca(now).unwrap();
        let ca = load_ca(&pems.cert, &pems.key).unwrap();
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
        assert_eq!(load_ca("junk", &pems.key).err().unwrap().0, CaFile::Cert);
        assert_eq!(load_ca(&pems.cert, "junk").err().unwrap().0, CaFile::Key);
        let (file, problem) = load_ca(&pems.cert, &other.key).err().unwrap();
        assert_eq!(file, CaFile::Key);
        assert!(problem.contains("does not belong"), "{problem}");
        let two = format!("{}{}", pems.cert, other.cert);
        assert_eq!(load_ca(&two, &pems.key).err().unwrap().0, CaFile::Cert);
    }
}
