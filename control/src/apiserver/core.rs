//! What the real API server does for its built-in kinds that Knative admission does not:
//! a namespace starts `Active`, and object names follow the kind's rule (a namespace name is a
//! DNS-1123 label, since it becomes part of host names; other built-in objects, Leases included,
//! take DNS-1123 subdomains).

use serde_json::{Value, json};

use crate::field_error::FieldError;
use crate::registry::Resource;

use super::metadata::meta_str;

/// Longest DNS-1123 subdomain.
const MAX_SUBDOMAIN: usize = 253;

/// Defaults of a new core object.
pub fn default_new(resource: &Resource, object: &mut Value) {
    if resource.group.is_empty()
        && resource.plural == "namespaces"
        && let Some(fields) = object.as_object_mut()
    {
        fields.insert("status".into(), json!({"phase": "Active"}));
    }
}

/// The API server's own name rule, checked before any admission: a namespace name is a
/// DNS-1123 label, every other object's (Knative's custom resources included — Knative's webhook
/// then asks for a DNS-1035 label on top) a DNS-1123 subdomain. Worded as the real server's
/// validation (`IsDNS1123Label`, `IsDNS1123Subdomain`), one error per broken rule.
pub fn validate_name(resource: &Resource, object: &Value) -> Vec<FieldError> {
    let name = meta_str(object, "name").unwrap_or("");
    let problems = if resource.group.is_empty() && resource.plural == "namespaces" {
        label_problems(name)
    } else {
        subdomain_problems(name)
    };
    problems
        .into_iter()
        .map(|problem| {
            FieldError::invalid(
                "metadata.name",
                format!("Invalid value: {name:?}: {problem}"),
            )
        })
        .collect()
}

/// Longest DNS-1123 label.
const MAX_LABEL: usize = 63;

/// `IsDNS1123Label`'s messages for `name`.
fn label_problems(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name.len() > MAX_LABEL {
        problems.push(format!("must be no more than {MAX_LABEL} characters"));
    }
    if !is_label(name) {
        problems.push(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
             '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or \
             '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                .to_owned(),
        );
    }
    problems
}

/// `IsDNS1123Subdomain`'s messages for `name` (its regex bounds no label's length).
fn subdomain_problems(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name.len() > MAX_SUBDOMAIN {
        problems.push(format!("must be no more than {MAX_SUBDOMAIN} characters"));
    }
    if !name.split('.').all(is_label) {
        problems.push(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character (e.g. \
             'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                .to_owned(),
        );
    }
    problems
}

/// Whether `text` matches `[a-z0-9]([-a-z0-9]*[a-z0-9])?` (any length).
fn is_label(text: &str) -> bool {
    let alphanumeric = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(&first), Some(&last)) => {
            alphanumeric(first)
                && alphanumeric(last)
                && text.bytes().all(|c| alphanumeric(c) || c == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lookup;

    #[test]
    fn namespaces_start_active() {
        let namespaces = lookup("", "v1", "namespaces").expect("registered");
        let mut object = json!({"metadata": {"name": "a"}});
        default_new(namespaces, &mut object);
        assert_eq!(object["status"]["phase"], "Active");
    }

    #[test]
    fn names_follow_the_kind_rule() {
        let namespaces = lookup("", "v1", "namespaces").expect("registered");
        let configmaps = lookup("", "v1", "configmaps").expect("registered");
        let named = |name: &str| json!({"metadata": {"name": name}});
        assert!(validate_name(namespaces, &named("team-a")).is_empty());
        assert_eq!(
            validate_name(namespaces, &named("a.b"))[0].field,
            "metadata.name"
        );
        assert!(validate_name(configmaps, &named("config-autoscaler.v1")).is_empty());
        assert!(!validate_name(configmaps, &named("Bad_Name")).is_empty());
        let services = lookup("serving.knative.dev", "v1", "services").expect("registered");
        assert_eq!(
            validate_name(services, &named("Hello"))[0].message,
            "Invalid value: \"Hello\": a lowercase RFC 1123 subdomain must consist of lower case \
             alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
             character (e.g. 'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        // No label length inside a subdomain (Knative's webhook refuses 64 characters itself).
        assert!(validate_name(services, &named(&"a".repeat(64))).is_empty());
        assert_eq!(validate_name(configmaps, &named(&"a".repeat(254))).len(), 1);
        assert_eq!(validate_name(namespaces, &named(&"A".repeat(64))).len(), 2);
        let leases = lookup("coordination.k8s.io", "v1", "leases").expect("registered");
        assert!(validate_name(leases, &named("wisp-controller")).is_empty());
        assert!(!validate_name(leases, &named("Bad_Name")).is_empty());
    }
}
