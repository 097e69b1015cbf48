//! Proxy headers telling the revision who really called: `Forwarded` (RFC 7239) and the
//! de-facto `X-Forwarded-For`, `-Proto` and `-Host`.
//!
//! The gateway stands in for a cloud load balancer, so it records its own hop. What came before
//! it is believed only from a trusted proxy (`--trusted-proxy`, the balancer in front): then it
//! appends to `Forwarded` and `X-Forwarded-For` (earlier proxies' entries stay, in order) and
//! sets `X-Forwarded-Proto`/`-Host` only when absent, keeping the first hop's view of scheme and
//! host. From anyone else, every header that claims an earlier hop ([`HOP_HEADERS`]) is
//! dropped first, so the revision sees only what the gateway saw — a client cannot make itself
//! look like `1.2.3.4`.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use http::header::{FORWARDED, HeaderMap, HeaderName, HeaderValue};
pub use ipnet::IpNet;

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The headers a request from an untrusted peer loses: each claims something about an earlier
/// hop (client address, scheme, host, port) that only a proxy we trust may state. `X-Real-IP`
/// is not written by the gateway but is read by many frameworks as the client address.
pub const HOP_HEADERS: [HeaderName; 6] = [
    FORWARDED,
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_FORWARDED_PORT,
    X_REAL_IP,
];

/// The peers whose forwarding headers are believed: addresses or CIDR ranges. Empty (the
/// default) trusts nobody.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            nets: nets.into_iter().collect(),
        }
    }

    /// Whether `peer` is one of them (an IPv4-mapped IPv6 peer counts as its IPv4 address).
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.nets.iter().any(|net| net.contains(&peer))
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

/// A `--trusted-proxy` value that is neither an IP address nor a CIDR range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{input:?} is not an IP address or CIDR range; write e.g. 10.0.0.0/8, 192.168.1.7 or \
     fd00::/8"
)]
pub struct ProxyParseError {
    input: String,
}

/// Reads a trusted proxy: a CIDR range (`10.0.0.0/8`, `fd00::/8`) or one address (`10.0.0.7`,
/// taken as `/32` or `/128`). Host bits in a range are ignored (`10.0.0.7/8` is `10.0.0.0/8`).
pub fn parse_proxy(input: &str) -> Result<IpNet, ProxyParseError> {
    let trimmed = input.trim();
    let parsed = if trimmed.contains('/') {
        trimmed.parse::<IpNet>().map(|net| net.trunc()).ok()
    } else {
        trimmed.parse::<IpAddr>().map(IpNet::from).ok()
    };
    parsed.ok_or_else(|| ProxyParseError {
        input: input.to_owned(),
    })
}

/// Adds this hop's proxy headers to `headers`, first dropping the earlier hops' unless `client`
/// is one of `trusted`. `client` is the peer address of the connection, `scheme` what it spoke
/// to us (`http`/`https`), `host` its `Host`/`:authority`. A value that cannot be a header
/// (control characters in `host`) is left out rather than failing the request.
pub fn apply(
    headers: &mut HeaderMap,
    client: SocketAddr,
    scheme: &str,
    host: &str,
    trusted: &TrustedProxies,
) {
    // A dual-stack listener reports IPv4 clients as `::ffff:a.b.c.d`; name them as IPv4.
    let client = SocketAddr::new(client.ip().to_canonical(), client.port());
    if !trusted.contains(client.ip()) {
        for name in &HOP_HEADERS {
            headers.remove(name);
        }
    }

    if let Ok(value) = HeaderValue::from_str(&forwarded_element(client, scheme, host)) {
        headers.append(FORWARDED, value);
    }

    let mut xff = joined(headers, &X_FORWARDED_FOR);
    if !xff.is_empty() {
        xff.extend_from_slice(b", ");
    }
    xff.extend_from_slice(client.ip().to_string().as_bytes());
    if let Ok(value) = HeaderValue::from_bytes(&xff) {
        headers.insert(X_FORWARDED_FOR, value);
    }

    for (name, value) in [(X_FORWARDED_PROTO, scheme), (X_FORWARDED_HOST, host)] {
        if !value.is_empty()
            && !headers.contains_key(&name)
            && let Ok(value) = HeaderValue::from_str(value)
        {
            headers.insert(name, value);
        }
    }
}

/// One `Forwarded` element for this hop: `for=…;proto=…;host=…`.
pub fn forwarded_element(client: SocketAddr, scheme: &str, host: &str) -> String {
    // RFC 7239 §6: IPv6 in brackets; the node with a port contains ':' so it is quoted.
    let node = match client.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", client.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", client.port()),
    };
    let mut element = String::with_capacity(node.len() + host.len() + 32);
    for (key, value) in [("for", node.as_str()), ("proto", scheme), ("host", host)] {
        if value.is_empty() {
            continue;
        }
        if !element.is_empty() {
            element.push(';');
        }
        let _ = write!(element, "{key}=");
        push_token_or_quoted(&mut element, value);
    }
    element
}

