//! The names the server certificate must be valid for: loopback always, plus whatever the
//! operator configured (for reaching the API server by a LAN address or host name).

use std::fmt;
use std::net::IpAddr;

use rustls::pki_types::{DnsName, ServerName};

use super::CredentialsError;

/// One name a client may put in `server:` of its kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerIdentity {
    /// Checked against the certificate's IP SANs (what `https://127.0.0.1:6443` needs: Go
    /// and rustls never match an IP against a DNS SAN or the CN).
    Ip(IpAddr),
    /// Checked against the certificate's DNS SANs; lowercase.
    Dns(DnsName<'static>),
}

impl ServerIdentity {
    /// The name as a TLS client presents it when verifying.
    pub(crate) fn server_name(&self) -> ServerName<'static> {
        match self {
            Self::Ip(ip) => ServerName::from(*ip),
            Self::Dns(name) => ServerName::DnsName(name.clone()),
        }
    }
}

impl fmt::Display for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "IP {ip}"),
            Self::Dns(name) => write!(f, "DNS name {}", name.as_ref()),
        }
    }
}

/// Loopback in both families and `localhost`, followed by `extra` (IP literals become IP
/// names, everything else must be a DNS name), without duplicates.
pub(crate) fn server_identities(extra: &[String]) -> Result<Vec<ServerIdentity>, CredentialsError> {
    let always = ["127.0.0.1", "::1", "localhost"].map(String::from);
    let mut names = Vec::with_capacity(always.len() + extra.len());
    for raw in always.iter().chain(extra) {
        let name = parse(raw).ok_or_else(|| CredentialsError::InvalidName { name: raw.clone() })?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

fn parse(raw: &str) -> Option<ServerIdentity> {
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Some(ServerIdentity::Ip(ip));
    }
    // rustls' own rules, so every name we put in the certificate is one a client can check
    // (no wildcards, no empty labels, ASCII only).
    DnsName::try_from(raw.to_ascii_lowercase())
        .ok()
        .map(ServerIdentity::Dns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(name: &str) -> ServerIdentity {
        ServerIdentity::Dns(DnsName::try_from(name.to_string()).unwrap())
    }

    #[test]
    fn loopback_is_always_there() {
        let names = server_identities(&[]).unwrap();
        assert_eq!(names.len(), 3);
        assert!(names.contains(&ServerIdentity::Ip("::1".parse().unwrap())));
        assert!(names.contains(&dns("localhost")));
    }

    #[test]
    fn extras_are_classified_lowercased_and_deduplicated() {
        let extra = [
            "10.0.0.7",
            "Wisp.Example.COM",
            "fe80::1",
            "localhost",
            "127.0.0.1",
        ]
        .map(String::from);
        let names = server_identities(&extra).unwrap();
        assert_eq!(
            names[3..],
            [
                ServerIdentity::Ip("10.0.0.7".parse().unwrap()),
                dns("wisp.example.com"),
                ServerIdentity::Ip("fe80::1".parse().unwrap()),
            ]
        );
    }

    #[test]
    fn names_a_client_could_not_check_are_refused() {
        for bad in [
            "",
            "*.example.com",
            "[::1]",
            "a b",
            "caf\u{e9}.example",
            "host:6443",
        ] {
            let err = server_identities(&[bad.to_string()]).unwrap_err();
            assert!(
                matches!(err, CredentialsError::InvalidName { .. }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn server_names_round_trip() {
        let dns = dns("wisp.local").server_name();
        assert_eq!(dns.to_str(), "wisp.local");
        let ip = ServerIdentity::Ip("10.1.2.3".parse().unwrap()).server_name();
        assert_eq!(ip.to_str(), "10.1.2.3");
    }
}
