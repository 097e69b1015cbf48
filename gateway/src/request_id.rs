//! Request ids: the client's `x-request-id` when it sent a usable one, else a fresh one, so a
//! request can be followed through logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderValue};

pub const HEADER: &str = "x-request-id";

/// Longest client-supplied id kept; longer ones are replaced so logs stay readable.
const MAX_CLIENT_ID: usize = 128;

/// Returns the request's id, writing a fresh one into `headers` when the client sent none.
pub fn assign(headers: &mut HeaderMap) -> Arc<str> {
    if let Some(id) = headers
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= MAX_CLIENT_ID)
    {
        return Arc::from(id);
    }
    let id = next_id();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(HEADER, value);
    }
    Arc::from(id)
}

/// Unique within a process and unlikely to repeat across restarts: a per-process random prefix
/// and a counter.
fn next_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::process::id()) as u32
    });
    format!(
        "{prefix:08x}-{:012x}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_client_id_and_makes_unique_ones_otherwise() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("abc-1"));
        assert_eq!(&*assign(&mut headers), "abc-1");

        let (mut first, mut second) = (HeaderMap::new(), HeaderMap::new());
        let (a, b) = (assign(&mut first), assign(&mut second));
        assert_ne!(a, b);
        assert_eq!(first.get(HEADER).unwrap().to_str().unwrap(), &*a);
    }
}
