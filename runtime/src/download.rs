//! Downloading a component as the source policy allows: only from allowed hosts, never to a
//! non-public address unless allowed, and redirects only within the same scheme, host and port.
//!
//! The host name is resolved once, by [`CheckedResolver`], which refuses the whole name when any
//! address it resolves to is refused, and hands the client exactly the addresses it checked: the
//! connection goes to a checked address, so a second answer from DNS (rebinding) is never asked
//! for. Proxies from the environment are not used, since the address connected to would then be
//! the proxy's and the check meaningless.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

use crate::error::RuntimeError;
use crate::source_policy::{Refusal, SourcePolicy};

/// Most redirects followed (all within one host).
const MAX_REDIRECTS: usize = 10;

/// The host (lower case, IPv6 without brackets) and port a URL connects to.
pub fn url_host(url: &str) -> Result<(String, u16), RuntimeError> {
    let invalid = |reason: &str| RuntimeError::Download {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|error| invalid(&error.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("only http and https URLs can be downloaded"));
    }
    let host = parsed
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| invalid("the URL names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| invalid("the URL names no port"))?;
    Ok((host, port))
}

pub async fn download(
    url: &str,
    policy: &SourcePolicy,
    limit: u64,
    timeout: Duration,
) -> Result<Vec<u8>, RuntimeError> {
    let failed = |reason: String| RuntimeError::Download {
        url: url.to_owned(),
        reason,
    };
    let refused = |refusal: Refusal| RuntimeError::NotAllowed {
        source_name: url.to_owned(),
        refusal,
    };
    let (host, port) = url_host(url)?;
    policy.check_host(&host, port).map_err(refused)?;
    // An IP in the URL is connected to as it is, without the resolver: check it here.
    if let Ok(address) = host.parse::<IpAddr>() {
        policy.check_address(&host, address).map_err(refused)?;
    }
    let origin = reqwest::Url::parse(url).map_err(|error| failed(error.to_string()))?;
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .dns_resolver(Arc::new(CheckedResolver {
            policy: policy.clone(),
        }))
        .redirect(redirect::Policy::custom(move |attempt| {
            let next = attempt.url();
            let same_place = next.scheme() == origin.scheme()
                && next.host() == origin.host()
                && next.port_or_known_default() == origin.port_or_known_default();
            if !same_place {
                let to = next.to_string();
                attempt.error(Refusal::Redirect { to })
            } else if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|error| failed(error.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| match find_refusal(&error) {
            Some(refusal) => refused(refusal),
            None => failed(error_chain(&error)),
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("the server answered {status}")));
    }
    let too_large = || RuntimeError::TooLarge {
        source_name: url.to_owned(),
        limit,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(too_large());
    }
    // Read in chunks so a server that lies about (or omits) its length cannot make us hold more
    // than the limit.
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| failed(error_chain(&error)))?;
        if bytes.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Resolves with the system resolver and refuses a name any of whose addresses the policy
/// refuses; the client connects only to the addresses returned.
struct CheckedResolver {
    policy: SourcePolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for address in &addresses {
                policy.check_address(&host, address.ip())?;
            }
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// The policy's refusal somewhere in `error`'s causes, if that is why it failed.
fn find_refusal(error: &(dyn StdError + 'static)) -> Option<Refusal> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(refusal) = error.downcast_ref::<Refusal>() {
            return Some(refusal.clone());
        }
        current = error.source();
    }
    None
}

/// `error` and its causes, as one line: reqwest's own message rarely says what went wrong.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(cause) = current {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        current = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts_are_lower_case_with_their_default_port() {
        assert_eq!(
            url_host("https://Registry.Example.com/a.wasm").unwrap(),
            ("registry.example.com".into(), 443)
        );
        assert_eq!(
            url_host("http://[::1]:8080/a.wasm").unwrap(),
            ("::1".into(), 8080)
        );
        assert!(url_host("ftp://example.com/a.wasm").is_err());
    }

    #[tokio::test]
    async fn a_loopback_ip_in_the_url_is_refused_before_any_connection() {
        for url in [
            "http://127.0.0.1:9/a.wasm",
            "http://[::1]:9/a.wasm",
            "http://[::ffff:127.0.0.1]:9/a.wasm",
            "http://169.254.169.254/latest/meta-data",
        ] {
            refused_as_private(url).await;
        }
    }

    /// Downloads `url` with the default policy; the refusal, which must name a private address.
    async fn refused_as_private(url: &str) -> RuntimeError {
        let error = download(
            url,
            &SourcePolicy::default(),
            1 << 20,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                error,
                RuntimeError::NotAllowed {
                    refusal: Refusal::PrivateAddress { .. },
                    ..
                }
            ),
            "{url}: {error}"
        );
        error
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        let error = refused_as_private("http://localhost:9/a.wasm").await;
        assert!(error.to_string().contains("localhost"), "{error}");
    }
}
