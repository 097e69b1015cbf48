//! Rules on an object's own `metadata`: its name, which annotations it may carry, the labels
//! only an owner may set, and the creator/lastModifier annotations.

use std::collections::BTreeMap;

use serde_json::Value;
use wisp_api::instance_reuse::{ANNOTATION_PREFIX as REUSE_PREFIX, InstanceReuse};
use wisp_autoscaler::annotations::{AnnotationOverrides, PREFIX as AUTOSCALING_PREFIX};
use wisp_autoscaler::duration::parse_go_duration;
use wisp_autoscaler::error::ConfigError;

use super::rules::{dns1035_label, dns1035_prefix};
use crate::admission::ClusterDefaults;
use crate::admission::defaults::{CREATOR, LAST_MODIFIER};
use crate::admission::json::{array, child, join, nonempty_str, str_at, string_map};
use crate::field_error::FieldError;

/// The label a Configuration or Route carries when a Service made it.
pub(crate) const SERVICE_LABEL: &str = "serving.knative.dev/service";
/// The label a Revision carries when a Configuration made it.
pub(crate) const CONFIGURATION_LABEL: &str = "serving.knative.dev/configuration";
/// How long a Service or Route takes to shift traffic to a new revision; the camelCase spelling
/// is Knative's older alias, read only when the kebab-case one is absent.
const ROLLOUT_DURATION_KEYS: [&str; 2] = [
    "serving.knative.dev/rollout-duration",
    "serving.knative.dev/rolloutDuration",
];