/// Writes `value` bare when it is an RFC 7230 token, else as a quoted-string with `"` and `\`
/// escaped.
fn push_token_or_quoted(out: &mut String, value: &str) {
    if value.bytes().all(is_tchar) {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// All values of a header joined by ", " (as RFC 9110 allows for list headers), as bytes so
/// earlier hops' values pass through untouched even when they are not UTF-8.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Vec<u8> {
    let mut out = Vec::new();
    for value in headers.get_all(name) {
        if !out.is_empty() {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(value.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn nobody() -> TrustedProxies {
        TrustedProxies::default()
    }

    fn trusting(net: &str) -> TrustedProxies {
        TrustedProxies::new([parse_proxy(net).unwrap()])
    }

    /// A request as a client forging every hop header would send it.
    fn forged() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            FORWARDED,
            HeaderValue::from_static("for=1.2.3.4;proto=https"),
        );
        headers.insert(X_FORWARDED_FOR, HeaderValue::from_static("1.2.3.4"));
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        headers.insert(X_FORWARDED_HOST, HeaderValue::from_static("bank.example"));
        headers.insert(X_FORWARDED_PORT, HeaderValue::from_static("443"));
        headers.insert(X_REAL_IP, HeaderValue::from_static("1.2.3.4"));
        headers
    }

    #[test]
    fn an_untrusted_peer_cannot_claim_earlier_hops() {
        let mut headers = forged();
        apply(
            &mut headers,
            addr("192.0.2.9:4000"),
            "http",
            "hello.default.localhost",
            &trusting("10.0.0.0/8"),
        );
        assert_eq!(
            all(&headers, FORWARDED),
            [r#"for="192.0.2.9:4000";proto=http;host=hello.default.localhost"#]
        );
        assert_eq!(all(&headers, X_FORWARDED_FOR), ["192.0.2.9"]);
        assert_eq!(all(&headers, X_FORWARDED_PROTO), ["http"]);
        assert_eq!(all(&headers, X_FORWARDED_HOST), ["hello.default.localhost"]);
        assert!(headers.get(X_FORWARDED_PORT).is_none());
        assert!(headers.get(X_REAL_IP).is_none());
    }

    #[test]
    fn a_trusted_peer_keeps_the_earlier_hops() {
        let mut headers = forged();
        apply(
            &mut headers,
            addr("[::ffff:10.9.8.7]:4000"),
            "http",
            "hello.default.localhost",
            &trusting("10.0.0.0/8"),
        );
        assert_eq!(
            all(&headers, FORWARDED),
            [
                "for=1.2.3.4;proto=https",
                r#"for="10.9.8.7:4000";proto=http;host=hello.default.localhost"#
            ]
        );
        assert_eq!(all(&headers, X_FORWARDED_FOR), ["1.2.3.4, 10.9.8.7"]);
        assert_eq!(all(&headers, X_FORWARDED_PROTO), ["https"]);
        assert_eq!(all(&headers, X_FORWARDED_HOST), ["bank.example"]);
        assert_eq!(all(&headers, X_FORWARDED_PORT), ["443"]);
        assert_eq!(all(&headers, X_REAL_IP), ["1.2.3.4"]);
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        assert_eq!(
            parse_proxy("10.0.0.7").unwrap(),
            "10.0.0.7/32".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_proxy(" 10.0.0.7/8 ").unwrap(),
            "10.0.0.0/8".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_proxy("fd00::1").unwrap(),
            "fd00::1/128".parse::<IpNet>().unwrap()
        );
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0/8", "1.2.3.4/"] {
            let error = parse_proxy(bad).unwrap_err();
            assert!(error.to_string().contains("e.g. 10.0.0.0/8"), "{error}");
        }
        let proxies = TrustedProxies::new([
            parse_proxy("127.0.0.1").unwrap(),
            parse_proxy("fd00::/8").unwrap(),
        ]);
        assert!(proxies.contains("127.0.0.1".parse().unwrap()));
        assert!(proxies.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(proxies.contains("fd12::3".parse().unwrap()));
        assert!(!proxies.contains("127.0.0.2".parse().unwrap()));
        assert!(!proxies.contains("::1".parse().unwrap()));
        assert!(!TrustedProxies::default().contains("127.0.0.1".parse().unwrap()));
    }

    fn all(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Vec<&str> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn ipv4_fresh_request() {
        let mut headers = HeaderMap::new();
        apply(
            &mut headers,
            addr("192.0.2.43:47011"),
            "http",
            "hello.default.localhost:8080",
            &nobody(),
        );
        assert_eq!(
            all(&headers, FORWARDED),
            [r#"for="192.0.2.43:47011";proto=http;host="hello.default.localhost:8080""#]
        );
        assert_eq!(all(&headers, X_FORWARDED_FOR), ["192.0.2.43"]);
        assert_eq!(all(&headers, X_FORWARDED_PROTO), ["http"]);
        assert_eq!(
            all(&headers, X_FORWARDED_HOST),
            ["hello.default.localhost:8080"]
        );
    }

    #[test]
    fn ipv6_is_bracketed_and_quoted() {
        let mut headers = HeaderMap::new();
        apply(
            &mut headers,
            addr("[::1]:1234"),
            "https",
            "hello.default.localhost",
            &nobody(),
        );
        assert_eq!(
            all(&headers, FORWARDED),
            [r#"for="[::1]:1234";proto=https;host=hello.default.localhost"#]
        );
        assert_eq!(all(&headers, X_FORWARDED_FOR), ["::1"]);
        assert_eq!(
            forwarded_element(addr("[2001:db8:cafe::17]:4711"), "http", ""),
            r#"for="[2001:db8:cafe::17]:4711";proto=http"#
        );
    }

    #[test]
    fn ipv4_mapped_clients_are_named_as_ipv4() {
        let mut headers = HeaderMap::new();
        apply(
            &mut headers,
            addr("[::ffff:10.0.0.1]:80"),
            "http",
            "h",
            &nobody(),
        );
        assert_eq!(all(&headers, X_FORWARDED_FOR), ["10.0.0.1"]);
        assert_eq!(
            all(&headers, FORWARDED),
            [r#"for="10.0.0.1:80";proto=http;host=h"#]
        );
    }

    #[test]
    fn appends_to_earlier_hops_and_keeps_first_proto_and_host() {
        let mut headers = HeaderMap::new();
        headers.append(
            FORWARDED,
            HeaderValue::from_static("for=198.51.100.17;proto=https"),
        );
        headers.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("203.0.113.1, 198.51.100.17"),
        );
        headers.append(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.18"));
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        headers.insert(
            X_FORWARDED_HOST,
            HeaderValue::from_static("public.example.com"),
        );
        apply(
            &mut headers,
            addr("10.1.2.3:5555"),
            "http",
            "hello.default.localhost",
            &trusting("10.0.0.0/8"),
        );
        assert_eq!(
            all(&headers, FORWARDED),
            [
                "for=198.51.100.17;proto=https",
                r#"for="10.1.2.3:5555";proto=http;host=hello.default.localhost"#
            ]
        );
        assert_eq!(
            all(&headers, X_FORWARDED_FOR),
            ["203.0.113.1, 198.51.100.17, 198.51.100.18, 10.1.2.3"]
        );
        assert_eq!(all(&headers, X_FORWARDED_PROTO), ["https"]);
        assert_eq!(all(&headers, X_FORWARDED_HOST), ["public.example.com"]);
    }

    #[test]
    fn odd_hosts_are_quoted_or_dropped() {
        assert_eq!(
            forwarded_element(addr("1.2.3.4:1"), "http", r#"a"b\c"#),
            r#"for="1.2.3.4:1";proto=http;host="a\"b\\c""#
        );
        let mut headers = HeaderMap::new();
        apply(
            &mut headers,
            addr("1.2.3.4:1"),
            "http",
            "bad\nhost",
            &nobody(),
        );
        assert!(headers.get(FORWARDED).is_none());
        assert!(headers.get(X_FORWARDED_HOST).is_none());
        assert_eq!(all(&headers, X_FORWARDED_FOR), ["1.2.3.4"]);

        // An HTTP/1.0 request without Host: no empty host anywhere.
        let mut headers = HeaderMap::new();
        apply(&mut headers, addr("1.2.3.4:1"), "http", "", &nobody());
        assert_eq!(all(&headers, FORWARDED), [r#"for="1.2.3.4:1";proto=http"#]);
        assert!(headers.get(X_FORWARDED_HOST).is_none());
    }

    #[test]
    fn non_utf8_earlier_hops_pass_through() {
        let mut headers = HeaderMap::new();
        headers.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        apply(
            &mut headers,
            addr("1.2.3.4:1"),
            "http",
            "h",
            &trusting("1.2.3.4"),
        );
        assert_eq!(
            headers.get(X_FORWARDED_FOR).unwrap().as_bytes(),
            b"caf\xe9, 1.2.3.4"
        );
    }
}
