//! Proxy headers telling the revision who really called: `Forwarded` (RFC 7239) and the
//! de-facto `X-Forwarded-For`, `-Proto` and `-Host`.
//!
//! The gateway stands in for a cloud load balancer, so it records its own hop: it appends to
//! `Forwarded` and `X-Forwarded-For` (earlier proxies' entries stay, in order) and sets
//! `X-Forwarded-Proto`/`-Host` only when absent, keeping the first hop's view of scheme and host.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use http::header::{FORWARDED, HeaderMap, HeaderName, HeaderValue};

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Adds this hop's proxy headers to `headers`. `client` is the peer address of the connection,
/// `scheme` what it spoke to us (`http`/`https`), `host` its `Host`/`:authority`. A value that
/// cannot be a header (control characters in `host`) is left out rather than failing the request.
pub fn apply(headers: &mut HeaderMap, client: SocketAddr, scheme: &str, host: &str) {
    // A dual-stack listener reports IPv4 clients as `::ffff:a.b.c.d`; name them as IPv4.
    let client = SocketAddr::new(client.ip().to_canonical(), client.port());

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
        apply(&mut headers, addr("[::ffff:10.0.0.1]:80"), "http", "h");
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
        apply(&mut headers, addr("1.2.3.4:1"), "http", "bad\nhost");
        assert!(headers.get(FORWARDED).is_none());
        assert!(headers.get(X_FORWARDED_HOST).is_none());
        assert_eq!(all(&headers, X_FORWARDED_FOR), ["1.2.3.4"]);

        // An HTTP/1.0 request without Host: no empty host anywhere.
        let mut headers = HeaderMap::new();
        apply(&mut headers, addr("1.2.3.4:1"), "http", "");
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
        apply(&mut headers, addr("1.2.3.4:1"), "http", "h");
        assert_eq!(
            headers.get(X_FORWARDED_FOR).unwrap().as_bytes(),
            b"caf\xe9, 1.2.3.4"
        );
    }
}
