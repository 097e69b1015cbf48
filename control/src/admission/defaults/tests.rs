use serde_json::{Value, json};

use super::{CREATOR, LAST_MODIFIER};
use crate::admission::test_support::{create, resource, service, update};
use crate::admission::{Operation, Request, default};

fn defaulted(request: &Request<'_>, mut object: Value) -> Value {
    default(request, &mut object);
    object
}

#[test]
fn service_create_fills_the_revision_spec_traffic_and_user_info() {
    let object = defaulted(&create("services"), service());
    let spec = &object["spec"]["template"]["spec"];
    assert_eq!(spec["timeoutSeconds"], json!(300));
    assert_eq!(spec["containerConcurrency"], json!(0));
    // Nothing is defaulted inside the user's lists (re-applying must stay "unchanged").
    assert!(spec["containers"][0].get("name").is_none());
    assert!(spec["containers"][0].get("resources").is_none());
    // No TCP readiness probe and no service links: wisp has neither.
    assert!(spec["containers"][0].get("readinessProbe").is_none());
    assert!(spec.get("enableServiceLinks").is_none());
    assert_eq!(
        object["spec"]["traffic"],
        json!([{"latestRevision": true, "percent": 100}])
    );
    let annotations = &object["metadata"]["annotations"];
    assert_eq!(annotations[CREATOR], json!("alice"));
    assert_eq!(annotations[LAST_MODIFIER], json!("alice"));
    assert!(object.get("status").is_none());
}

#[test]
fn a_zero_timeout_is_defaulted_but_explicit_values_are_kept() {
    let mut object = service();
    object["spec"]["template"]["spec"]["timeoutSeconds"] = json!(0);
    object["spec"]["template"]["spec"]["containerConcurrency"] = json!(5);
    let object = defaulted(&create("services"), object);
    assert_eq!(
        object["spec"]["template"]["spec"]["timeoutSeconds"],
        json!(300)
    );
    assert_eq!(
        object["spec"]["template"]["spec"]["containerConcurrency"],
        json!(5)
    );

    let mut object = service();
    object["spec"]["template"]["spec"]["timeoutSeconds"] = json!(42);
    let object = defaulted(&create("services"), object);
    assert_eq!(
        object["spec"]["template"]["spec"]["timeoutSeconds"],
        json!(42)
    );
}

#[test]
fn traffic_targets_are_left_as_written() {
    let mut object = service();
    object["spec"]["traffic"] = json!([
        {"revisionName": "hello-00001", "percent": 50},
        {"tag": "next", "percent": 50},
    ]);
    let object = defaulted(&create("services"), object.clone());
    assert_eq!(
        object["spec"]["traffic"],
        json!([
            {"revisionName": "hello-00001", "percent": 50},
            {"tag": "next", "percent": 50},
        ])
    );
}

#[test]
fn a_route_without_traffic_is_not_given_any() {
    let route = json!({"metadata": {"name": "r"}, "spec": {}});
    let object = defaulted(&create("routes"), route);
    assert!(object["spec"].get("traffic").is_none());

    let route = json!({"metadata": {"name": "r"}, "spec": {"traffic": [
        {"configurationName": "c", "percent": 100}
    ]}});
    let object = defaulted(&create("routes"), route);
    assert!(object["spec"]["traffic"][0].get("latestRevision").is_none());
    assert_eq!(object["metadata"]["annotations"][CREATOR], json!("alice"));
}

#[test]
fn revision_containers_get_numbered_names_that_avoid_chosen_ones() {
    let revision = json!({"metadata": {"name": "hello-00001"}, "spec": {"containers": [
        {"image": "a"},
        {"name": "user-container-0", "image": "b"},
        {"image": "c"},
    ]}});
    let object = defaulted(&create("revisions"), revision);
    let containers = &object["spec"]["containers"];
    assert_eq!(containers[0]["name"], json!("user-container-1"));
    assert_eq!(containers[1]["name"], json!("user-container-0"));
    assert_eq!(containers[2]["name"], json!("user-container-2"));
}

#[test]
fn a_chosen_container_name_is_kept() {
    let mut object = service();
    object["spec"]["template"]["spec"]["containers"][0]["name"] = json!("app");
    let object = defaulted(&create("services"), object);
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["name"],
        json!("app")
    );
}

