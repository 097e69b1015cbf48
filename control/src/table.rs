//! Server-side Tables (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, reference §4):
//! what `kubectl get` prints. kubectl has no client-side printers any more, so without this
//! every kind shows only NAME and AGE; and without `rows[].object` it cannot add NAMESPACE
//! (`-A`) or LABELS (`--show-labels`).
//!
//! The columns are a leading `Name` (as the CRD API server prepends it) and then the
//! registry's; cells are computed like the real server computes them, ages included (a `date`
//! cell is already `5m`, since kubectl prints cells verbatim).

mod age;
mod cells;

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::registry::{CellSource, PrinterColumn, Resource};
use cells::Cell;

/// `ObjectMeta.name`'s documentation, which the real server uses as the Name column's.
const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// `ObjectMeta.creationTimestamp`'s documentation, the real server's Age column description.
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// What `rows[].object` carries (the `includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No `object` in rows.
    None,
    /// A `PartialObjectMetadata` with the object's full metadata (the default).
    #[default]
    Metadata,
    /// The whole object (kubectl asks for it with `--sort-by`).
    Object,
}

/// An `includeObject` value other than `None`, `Metadata`, `Object` or empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid includeObject {0:?}: must be 'Metadata', 'Object', 'None', or empty")]
pub struct InvalidIncludeObject(pub String);

impl IncludeObject {
    /// Parses the query parameter; absent or empty means [`IncludeObject::Metadata`].
    /// Case matters, as on the real server.
    pub fn parse(param: Option<&str>) -> Result<Self, InvalidIncludeObject> {
        match param.unwrap_or_default() {
            "" | "Metadata" => Ok(Self::Metadata),
            "None" => Ok(Self::None),
            "Object" => Ok(Self::Object),
            other => Err(InvalidIncludeObject(other.to_owned())),
        }
    }
}

/// A `meta.k8s.io/v1` Table of `objects` (full API objects with apiVersion/kind), with ages
/// computed at the current time; see [`table_at`].
pub fn table(
    resource: &Resource,
    objects: &[Value],
    include: IncludeObject,
    resource_version: Option<&str>,
    with_column_definitions: bool,
) -> Value {
    table_at(
        resource,
        objects,
        include,
        resource_version,
        with_column_definitions,
        SystemTime::now(),
    )
}

/// A `meta.k8s.io/v1` Table of `objects`, with ages computed as of `now`.
///
/// `resource_version` becomes `metadata.resourceVersion` (the list's, or the event's object's
/// for a watch). `with_column_definitions` is false for watch events after the first: the real
/// server then sends `columnDefinitions: null` and kubectl keeps the first event's.
pub fn table_at(
    resource: &Resource,
    objects: &[Value],
    include: IncludeObject,
    resource_version: Option<&str>,
    with_column_definitions: bool,
    now: SystemTime,
) -> Value {
    let columns: Vec<Cell> = resource.columns.iter().map(Cell::new).collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| row(object, &columns, include, now))
        .collect();
    let mut metadata = Map::new();
    if let Some(rv) = resource_version {
        metadata.insert("resourceVersion".to_owned(), Value::from(rv));
    }
    let definitions = if with_column_definitions {
        column_definitions(resource)
    } else {
        Value::Null
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

fn row(object: &Value, columns: &[Cell], include: IncludeObject, now: SystemTime) -> Value {
    let name = object
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or_else(|| Value::from(""));
    let mut cells = Vec::with_capacity(columns.len() + 1);
    cells.push(name);
    cells.extend(columns.iter().map(|c| c.value(object, now)));
    let mut row = Map::new();
    row.insert("cells".to_owned(), Value::Array(cells));
    let embedded = match include {
        IncludeObject::None => None,
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })),
        IncludeObject::Object => Some(object.clone()),
    };
    if let Some(embedded) = embedded {
        row.insert("object".to_owned(), embedded);
    }
    Value::Object(row)
}

fn column_definitions(resource: &Resource) -> Value {
    let name = json!({
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": NAME_DESCRIPTION,
        "priority": 0,
    });
    let rest = resource.columns.iter().map(|c| {
        json!({
            "name": c.name,
            "type": c.type_,
            "format": "",
            "description": description(resource, c),
            "priority": c.priority,
        })
    });
    Value::Array(std::iter::once(name).chain(rest).collect())
}

