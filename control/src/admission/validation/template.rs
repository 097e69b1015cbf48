//! `spec.template` of a Service or Configuration: the revision spec, the revision's
//! annotations, and a user-chosen ("bring your own") revision name.

use serde_json::Value;

use super::rules::{dns1035_label, dns1035_prefix};
use super::{metadata, revision_spec};
use crate::admission::ClusterDefaults;
use crate::admission::json::{child, describe_changes, join, nonempty_str, string_map};
use crate::field_error::FieldError;

const NULL: Value = Value::Null;

/// Validates the template under `spec` (field path `spec.template`); `parent_meta` is the
/// Service's or Configuration's own metadata, which a BYO revision name must extend.
pub(crate) fn validate(
    spec: &Value,
    parent_meta: &Value,
    defaults: &ClusterDefaults,
    errors: &mut Vec<FieldError>,
) {
    let base = "spec.template";
    let template = child(spec, "template").unwrap_or(&NULL);
    let meta = child(template, "metadata").unwrap_or(&NULL);
    revision_spec::validate(
        child(template, "spec").unwrap_or(&NULL),
        &join(base, "spec"),
        defaults,
        errors,
    );
    let annotations = string_map(meta, "annotations");
    let annotations_base = join(base, "metadata.annotations");
    metadata::autoscaling(&annotations, &annotations_base, defaults, errors);
    metadata::instance_reuse(&annotations, &annotations_base, errors);
    revision_name(meta, parent_meta, errors);
}

/// A BYO revision name: a DNS-1035 label starting with `<parent>-`, and not allowed while the
/// parent's own name is still to be generated (the prefix is unknown then).
fn revision_name(meta: &Value, parent_meta: &Value, errors: &mut Vec<FieldError>) {
    if let Some(prefix) = nonempty_str(meta, "generateName")
        && let Err(message) = dns1035_prefix(prefix)
    {
        errors.push(FieldError::invalid(
            "spec.template.metadata.generateName",
            message,
        ));
    }
    let Some(name) = nonempty_str(meta, "name") else {
        return;
    };
    let field = "spec.template.metadata.name";
    if let Err(message) = dns1035_label(name) {
        errors.push(FieldError::invalid(field, message));
        return;
    }
    let parent = nonempty_str(parent_meta, "name").unwrap_or("");
    if parent.is_empty() && nonempty_str(parent_meta, "generateName").is_some() {
        errors.push(FieldError::forbidden(
            field,
            "must not set the field(s) (a revision name needs the parent's name as its prefix, \
             which generateName leaves unknown)",
        ));
        return;
    }
    let prefix = format!("{parent}-");
    if !name.starts_with(&prefix) {
        errors.push(FieldError::invalid(
            field,
            format!("invalid value: {name:?} must have prefix {prefix:?}"),
        ));
    }
}

/// On update: a template that keeps its BYO name must not change, since the name already
/// belongs to the revision made from the old template.
pub(crate) fn verify_name_change(old_spec: &Value, new_spec: &Value, errors: &mut Vec<FieldError>) {
    let new = child(new_spec, "template").unwrap_or(&NULL);
    let old = child(old_spec, "template").unwrap_or(&NULL);
    let Some(name) = template_name(new) else {
        return;
    };
    if template_name(old) != Some(name) || old == new {
        return;
    }
    errors.push(FieldError::invalid(
        "spec.template.metadata.name",
        format!(
            "Saw the following changes without a name change (-old +new): {}",
            describe_changes(old, new)
        ),
    ));
}

fn template_name(template: &Value) -> Option<&str> {
    child(template, "metadata").and_then(|meta| nonempty_str(meta, "name"))
}
