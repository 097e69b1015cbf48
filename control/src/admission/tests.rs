use serde_json::json;

use super::test_support::{admit, create, service};
use super::{Operation, Request, default, render_message, validate};
use crate::field_error::FieldError;
use crate::registry::lookup;

#[test]
fn the_message_reads_like_knatives_webhook() {
    let causes = [
        FieldError::invalid("spec.traffic", "Traffic targets sum to 90, want 100"),
        FieldError::invalid("metadata.name", "not a DNS 1035 label: it is empty"),
    ];
    assert_eq!(
        render_message(&causes),
        "admission webhook \"validation.webhook.serving.knative.dev\" denied the request: \
         validation failed: Traffic targets sum to 90, want 100: spec.traffic; \
         not a DNS 1035 label: it is empty: metadata.name"
    );
}

#[test]
fn issue_cases_render_end_to_end() {
    let mut object = service();
    object["spec"]["traffic"] = json!([{"latestRevision": true, "percent": 90}]);
    let errors = admit(&create("services"), object).1;
    assert_eq!(
        render_message(&errors),
        "admission webhook \"validation.webhook.serving.knative.dev\" denied the request: \
         validation failed: Traffic targets sum to 90, want 100: spec.traffic"
    );

    let mut object = service();
    object["metadata"]["name"] = json!("x".repeat(64));
    let errors = admit(&create("services"), object).1;
    assert_eq!(
        render_message(&errors),
        "admission webhook \"validation.webhook.serving.knative.dev\" denied the request: \
         validation failed: not a DNS 1035 label: it is 64 characters long; the most is 63: \
         metadata.name"
    );
}

#[test]
fn other_resources_are_left_alone() {
    let namespaces = lookup("", "v1", "namespaces").unwrap();
    let request = Request {
        resource: namespaces,
        operation: Operation::Create,
        old: None,
        user: "alice",
        defaults: &crate::admission::ClusterDefaults::KNATIVE,
    };
    let original = json!({"metadata": {"name": "Not_A_Label"}, "spec": {}});
    let mut object = original.clone();
    default(&request, &mut object);
    assert_eq!(object, original);
    assert_eq!(validate(&request, &object), Ok(()));
}
