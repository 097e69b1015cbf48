use serde_json::json;

use super::*;

#[test]
fn a_stored_service_reads_and_writes_back_unchanged() {
    let stored = json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "hello", "namespace": "default", "generation": 2},
        "spec": {
            "template": {
                "metadata": {"annotations": {"autoscaling.knative.dev/target": "10"}},
                "spec": {
                    "containerConcurrency": 0,
                    "timeoutSeconds": 300,
                    "containers": [{"image": "hello.wasm", "readinessProbe": {"tcpSocket": {"port": 0}}}]
                }
            },
            "traffic": [{"latestRevision": true, "percent": 100}]
        }
    });
    let service: Service = serde_json::from_value(stored.clone()).expect("parses");
    assert_eq!(service.spec.traffic.len(), 1);
    assert!(service.spec.traffic[0].follows_latest());
    let typed = service
        .spec
        .template
        .typed_spec()
        .map_err(|e| e.to_string());
    assert_eq!(
        typed.map(|s| s.containers[0].image.clone()),
        Ok("hello.wasm".to_owned())
    );
    let written = serde_json::to_value(&service).map_err(|e| e.to_string());
    assert_eq!(
        written.map(|w| w["spec"]["template"]["spec"]["containers"][0]["readinessProbe"].clone()),
        Ok(json!({"tcpSocket": {"port": 0}})),
        "fields wisp does not model survive a read and a write"
    );
}

#[test]
fn a_revision_spec_is_kept_whole() {
    let stored = json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {"name": "hello-00001", "namespace": "default"},
        "spec": {"timeoutSeconds": 10, "containers": [{"image": "a.wasm", "args": ["x"]}]}
    });
    let revision: Revision = serde_json::from_value(stored.clone()).expect("parses");
    assert_eq!(
        revision.spec.typed().ok().and_then(|s| s.timeout_seconds),
        Some(10)
    );
    let back = serde_json::to_value(&revision)
        .map(|v| v["spec"].clone())
        .ok();
    assert_eq!(back, Some(stored["spec"].clone()));
}
