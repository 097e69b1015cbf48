//! Host names: the configured domain, the hosts a route is served at, and turning a request's
//! `Host` header or HTTP/2 `:authority` into the exact key the route table is indexed by.
//!
//! Hosts are never split into route and tag by guessing: `a-b.ns.example` may be route `a-b` or
//! tag `a` of route `b`. The table knows every host it serves in full, so the request side only
//! normalises (lowercase, no port, no trailing dot) and looks the whole string up.

use std::borrow::Cow;
use std::fmt;

use super::config::is_dns_label;

/// Knative's default domain; `*.localhost` resolves to loopback with no DNS set-up.
pub const DEFAULT_DOMAIN: &str = "localhost";

/// The domain routes are served under (`config-domain`), stored lowercase without trailing dot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Domain(String);

/// A domain that cannot be a DNS suffix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("domain {0:?} is not a DNS name (dot-separated labels of a-z, 0-9 and '-')")]
pub struct DomainError(pub String);

impl Domain {
    /// Accepts any case and a trailing dot; each dot-separated part must be a DNS label.
    pub fn new(domain: &str) -> Result<Self, DomainError> {
        let lowered = domain.trim_end_matches('.').to_ascii_lowercase();
        if lowered.is_empty() || lowered.len() > 253 || !lowered.split('.').all(is_dns_label) {
            return Err(DomainError(domain.to_owned()));
        }
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `{route}.{namespace}.{domain}`.
    pub fn route_host(&self, namespace: &str, route: &str) -> String {
        format!("{route}.{namespace}.{}", self.0)
    }

    /// `{tag}-{route}.{namespace}.{domain}`.
    pub fn tag_host(&self, namespace: &str, route: &str, tag: &str) -> String {
        format!("{tag}-{route}.{namespace}.{}", self.0)
    }
}

impl Default for Domain {
    fn default() -> Self {
        Self(DEFAULT_DOMAIN.to_owned())
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The request's authority as the route table wants it: the URI's authority when present
/// (HTTP/2 `:authority`, or an HTTP/1.1 absolute-form target, which RFC 9112 §3.2.2 says
/// overrides `Host`), else the `Host` header. `None` when neither is usable.
pub fn authority_of<B>(request: &http::Request<B>) -> Option<&str> {
    request
        .uri()
        .authority()
        .map(http::uri::Authority::as_str)
        .or_else(|| request.headers().get(http::header::HOST)?.to_str().ok())
}

/// The table key for a `Host` header or `:authority`: the host part, lowercase, without port or
/// trailing dot. Returns `None` for something that is not a host at all (empty, a bad port,
/// stray brackets); such requests can be answered like unknown hosts. Borrows when the input is
/// already in normal form, which is the common case.
pub fn normalize(authority: &str) -> Option<Cow<'_, str>> {
    // `:authority` must not carry userinfo, but strip it rather than let it into the key.
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if let Some(rest) = authority.strip_prefix('[') {
        // IPv6 literal: `[::1]` or `[::1]:8080`. Never a route host, but normalise it anyway.
        let (literal, after) = rest.split_once(']')?;
        if !after.is_empty() {
            port_ok(after.strip_prefix(':')?)?;
        }
        &authority[..literal.len() + 2]
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => {
                port_ok(port)?;
                host
            }
            None => authority,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    // A name is letters, digits, `-`, `_` and dots between labels (routes are DNS names; nothing
    // else could match one); an IPv6 literal keeps its brackets. Anything else — a stray `[` or
    // `:`, a second trailing dot — is not a host, which also keeps normalising idempotent.
    let literal = host.starts_with('[');
    let name_ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if host.is_empty()
        || host.ends_with('.')
        || (!literal && !host.bytes().all(name_ok))
        || host.bytes().any(|b| b.is_ascii_whitespace() || b == b'/')
    {
        return None;
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}

/// A port is 1–5 digits.
fn port_ok(digits: &str) -> Option<()> {
    (!digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Option<String> {
        normalize(s).map(Cow::into_owned)
    }

    #[test]
    fn strips_port_case_and_trailing_dot() {
        let want = Some("hello.default.localhost".to_owned());
        assert_eq!(norm("hello.default.localhost"), want);
        assert_eq!(norm("hello.default.localhost:8080"), want);
        assert_eq!(norm("Hello.Default.LOCALHOST"), want);
        assert_eq!(norm("hello.default.localhost."), want);
        assert_eq!(norm("HELLO.default.localhost.:80"), want);
        assert_eq!(norm("user@hello.default.localhost:80"), want);
    }

    /// Found by the `host_authority` fuzz target: a stray bracket and colon before the port
    /// made a "host" that did not normalise to itself, and two trailing dots lost one per pass.
    #[test]
    fn what_is_not_a_host_is_none_and_normalising_is_idempotent() {
        assert_eq!(norm("hello.default.localhost[::180"), None);
        assert_eq!(norm("hello.default.localhost[:"), None);
        assert_eq!(norm("a..:80"), None);
        assert_eq!(norm("a:b:80"), None);
        assert_eq!(norm("[::1]:80").as_deref(), Some("[::1]"));
        for input in [
            "Hello.Default.localhost.:8080",
            "[::FFFF:1]",
            "a_b-c.d",
            "x@y.z:1",
        ] {
            let once = norm(input).expect(input);
            assert_eq!(norm(&once).as_deref(), Some(once.as_str()), "{input}");
        }
    }

    #[test]
    fn borrows_when_already_normal() {
        assert!(matches!(
            normalize("a.b.localhost:1"),
            Some(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn ipv6_literals() {
        assert_eq!(norm("[::1]:8080"), Some("[::1]".to_owned()));
        assert_eq!(norm("[::1]"), Some("[::1]".to_owned()));
        assert_eq!(norm("[::1"), None);
        assert_eq!(norm("[::1]x"), None);
    }

    #[test]
    fn rejects_non_hosts() {
        for bad in [
            "",
            ":80",
            "a.b:",
            "a.b:http",
            "a.b:123456",
            "a b.c",
            ".",
            "a/b",
        ] {
            assert_eq!(norm(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn authority_prefers_the_uri() {
        let request = http::Request::get("http://h2.ns.localhost:8080/x")
            .header("host", "other.ns.localhost")
            .body(())
            .unwrap();
        assert_eq!(authority_of(&request), Some("h2.ns.localhost:8080"));
        let request = http::Request::get("/x")
            .header("host", "h1.ns.localhost")
            .body(())
            .unwrap();
        assert_eq!(authority_of(&request), Some("h1.ns.localhost"));
        let request = http::Request::get("/x").body(()).unwrap();
        assert_eq!(authority_of(&request), None);
    }

    #[test]
    fn domains() {
        assert_eq!(Domain::default().as_str(), "localhost");
        assert_eq!(Domain::new("Example.COM.").unwrap().as_str(), "example.com");
        assert!(Domain::new("").is_err());
        assert!(Domain::new("a..b").is_err());
        assert!(Domain::new("bad_domain").is_err());
        let d = Domain::new("example.com").unwrap();
        assert_eq!(d.route_host("ns", "r"), "r.ns.example.com");
        assert_eq!(d.tag_host("ns", "r", "t"), "t-r.ns.example.com");
    }
}