/// `metadata.name` (or `generateName`, when there is no name) must be a DNS-1035 label.
pub(crate) fn object_name(meta: &Value, errors: &mut Vec<FieldError>) {
    let name = nonempty_str(meta, "name");
    let generate_name = nonempty_str(meta, "generateName");
    if let Some(prefix) = generate_name
        && let Err(message) = dns1035_prefix(prefix)
    {
        errors.push(FieldError::invalid("metadata.generateName", message));
    }
    if let Some(name) = name
        && let Err(message) = dns1035_label(name)
    {
        errors.push(FieldError::invalid("metadata.name", message));
    }
    if name.is_none() && generate_name.is_none() {
        errors.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
}

/// Service, Configuration and Route metadata may not carry autoscaling annotations: they only
/// take effect on a revision, so there they would be silently ignored.
pub(crate) fn no_autoscaling(annotations: &BTreeMap<String, String>, errors: &mut Vec<FieldError>) {
    for key in annotations
        .keys()
        .filter(|k| k.starts_with(AUTOSCALING_PREFIX))
    {
        errors.push(FieldError::invalid(
            "metadata.annotations",
            format!(
                "invalid key name {key:?}: autoscaling annotations must be put under \
                 \"spec.template.metadata.annotations\" to work"
            ),
        ));
    }
}

/// Instance reuse annotations (`wisp.dev/…`) on a revision or revision template: wisp's own
/// parser, every bad key reported, unknown `wisp.dev/` keys refused so a typo is not ignored.
pub(crate) fn instance_reuse(
    annotations: &BTreeMap<String, String>,
    base: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Err(bad) = InstanceReuse::from_annotations(annotations) {
        errors.extend(
            bad.iter()
                .map(|error| FieldError::invalid(join(base, error.key()), error.to_string())),
        );
    }
}

/// Service, Configuration and Route metadata may not carry wisp's revision annotations: like
/// Knative's autoscaling keys they take effect only on a revision.
pub(crate) fn no_instance_reuse(
    annotations: &BTreeMap<String, String>,
    errors: &mut Vec<FieldError>,
) {
    for key in annotations
        .keys()
        .filter(|key| key.starts_with(REUSE_PREFIX))
    {
        errors.push(FieldError::invalid(
            "metadata.annotations",
            format!(
                "invalid key name {key:?}: wisp.dev/ annotations must be put under \
                 \"spec.template.metadata.annotations\" to work"
            ),
        ));
    }
}

/// Autoscaling annotations on a revision or revision template, checked with the autoscaler's
/// own parser so admission and the autoscaler can never disagree about a value. Each key is
/// parsed on its own so that every bad key is reported, not only the first.
pub(crate) fn autoscaling(
    annotations: &BTreeMap<String, String>,
    base: &str,
    defaults: &ClusterDefaults,
    errors: &mut Vec<FieldError>,
) {
    let mut all_valid = true;
    for (key, value) in annotations {
        let single = BTreeMap::from([(key.clone(), value.clone())]);
        if let Err(error) = AnnotationOverrides::parse(&single) {
            all_valid = false;
            let key = match &error {
                ConfigError::Invalid { key, .. } | ConfigError::UnknownKey { key, .. } => key,
            };
            errors.push(FieldError::invalid(join(base, key), error.to_string()));
        }
    }
    if !all_valid {
        return;
    }
    if let Ok(overrides) = AnnotationOverrides::parse(annotations) {
        super::scale::bounds(&overrides, base, defaults, errors);
    }
}

/// `serving.knative.dev/rollout-duration` (Service and Route): a Go duration, whole seconds,
/// not negative.
pub(crate) fn rollout_duration(
    annotations: &BTreeMap<String, String>,
    errors: &mut Vec<FieldError>,
) {
    let Some((key, value)) = ROLLOUT_DURATION_KEYS
        .iter()
        .find_map(|key| annotations.get(*key).map(|v| (*key, v.as_str())))
        .filter(|(_, v)| !v.is_empty())
    else {
        return;
    };
    let field = join("metadata.annotations", key);
    let trimmed = value.trim();
    let (negative, magnitude) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let Some(duration) = parse_go_duration(magnitude) else {
        errors.push(FieldError::invalid(
            field,
            format!("invalid value: {value} (want a duration in whole seconds such as 90s or 2m)"),
        ));
        return;
    };
    if duration.subsec_nanos() != 0 {
        errors.push(FieldError::invalid(
            field,
            format!("rollout-duration={value} is not at second precision"),
        ));
    } else if negative && !duration.is_zero() {
        errors.push(FieldError::invalid(
            field,
            format!("rollout-duration={value} must be positive"),
        ));
    }
}

/// A label naming the parent (`serving.knative.dev/service` on a Configuration or Route,
/// `…/configuration` on a Revision) must be backed by an ownerReference to that parent, so
/// the label cannot make an object look like another's child.
pub(crate) fn owner_label(
    meta: &Value,
    label: &str,
    owner_kind: &str,
    errors: &mut Vec<FieldError>,
) {
    let labels = string_map(meta, "labels");
    let Some(owner) = labels.get(label) else {
        return;
    };
    let backed = array(meta, "ownerReferences").iter().any(|reference| {
        str_at(reference, "kind") == Some(owner_kind)
            && str_at(reference, "name") == Some(owner.as_str())
    });
    if !backed {
        errors.push(FieldError::required(
            join("metadata.labels", label),
            format!(
                "missing field(s) (the label needs an ownerReference of kind {owner_kind} \
                 named {owner:?})"
            ),
        ));
    }
}

/// On update: the creator annotation never changes, and lastModifier changes only together
/// with the spec.
pub(crate) fn creator_and_modifier(old: &Value, new: &Value, errors: &mut Vec<FieldError>) {
    let annotations = |object: &Value| {
        child(object, "metadata")
            .map(|meta| string_map(meta, "annotations"))
            .unwrap_or_default()
    };
    let (before, after) = (annotations(old), annotations(new));
    if before.get(CREATOR) != after.get(CREATOR) {
        errors.push(FieldError::forbidden(
            join("metadata.annotations", CREATOR),
            "annotation value is immutable",
        ));
    }
    let spec_unchanged = old.get("spec") == new.get("spec");
    if spec_unchanged && before.get(LAST_MODIFIER) != after.get(LAST_MODIFIER) {
        let value = after.get(LAST_MODIFIER).map_or("", String::as_str);
        errors.push(FieldError::invalid(
            join("metadata.annotations", LAST_MODIFIER),
            format!("invalid value: {value} (it may only change together with the spec)"),
        ));
    }
}

#[cfg(test)]
mod tests;
