//! Knative defaulting (reference §6.4; knative/serving `*_defaults.go`): revision spec values,
//! the Service's traffic, and the creator/lastModifier annotations.
//!
//! Deliberately absent: Knative's default `readinessProbe` (a TCP probe on the user port) and
//! `enableServiceLinks: false`. wisp runs WebAssembly components with no TCP port to probe and no
//! pod environment to inject links into, so those fields would only advertise behaviour wisp
//! does not have.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::json::{child, is_unset, nonempty_str, object_mut};
use super::{Kind, Operation, Request};

/// `config-defaults` `container-name-template`.
const USER_CONTAINER_NAME: &str = "user-container";

/// Annotation naming who created the object.
pub(crate) const CREATOR: &str = "serving.knative.dev/creator";
/// Annotation naming who last changed the object's spec.
pub(crate) const LAST_MODIFIER: &str = "serving.knative.dev/lastModifier";

/// Applies `kind`'s defaults to `object`.
pub(crate) fn apply(kind: Kind, request: &Request<'_>, object: &mut Value) {
    let Some(root) = object.as_object_mut() else {
        return;
    };
    match kind {
        Kind::Service => {
            configuration_spec(request, root);
            if let Some(spec) = object_mut(root, "spec") {
                traffic(spec, true);
            }
            user_info(request, root);
        }
        Kind::Configuration => {
            configuration_spec(request, root);
            if !has_owners(root) {
                user_info(request, root);
            }
        }
        Kind::Route => {
            if let Some(spec) = object_mut(root, "spec") {
                traffic(spec, false);
            }
            if !has_owners(root) {
                user_info(request, root);
            }
        }
        // A revision's spec is immutable; defaulting it again on update could only produce a
        // change the immutability check then refuses (knative/serving#8128).
        Kind::Revision => {
            if request.operation == Operation::Create
                && let Some(spec) = object_mut(root, "spec")
            {
                revision_spec(request, spec, true);
            }
        }
    }
}

/// Whether the object is owned by another (a Configuration or Route the Service controller
/// made): Knative leaves user info on those to the controller.
pub(crate) fn has_owners(root: &Map<String, Value>) -> bool {
    root.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .is_some_and(|refs| !refs.is_empty())
}

/// `spec.template` defaults, skipped on an update that keeps a user-chosen revision name:
/// defaulting could then change the template without a new name, which validation refuses
/// ("Saw the following changes without a name change").
fn configuration_spec(request: &Request<'_>, root: &mut Map<String, Value>) {
    if request.operation == Operation::Update
        && let Some(old) = request.old
    {
        let name_of = |spec: Option<&Value>| -> Option<String> {
            let template = child(spec?, "template")?;
            nonempty_str(child(template, "metadata")?, "name").map(str::to_owned)
        };
        let new_name = name_of(root.get("spec"));
        if new_name.is_some() && new_name == name_of(old.get("spec")) {
            return;
        }
    }
    let spec = object_mut(root, "spec")
        .and_then(|spec| object_mut(spec, "template"))
        .and_then(|template| object_mut(template, "spec"));
    if let Some(spec) = spec {
        revision_spec(request, spec, false);
    }
}

/// RevisionSpec defaults: timeout, concurrency and, with `inside_lists`, container names and
/// `resources`.
///
/// Defaults inside list items are applied to Revisions only, never to the templates users
/// `kubectl apply`: kubectl's client-side apply sends a three-way JSON merge patch, which
/// replaces a list whole whenever the live list differs from the manifest, so a server default
/// inside `containers` or `traffic` would turn every re-apply of an unchanged manifest into a
/// "configured" write. Readers treat a missing container name as `user-container` and a
/// missing `latestRevision` as "no revisionName" — the same meaning, not stored.
fn revision_spec(request: &Request<'_>, spec: &mut Map<String, Value>, inside_lists: bool) {
    let timeout_unset = spec
        .get("timeoutSeconds")
        .is_none_or(|t| t.is_null() || t.as_f64() == Some(0.0));
    if timeout_unset {
        spec.insert(
            "timeoutSeconds".into(),
            json!(request.defaults.revision_timeout_seconds),
        );
    }
    if is_unset(spec, "containerConcurrency") {
        spec.insert(
            "containerConcurrency".into(),
            json!(request.defaults.container_concurrency),
        );
    }
    if !inside_lists {
        return;
    }
    let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) else {
        return;
    };
    name_containers(containers);
    for container in containers.iter_mut().filter_map(Value::as_object_mut) {
        if is_unset(container, "resources") {
            container.insert("resources".into(), json!({}));
        }
    }
}

/// Names unnamed containers `user-container`, or `user-container-<n>` when there are several
/// or the plain name is taken, never clashing with a name the user chose.
fn name_containers(containers: &mut [Value]) {
    let taken: BTreeSet<String> = containers
        .iter()
        .filter_map(|c| nonempty_str(c, "name"))
        .map(str::to_owned)
        .collect();
    let several = containers.len() > 1;
    let mut next_suffix = 0usize;
    for container in containers.iter_mut().filter_map(Value::as_object_mut) {
        if container
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
        {
            continue;
        }
        let mut name = USER_CONTAINER_NAME.to_owned();
        if several || taken.contains(&name) {
            loop {
                name = format!("{USER_CONTAINER_NAME}-{next_suffix}");
                next_suffix += 1;
                if !taken.contains(&name) {
                    break;
                }
            }
        }
        container.insert("name".into(), Value::String(name));
    }
}

/// Traffic defaults. Inside a Service (which names its own configuration) an empty list means
/// "all traffic to the latest revision". Targets themselves are not filled in (see
/// [`revision_spec`] for why nothing inside a user's lists is defaulted): a target without
/// `latestRevision` follows the latest revision exactly when it names no revision.
fn traffic(spec: &mut Map<String, Value>, within_service: bool) {
    let empty = spec
        .get("traffic")
        .is_none_or(|t| t.is_null() || t.as_array().is_some_and(Vec::is_empty));
    if empty && within_service {
        spec.insert(
            "traffic".into(),
            json!([{"latestRevision": true, "percent": 100}]),
        );
    }
}

/// Stamps creator and lastModifier: both on create; on update lastModifier only when the spec
/// changed. Values the client left out on update are carried over from the stored object, so
/// a full replacement (`kubectl replace`) that never saw them is not refused as changing them.
fn user_info(request: &Request<'_>, root: &mut Map<String, Value>) {
    let old_annotations = request
        .old
        .and_then(|old| child(old, "metadata"))
        .and_then(|meta| child(meta, "annotations"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let spec_changed = match request.old {
        Some(old) => old.get("spec") != root.get("spec"),
        None => true,
    };
    let Some(annotations) =
        object_mut(root, "metadata").and_then(|meta| object_mut(meta, "annotations"))
    else {
        return;
    };
    let user = Value::String(request.user.to_owned());
    match request.operation {
        Operation::Create => {
            if !request.user.is_empty() {
                annotations.insert(CREATOR.into(), user.clone());
                annotations.insert(LAST_MODIFIER.into(), user);
            }
        }
        Operation::Update => {
            for key in [CREATOR, LAST_MODIFIER] {
                if is_unset(annotations, key)
                    && let Some(previous) = old_annotations.get(key)
                {
                    annotations.insert(key.into(), previous.clone());
                }
            }
            if spec_changed && !request.user.is_empty() {
                annotations.insert(LAST_MODIFIER.into(), user);
            }
        }
    }
}

#[cfg(test)]
mod tests;
