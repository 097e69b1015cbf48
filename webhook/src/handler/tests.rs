use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};
use wisp_control::admission::{self, ClusterDefaults, Operation, Request};
use wisp_control::apiserver::status::ApiError;
use wisp_control::field_error::FieldError;
use wisp_control::registry;

use super::{BadReview, Hook, answer};

/// A Service as a user applies it.
fn service() -> Value {
    json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "hello", "namespace": "default", "uid": "u-1"},
        "spec": {"template": {"spec": {"containers": [{"image": "hello.wasm"}]}}}
    })
}

/// A review of `operation` on `resource` (group `serving.knative.dev` unless qualified).
fn review(operation: &str, resource: &str, object: Value, old: Option<Value>) -> Vec<u8> {
    let (group, resource) = resource
        .split_once('.')
        .map(|(plural, group)| (group, plural))
        .unwrap_or(("serving.knative.dev", resource));
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": "v1", "kind": "Whatever"},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "requestKind": {"group": group, "version": "v1", "kind": "Whatever"},
            "requestResource": {"group": group, "version": "v1", "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": "alice@example.com", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    });
    serde_json::to_vec(&body).expect("encodes")
}

fn ask(hook: Hook, body: &[u8]) -> Value {
    let answer = answer(hook, body, &ClusterDefaults::KNATIVE).expect("a well-formed review");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    answer["response"].clone()
}

/// `object` with the response's JSONPatch applied, as kube-apiserver applies it.
fn patched(object: &Value, response: &Value) -> Value {
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("a patch"))
        .expect("base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("a JSONPatch");
    let mut object = object.clone();
    json_patch::patch(&mut object, &patch).expect("the patch applies");
    object
}

fn services() -> &'static registry::Resource {
    registry::lookup("serving.knative.dev", "v1", "services").expect("registered")
}

#[test]
fn the_defaults_patch_gives_what_the_embedded_server_admits() {
    let object = service();
    let response = ask(
        Hook::Defaulting,
        &review("CREATE", "services", object.clone(), None),
    );
    let result = patched(&object, &response);

    // The embedded server runs the same function on the same object.
    let mut embedded = object.clone();
    admission::default(
        &Request {
            resource: services(),
            operation: Operation::Create,
            old: None,
            user: "alice@example.com",
            defaults: &ClusterDefaults::KNATIVE,
        },
        &mut embedded,
    );
    assert_eq!(result, embedded);
    // And it is Knative's defaulting, not a no-op.
    assert_eq!(
        result["spec"]["traffic"],
        json!([{"latestRevision": true, "percent": 100}])
    );
    let spec = &result["spec"]["template"]["spec"];
    assert_eq!(spec["timeoutSeconds"], 300);
    assert_eq!(spec["containerConcurrency"], 0);
    let annotations = &result["metadata"]["annotations"];
    assert_eq!(
        annotations["serving.knative.dev/creator"],
        "alice@example.com"
    );
    assert_eq!(
        annotations["serving.knative.dev/lastModifier"],
        "alice@example.com"
    );
}

#[test]
fn an_object_already_defaulted_needs_no_patch() {
    let object = service();
    let once = patched(
        &object,
        &ask(
            Hook::Defaulting,
            &review("CREATE", "services", object.clone(), None),
        ),
    );
    let response = ask(Hook::Defaulting, &review("CREATE", "services", once, None));
    assert_eq!(response, json!({"uid": response["uid"], "allowed": true}));
}

#[test]
fn an_update_records_the_last_modifier_from_user_info() {
    let old = patched(
        &service(),
        &ask(
            Hook::Defaulting,
            &review("CREATE", "services", service(), None),
        ),
    );
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("other.wasm");
    let mut body: Value = serde_json::from_slice(&review(
        "UPDATE",
        "services",
        new.clone(),
        Some(old.clone()),
    ))
    .expect("json");
    body["request"]["userInfo"]["username"] = json!("bob");
    let response = ask(
        Hook::Defaulting,
        &serde_json::to_vec(&body).expect("encodes"),
    );
    let result = patched(&new, &response);
    let annotations = &result["metadata"]["annotations"];
    assert_eq!(
        annotations["serving.knative.dev/creator"],
        "alice@example.com"
    );
    assert_eq!(annotations["serving.knative.dev/lastModifier"], "bob");
}

#[test]
fn traffic_summing_to_90_is_refused_with_the_embedded_servers_message() {
    let mut object = service();
    object["spec"]["traffic"] = json!([{"latestRevision": true, "percent": 90}]);
    let defaulted = patched(
        &object,
        &ask(
            Hook::Defaulting,
            &review("CREATE", "services", object.clone(), None),
        ),
    );
    let response = ask(
        Hook::Validation,
        &review("CREATE", "services", defaulted, None),
    );
    assert_eq!(response["allowed"], false);
    let status = &response["status"];
    assert_eq!(status["code"], 400);
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        "validation failed: Traffic targets sum to 90, want 100: spec.traffic"
    );
    assert_eq!(status["details"]["causes"][0]["field"], "spec.traffic");
    assert_eq!(status["details"]["name"], "hello");

    // What kube-apiserver makes of it (its prefix, then our message) is, byte for byte, the
    // embedded server's refusal of the same Service.
    let shown = admission::denied_by(
        admission::WEBHOOK_NAME,
        status["message"].as_str().unwrap_or_default(),
    );
    let embedded = ApiError::denied(
        services(),
        "hello",
        vec![FieldError::invalid(
            "spec.traffic",
            "Traffic targets sum to 90, want 100",
        )],
    );
    assert_eq!(shown, embedded.message);
    assert_eq!(
        shown,
        "admission webhook \"validation.webhook.serving.knative.dev\" denied the request: \
         validation failed: Traffic targets sum to 90, want 100: spec.traffic"
    );
}

