//! The gateway's reading of a request's Host / `:authority` (which picks the route) and of a
//! `--trusted-proxy` value. Input: text, split at the first newline.
//!
//! Invariants: nothing panics; normalising is idempotent (a normalised host normalises to
//! itself), so two spellings of one host always find the same route.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wisp_gateway::routing::forwarded::parse_proxy;
use wisp_gateway::routing::host::normalize;

fuzz_target!(|text: &str| {
    let (authority, proxy) = text.split_once('\n').unwrap_or((text, ""));
    if let Some(host) = normalize(authority) {
        let again = normalize(&host).map(|again| again.into_owned());
        assert_eq!(again.as_deref(), Some(host.as_ref()), "{authority:?}");
    }
    let _ = parse_proxy(proxy);
});
