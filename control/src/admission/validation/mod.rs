//! Knative validation (reference §6.5), one orchestrating function per kind over small rule
//! modules. Every rule appends to one list so a client sees all its mistakes at once.

mod container;
mod metadata;
mod revision_spec;
mod rules;
mod scale;
mod template;
mod traffic;

use serde_json::Value;

use super::defaults::has_owners;
use super::json::{child, describe_changes, string_map};
use super::{Kind, Operation, Request};
use crate::field_error::FieldError;

const NULL: Value = Value::Null;

/// Every problem with `object`, a `kind` being written as `request` describes.
pub(crate) fn check(kind: Kind, request: &Request<'_>, object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let meta = child(object, "metadata").unwrap_or(&NULL);
    let spec = child(object, "spec").unwrap_or(&NULL);
    let annotations = string_map(meta, "annotations");
    let old = match request.operation {
        Operation::Update => request.old,
        Operation::Create => None,
    };
    // Knative's Configuration and Route leave user info to the Service controller when owned.
    let owned = object.as_object().is_some_and(has_owners);

    metadata::object_name(meta, &mut errors);
    match kind {
        Kind::Service => {
            metadata::no_autoscaling(&annotations, &mut errors);
            metadata::no_instance_reuse(&annotations, &mut errors);
            metadata::rollout_duration(&annotations, &mut errors);
            template::validate(spec, meta, request.defaults, &mut errors);
            traffic::validate(spec, "spec", true, &mut errors);
            if let Some(old) = old {
                metadata::creator_and_modifier(old, object, &mut errors);
                template::verify_name_change(
                    child(old, "spec").unwrap_or(&NULL),
                    spec,
                    &mut errors,
                );
            }
        }
        Kind::Configuration => {
            metadata::no_autoscaling(&annotations, &mut errors);
            metadata::no_instance_reuse(&annotations, &mut errors);
            metadata::owner_label(meta, metadata::SERVICE_LABEL, "Service", &mut errors);
            template::validate(spec, meta, request.defaults, &mut errors);
            if let Some(old) = old {
                if !owned {
                    metadata::creator_and_modifier(old, object, &mut errors);
                }
                template::verify_name_change(
                    child(old, "spec").unwrap_or(&NULL),
                    spec,
                    &mut errors,
                );
            }
        }
        Kind::Route => {
            metadata::no_autoscaling(&annotations, &mut errors);
            metadata::no_instance_reuse(&annotations, &mut errors);
            metadata::rollout_duration(&annotations, &mut errors);
            metadata::owner_label(meta, metadata::SERVICE_LABEL, "Service", &mut errors);
            traffic::validate(spec, "spec", false, &mut errors);
            if let Some(old) = old
                && !owned
            {
                metadata::creator_and_modifier(old, object, &mut errors);
            }
        }
        Kind::Revision => {
            metadata::autoscaling(
                &annotations,
                "metadata.annotations",
                request.defaults,
                &mut errors,
            );
            metadata::instance_reuse(&annotations, "metadata.annotations", &mut errors);
            metadata::owner_label(
                meta,
                metadata::CONFIGURATION_LABEL,
                "Configuration",
                &mut errors,
            );
            match old {
                // The spec was validated when the revision was made and cannot change since.
                Some(old) => {
                    let before = child(old, "spec").unwrap_or(&NULL);
                    if before != spec {
                        errors.push(FieldError::forbidden(
                            "spec",
                            format!(
                                "Immutable fields changed (-old +new): {}",
                                describe_changes(before, spec)
                            ),
                        ));
                    }
                }
                None => revision_spec::validate(spec, "spec", request.defaults, &mut errors),
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests;