#[test]
fn a_valid_service_is_allowed_by_validation() {
    let defaulted = patched(
        &service(),
        &ask(
            Hook::Defaulting,
            &review("CREATE", "services", service(), None),
        ),
    );
    let response = ask(
        Hook::Validation,
        &review("CREATE", "services", defaulted, None),
    );
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("status").is_none());
}

#[test]
fn a_changed_revision_spec_is_refused_on_update() {
    let old = json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {"name": "hello-00001", "namespace": "default"},
        "spec": {"containers": [{"image": "hello.wasm"}]}
    });
    let old = patched(
        &old,
        &ask(
            Hook::Defaulting,
            &review("CREATE", "revisions", old.clone(), None),
        ),
    );
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("other.wasm");
    let response = ask(
        Hook::Validation,
        &review("UPDATE", "revisions", new, Some(old)),
    );
    assert_eq!(response["allowed"], false, "{response}");
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("validation failed: Immutable fields changed"),
        "{message}"
    );
}

#[test]
fn config_defaults_passed_in_are_the_ones_applied() {
    let data: BTreeMap<String, String> = [("revision-timeout-seconds".into(), "30".into())].into();
    let (defaults, problems) = ClusterDefaults::from_data(&data);
    assert!(problems.is_empty());
    let object = service();
    let response = answer(
        Hook::Defaulting,
        &review("CREATE", "services", object.clone(), None),
        &defaults,
    )
    .expect("answers");
    let result = patched(&object, &response["response"]);
    assert_eq!(result["spec"]["template"]["spec"]["timeoutSeconds"], 30);
}

#[test]
fn the_max_scale_limit_of_config_autoscaler_is_enforced() {
    let data: BTreeMap<String, String> = [
        ("max-scale-limit".into(), "10".into()),
        ("max-scale".into(), "5".into()),
    ]
    .into();
    let (defaults, problems) = ClusterDefaults::KNATIVE.with_autoscaler(&data);
    assert!(problems.is_empty(), "{problems:?}");
    let mut object = service();
    object["spec"]["template"]["metadata"] =
        json!({"annotations": {"autoscaling.knative.dev/max-scale": "20"}});
    let response = answer(
        Hook::Validation,
        &review("CREATE", "services", object, None),
        &defaults,
    )
    .expect("answers");
    let response = &response["response"];
    assert_eq!(response["allowed"], false, "{response}");
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("validation failed: expected 1 <= 20 <= 10 (the cluster's"),
        "{message}"
    );
}

#[test]
fn anything_but_a_knative_main_resource_write_is_allowed_untouched() {
    let bad_name = json!({"metadata": {"name": "Not_A_Label"}, "spec": {}});
    let mut bad_service = service();
    bad_service["spec"]["traffic"] = json!([{"percent": 1}]);
    let cases = [
        review("CREATE", "configmaps.", bad_name.clone(), None),
        review("CREATE", "deployments.apps", bad_name.clone(), None),
        review("CREATE", "domainmappings", bad_name, None),
        review("DELETE", "services", Value::Null, Some(bad_service.clone())),
        review("CONNECT", "services", bad_service.clone(), None),
    ];
    for body in &cases {
        for hook in [Hook::Defaulting, Hook::Validation] {
            let response = ask(hook, body);
            assert_eq!(response["allowed"], true, "{response}");
            assert!(response.get("patch").is_none(), "{response}");
        }
    }
    let mut status_write: Value = serde_json::from_slice(&review(
        "UPDATE",
        "services",
        bad_service.clone(),
        Some(bad_service),
    ))
    .expect("json");
    status_write["request"]["subResource"] = json!("status");
    let body = serde_json::to_vec(&status_write).expect("encodes");
    for hook in [Hook::Defaulting, Hook::Validation] {
        let response = ask(hook, &body);
        assert_eq!(response["allowed"], true, "{response}");
        assert!(response.get("patch").is_none(), "{response}");
    }
}

#[test]
fn malformed_reviews_are_bad_requests() {
    let refused = |body: &[u8]| -> BadReview {
        answer(Hook::Validation, body, &ClusterDefaults::KNATIVE).expect_err("refused")
    };
    assert!(
        refused(b"{not json")
            .to_string()
            .contains("not an AdmissionReview")
    );
    assert!(
        refused(b"[]")
            .to_string()
            .contains("not an AdmissionReview")
    );
    let mut v1beta1: Value =
        serde_json::from_slice(&review("CREATE", "services", service(), None)).expect("json");
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let message = refused(&serde_json::to_vec(&v1beta1).expect("encodes")).to_string();
    assert!(message.contains("admissionReviewVersions"), "{message}");
    assert!(
        refused(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#)
            .to_string()
            .contains("no request")
    );
    let no_object = review("CREATE", "services", Value::Null, None);
    assert!(refused(&no_object).to_string().contains("request.object"));
    let no_old = review("UPDATE", "services", service(), None);
    assert!(refused(&no_old).to_string().contains("request.oldObject"));
    let mut no_uid: Value =
        serde_json::from_slice(&review("CREATE", "services", service(), None)).expect("json");
    no_uid["request"]["uid"] = json!("");
    assert!(
        refused(&serde_json::to_vec(&no_uid).expect("encodes"))
            .to_string()
            .contains("uid")
    );
}
