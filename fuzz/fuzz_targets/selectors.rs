//! Label and field selectors as `?labelSelector=` and `?fieldSelector=` carry them. Input: text,
//! split at the first newline into a label and a field selector.
//!
//! Invariants: parsing never panics, and a parsed selector can be matched against an object
//! without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use wisp_control::registry;
use wisp_control::selectors::{FieldSelector, LabelSelector};

fuzz_target!(|text: &str| {
    let (label, field) = text.split_once('\n').unwrap_or((text, ""));
    let object = json!({
        "metadata": {"name": "hello", "namespace": "default", "labels": {"app": "hello", "tier": "web"}},
        "status": {"phase": "Running"},
    });
    if let Ok(selector) = LabelSelector::parse(label) {
        let _ = selector.matches(object["metadata"]["labels"].as_object());
        let _ = selector.is_empty();
    }
    let Some(resource) = registry::lookup("serving.knative.dev", "v1", "services") else {
        return;
    };
    if let Ok(selector) = FieldSelector::parse(field, resource) {
        let _ = selector.matches(&object);
        let _ = (selector.name(), selector.namespace(), selector.is_empty());
    }
});
