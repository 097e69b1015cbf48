//! `limit` / `continue` paging of lists (reference §3.3). A continue token carries the list's
//! resourceVersion and the last key served; the next page resumes after that key in the
//! current state, and reports the first page's resourceVersion, so a client that pages and then
//! watches sees every change after it (a change made while paging may show up in a later page
//! and in the watch: watchers treat both as the latest state).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::metadata::meta_str;
use super::respond::Page;
use super::status::ApiError;

#[derive(Serialize, Deserialize)]
struct Token {
    rv: u64,
    namespace: String,
    name: String,
}

/// One page of `items` (sorted by namespace and name, as the store lists them): the items,
/// the resourceVersion to report and the paging metadata.
pub fn page(
    items: Vec<Value>,
    current_rv: u64,
    limit: Option<usize>,
    continue_token: Option<&str>,
) -> Result<(Vec<Value>, u64, Page), ApiError> {
    let (rv, mut items) = match continue_token {
        None => (current_rv, items),
        Some(token) => {
            let token = decode(token)?;
            let after = (token.namespace, token.name);
            let rest = items
                .into_iter()
                .filter(|item| {
                    let key = (
                        meta_str(item, "namespace").unwrap_or("").to_owned(),
                        meta_str(item, "name").unwrap_or("").to_owned(),
                    );
                    key > after
                })
                .collect();
            (token.rv, rest)
        }
    };
    let Some(limit) = limit.filter(|limit| *limit < items.len()) else {
        return Ok((items, rv, Page::default()));
    };
    let remaining = items.len() - limit;
    items.truncate(limit);
    let last = items.last().map(|item| Token {
        rv,
        namespace: meta_str(item, "namespace").unwrap_or("").to_owned(),
        name: meta_str(item, "name").unwrap_or("").to_owned(),
    });
    let continue_token = last.map(|token| encode(&token));
    Ok((
        items,
        rv,
        Page {
            continue_token,
            remaining: Some(remaining),
        },
    ))
}

fn encode(token: &Token) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(token).unwrap_or_default())
}

fn decode(text: &str) -> Result<Token, ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(name: &str) -> Value {
        json!({"metadata": {"namespace": "default", "name": name}})
    }

    #[test]
    fn pages_cover_everything_once() {
        let all: Vec<Value> = ["a", "b", "c", "d", "e"].into_iter().map(object).collect();
        let (first, rv, page1) = page(all.clone(), 7, Some(2), None).expect("first");
        assert_eq!(first.len(), 2);
        assert_eq!(page1.remaining, Some(3));
        let token = page1.continue_token.expect("more");
        let (second, rv2, page2) = page(all.clone(), 9, Some(2), Some(&token)).expect("second");
        assert_eq!(rv2, rv, "the first page's resourceVersion is reported");
        assert_eq!(second[0]["metadata"]["name"], "c");
        let token = page2.continue_token.expect("more");
        let (third, _, page3) = page(all, 9, Some(2), Some(&token)).expect("third");
        assert_eq!(third.len(), 1);
        assert_eq!(page3, Page::default());
    }

    #[test]
    fn garbage_tokens_are_a_bad_request() {
        let error = page(vec![], 1, None, Some("!!!")).expect_err("invalid");
        assert_eq!(error.code, http::StatusCode::BAD_REQUEST);
    }
}
