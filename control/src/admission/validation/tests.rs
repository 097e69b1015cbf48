//! Whole-object validation per kind, and the revision spec, container and template rules.

use serde_json::{Value, json};

use crate::admission::test_support::{admit, assert_single, create, only_on, service, update};
use crate::field_error::{CauseReason, FieldError};

fn service_with_spec(edit: impl FnOnce(&mut Value)) -> Vec<FieldError> {
    let mut object = service();
    edit(&mut object["spec"]["template"]["spec"]);
    admit(&create("services"), object).1
}

fn container_errors(container: Value) -> Vec<FieldError> {
    service_with_spec(|spec| spec["containers"] = json!([container]))
}

const C0: &str = "spec.template.spec.containers[0]";

#[test]
fn a_defaulted_service_is_valid() {
    assert_eq!(admit(&create("services"), service()).1, vec![]);
}

#[test]
fn exactly_one_container_is_required() {
    let errors = service_with_spec(|spec| spec["containers"] = json!([]));
    assert_single(&errors, "spec.template.spec.containers", "missing field(s)");
    assert_eq!(errors[0].reason, CauseReason::Required);

    let errors = service_with_spec(|spec| {
        spec["containers"] = json!([{"image": "a.wasm"}, {"image": "b.wasm"}])
    });
    assert_single(
        &errors,
        "spec.template.spec.containers",
        "wisp runs exactly one component per revision, but found 2 containers",
    );
    assert_eq!(errors[0].reason, CauseReason::Forbidden);
}

#[test]
fn container_rules() {
    let cases: [(Value, String, &str); 14] = [
        (json!({}), format!("{C0}.image"), "missing field(s)"),
        (
            json!({"name": "queue-proxy", "image": "a"}),
            format!("{C0}.name"),
            r#""queue-proxy" is a reserved container name"#,
        ),
        (
            json!({"image": "a", "env": [{"name": "K_REVISION", "value": "x"}]}),
            format!("{C0}.env[0].name"),
            r#""K_REVISION" is a reserved environment variable"#,
        ),
        (
            json!({"image": "a", "env": [{"name": "OK"}, {"name": "1BAD"}]}),
            format!("{C0}.env[1].name"),
            "must not start with a digit",
        ),
        (
            json!({"image": "a", "env": [{"value": "x"}]}),
            format!("{C0}.env[0].name"),
            "missing field(s)",
        ),
        (
            json!({"image": "a", "ports": [{"containerPort": 8012}]}),
            format!("{C0}.ports[0].containerPort"),
            "8012 is a reserved port",
        ),
        (
            json!({"image": "a", "ports": [{"containerPort": 70000}]}),
            format!("{C0}.ports[0].containerPort"),
            "expected 0 <= 70000 <= 65535",
        ),
        (
            json!({"image": "a", "ports": [{"containerPort": 8080, "protocol": "UDP"}]}),
            format!("{C0}.ports[0].protocol"),
            "only TCP",
        ),
        (
            json!({"image": "a", "ports": [{"name": "grpc", "containerPort": 8080}]}),
            format!("{C0}.ports[0].name"),
            "Port name grpc is not allowed",
        ),
        (
            json!({"image": "a", "resources": {"limits": {"memory": "12XB"}}}),
            format!("{C0}.resources.limits.memory"),
            "invalid memory quantity",
        ),
        (
            json!({"image": "a", "resources": {"limits": {"memory": "1"}}}),
            format!("{C0}.resources.limits.memory"),
            "\"1\" (1 B) is below the 2Mi a replica needs to hold a WebAssembly component; \
             set it to 2Mi or more (e.g. 128Mi), or remove it to get the default",
        ),
        (
            json!({"image": "a", "resources": {"requests": {"memory": 2097151}}}),
            format!("{C0}.resources.requests.memory"),
            "below the 2Mi",
        ),
        (
            json!({"image": "a", "resources": {"limits": {"memory": "0"}}}),
            format!("{C0}.resources.limits.memory"),
            "below the 2Mi",
        ),
        (
            json!({"image": "a", "ports": [{"containerPort": 8080}, {"containerPort": 8081}]}),
            "spec.template.spec.containers[*].ports".to_owned(),
            "more than one container port is set",
        ),
    ];
    for (container, field, fragment) in cases {
        assert_single(&container_errors(container), &field, fragment);
    }
}

