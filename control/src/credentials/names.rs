//! The names the server certificate must be valid for: loopback always, plus whatever the
//! operator configured (for reaching the API server by a LAN address or host name).

use super::CredentialsError;
use crate::pki::ServerIdentity;

/// Loopback in both families and `localhost`, followed by `extra` (IP literals become IP
/// names, everything else must be a DNS name), without duplicates.
pub(crate) fn server_identities(extra: &[String]) -> Result<Vec<ServerIdentity>, CredentialsError> {
    let always = ["127.0.0.1", "::1", "localhost"].map(String::from);
    let mut names = Vec::with_capacity(always.len() + extra.len());
    for raw in always.iter().chain(extra) {
        let name = ServerIdentity::parse(raw)
            .ok_or_else(|| CredentialsError::InvalidName { name: raw.clone() })?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::DnsName;

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
