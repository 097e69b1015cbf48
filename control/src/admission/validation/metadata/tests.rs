use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::admission::test_support::{assert_single, only_on};
use crate::field_error::CauseReason;

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn names_are_dns_1035_labels_of_at_most_63_characters() {
    let mut errors = Vec::new();
    object_name(&json!({"name": "a".repeat(63)}), &mut errors);
    object_name(&json!({"generateName": "hello-"}), &mut errors);
    assert_eq!(errors, vec![]);

    object_name(&json!({"name": "a".repeat(64)}), &mut errors);
    assert_single(
        &errors,
        "metadata.name",
        "not a DNS 1035 label: it is 64 characters long; the most is 63",
    );

    let mut errors = Vec::new();
    object_name(&json!({"name": "Hello"}), &mut errors);
    assert_single(&errors, "metadata.name", "lowercase");

    let mut errors = Vec::new();
    object_name(&json!({"generateName": "Hello-"}), &mut errors);
    assert_single(
        &errors,
        "metadata.generateName",
        "not a DNS 1035 label prefix",
    );
}

#[test]
fn a_name_or_generate_name_is_required() {
    let mut errors = Vec::new();
    object_name(&json!({"name": ""}), &mut errors);
    assert_single(&errors, "metadata.name", "name or generateName is required");
    assert_eq!(errors[0].reason, CauseReason::Required);
}

#[test]
fn autoscaling_annotations_belong_on_the_template() {
    let mut errors = Vec::new();
    no_autoscaling(
        &annotations(&[
            ("autoscaling.knative.dev/min-scale", "1"),
            ("example.com/team", "a"),
        ]),
        &mut errors,
    );
    assert_single(
        &errors,
        "metadata.annotations",
        r#"invalid key name "autoscaling.knative.dev/min-scale": autoscaling annotations must be put under "spec.template.metadata.annotations" to work"#,
    );
}