#[test]
fn good_containers_pass() {
    let container = json!({
        "name": "app", "image": "hello.wasm",
        "env": [{"name": "TARGET", "value": "World"}],
        "ports": [{"name": "h2c", "containerPort": 8080, "protocol": "TCP"}],
        "resources": {"limits": {"memory": "128Mi"}, "requests": {"memory": 2097152}},
    });
    assert_eq!(container_errors(container), vec![]);
}

#[test]
fn timeout_and_concurrency_are_bounded() {
    let errors = service_with_spec(|spec| {
        spec["timeoutSeconds"] = json!(601);
        spec["containerConcurrency"] = json!(2000);
    });
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(
        only_on(&errors, "spec.template.spec.timeoutSeconds").message,
        "expected 0 <= 601 <= 600"
    );
    assert_eq!(
        only_on(&errors, "spec.template.spec.containerConcurrency").to_string(),
        "expected 0 <= 2000 <= 1000: spec.template.spec.containerConcurrency"
    );
    let errors = service_with_spec(|spec| spec["containerConcurrency"] = json!(-1));
    assert_single(
        &errors,
        "spec.template.spec.containerConcurrency",
        "expected 0 <= -1 <= 1000",
    );
    let errors = service_with_spec(|spec| spec["timeoutSeconds"] = json!("ten"));
    assert_eq!(
        only_on(&errors, "spec.template.spec.timeoutSeconds").reason,
        CauseReason::TypeInvalid
    );
    let ok = service_with_spec(|spec| {
        spec["timeoutSeconds"] = json!(600);
        spec["containerConcurrency"] = json!(1000);
    });
    assert_eq!(ok, vec![]);
}

#[test]
fn service_account_names_are_dns_1123_subdomains() {
    let errors = service_with_spec(|spec| spec["serviceAccountName"] = json!("foo@bar.baz"));
    let error = only_on(&errors, "spec.template.spec.serviceAccountName");
    assert!(
        error
            .to_string()
            .ends_with("invalid value: foo@bar.baz: spec.template.spec.serviceAccountName"),
        "{error}"
    );
    assert_eq!(
        service_with_spec(|spec| spec["serviceAccountName"] = json!("builder")),
        vec![]
    );
}

#[test]
fn autoscaling_annotations_go_on_the_template_not_the_service() {
    let mut object = service();
    object["metadata"]["annotations"] = json!({"autoscaling.knative.dev/min-scale": "1"});
    let errors = admit(&create("services"), object).1;
    assert_single(
        &errors,
        "metadata.annotations",
        "spec.template.metadata.annotations",
    );

    let mut object = service();
    object["spec"]["template"]["metadata"] =
        json!({"annotations": {"autoscaling.knative.dev/min-scale": "-1"}});
    let errors = admit(&create("services"), object).1;
    assert_single(
        &errors,
        "spec.template.metadata.annotations.autoscaling.knative.dev/min-scale",
        "an integer from 0 to 2147483647",
    );
}

#[test]
fn byo_revision_names_extend_the_parent_name() {
    let with_name = |name: &str| {
        let mut object = service();
        object["spec"]["template"]["metadata"] = json!({ "name": name });
        object
    };
    assert_eq!(admit(&create("services"), with_name("hello-v2")).1, vec![]);
    assert_single(
        &admit(&create("services"), with_name("other-v2")).1,
        "spec.template.metadata.name",
        r#"invalid value: "other-v2" must have prefix "hello-""#,
    );
    assert_single(
        &admit(&create("services"), with_name("Hello-v2")).1,
        "spec.template.metadata.name",
        "not a DNS 1035 label",
    );
    let mut generated = with_name("hello-v2");
    generated["metadata"] = json!({"generateName": "hello-"});
    let errors = admit(&create("services"), generated).1;
    assert_single(
        &errors,
        "spec.template.metadata.name",
        "must not set the field(s)",
    );
    assert_eq!(errors[0].reason, CauseReason::Forbidden);
}

