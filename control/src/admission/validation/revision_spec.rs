//! A RevisionSpec (`spec.template.spec` of a Service or Configuration, `spec` of a Revision):
//! limits, the service account, and the single component wisp runs.

use serde_json::Value;

use super::container;
use super::rules::{DNS1123_SUBDOMAIN_RULE, Integer, integer, is_dns1123_subdomain, out_of_bounds};
use crate::admission::ClusterDefaults;
use crate::admission::json::{array, index, join, nonempty_str};
use crate::field_error::{CauseReason, FieldError};

/// Validates the RevisionSpec at `base`.
pub(crate) fn validate(
    spec: &Value,
    base: &str,
    defaults: &ClusterDefaults,
    errors: &mut Vec<FieldError>,
) {
    containers(spec, base, errors);
    bounded(
        spec,
        base,
        "timeoutSeconds",
        defaults.max_revision_timeout_seconds,
        errors,
    );
    bounded(
        spec,
        base,
        "containerConcurrency",
        defaults.container_concurrency_max_limit,
        errors,
    );
    if let Some(account) = nonempty_str(spec, "serviceAccountName")
        && !is_dns1123_subdomain(account)
    {
        // The Knative wording (`invalid value: <name>: <field>`) comes last, where Knative's
        // conformance test looks for it.
        errors.push(FieldError::invalid(
            join(base, "serviceAccountName"),
            format!("{DNS1123_SUBDOMAIN_RULE}; invalid value: {account}"),
        ));
    }
}

fn containers(spec: &Value, base: &str, errors: &mut Vec<FieldError>) {
    let field = join(base, "containers");
    let containers = array(spec, "containers");
    match containers.len() {
        0 => errors.push(FieldError::required(
            field.clone(),
            "missing field(s) (one container naming the component to run is required)",
        )),
        1 => {}
        n => errors.push(FieldError::forbidden(
            field.clone(),
            format!(
                "wisp runs exactly one component per revision, but found {n} containers; \
                 keep one container"
            ),
        )),
    }
    let ports: usize = containers.iter().map(|c| array(c, "ports").len()).sum();
    if ports > 1 {
        errors.push(FieldError::invalid(
            format!("{field}[*].ports"),
            "more than one container port is set; only a single port is allowed across all \
             containers",
        ));
    }
    for (i, each) in containers.iter().enumerate() {
        container::validate(each, &index(&field, i), errors);
    }
}

/// An integer field in `0..=max`.
fn bounded(spec: &Value, base: &str, key: &str, max: i64, errors: &mut Vec<FieldError>) {
    let field = join(base, key);
    match integer(spec.get(key)) {
        Integer::Unset => {}
        Integer::Value(value) if !(0..=max).contains(&value) => {
            errors.push(FieldError::invalid(field, out_of_bounds(value, 0, max)));
        }
        Integer::Value(_) => {}
        Integer::Malformed => errors.push(FieldError::new(
            field,
            CauseReason::TypeInvalid,
            format!("{key} must be a whole number from 0 to {max}"),
        )),
    }
}
