use serde_json::{Value, json};

use super::validate;
use crate::admission::test_support::{assert_single, only_on};
use crate::field_error::{CauseReason, FieldError};

fn check(traffic: Value, within_service: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate(
        &json!({ "traffic": traffic }),
        "spec",
        within_service,
        &mut errors,
    );
    errors
}

#[test]
fn a_valid_split_is_accepted() {
    let traffic = json!([
        {"tag": "current", "revisionName": "hello-00001", "latestRevision": false, "percent": 90},
        {"tag": "latest", "latestRevision": true, "percent": 10},
        {"tag": "candidate", "revisionName": "hello-00002", "percent": 0},
    ]);
    assert_eq!(check(traffic, true), vec![]);
    let route = json!([
        {"configurationName": "hello", "percent": 60},
        {"revisionName": "hello-00001", "percent": 40},
    ]);
    assert_eq!(check(route, false), vec![]);
}

#[test]
fn percents_must_sum_to_exactly_100() {
    let traffic = json!([
        {"revisionName": "hello-00001", "percent": 50},
        {"latestRevision": true, "percent": 40},
    ]);
    let errors = check(traffic, true);
    assert_single(
        &errors,
        "spec.traffic",
        "Traffic targets sum to 90, want 100",
    );
    assert_eq!(errors[0].reason, CauseReason::Invalid);
    assert_eq!(
        errors[0].to_string(),
        "Traffic targets sum to 90, want 100: spec.traffic"
    );
}

#[test]
fn a_route_with_no_targets_sums_to_zero() {
    assert_single(
        &check(json!([]), false),
        "spec.traffic",
        "sum to 0, want 100",
    );
    let mut errors = Vec::new();
    validate(&json!({}), "spec", false, &mut errors);
    assert_single(&errors, "spec.traffic", "sum to 0, want 100");
}

#[test]
fn duplicate_tags_are_refused_on_the_later_target() {
    let traffic = json!([
        {"tag": "v1", "revisionName": "hello-00001", "percent": 50},
        {"tag": "v1", "revisionName": "hello-00002", "percent": 50},
    ]);
    let errors = check(traffic, true);
    assert_single(
        &errors,
        "spec.traffic[1].tag",
        r#"Multiple definitions for "v1""#,
    );
    assert_eq!(errors[0].reason, CauseReason::Duplicate);
    assert!(errors[0].message.contains("spec.traffic[0].tag"));
}

#[test]
fn tags_must_be_dns_1035_labels() {
    let traffic = json!([{"tag": "V1", "latestRevision": true, "percent": 100}]);
    assert_single(
        &check(traffic, true),
        "spec.traffic[0].tag",
        "not a DNS 1035 label",
    );
    let traffic = json!([{"tag": "1abc", "latestRevision": true, "percent": 100}]);
    assert_single(
        &check(traffic, true),
        "spec.traffic[0].tag",
        "start with a letter",
    );
}

#[test]
fn percent_is_bounded() {
    let traffic = json!([
        {"revisionName": "a", "percent": 150},
        {"revisionName": "b", "percent": -50},
    ]);
    let errors = check(traffic, true);
    assert_eq!(
        only_on(&errors, "spec.traffic[0].percent").message,
        "expected 0 <= 150 <= 100"
    );
    assert_eq!(
        only_on(&errors, "spec.traffic[1].percent").message,
        "expected 0 <= -50 <= 100"
    );
    // Both still count toward the sum (100), so no sum error.
    assert_eq!(errors.len(), 2, "{errors:#?}");

    let traffic = json!([{"revisionName": "a", "percent": "100"}]);
    let errors = check(traffic, true);
    assert_eq!(
        only_on(&errors, "spec.traffic[0].percent").reason,
        CauseReason::TypeInvalid
    );
}

#[test]
fn revision_name_and_configuration_name_are_exclusive() {
    let both = json!([{"revisionName": "a", "configurationName": "c", "percent": 100}]);
    assert_single(
        &check(both, false),
        "spec.traffic[0]",
        "expected exactly one, got both",
    );
    let neither = json!([{"percent": 100}]);
    let errors = check(neither, false);
    assert_single(
        &errors,
        "spec.traffic[0]",
        "expected exactly one, got neither",
    );
    assert_eq!(errors[0].reason, CauseReason::Required);
    // Inside a Service a target may name neither: it follows the Service's configuration.
    assert_eq!(check(json!([{"percent": 100}]), true), vec![]);
}

#[test]
fn a_service_may_not_route_to_a_configuration() {
    let traffic = json!([{"configurationName": "other", "percent": 100}]);
    let errors = check(traffic, true);
    assert_single(
        &errors,
        "spec.traffic[0].configurationName",
        "must not set the field(s)",
    );
    assert_eq!(errors[0].reason, CauseReason::Forbidden);
}

#[test]
fn latest_revision_must_agree_with_the_revision_name() {
    let pinned_latest = json!([{"revisionName": "r", "latestRevision": true, "percent": 100}]);
    assert_single(
        &check(pinned_latest, true),
        "spec.traffic[0].latestRevision",
        r#"may not set revisionName "r" when latestRevision is true"#,
    );
    let floating_pinned = json!([{"latestRevision": false, "percent": 100}]);
    assert_single(
        &check(floating_pinned, true),
        "spec.traffic[0].latestRevision",
        r#"may not set revisionName "" when latestRevision is false"#,
    );
}

#[test]
fn url_may_not_be_set_in_spec() {
    let traffic = json!([{"tag": "a", "latestRevision": true, "percent": 100,
        "url": "http://a-hello.default.example.com"}]);
    let errors = check(traffic, true);
    assert_single(&errors, "spec.traffic[0].url", "must not set the field(s)");
    assert_eq!(errors[0].reason, CauseReason::Forbidden);
}

#[test]
fn target_names_must_be_qualified_names() {
    let traffic = json!([{"revisionName": "b ar", "percent": 100}]);
    assert_single(
        &check(traffic, true),
        "spec.traffic[0].revisionName",
        r#"invalid key name "b ar""#,
    );
    let traffic = json!([{"configurationName": "-c", "percent": 100}]);
    assert_single(
        &check(traffic, false),
        "spec.traffic[0].configurationName",
        "invalid key name",
    );
}

#[test]
fn every_problem_is_reported() {
    let traffic = json!([
        {"tag": "x", "revisionName": "r", "latestRevision": true, "percent": 30},
        {"tag": "x", "configurationName": "c", "percent": 30},
    ]);
    let fields: Vec<String> = check(traffic, true).into_iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        [
            "spec.traffic[0].latestRevision",
            "spec.traffic[1].configurationName",
            "spec.traffic[1].tag",
            "spec.traffic",
        ]
    );
}