#[test]
fn a_template_change_under_the_same_byo_name_is_refused() {
    let mut first = service();
    first["spec"]["template"]["metadata"] = json!({"name": "hello-v1"});
    let (stored, errors) = admit(&create("services"), first.clone());
    assert_eq!(errors, vec![]);

    let mut changed = stored.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("v2.wasm");
    let errors = admit(&update("services", &stored), changed.clone()).1;
    let error = only_on(&errors, "spec.template.metadata.name");
    assert!(
        error
            .message
            .starts_with("Saw the following changes without a name change (-old +new)"),
        "{}",
        error.message
    );
    assert!(
        error
            .message
            .contains(r#"spec.containers[0].image: -"hello.wasm" +"v2.wasm""#)
    );

    changed["spec"]["template"]["metadata"]["name"] = json!("hello-v2");
    assert_eq!(admit(&update("services", &stored), changed).1, vec![]);

    let mut traffic_only = stored.clone();
    traffic_only["spec"]["traffic"] =
        json!([{"revisionName": "hello-v1", "percent": 100, "latestRevision": false}]);
    assert_eq!(admit(&update("services", &stored), traffic_only).1, vec![]);
}

#[test]
fn a_revision_spec_is_immutable_but_its_metadata_is_not() {
    let revision = json!({"metadata": {"name": "hello-00001"},
        "spec": {"containers": [{"image": "a.wasm"}]}});
    let (stored, errors) = admit(&create("revisions"), revision);
    assert_eq!(errors, vec![]);

    let mut labelled = stored.clone();
    labelled["metadata"]["labels"] = json!({"serving.knative.dev/routingState": "active"});
    assert_eq!(admit(&update("revisions", &stored), labelled).1, vec![]);

    let mut changed = stored.clone();
    changed["spec"]["containers"][0]["image"] = json!("b.wasm");
    let errors = admit(&update("revisions", &stored), changed).1;
    let error = only_on(&errors, "spec");
    assert!(
        error
            .message
            .starts_with("Immutable fields changed (-old +new)")
    );
    assert_eq!(error.reason, CauseReason::Forbidden);
}

#[test]
fn revisions_take_autoscaling_annotations_on_their_own_metadata() {
    let revision = |value: &str| {
        json!({"metadata": {"name": "hello-00001",
            "annotations": {"autoscaling.knative.dev/max-scale": value}},
            "spec": {"containers": [{"image": "a.wasm"}]}})
    };
    assert_eq!(admit(&create("revisions"), revision("3")).1, vec![]);
    assert_single(
        &admit(&create("revisions"), revision("x")).1,
        "metadata.annotations.autoscaling.knative.dev/max-scale",
        "an integer from 0 to 2147483647",
    );
}

#[test]
fn child_labels_need_owner_references() {
    let revision = json!({"metadata": {"name": "hello-00001",
        "labels": {"serving.knative.dev/configuration": "hello"}},
        "spec": {"containers": [{"image": "a.wasm"}]}});
    assert_single(
        &admit(&create("revisions"), revision.clone()).1,
        "metadata.labels.serving.knative.dev/configuration",
        "ownerReference of kind Configuration",
    );
    let mut owned = revision;
    owned["metadata"]["ownerReferences"] = json!([{"kind": "Configuration", "name": "hello"}]);
    assert_eq!(admit(&create("revisions"), owned).1, vec![]);

    let configuration = json!({"metadata": {"name": "hello",
        "labels": {"serving.knative.dev/service": "hello"}},
        "spec": {"template": {"spec": {"containers": [{"image": "a.wasm"}]}}}});
    assert_single(
        &admit(&create("configurations"), configuration).1,
        "metadata.labels.serving.knative.dev/service",
        "ownerReference of kind Service",
    );
}

#[test]
fn routes_validate_traffic_and_user_info() {
    let route = json!({"metadata": {"name": "hello"},
        "spec": {"traffic": [{"configurationName": "hello", "percent": 100}]}});
    let (stored, errors) = admit(&create("routes"), route);
    assert_eq!(errors, vec![]);

    let mut forged = stored.clone();
    forged["metadata"]["annotations"]["serving.knative.dev/creator"] = json!("mallory");
    let errors = admit(&update("routes", &stored), forged.clone()).1;
    assert_single(
        &errors,
        "metadata.annotations.serving.knative.dev/creator",
        "immutable",
    );
    // An owned route's annotations are the Service controller's business.
    forged["metadata"]["ownerReferences"] = json!([{"kind": "Service", "name": "hello"}]);
    assert_eq!(admit(&update("routes", &stored), forged).1, vec![]);
}

#[test]
fn all_problems_are_reported_together() {
    let mut object = service();
    object["metadata"]["name"] = json!("a".repeat(64));
    object["spec"]["traffic"] = json!([
        {"tag": "v1", "latestRevision": true, "percent": 50},
        {"tag": "v1", "revisionName": "x-00001", "percent": 40},
    ]);
    let errors = admit(&create("services"), object).1;
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["metadata.name", "spec.traffic[1].tag", "spec.traffic"]
    );
}
