//! `limit` / `continue` paging of lists (reference §3.3). A continue token carries the list's
//! resourceVersion and the last (namespace, name) served; the next page is read with a key
//! cursor in the store (no rereading of earlier pages) from the current state, and reports the
//! first page's resourceVersion, so a client that pages and then watches sees every change
//! after it (a change made while paging may show in a later page and again in the watch, which
//! clients take as the latest state either way).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::status::ApiError;

/// What a continue token holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The first page's resourceVersion.
    pub rv: u64,
    /// Namespace of the last object served.
    pub namespace: String,
    /// Name of the last object served.
    pub name: String,
}

impl Token {
    /// The opaque text clients pass back.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a token back; 400 if it is not one of ours.
    pub fn decode(text: &str) -> Result<Self, ApiError> {
        URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "continue key is not valid: pass the metadata.continue value of the previous \
                     page unchanged, or list again without it",
                )
            })
    }

    /// The store cursor: list after this key.
    pub fn after(&self) -> (String, String) {
        (self.namespace.clone(), self.name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let token = Token {
            rv: 7,
            namespace: "default".into(),
            name: "hello".into(),
        };
        assert_eq!(Token::decode(&token.encode()).expect("valid"), token);
        assert_eq!(token.after(), ("default".to_owned(), "hello".to_owned()));
    }

    #[test]
    fn garbage_tokens_are_a_bad_request() {
        let error = Token::decode("!!!").expect_err("invalid");
        assert_eq!(error.code, http::StatusCode::BAD_REQUEST);
    }
}