/// What the real server describes a column with: the built-in printers' texts for core
/// kinds, the CRD convertor's generated text for Knative's undocumented columns.
fn description(resource: &Resource, column: &PrinterColumn) -> String {
    let builtin = match (resource.plural, column.name) {
        (_, "Age") => AGE_DESCRIPTION,
        ("namespaces", "Status") => "The status of the namespace",
        ("pods", "Ready") => "The aggregate readiness state of this pod for accepting traffic.",
        ("pods", "Status") => "The aggregate status of the containers in this pod.",
        ("pods", "Restarts") => {
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."
        }
        ("nodes", "Status") => "The status of the node",
        ("nodes", "Roles") => "The roles of the node",
        ("nodes", "Version") => "Kubelet Version reported by the node.",
        ("configmaps", "Data") => {
            "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."
        }
        ("secrets", "Type") => "The type of the secret",
        ("secrets", "Data") => "The number of keys in the secret's data",
        ("events", "Last Seen") => {
            "The time at which the most recent occurrence of this event was recorded."
        }
        ("events", "Type") => {
            "Type of this event (Normal, Warning), new types could be added in the future"
        }
        ("events", "Reason") => {
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."
        }
        ("events", "Object") => "The object that this event is about.",
        ("events", "Message") => "A human-readable description of the status of this operation.",
        ("leases", "Holder") => {
            "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field."
        }
        _ => "",
    };
    match column.source {
        CellSource::JsonPath(path) if builtin.is_empty() => {
            format!("Custom resource definition column (in JSONPath format): {path}")
        }
        _ => builtin.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{CORE_GROUP, SERVING_GROUP, lookup, resources};

    fn now() -> SystemTime {
        age::parse_time("2024-05-01T10:00:00Z").expect("now")
    }

    fn resource(group: &str, plural: &str) -> &'static Resource {
        lookup(group, "v1", plural).expect("served")
    }

    fn build(group: &str, plural: &str, objects: &[Value]) -> Value {
        table_at(
            resource(group, plural),
            objects,
            IncludeObject::Metadata,
            Some("42"),
            true,
            now(),
        )
    }

    fn headers(table: &Value) -> Vec<String> {
        table["columnDefinitions"]
            .as_array()
            .expect("definitions")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or_default().to_uppercase())
            .collect()
    }

    fn cells(table: &Value, row: usize) -> Value {
        table["rows"][row]["cells"].clone()
    }

    fn ksvc(name: &str, ready: &str, reason: Option<&str>) -> Value {
        let mut condition = json!({"type": "Ready", "status": ready});
        if let Some(reason) = reason {
            condition["reason"] = json!(reason);
        }
        json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": "u-1",
                         "resourceVersion": "41", "labels": {"app": name},
                         "creationTimestamp": "2024-05-01T09:00:00Z"},
            "spec": {"template": {"spec": {"containers": [{"image": "hello"}]}}},
            "status": {
                "url": format!("http://{name}.default.example.com"),
                "latestCreatedRevisionName": format!("{name}-00002"),
                "latestReadyRevisionName": format!("{name}-00001"),
                "conditions": [
                    {"type": "ConfigurationsReady", "status": "True"},
                    condition,
                    {"type": "RoutesReady", "status": "True"},
                ],
            },
        })
    }

    #[test]
    fn knative_service_table() {
        let table = build(
            SERVING_GROUP,
            "services",
            &[
                ksvc("hello", "True", None),
                ksvc("broken", "False", Some("RevisionFailed")),
            ],
        );
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(table["metadata"], json!({"resourceVersion": "42"}));
        // Reference §4: kubectl prints NAME URL LATESTCREATED LATESTREADY READY REASON, no AGE.
        assert_eq!(
            headers(&table),
            [
                "NAME",
                "URL",
                "LATESTCREATED",
                "LATESTREADY",
                "READY",
                "REASON"
            ]
        );
        assert_eq!(
            cells(&table, 0),
            json!([
                "hello",
                "http://hello.default.example.com",
                "hello-00002",
                "hello-00001",
                "True",
                null
            ])
        );
        assert_eq!(cells(&table, 1)[4], "False");
        assert_eq!(cells(&table, 1)[5], "RevisionFailed");
    }

    #[test]
    fn column_definitions_have_the_real_shape() {
        let table = build(SERVING_GROUP, "services", &[]);
        let definitions = &table["columnDefinitions"];
        assert_eq!(
            definitions[0],
            json!({"name": "Name", "type": "string", "format": "name",
                   "description": NAME_DESCRIPTION, "priority": 0})
        );
        assert_eq!(
            definitions[1],
            json!({"name": "URL", "type": "string", "format": "",
                   "description": "Custom resource definition column (in JSONPath format): .status.url",
                   "priority": 0})
        );
        assert_eq!(table["rows"], json!([]));
        for r in resources() {
            let table = table_at(r, &[], IncludeObject::Metadata, None, true, now());
            let definitions = table["columnDefinitions"].as_array().expect("array");
            assert_eq!(definitions.len(), r.columns.len() + 1, "{}", r.plural);
            for d in definitions {
                assert!(
                    d["description"].as_str().is_some_and(|s| !s.is_empty()),
                    "{d}"
                );
                assert!(d["type"].is_string() && d["format"].is_string(), "{d}");
                assert!(d["priority"].is_u64(), "{d}");
            }
            assert_eq!(table["metadata"], json!({}));
        }
    }

    #[test]
    fn knative_configuration_and_route_tables() {
        let mut config = ksvc("hello", "Unknown", Some("Deploying"));
        config["kind"] = json!("Configuration");
        let table = build(SERVING_GROUP, "configurations", &[config]);
        assert_eq!(
            headers(&table),
            ["NAME", "LATESTCREATED", "LATESTREADY", "READY", "REASON"]
        );
        assert_eq!(
            cells(&table, 0),
            json!([
                "hello",
                "hello-00002",
                "hello-00001",
                "Unknown",
                "Deploying"
            ])
        );

        let route = json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Route",
            "metadata": {"name": "hello", "namespace": "default"},
        });
        let table = build(SERVING_GROUP, "routes", &[route]);
        assert_eq!(headers(&table), ["NAME", "URL", "READY", "REASON"]);
        // No status at all: every cell but the name is null (kubectl prints blanks).
        assert_eq!(cells(&table, 0), json!(["hello", null, null, null]));
    }

    #[test]
    fn knative_revision_table() {
        let revision = json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": "hello-00001", "namespace": "default", "labels": {
                "serving.knative.dev/configuration": "hello",
                "serving.knative.dev/configurationGeneration": "1",
                "serving.knative.dev/service": "hello",
            }},
            "status": {"actualReplicas": 1, "desiredReplicas": 2, "conditions": [
                {"type": "Active", "status": "True"},
                {"type": "Ready", "status": "True"},
            ]},
        });
        let table = build(SERVING_GROUP, "revisions", &[revision]);
        assert_eq!(
            headers(&table),
            [
                "NAME",
                "CONFIG NAME",
                "GENERATION",
                "READY",
                "REASON",
                "ACTUAL REPLICAS",
                "DESIRED REPLICAS"
            ]
        );
        assert_eq!(
            cells(&table, 0),
            json!(["hello-00001", "hello", "1", "True", null, 1, 2])
        );
        // Integer columns stay numbers.
        assert!(cells(&table, 0)[5].is_u64());

        let bare = json!({"metadata": {"name": "r"}});
        let table = build(SERVING_GROUP, "revisions", &[bare]);
        assert_eq!(
            cells(&table, 0),
            json!(["r", null, null, null, null, null, null])
        );
    }

    #[test]
    fn namespace_table() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "default", "creationTimestamp": "2024-04-29T09:00:00Z"},
                        "status": {"phase": "Active"}});
        let table = build(CORE_GROUP, "namespaces", &[ns]);
        assert_eq!(headers(&table), ["NAME", "STATUS", "AGE"]);
        assert_eq!(cells(&table, 0), json!(["default", "Active", "2d1h"]));
        assert_eq!(
            table["columnDefinitions"][2]["description"],
            AGE_DESCRIPTION
        );
    }

    #[test]
    fn pod_table() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "hello-00001-abc", "namespace": "default",
                         "creationTimestamp": "2024-05-01T09:58:30Z"},
            "spec": {"nodeName": "n2",
                     "containers": [{"name": "user-container"}, {"name": "queue-proxy"}]},
            "status": {"phase": "Running", "podIP": "127.0.0.2", "containerStatuses": [
                {"name": "user-container", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "queue-proxy", "ready": true, "restartCount": 0, "state": {"running": {}}},
            ]},
        });
        let table = build(CORE_GROUP, "pods", &[pod]);
        assert_eq!(
            headers(&table),
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
        );
        assert_eq!(
            cells(&table, 0),
            json!([
                "hello-00001-abc",
                "2/2",
                "Running",
                "0",
                "90s",
                "127.0.0.2",
                "n2"
            ])
        );
    }

    #[test]
    fn node_table() {
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "wisp", "creationTimestamp": "2024-04-01T10:00:00Z",
                         "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0-wisp"}},
        });
        let table = build(CORE_GROUP, "nodes", &[node]);
        assert_eq!(
            headers(&table),
            ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        );
        assert_eq!(
            cells(&table, 0),
            json!(["wisp", "Ready", "control-plane", "30d", "v1.32.0-wisp"])
        );
    }

    #[test]
    fn configmap_and_event_tables() {
        let cm = json!({"metadata": {"name": "config-domain",
                                     "creationTimestamp": "2024-05-01T09:59:00Z"},
                        "data": {"example.com": ""}});
        let table = build(CORE_GROUP, "configmaps", &[cm]);
        assert_eq!(headers(&table), ["NAME", "DATA", "AGE"]);
        assert_eq!(cells(&table, 0), json!(["config-domain", 1, "60s"]));

        let event = json!({
            "metadata": {"name": "hello.17c"},
            "involvedObject": {"kind": "Revision", "name": "hello-00001"},
            "lastTimestamp": "2024-05-01T09:57:00Z",
            "type": "Warning", "reason": "Failed", "message": "image pull failed",
        });
        let table = build(CORE_GROUP, "events", &[event]);
        assert_eq!(
            headers(&table),
            ["NAME", "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        );
        assert_eq!(
            cells(&table, 0),
            json!([
                "hello.17c",
                "3m",
                "Warning",
                "Failed",
                "revision/hello-00001",
                "image pull failed"
            ])
        );
    }

    #[test]
    fn include_object_modes() {
        let object = ksvc("hello", "True", None);
        let r = resource(SERVING_GROUP, "services");
        let objects = [object.clone()];

        let table = table_at(r, &objects, IncludeObject::Metadata, None, true, now());
        assert_eq!(
            table["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": object["metadata"].clone()})
        );

        let table = table_at(r, &objects, IncludeObject::Object, None, true, now());
        assert_eq!(table["rows"][0]["object"], object);

        let table = table_at(r, &objects, IncludeObject::None, None, true, now());
        assert_eq!(table["rows"][0].get("object"), None);
        assert_eq!(cells(&table, 0)[0], "hello");
    }

    #[test]
    fn watch_events_after_the_first_omit_column_definitions() {
        let r = resource(SERVING_GROUP, "services");
        let objects = [ksvc("hello", "True", None)];
        let later = table_at(
            r,
            &objects,
            IncludeObject::Metadata,
            Some("43"),
            false,
            now(),
        );
        assert_eq!(later["columnDefinitions"], Value::Null);
        assert_eq!(later["metadata"]["resourceVersion"], "43");
        assert_eq!(later["rows"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn object_without_metadata_still_makes_a_row() {
        let table = build(SERVING_GROUP, "services", &[json!({})]);
        assert_eq!(cells(&table, 0)[0], "");
        assert_eq!(table["rows"][0]["object"]["metadata"], json!({}));
    }

    #[test]
    fn table_uses_the_current_time() {
        let r = resource(CORE_GROUP, "namespaces");
        let created = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let ns = json!({"metadata": {"name": "new", "creationTimestamp": created}});
        let table = table(r, &[ns], IncludeObject::Metadata, None, true);
        let age = table["rows"][0]["cells"][2]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(["0s", "1s", "2s"].contains(&age.as_str()), "{age}");
    }

    #[test]
    fn include_object_parses_like_the_real_server() {
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("")), Ok(IncludeObject::Metadata));
        assert_eq!(
            IncludeObject::parse(Some("Metadata")),
            Ok(IncludeObject::Metadata)
        );
        assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
        assert_eq!(
            IncludeObject::parse(Some("Object")),
            Ok(IncludeObject::Object)
        );
        let error = IncludeObject::parse(Some("object")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid includeObject \"object\": must be 'Metadata', 'Object', 'None', or empty"
        );
    }
}
