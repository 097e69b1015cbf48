//! One Table cell from one object: a JSONPath result converted to the column's type the way
//! the CRD API server's table convertor does, or a value computed like the built-in printers.

use std::time::SystemTime;

use serde_json::{Map, Number, Value};

use super::age;
use crate::jsonpath::JsonPath;
use crate::registry::{CellSource, Derived, PrinterColumn};

/// A column ready to be evaluated on many objects (its JSONPath parsed once per Table).
pub(super) enum Cell {
    /// `None` when the registry path does not parse; a unit test keeps that from happening,
    /// and the column then shows blanks rather than failing the whole list.
    Path(Option<JsonPath>, &'static str),
    Derived(Derived),
}

impl Cell {
    pub(super) fn new(column: &PrinterColumn) -> Self {
        match column.source {
            CellSource::JsonPath(path) => Self::Path(JsonPath::parse(path).ok(), column.type_),
            CellSource::Derived(derived) => Self::Derived(derived),
        }
    }

    pub(super) fn value(&self, object: &Value, now: SystemTime) -> Value {
        match self {
            Self::Path(path, type_) => {
                let found = path.as_ref().and_then(|p| p.first(object));
                typed(type_, found, now)
            }
            Self::Derived(derived) => computed(*derived, object, now),
        }
    }
}

/// The cell for a JSONPath result: missing or `null` ⇒ `null`; otherwise per column type
/// (apiextensions `cellForJSONValue`), with `string` columns showing any scalar as text and
/// objects/arrays as compact JSON, like client-go's JSONPath printer.
fn typed(type_: &str, value: Option<&Value>, now: SystemTime) -> Value {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match (type_, value) {
        ("string", Value::String(_)) => value.clone(),
        ("string", Value::Number(n)) => Value::String(n.to_string()),
        ("string", Value::Bool(b)) => Value::String(b.to_string()),
        ("string", Value::Array(_) | Value::Object(_)) => Value::String(value.to_string()),
        ("integer", Value::Number(n)) => Value::Number(truncate(n)),
        ("number", Value::Number(n)) => n
            .as_f64()
            .and_then(Number::from_f64)
            .map_or(Value::Null, Value::Number),
        ("boolean", Value::Bool(_)) => value.clone(),
        ("date", Value::String(s)) => Value::String(age::age(s, now)),
        _ => Value::Null,
    }
}

/// An integer column's number: fractions are dropped, as Go's `int64(float64)` does.
fn truncate(n: &Number) -> Number {
    if n.is_i64() || n.is_u64() {
        return n.clone();
    }
    // Saturating, where Go's conversion of an out-of-range float is undefined.
    let whole = n.as_f64().map_or(0, |f| f.trunc() as i64);
    Number::from(whole)
}

/// The built-in printers' computed cells (kubernetes `pkg/printers/internalversion`).
fn computed(derived: Derived, object: &Value, now: SystemTime) -> Value {
    match derived {
        Derived::PodReady => Value::String(pod_ready(object)),
        Derived::PodRestarts => Value::String(pod_restarts(object, now)),
        Derived::NodeStatus => Value::String(node_status(object)),
        Derived::NodeRoles => Value::String(node_roles(object)),
        Derived::ConfigMapData => {
            let keys = |field: &str| {
                object
                    .get(field)
                    .and_then(Value::as_object)
                    .map_or(0, Map::len)
            };
            Value::from(keys("data") + keys("binaryData"))
        }
        Derived::EventObject => {
            let involved = |field: &str| {
                object
                    .pointer(&format!("/involvedObject/{field}"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            Value::String(format!(
                "{}/{}",
                involved("kind").to_lowercase(),
                involved("name")
            ))
        }
        // The lease printer shows a free lease's holder as an empty cell, not `<none>`.
        Derived::LeaseHolder => Value::String(
            object
                .pointer("/spec/holderIdentity")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        ),
    }
}

fn array<'a>(object: &'a Value, pointer: &str) -> &'a [Value] {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `<ready>/<total>`: containers that are ready *and* running, out of the spec's containers.
fn pod_ready(pod: &Value) -> String {
    let total = array(pod, "/spec/containers").len();
    let ready = array(pod, "/status/containerStatuses")
        .iter()
        .filter(|s| {
            s.get("ready") == Some(&Value::Bool(true)) && s.pointer("/state/running").is_some()
        })
        .count();
    format!("{ready}/{total}")
}

/// The restart total, with how long ago the latest restart was (`3 (5m ago)`) when known.
fn pod_restarts(pod: &Value, now: SystemTime) -> String {
    let statuses = array(pod, "/status/containerStatuses");
    let restarts: i64 = statuses
        .iter()
        .filter_map(|s| s.get("restartCount").and_then(Value::as_i64))
        .sum();
    let last = statuses
        .iter()
        .filter_map(|s| s.pointer("/lastState/terminated/finishedAt"))
        .filter_map(Value::as_str)
        .filter_map(age::parse_time)
        .max();
    match last {
        Some(last) if restarts != 0 => format!("{restarts} ({} ago)", age::since(last, now)),
        _ => restarts.to_string(),
    }
}

/// `Ready`/`NotReady` from the Ready condition (`Unknown` without one), then
/// `,SchedulingDisabled` for a cordoned node.
fn node_status(node: &Value) -> String {
    let ready = array(node, "/status/conditions")
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"));
    let mut status = match ready {
        Some(c) if c.get("status").and_then(Value::as_str) == Some("True") => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }
    .to_owned();
    if node.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

/// The `node-role.kubernetes.io/<role>` suffixes and any `kubernetes.io/role` value, sorted
/// and comma-joined, or `<none>`.
fn node_roles(node: &Value) -> String {
    const ROLE_PREFIX: &str = "node-role.kubernetes.io/";
    const ROLE_LABEL: &str = "kubernetes.io/role";
    let mut roles: Vec<&str> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| match key.strip_prefix(ROLE_PREFIX) {
            Some(role) => Some(role),
            None if key == ROLE_LABEL => value.as_str(),
            None => None,
        })
        .filter(|role| !role.is_empty())
        .collect();
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() {
        "<none>".to_owned()
    } else {
        roles.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> SystemTime {
        age::parse_time("2024-05-01T10:00:00Z").expect("now")
    }

    #[test]
    fn typed_cells_follow_the_crd_convertor() {
        let n = now();
        let cell = |t: &str, v: Value| typed(t, Some(&v), n);
        assert_eq!(cell("string", json!("x")), json!("x"));
        assert_eq!(cell("string", json!(3)), json!("3"));
        assert_eq!(cell("string", json!(1.5)), json!("1.5"));
        assert_eq!(cell("string", json!(true)), json!("true"));
        assert_eq!(cell("string", json!({"a": 1})), json!("{\"a\":1}"));
        assert_eq!(cell("string", json!(null)), Value::Null);
        assert_eq!(cell("integer", json!(3)), json!(3));
        assert_eq!(cell("integer", json!(3.9)), json!(3));
        assert_eq!(cell("integer", json!("3")), Value::Null);
        assert_eq!(cell("number", json!(2)), json!(2.0));
        assert_eq!(cell("boolean", json!(false)), json!(false));
        assert_eq!(cell("boolean", json!("false")), Value::Null);
        assert_eq!(cell("date", json!("2024-05-01T09:00:00Z")), json!("60m"));
        assert_eq!(cell("date", json!("today")), json!("<invalid>"));
        assert_eq!(cell("date", json!(5)), Value::Null);
        assert_eq!(cell("widget", json!("x")), Value::Null);
        assert_eq!(typed("string", None, n), Value::Null);
    }

    #[test]
    fn pod_cells() {
        let pod = json!({
            "spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
            "status": {"containerStatuses": [
                {"name": "a", "ready": true, "state": {"running": {}}, "restartCount": 2,
                 "lastState": {"terminated": {"finishedAt": "2024-05-01T09:55:00Z"}}},
                // Ready but not running (terminating) does not count.
                {"name": "b", "ready": true, "state": {"terminated": {}}, "restartCount": 1,
                 "lastState": {"terminated": {"finishedAt": "2024-05-01T08:00:00Z"}}},
                {"name": "c", "ready": false, "state": {"running": {}}},
            ]},
        });
        assert_eq!(computed(Derived::PodReady, &pod, now()), json!("1/3"));
        assert_eq!(
            computed(Derived::PodRestarts, &pod, now()),
            json!("3 (5m ago)")
        );
        let fresh = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(computed(Derived::PodReady, &fresh, now()), json!("0/1"));
        assert_eq!(computed(Derived::PodRestarts, &fresh, now()), json!("0"));
        assert_eq!(computed(Derived::PodReady, &json!({}), now()), json!("0/0"));
    }

    #[test]
    fn node_cells() {
        let node = |conditions: Value, labels: Value, unschedulable: bool| {
            json!({"metadata": {"labels": labels}, "spec": {"unschedulable": unschedulable},
                   "status": {"conditions": conditions}})
        };
        let ready = json!([{"type": "MemoryPressure", "status": "False"},
                           {"type": "Ready", "status": "True"}]);
        let status = |n: &Value| computed(Derived::NodeStatus, n, now());
        let roles = |n: &Value| computed(Derived::NodeRoles, n, now());
        assert_eq!(
            status(&node(ready.clone(), json!({}), false)),
            json!("Ready")
        );
        assert_eq!(
            status(&node(ready, json!({}), true)),
            json!("Ready,SchedulingDisabled")
        );
        let not_ready = json!([{"type": "Ready", "status": "Unknown"}]);
        assert_eq!(
            status(&node(not_ready, json!({}), false)),
            json!("NotReady")
        );
        assert_eq!(status(&node(json!([]), json!({}), false)), json!("Unknown"));

        let labels = json!({
            "node-role.kubernetes.io/worker": "",
            "node-role.kubernetes.io/control-plane": "",
            "node-role.kubernetes.io/": "",
            "kubernetes.io/role": "worker",
            "kubernetes.io/hostname": "n1",
        });
        assert_eq!(
            roles(&node(json!([]), labels, false)),
            json!("control-plane,worker")
        );
        assert_eq!(roles(&node(json!([]), json!({}), false)), json!("<none>"));
    }

    #[test]
    fn configmap_and_event_cells() {
        let cm = json!({"data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(computed(Derived::ConfigMapData, &cm, now()), json!(3));
        assert_eq!(
            computed(Derived::ConfigMapData, &json!({}), now()),
            json!(0)
        );
        let event = json!({"involvedObject": {"kind": "Service", "name": "hello"}});
        assert_eq!(
            computed(Derived::EventObject, &event, now()),
            json!("service/hello")
        );
    }

    #[test]
    fn lease_holder_cells() {
        let held = json!({"spec": {"holderIdentity": "a_1x2y", "leaseDurationSeconds": 15}});
        assert_eq!(
            computed(Derived::LeaseHolder, &held, now()),
            json!("a_1x2y")
        );
        let free = json!({"spec": {"leaseDurationSeconds": 1}});
        assert_eq!(computed(Derived::LeaseHolder, &free, now()), json!(""));
    }
}
