//! Knative's annotations (autoscaling class, metric, target, windows, scale bounds…) on a
//! Service's template, through the admission chain every write runs. Input: lines of
//! `key=value`, each one an annotation of the template.
//!
//! Invariants: defaulting and validation never panic, and defaulting is idempotent (a stored,
//! defaulted object defaulted again on its next update does not change).

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use wisp_control::admission::{self, ClusterDefaults, Operation, Request};
use wisp_control::registry;

fuzz_target!(|text: &str| {
    let mut annotations = Map::new();
    for line in text.lines() {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        annotations.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    let Some(resource) = registry::lookup("serving.knative.dev", "v1", "services") else {
        return;
    };
    let defaults = ClusterDefaults::default();
    let request = Request {
        resource,
        operation: Operation::Create,
        old: None,
        user: "fuzz",
        defaults: &defaults,
    };
    let mut object = json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"template": {
            "metadata": {"annotations": annotations},
            "spec": {"containers": [{"image": "hello.wasm"}]},
        }},
    });
    admission::default(&request, &mut object);
    let _ = admission::validate(&request, &object);
    let once = object.clone();
    admission::default(&request, &mut object);
    assert_eq!(object, once, "defaulting twice changes nothing more");
});