#[test]
fn instance_reuse_annotations_are_checked_key_by_key_and_typos_refused() {
    let base = "spec.template.metadata.annotations";
    let mut errors = Vec::new();
    instance_reuse(
        &annotations(&[
            ("wisp.dev/max-instance-reuse-count", "64"),
            ("wisp.dev/idle-instance-timeout", "500ms"),
            ("example.com/other", "x"),
        ]),
        base,
        &mut errors,
    );
    assert_eq!(errors, vec![]);

    instance_reuse(
        &annotations(&[
            ("wisp.dev/max-instance-reuse-count", "0"),
            ("wisp.dev/max-instance-reuse", "8"),
        ]),
        base,
        &mut errors,
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let count = only_on(
        &errors,
        "spec.template.metadata.annotations.wisp.dev/max-instance-reuse-count",
    );
    assert!(
        count.message.contains("must be at least 1"),
        "{}",
        count.message
    );
    let typo = only_on(
        &errors,
        "spec.template.metadata.annotations.wisp.dev/max-instance-reuse",
    );
    assert!(
        typo.message.contains("unknown wisp annotation"),
        "{}",
        typo.message
    );
}

#[test]
fn instance_reuse_annotations_belong_on_the_template() {
    let mut errors = Vec::new();
    no_instance_reuse(
        &annotations(&[("wisp.dev/max-instance-reuse-count", "8")]),
        &mut errors,
    );
    assert_single(
        &errors,
        "metadata.annotations",
        r#"invalid key name "wisp.dev/max-instance-reuse-count": wisp.dev/ annotations must be put under "spec.template.metadata.annotations" to work"#,
    );
}

#[test]
fn autoscaling_values_are_checked_by_the_autoscaler_parser_key_by_key() {
    let base = "spec.template.metadata.annotations";
    let mut errors = Vec::new();
    autoscaling(
        &annotations(&[
            ("autoscaling.knative.dev/min-scale", "2"),
            ("autoscaling.knative.dev/target", "10"),
            ("example.com/other", "x"),
        ]),
        base,
        &ClusterDefaults::KNATIVE,
        &mut errors,
    );
    assert_eq!(errors, vec![]);

    autoscaling(
        &annotations(&[
            ("autoscaling.knative.dev/min-scale", "lots"),
            ("autoscaling.knative.dev/window", "1s"),
            ("autoscaling.knative.dev/min-scal", "1"),
        ]),
        base,
        &ClusterDefaults::KNATIVE,
        &mut errors,
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
    let min = only_on(
        &errors,
        "spec.template.metadata.annotations.autoscaling.knative.dev/min-scale",
    );
    assert!(
        min.message.contains("an integer from 0 to 2147483647"),
        "{}",
        min.message
    );
    let window = only_on(
        &errors,
        "spec.template.metadata.annotations.autoscaling.knative.dev/window",
    );
    assert!(window.message.contains("6s to 1h"), "{}", window.message);
    let unknown = only_on(
        &errors,
        "spec.template.metadata.annotations.autoscaling.knative.dev/min-scal",
    );
    assert!(
        unknown.message.contains("unknown key"),
        "{}",
        unknown.message
    );
}

#[test]
fn max_scale_may_not_be_below_min_scale() {
    let mut errors = Vec::new();
    autoscaling(
        &annotations(&[
            ("autoscaling.knative.dev/min-scale", "3"),
            ("autoscaling.knative.dev/max-scale", "2"),
        ]),
        "metadata.annotations",
        &ClusterDefaults::KNATIVE,
        &mut errors,
    );
    assert_single(
        &errors,
        "metadata.annotations.autoscaling.knative.dev/max-scale",
        "max-scale=2 is less than min-scale=3",
    );
    // max-scale 0 means unbounded.
    let mut errors = Vec::new();
    autoscaling(
        &annotations(&[
            ("autoscaling.knative.dev/min-scale", "3"),
            ("autoscaling.knative.dev/max-scale", "0"),
        ]),
        "metadata.annotations",
        &ClusterDefaults::KNATIVE,
        &mut errors,
    );
    assert_eq!(errors, vec![]);
}

#[test]
fn rollout_duration_is_whole_non_negative_seconds() {
    let key = "serving.knative.dev/rollout-duration";
    let field = "metadata.annotations.serving.knative.dev/rollout-duration";
    for good in ["120s", "2m", "0", "-0s", "1h30m"] {
        let mut errors = Vec::new();
        rollout_duration(&annotations(&[(key, good)]), &mut errors);
        assert_eq!(errors, vec![], "{good}");
    }
    let cases = [
        ("1.5s", "rollout-duration=1.5s is not at second precision"),
        ("-5s", "rollout-duration=-5s must be positive"),
        ("soon", "invalid value: soon"),
    ];
    for (bad, message) in cases {
        let mut errors = Vec::new();
        rollout_duration(&annotations(&[(key, bad)]), &mut errors);
        assert_single(&errors, field, message);
    }
    let mut errors = Vec::new();
    rollout_duration(
        &annotations(&[("serving.knative.dev/rolloutDuration", "1.5s")]),
        &mut errors,
    );
    assert_single(
        &errors,
        "metadata.annotations.serving.knative.dev/rolloutDuration",
        "second precision",
    );
}

#[test]
fn parent_labels_need_a_matching_owner_reference() {
    let owner = json!([{"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "svc"}]);
    let mut errors = Vec::new();
    let meta = json!({"labels": {SERVICE_LABEL: "svc"}, "ownerReferences": owner});
    owner_label(&meta, SERVICE_LABEL, "Service", &mut errors);
    assert_eq!(errors, vec![]);

    for meta in [
        json!({"labels": {SERVICE_LABEL: "svc"}}),
        json!({"labels": {SERVICE_LABEL: "other"}, "ownerReferences": owner}),
        json!({"labels": {SERVICE_LABEL: "svc"},
               "ownerReferences": [{"kind": "Configuration", "name": "svc"}]}),
    ] {
        let mut errors = Vec::new();
        owner_label(&meta, SERVICE_LABEL, "Service", &mut errors);
        assert_single(
            &errors,
            "metadata.labels.serving.knative.dev/service",
            "missing field(s)",
        );
        assert_eq!(errors[0].reason, CauseReason::Required);
    }
}

#[test]
fn the_creator_is_immutable_and_last_modifier_follows_the_spec() {
    let old = json!({"metadata": {"annotations": {CREATOR: "alice", LAST_MODIFIER: "alice"}},
        "spec": {"a": 1}});

    let mut errors = Vec::new();
    creator_and_modifier(&old, &old, &mut errors);
    assert_eq!(errors, vec![]);

    let forged = json!({"metadata": {"annotations": {CREATOR: "mallory", LAST_MODIFIER: "alice"}},
        "spec": {"a": 1}});
    creator_and_modifier(&old, &forged, &mut errors);
    assert_single(
        &errors,
        "metadata.annotations.serving.knative.dev/creator",
        "annotation value is immutable",
    );
    assert_eq!(errors[0].reason, CauseReason::Forbidden);

    let mut errors = Vec::new();
    let touched = json!({"metadata": {"annotations": {CREATOR: "alice", LAST_MODIFIER: "bob"}},
        "spec": {"a": 1}});
    creator_and_modifier(&old, &touched, &mut errors);
    assert_single(
        &errors,
        "metadata.annotations.serving.knative.dev/lastModifier",
        "invalid value: bob",
    );

    let mut errors = Vec::new();
    let edited = json!({"metadata": {"annotations": {CREATOR: "alice", LAST_MODIFIER: "bob"}},
        "spec": {"a": 2}});
    creator_and_modifier(&old, &edited, &mut errors);
    assert_eq!(errors, vec![]);
}
