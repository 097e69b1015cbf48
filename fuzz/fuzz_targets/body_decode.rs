//! Request bodies as the API server reads them: JSON or YAML by media type, and the raw scan for
//! duplicate keys that `fieldValidation=Strict` needs. Input: one byte choosing the media type,
//! then the body.
//!
//! Invariants: neither decoding nor the duplicate scan panics, whatever the bytes (deep nesting,
//! invalid UTF-8, truncated documents).

#![no_main]

use libfuzzer_sys::fuzz_target;
use wisp_control::apiserver::body;
use wisp_control::schema::duplicate_fields;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let media_type = match selector % 3 {
        0 => "application/json",
        1 => "application/yaml",
        _ => "application/apply-patch+yaml",
    };
    let _ = body::decode(bytes, media_type);
    let _ = duplicate_fields(bytes);
});
