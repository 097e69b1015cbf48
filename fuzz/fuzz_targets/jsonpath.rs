//! JSONPath as `kubectl get -o jsonpath=` and the server-side Table columns use it. Input: the
//! expression.
//!
//! Invariants: parsing never panics, and a parsed expression can be run on an object without
//! panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use wisp_control::jsonpath::JsonPath;

fuzz_target!(|text: &str| {
    let Ok(path) = JsonPath::parse(text) else {
        return;
    };
    let object = json!({
        "metadata": {"name": "hello", "labels": {"app": "hello"}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Active"}],
                   "traffic": [{"percent": 100, "tag": "a"}]},
        "spec": {"list": [1, 2, [3, [4]]], "n": null},
    });
    let _ = path.query(&object);
    let _ = path.first(&object);
});
