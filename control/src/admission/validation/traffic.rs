//! `spec.traffic` of a Service or Route (knative/serving `route_validation.go`).

use std::collections::HashMap;

use serde_json::Value;

use super::rules::{Integer, dns1035_label, integer, out_of_bounds, qualified_name};
use crate::admission::json::{child, index, join, nonempty_str};
use crate::field_error::{CauseReason, FieldError};

/// Validates the traffic list under `spec` (field path `base.traffic`). Inside a Service the
/// targets route to the Service's own configuration, so `configurationName` is refused there
/// and a target may name neither a revision nor a configuration.
pub(crate) fn validate(
    spec: &Value,
    base: &str,
    within_service: bool,
    errors: &mut Vec<FieldError>,
) {
    let field = join(base, "traffic");
    let targets = match child(spec, "traffic") {
        None => &[][..],
        Some(Value::Array(targets)) => targets.as_slice(),
        // The schema check reports the wrong type; a sum over it would only add noise.
        Some(_) => return,
    };
    let mut sum: i64 = 0;
    let mut tags: HashMap<&str, usize> = HashMap::new();
    for (i, target) in targets.iter().enumerate() {
        let path = index(&field, i);
        latest_revision(target, &path, errors);
        names(target, &path, within_service, errors);
        if let Some(percent) = percent(target, &path, errors) {
            sum = sum.saturating_add(percent);
        }
        if child(target, "url").is_some() {
            errors.push(FieldError::forbidden(
                join(&path, "url"),
                "must not set the field(s) (a target's url is reported in status, not set in spec)",
            ));
        }
        let Some(tag) = nonempty_str(target, "tag") else {
            continue;
        };
        if let Err(message) = dns1035_label(tag) {
            errors.push(FieldError::invalid(join(&path, "tag"), message));
        }
        match tags.get(tag) {
            Some(first) => errors.push(FieldError::new(
                join(&path, "tag"),
                CauseReason::Duplicate,
                format!(
                    "Multiple definitions for {tag:?} (also {}.tag)",
                    index(&field, *first)
                ),
            )),
            None => {
                tags.insert(tag, i);
            }
        }
    }
    if sum != 100 {
        errors.push(FieldError::invalid(
            field,
            format!("Traffic targets sum to {sum}, want 100"),
        ));
    }
}

/// `latestRevision` must agree with whether a revision is named: true floats to the latest
/// revision, false pins the named one.
fn latest_revision(target: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(latest) = target.get("latestRevision").and_then(Value::as_bool) else {
        return;
    };
    let revision = nonempty_str(target, "revisionName").unwrap_or("");
    let pinned = !revision.is_empty();
    if latest == pinned {
        errors.push(FieldError::invalid(
            join(path, "latestRevision"),
            format!("may not set revisionName {revision:?} when latestRevision is {latest}"),
        ));
    }
}

/// Exactly one of `revisionName` and `configurationName` (none inside a Service, which routes
/// to its own configuration), each a qualified name.
fn names(target: &Value, path: &str, within_service: bool, errors: &mut Vec<FieldError>) {
    let revision = nonempty_str(target, "revisionName");
    let configuration = nonempty_str(target, "configurationName");
    let check = |name: &str, field: &str, errors: &mut Vec<FieldError>| {
        if let Err(reason) = qualified_name(name) {
            errors.push(FieldError::invalid(
                join(path, field),
                format!("invalid key name {name:?}: {reason}"),
            ));
        }
    };
    match (revision, configuration) {
        (_, Some(_)) if within_service => errors.push(FieldError::forbidden(
            join(path, "configurationName"),
            "must not set the field(s) (a Service's traffic goes to its own configuration; \
             name a revisionName or set latestRevision: true)",
        )),
        (Some(_), Some(_)) => errors.push(FieldError::invalid(
            path,
            "expected exactly one, got both: revisionName, configurationName",
        )),
        (Some(revision), None) => check(revision, "revisionName", errors),
        (None, Some(configuration)) => check(configuration, "configurationName", errors),
        (None, None) if within_service => {}
        (None, None) => errors.push(FieldError::required(
            path,
            "expected exactly one, got neither: revisionName, configurationName",
        )),
    }
}

/// The target's percent, when set. An out-of-range value is refused but still counts toward
/// the sum, as in Knative, so the sum message shows what was written.
fn percent(target: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    match integer(target.get("percent")) {
        Integer::Unset => None,
        Integer::Value(percent) => {
            if !(0..=100).contains(&percent) {
                errors.push(FieldError::invalid(
                    join(path, "percent"),
                    out_of_bounds(percent, 0, 100),
                ));
            }
            Some(percent)
        }
        Integer::Malformed => {
            errors.push(FieldError::new(
                join(path, "percent"),
                CauseReason::TypeInvalid,
                "percent must be a whole number from 0 to 100",
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests;
