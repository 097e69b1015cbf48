//! What the real API server does for its built-in kinds that Knative admission does not:
//! a namespace starts `Active`, and object names follow the kind's rule (a namespace name is a
//! DNS-1123 label, since it becomes part of host names; other built-in objects, Leases included,
//! take DNS-1123 subdomains).

use serde_json::{Value, json};
use wisp_api::names::validate_dns1123_label;

use crate::field_error::FieldError;
use crate::registry::{Resource, SERVING_GROUP};

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

/// The built-in kinds' name rule; nothing for Knative kinds (admission checks those).
pub fn validate_name(resource: &Resource, object: &Value) -> Vec<FieldError> {
    if resource.group == SERVING_GROUP {
        return Vec::new();
    }
    let name = meta_str(object, "name").unwrap_or("");
    let problem = if resource.plural == "namespaces" {
        validate_dns1123_label(name).err().map(|error| {
            format!("Invalid value: {name:?}: a namespace name must be a DNS-1123 label: {error}")
        })
    } else {
        subdomain_problem(name).map(|why| {
            format!("Invalid value: {name:?}: a name must be a DNS-1123 subdomain: {why}")
        })
    };
    problem
        .map(|message| vec![FieldError::invalid("metadata.name", message)])
        .unwrap_or_default()
}

/// Why `name` is not a DNS-1123 subdomain (dot-separated labels, ≤ 253 characters).
fn subdomain_problem(name: &str) -> Option<String> {
    if name.len() > MAX_SUBDOMAIN {
        return Some(format!(
            "it is {} characters long; the most is {MAX_SUBDOMAIN}",
            name.len()
        ));
    }
    name.split('.')
        .find_map(|label| validate_dns1123_label(label).err())
        .map(|error| error.to_string())
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
        assert!(validate_name(services, &named("Bad_Name")).is_empty());
        let leases = lookup("coordination.k8s.io", "v1", "leases").expect("registered");
        assert!(validate_name(leases, &named("wisp-controller")).is_empty());
        assert!(!validate_name(leases, &named("Bad_Name")).is_empty());
    }
}
