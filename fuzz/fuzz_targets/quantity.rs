//! Memory quantities as `resources.limits.memory` carries them (`128Mi`, `1e3`, `0.5Gi`). Input:
//! the text.
//!
//! Invariants: parsing never panics (no overflow in any suffix or exponent), and a quantity
//! written back as plain bytes parses to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wisp_api::quantity::parse_memory;

fuzz_target!(|text: &str| {
    if let Ok(bytes) = parse_memory(text) {
        assert_eq!(parse_memory(&bytes.to_string()).ok(), Some(bytes));
    }
});