#[test]
fn revisions_are_defaulted_on_create_only() {
    let revision = json!({"metadata": {"name": "hello-00001"},
        "spec": {"containers": [{"image": "x.wasm"}]}});
    let created = defaulted(&create("revisions"), revision.clone());
    assert_eq!(created["spec"]["timeoutSeconds"], json!(300));
    assert_eq!(
        created["spec"]["containers"][0]["name"],
        json!("user-container")
    );
    // Revisions carry no user info.
    assert!(created["metadata"].get("annotations").is_none());

    let updated = defaulted(&update("revisions", &created), revision.clone());
    assert_eq!(updated, revision);
}

#[test]
fn update_stamps_last_modifier_only_when_the_spec_changes_and_keeps_the_creator() {
    let stored = defaulted(&create("services"), service());

    // Same spec, annotations omitted (a `kubectl replace` of the original manifest).
    let unchanged = defaulted(&update("services", &stored), service());
    let annotations = &unchanged["metadata"]["annotations"];
    assert_eq!(annotations[CREATOR], json!("alice"));
    assert_eq!(annotations[LAST_MODIFIER], json!("alice"));

    let mut changed = service();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("v2.wasm");
    let changed = defaulted(&update("services", &stored), changed);
    let annotations = &changed["metadata"]["annotations"];
    assert_eq!(annotations[CREATOR], json!("alice"));
    assert_eq!(annotations[LAST_MODIFIER], json!("bob"));
}

#[test]
fn an_update_keeping_a_byo_revision_name_leaves_the_template_alone() {
    let mut stored = service();
    stored["spec"]["template"]["metadata"] = json!({"name": "hello-v1"});
    let stored = defaulted(&create("services"), stored);

    let mut next = service();
    next["spec"]["template"]["metadata"] = json!({"name": "hello-v1"});
    let next = defaulted(&update("services", &stored), next);
    assert!(
        next["spec"]["template"]["spec"]
            .get("timeoutSeconds")
            .is_none()
    );

    let mut renamed = service();
    renamed["spec"]["template"]["metadata"] = json!({"name": "hello-v2"});
    let renamed = defaulted(&update("services", &stored), renamed);
    assert_eq!(
        renamed["spec"]["template"]["spec"]["timeoutSeconds"],
        json!(300)
    );
}

#[test]
fn owned_configurations_and_routes_get_no_user_info() {
    let owners =
        json!([{"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "hello"}]);
    let configuration = json!({"metadata": {"name": "hello", "ownerReferences": owners},
        "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
    let object = defaulted(&create("configurations"), configuration);
    assert!(object["metadata"].get("annotations").is_none());
    assert_eq!(
        object["spec"]["template"]["spec"]["timeoutSeconds"],
        json!(300)
    );

    let route = json!({"metadata": {"name": "hello", "ownerReferences": owners},
        "spec": {"traffic": [{"revisionName": "hello-00001", "percent": 100}]}});
    let object = defaulted(&create("routes"), route);
    assert!(object["metadata"].get("annotations").is_none());
}

#[test]
fn odd_shapes_are_left_for_the_schema_check() {
    let request = create("services");
    for odd in [
        json!("text"),
        json!({"spec": "text"}),
        json!({"spec": {"template": 3}}),
    ] {
        let object = defaulted(&request, odd.clone());
        if odd.is_object() {
            assert_eq!(object["spec"]["template"], odd["spec"]["template"]);
        } else {
            assert_eq!(object, odd);
        }
    }
    // An object with no spec at all gets Knative's full defaults.
    let object = defaulted(&request, json!({"metadata": {"name": "x"}}));
    assert_eq!(
        object["spec"]["template"]["spec"]["timeoutSeconds"],
        json!(300)
    );
}

#[test]
fn anonymous_writes_stamp_no_user() {
    let request = Request {
        resource: resource("services"),
        operation: Operation::Create,
        old: None,
        user: "",
        defaults: &crate::admission::ClusterDefaults::KNATIVE,
    };
    let object = defaulted(&request, service());
    assert!(object["metadata"]["annotations"].get(CREATOR).is_none());
}
