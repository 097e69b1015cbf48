//! OpenAPI v3 documents: the `/openapi/v3` root and one document per group/version, built once
//! from the [`registry`](crate::registry) and the [`schema`](crate::schema)s.
//!
//! kubectl needs them before it writes anything (reference §1.4): `apply`, `create -f` and
//! `replace` look in the group/version document for a path whose `patch` operation carries the
//! object's `x-kubernetes-group-version-kind` and lists a `fieldValidation` parameter; found, they
//! leave validation to the server, otherwise they fail with "failed to download openapi".
//! `kubectl explain` finds a kind's schema in `components.schemas` by the same GVK extension and
//! follows `$ref`/`allOf` (metadata is a `$ref` to ObjectMeta, as on the real server). kubectl
//! caches a document by the `?hash=` of its URL in the root, so the hash is a digest of the body.
//! Operations follow each resource's verbs; read-only kinds (pods, nodes) have no writes.

use std::sync::LazyLock;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::registry::{self, Resource};
use crate::schema;

/// Prefix of every `components.schemas` reference.
const REF: &str = "#/components/schemas/";
/// The apimachinery package of the shared meta/v1 schemas.
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// One group/version's OpenAPI document, serialized, with the hash its root URL carries.
#[derive(Debug, Clone)]
pub struct GroupVersionDoc {
    /// The document as JSON.
    pub body: Bytes,
    /// Hex FNV-1a 64 digest of `body`: changes whenever the document does.
    pub hash: String,
}

/// Every served group/version: its path under `/openapi/v3/` and its document.
static DOCS: LazyLock<Vec<(String, GroupVersionDoc)>> = LazyLock::new(|| {
    group_versions()
        .into_iter()
        .map(|(group, version)| {
            let body = Bytes::from(serialize(&document(group, version)));
            let hash = format!("{:016X}", fnv1a64(&body));
            (gv_path(group, version), GroupVersionDoc { body, hash })
        })
        .collect()
});

static ROOT: LazyLock<Value> = LazyLock::new(|| {
    let paths: Map<String, Value> = DOCS
        .iter()
        .map(|(path, doc)| {
            let url = format!("/openapi/v3/{path}?hash={}", doc.hash);
            (path.clone(), json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
});

/// `GET /openapi/v3`: {"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"},
/// "apis/serving.knative.dev/v1": {…}}} — one entry per group/version in the registry.
pub fn root() -> &'static Value {
    &ROOT
}

/// `GET /openapi/v3/<api/v1 | apis/g/v>`: the OpenAPI 3.0 document of one group/version, or None.
///
/// `path` is the part after `/openapi/v3/`, like "apis/serving.knative.dev/v1" or "api/v1"
/// (surrounding slashes are ignored; the `?hash=` query is not part of it).
pub fn group_version(path: &str) -> Option<&'static GroupVersionDoc> {
    let path = path.trim_matches('/');
    DOCS.iter().find(|(p, _)| p == path).map(|(_, doc)| doc)
}

/// The served group/versions, core first, each once, in registry order.
fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    let core = registry::resources().iter().filter(|r| r.group.is_empty());
    let named = registry::resources().iter().filter(|r| !r.group.is_empty());
    for r in core.chain(named) {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// `api/v1` or `apis/<group>/<version>`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The short name upstream gives a built-in group in OpenAPI names (`coordination` for
/// `coordination.k8s.io`); None for the core group and for CRD groups.
fn builtin_group(group: &str) -> Option<&str> {
    group.strip_suffix(".k8s.io")
}

/// The `components.schemas` name of a kind: Go-package style, reversed group for CRDs
/// (`dev.knative.serving.v1.Service`), `io.k8s.api.core.v1.Namespace` for core kinds and
/// `io.k8s.api.coordination.v1.Lease` for other built-in groups.
fn schema_name(group: &str, version: &str, kind: &str) -> String {
    if group.is_empty() {
        format!("io.k8s.api.core.{version}.{kind}")
    } else if let Some(short) = builtin_group(group) {
        format!("io.k8s.api.{short}.{version}.{kind}")
    } else {
        let reversed: Vec<&str> = group.split('.').rev().collect();
        format!("{}.{version}.{kind}", reversed.join("."))
    }
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{REF}{name}") })
}

/// The GVK extension value of an operation; `components.schemas` carry a list of these, and
/// kubectl explain matches the two by deep equality, so both come from here.
fn gvk(r: &Resource, kind: &str) -> Value {
    json!({ "group": r.group, "version": r.version, "kind": kind })
}

fn serialize(document: &Value) -> Vec<u8> {
    serde_json::to_vec(document).unwrap_or_else(|error| {
        tracing::error!(%error, "an OpenAPI document does not serialize");
        b"{}".to_vec()
    })
}

/// FNV-1a, 64 bit: a cache key, not a security measure.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The OpenAPI 3.0 document of one group/version.
fn document(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for name in ["ObjectMeta", "ListMeta", "Status", "Patch"] {
        if let Some(definition) = schema::definition(name) {
            schemas.insert(format!("{META}.{name}"), definition.clone());
        }
    }
    for r in registry::resources_in(group, version) {
        add_paths(r, &mut paths);
        add_schemas(r, &mut schemas);
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "wisp", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

/// The kind's schema (metadata as a `$ref`, like the real server) and its list's schema.
fn add_schemas(r: &Resource, schemas: &mut Map<String, Value>) {
    let Some(object_schema) = schema::schema_of(r) else {
        return;
    };
    let mut object_schema = object_schema.clone();
    if let Some(metadata) = object_schema.pointer_mut("/properties/metadata") {
        *metadata = json!({
            "allOf": [schema_ref(&format!("{META}.ObjectMeta"))],
            "default": {},
            "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        });
    }
    if let Value::Object(fields) = &mut object_schema {
        fields.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([gvk(r, r.kind)]),
        );
    }
    let name = schema_name(r.group, r.version, r.kind);
    let list = json!({
        "description": format!("{} is a list of {}", r.list_kind, r.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": { "type": "string", "description": "APIVersion defines the versioned schema of this representation of an object." },
            "kind": { "type": "string", "description": "Kind is a string value representing the REST resource this object represents." },
            "items": {
                "description": format!("List of {}.", r.plural),
                "type": "array",
                "items": schema_ref(&name),
            },
            "metadata": {
                "allOf": [schema_ref(&format!("{META}.ListMeta"))],
                "default": {},
                "description": "Standard list metadata.",
            },
        },
        "x-kubernetes-group-version-kind": [gvk(r, r.list_kind)],
    });
    schemas.insert(name, object_schema);
    schemas.insert(schema_name(r.group, r.version, r.list_kind), list);
}

/// What one operation is: its verb, action, wording and shape.
struct Op {
    /// HTTP method, lower-case as OpenAPI keys it.
    method: &'static str,
    /// `x-kubernetes-action`.
    action: &'static str,
    /// The operationId's verb prefix (`read`, `list`, `patch`…).
    id_verb: &'static str,
    /// The operationId's suffix after the kind (`Status`, `ForAllNamespaces`).
    id_suffix: &'static str,
    description: String,
}

fn add_paths(r: &Resource, paths: &mut Map<String, Value>) {
    let prefix = format!("/{}", gv_path(r.group, r.version));
    let kind = r.kind;
    let op = |method, action, id_verb, id_suffix, description: String| Op {
        method,
        action,
        id_verb,
        id_suffix,
        description,
    };
    let (collection, item) = if r.namespaced {
        let collection = format!("{prefix}/namespaces/{{namespace}}/{}", r.plural);
        let item = format!("{collection}/{{name}}");
        (collection, item)
    } else {
        (
            format!("{prefix}/{}", r.plural),
            format!("{prefix}/{}/{{name}}", r.plural),
        )
    };

    let mut collection_ops = Vec::new();
    if r.allows("list") {
        collection_ops.push(op(
            "get",
            "list",
            "list",
            "",
            format!("list or watch objects of kind {kind}"),
        ));
    }
    if r.allows("create") {
        collection_ops.push(op("post", "post", "create", "", format!("create a {kind}")));
    }
    if r.allows("deletecollection") {
        collection_ops.push(op(
            "delete",
            "deletecollection",
            "deleteCollection",
            "",
            format!("delete collection of {kind}"),
        ));
    }
    insert_path(paths, r, &collection, false, collection_ops);

    let mut item_ops = Vec::new();
    if r.allows("get") {
        item_ops.push(op(
            "get",
            "get",
            "read",
            "",
            format!("read the specified {kind}"),
        ));
    }
    if r.allows("update") {
        item_ops.push(op(
            "put",
            "put",
            "replace",
            "",
            format!("replace the specified {kind}"),
        ));
    }
    if r.allows("patch") {
        item_ops.push(op(
            "patch",
            "patch",
            "patch",
            "",
            format!("partially update the specified {kind}"),
        ));
    }
    if r.allows("delete") {
        item_ops.push(op(
            "delete",
            "delete",
            "delete",
            "",
            format!("delete a {kind}"),
        ));
    }
    insert_path(paths, r, &item, true, item_ops);

    if r.has_status {
        let status_ops = vec![
            op(
                "get",
                "get",
                "read",
                "Status",
                format!("read status of the specified {kind}"),
            ),
            op(
                "put",
                "put",
                "replace",
                "Status",
                format!("replace status of the specified {kind}"),
            ),
            op(
                "patch",
                "patch",
                "patch",
                "Status",
                format!("partially update status of the specified {kind}"),
            ),
        ];
        insert_path(paths, r, &format!("{item}/status"), true, status_ops);
    }

    if r.namespaced && r.allows("list") {
        let all = vec![op(
            "get",
            "list",
            "list",
            "ForAllNamespaces",
            format!("list or watch objects of kind {kind}"),
        )];
        insert_path(paths, r, &format!("{prefix}/{}", r.plural), false, all);
    }
}

fn insert_path(
    paths: &mut Map<String, Value>,
    r: &Resource,
    path: &str,
    named: bool,
    ops: Vec<Op>,
) {
    if ops.is_empty() {
        return;
    }
    let mut item = Map::new();
    for op in ops {
        let namespaced = r.namespaced && op.id_suffix != "ForAllNamespaces";
        let mut parameters = Vec::new();
        if named {
            parameters.push(path_param("name", &format!("name of the {}", r.kind)));
        }
        if namespaced {
            parameters.push(path_param(
                "namespace",
                "object name and auth scope, such as for teams and projects",
            ));
        }
        parameters.push(query(
            "pretty",
            "If 'true', then the output is pretty printed.",
            "string",
        ));
        parameters.extend(query_params(op.action));
        let mut operation = json!({
            "description": op.description,
            "operationId": operation_id(r, &op, namespaced),
            "tags": [tag(r)],
            "parameters": parameters,
            "responses": responses(r, &op),
            "x-kubernetes-action": op.action,
            "x-kubernetes-group-version-kind": gvk(r, r.kind),
        });
        if let Some(body) = request_body(r, &op) {
            operation["requestBody"] = body;
        }
        item.insert(op.method.to_owned(), operation);
    }
    paths.insert(path.to_owned(), Value::Object(item));
}

/// `servingKnativeDev_v1` / `core_v1` / `coordination_v1`, the upstream tag style.
fn tag(r: &Resource) -> String {
    let group = if r.group.is_empty() {
        "core".to_owned()
    } else {
        camel(builtin_group(r.group).unwrap_or(r.group), false)
    };
    format!("{group}_{}", r.version)
}

/// Upstream-style operationId, e.g. `patchServingKnativeDevV1NamespacedServiceStatus`,
/// `listCoreV1Namespace`, `listServingKnativeDevV1ServiceForAllNamespaces`,
/// `replaceCoordinationV1NamespacedLease`.
fn operation_id(r: &Resource, op: &Op, namespaced: bool) -> String {
    let group = if r.group.is_empty() {
        "Core".to_owned()
    } else {
        camel(builtin_group(r.group).unwrap_or(r.group), true)
    };
    let version = camel(r.version, true);
    let scope = if namespaced { "Namespaced" } else { "" };
    format!(
        "{}{group}{version}{scope}{}{}",
        op.id_verb, r.kind, op.id_suffix
    )
}

/// `serving.knative.dev` → `servingKnativeDev` (or `ServingKnativeDev` when `upper_first`).
fn camel(s: &str, upper_first: bool) -> String {
    let mut out = String::new();
    for (i, part) in s.split(['.', '-']).filter(|p| !p.is_empty()).enumerate() {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            if i == 0 && !upper_first {
                out.push(first);
            } else {
                out.extend(first.to_uppercase());
            }
            out.push_str(chars.as_str());
        }
    }
    out
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "description": description, "required": true,
            "schema": { "type": "string", "uniqueItems": true } })
}

fn query(name: &str, description: &str, type_: &str) -> Value {
    json!({ "name": name, "in": "query", "description": description,
            "schema": { "type": type_, "uniqueItems": true } })
}

const DRY_RUN: &str = "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed";
const FIELD_MANAGER: &str =
    "fieldManager is a name associated with the actor or entity that is making these changes.";
const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";

/// The query parameters of an action, as the real server lists them (kubectl checks for
/// `fieldValidation` on `patch`).
fn query_params(action: &str) -> Vec<Value> {
    let writes = || {
        vec![
            query("dryRun", DRY_RUN, "string"),
            query("fieldManager", FIELD_MANAGER, "string"),
            query("fieldValidation", FIELD_VALIDATION, "string"),
        ]
    };
    match action {
        "post" | "put" => writes(),
        "patch" => {
            let mut params = writes();
            params.push(query("force", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.", "boolean"));
            params
        }
        "list" | "deletecollection" => {
            let mut params = vec![
                query(
                    "allowWatchBookmarks",
                    "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
                    "boolean",
                ),
                query(
                    "continue",
                    "The continue option should be set when retrieving more results from the server.",
                    "string",
                ),
                query(
                    "fieldSelector",
                    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
                    "string",
                ),
                query(
                    "labelSelector",
                    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
                    "string",
                ),
                query(
                    "limit",
                    "limit is a maximum number of responses to return for a list call.",
                    "integer",
                ),
                query(
                    "resourceVersion",
                    "resourceVersion sets a constraint on what resource versions a request may be served from.",
                    "string",
                ),
                query(
                    "resourceVersionMatch",
                    "resourceVersionMatch determines how resourceVersion is applied to list calls.",
                    "string",
                ),
                query(
                    "sendInitialEvents",
                    "`sendInitialEvents=true` may be set together with `watch=true`: the stream begins with synthetic events for every existing object.",
                    "boolean",
                ),
                query(
                    "timeoutSeconds",
                    "Timeout for the list/watch call.",
                    "integer",
                ),
            ];
            if action == "list" {
                params.push(query("watch", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.", "boolean"));
            } else {
                params.push(query("dryRun", DRY_RUN, "string"));
            }
            params
        }
        "delete" => vec![
            query("dryRun", DRY_RUN, "string"),
            query(
                "gracePeriodSeconds",
                "The duration in seconds before the object should be deleted.",
                "integer",
            ),
            query(
                "propagationPolicy",
                "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
                "string",
            ),
        ],
        _ => Vec::new(),
    }
}

fn request_body(r: &Resource, op: &Op) -> Option<Value> {
    let object = schema_ref(&schema_name(r.group, r.version, r.kind));
    match op.action {
        "post" | "put" => Some(json!({
            "content": { "*/*": { "schema": object } },
            "required": true,
        })),
        "patch" => {
            let patch = json!({ "schema": schema_ref(&format!("{META}.Patch")) });
            let mut types = vec![
                "application/apply-patch+yaml",
                "application/json-patch+json",
                "application/merge-patch+json",
            ];
            // Strategic merge patch needs Go struct tags, which only built-in kinds have.
            if r.built_in() {
                types.push("application/strategic-merge-patch+json");
            }
            let content: Map<String, Value> = types
                .into_iter()
                .map(|t| (t.to_owned(), patch.clone()))
                .collect();
            Some(json!({ "content": content, "required": true }))
        }
        _ => None,
    }
}

fn responses(r: &Resource, op: &Op) -> Value {
    let content = |name: String| {
        let schema = schema_ref(&name);
        json!({
            "application/json": { "schema": schema.clone() },
            "application/yaml": { "schema": schema },
        })
    };
    let object = || content(schema_name(r.group, r.version, r.kind));
    let status = || content(format!("{META}.Status"));
    let unauthorized = json!({ "description": "Unauthorized" });
    match op.action {
        "list" => json!({
            "200": { "description": "OK", "content": content(schema_name(r.group, r.version, r.list_kind)) },
            "401": unauthorized,
        }),
        "post" => json!({
            "200": { "description": "OK", "content": object() },
            "201": { "description": "Created", "content": object() },
            "202": { "description": "Accepted", "content": object() },
            "401": unauthorized,
        }),
        "put" | "patch" => json!({
            "200": { "description": "OK", "content": object() },
            "201": { "description": "Created", "content": object() },
            "401": unauthorized,
        }),
        "delete" | "deletecollection" => json!({
            "200": { "description": "OK", "content": status() },
            "202": { "description": "Accepted", "content": status() },
            "401": unauthorized,
        }),
        _ => json!({
            "200": { "description": "OK", "content": object() },
            "401": unauthorized,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::resources;

    fn doc(path: &str) -> Value {
        let doc = group_version(path).unwrap_or_else(|| panic!("no document for {path}"));
        serde_json::from_slice(&doc.body).expect("document is JSON")
    }

    #[test]
    fn root_lists_every_group_version_with_its_hash() {
        let paths = root()["paths"].as_object().expect("paths");
        assert_eq!(
            paths.keys().collect::<Vec<_>>(),
            [
                "api/v1",
                "apis/coordination.k8s.io/v1",
                "apis/serving.knative.dev/v1"
            ]
        );
        for (path, entry) in paths {
            let doc = group_version(path).expect("document");
            assert_eq!(doc.hash, format!("{:016X}", fnv1a64(&doc.body)));
            assert_eq!(
                entry["serverRelativeURL"],
                format!("/openapi/v3/{path}?hash={}", doc.hash)
            );
        }
        assert_ne!(
            group_version("api/v1").map(|d| &d.hash),
            group_version("apis/serving.knative.dev/v1").map(|d| &d.hash)
        );
        assert!(group_version("/apis/serving.knative.dev/v1/").is_some());
        assert!(group_version("apis/serving.knative.dev/v2").is_none());
        assert!(group_version("apis/apps/v1").is_none());
        assert!(group_version("").is_none());
    }

    #[test]
    fn the_hash_is_a_digest() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fnv1a64(b"{\"a\":1}"), fnv1a64(b"{\"a\":2}"));
    }

    /// What kubectl's query-param verifier looks for: some path whose `patch` has the GVK and a
    /// `fieldValidation` parameter.
    fn patch_with_field_validation(doc: &Value, r: &Resource) -> bool {
        let want = json!({"group": r.group, "version": r.version, "kind": r.kind});
        doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .any(|item| {
                let patch = &item["patch"];
                patch["x-kubernetes-group-version-kind"] == want
                    && patch["parameters"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"))
            })
    }

    #[test]
    fn every_writable_kind_has_a_patch_with_gvk_and_field_validation() {
        for r in resources() {
            let doc = doc(&gv_path(r.group, r.version));
            assert_eq!(
                patch_with_field_validation(&doc, r),
                !r.read_only,
                "{}",
                r.kind
            );
        }
    }

    #[test]
    fn paths_follow_scope_verbs_and_status() {
        let knative = doc("apis/serving.knative.dev/v1");
        let paths = &knative["paths"];
        let item = &paths["/apis/serving.knative.dev/v1/namespaces/{namespace}/services/{name}"];
        for method in ["get", "put", "patch", "delete"] {
            assert!(item[method].is_object(), "{method}");
            assert!(item[method]["x-kubernetes-action"].is_string());
        }
        assert_eq!(
            item["patch"]["operationId"],
            "patchServingKnativeDevV1NamespacedService"
        );
        let patch_params: Vec<&str> = item["patch"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for p in [
            "name",
            "namespace",
            "dryRun",
            "fieldManager",
            "fieldValidation",
            "force",
        ] {
            assert!(patch_params.contains(&p), "{p}");
        }
        let types: Vec<&String> = item["patch"]["requestBody"]["content"]
            .as_object()
            .expect("content")
            .keys()
            .collect();
        assert_eq!(
            types,
            [
                "application/apply-patch+yaml",
                "application/json-patch+json",
                "application/merge-patch+json"
            ]
        );
        let collection = &paths["/apis/serving.knative.dev/v1/namespaces/{namespace}/services"];
        assert_eq!(collection["get"]["x-kubernetes-action"], "list");
        assert_eq!(collection["post"]["x-kubernetes-action"], "post");
        assert_eq!(
            collection["delete"]["x-kubernetes-action"],
            "deletecollection"
        );
        assert_eq!(
            paths["/apis/serving.knative.dev/v1/services"]["get"]["operationId"],
            "listServingKnativeDevV1ServiceForAllNamespaces"
        );
        let status =
            &paths["/apis/serving.knative.dev/v1/namespaces/{namespace}/services/{name}/status"];
        assert_eq!(
            status["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "Service"
        );

        let core = doc("api/v1");
        let paths = &core["paths"];
        let ns = &paths["/api/v1/namespaces/{name}"];
        assert_eq!(ns["patch"]["operationId"], "patchCoreV1Namespace");
        assert!(
            ns["patch"]["requestBody"]["content"]["application/strategic-merge-patch+json"]
                .is_object()
        );
        assert!(paths["/api/v1/namespaces/{name}/status"]["put"].is_object());
        assert!(paths["/api/v1/nodes/{name}"]["get"].is_object());
        assert!(paths["/api/v1/nodes/{name}"].get("patch").is_none());
        assert!(paths["/api/v1/namespaces/{namespace}/pods"]["get"].is_object());
        assert!(
            paths["/api/v1/namespaces/{namespace}/pods"]
                .get("post")
                .is_none()
        );
        assert!(paths["/api/v1/pods"]["get"].is_object());
        assert!(paths["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"].is_object());

        let coordination = doc("apis/coordination.k8s.io/v1");
        let lease = &coordination["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"];
        assert_eq!(
            lease["put"]["operationId"],
            "replaceCoordinationV1NamespacedLease"
        );
        assert!(
            coordination["paths"]
                .get("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}/status")
                .is_none()
        );
        let spec = &coordination["components"]["schemas"]["io.k8s.api.coordination.v1.Lease"]["properties"]
            ["spec"];
        assert_eq!(spec["properties"]["renewTime"]["format"], "date-time");
        assert_eq!(spec["properties"]["leaseTransitions"]["format"], "int32");
        // Every $ref points at a schema the document has.
        for d in [&knative, &core, &coordination] {
            assert_refs_resolve(d, d);
        }
    }

    fn assert_refs_resolve(doc: &Value, node: &Value) {
        match node {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let name = r.strip_prefix(REF).expect("local ref");
                    assert!(
                        doc["components"]["schemas"][name].is_object(),
                        "dangling {r}"
                    );
                }
                m.values().for_each(|v| assert_refs_resolve(doc, v));
            }
            Value::Array(items) => items.iter().for_each(|v| assert_refs_resolve(doc, v)),
            _ => {}
        }
    }

    #[test]
    fn components_carry_the_gvk_and_explainable_schemas() {
        for r in resources() {
            let doc = doc(&gv_path(r.group, r.version));
            let schemas = &doc["components"]["schemas"];
            let schema = &schemas[schema_name(r.group, r.version, r.kind)];
            assert_eq!(
                schema["x-kubernetes-group-version-kind"],
                json!([{"group": r.group, "version": r.version, "kind": r.kind}]),
                "{}",
                r.kind
            );
            assert_eq!(
                schema["properties"]["metadata"]["allOf"][0]["$ref"],
                format!("{REF}{META}.ObjectMeta")
            );
            let list = &schemas[schema_name(r.group, r.version, r.list_kind)];
            assert_eq!(
                list["x-kubernetes-group-version-kind"][0]["kind"],
                r.list_kind
            );
        }
        let knative = doc("apis/serving.knative.dev/v1");
        let ksvc = &knative["components"]["schemas"]["dev.knative.serving.v1.Service"];
        // `kubectl explain ksvc.spec.template.spec.containers` walks exactly this.
        let containers = &ksvc["properties"]["spec"]["properties"]["template"]["properties"]["spec"]
            ["properties"]["containers"];
        assert!(containers["description"].is_string());
        assert!(containers["items"]["properties"]["image"]["description"].is_string());
        assert!(knative["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["labels"].is_object());
        assert!(doc("api/v1")["components"]["schemas"]["io.k8s.api.core.v1.Namespace"].is_object());
    }

    #[test]
    fn names_are_upstream_style() {
        assert_eq!(
            schema_name("serving.knative.dev", "v1", "Service"),
            "dev.knative.serving.v1.Service"
        );
        assert_eq!(schema_name("", "v1", "Pod"), "io.k8s.api.core.v1.Pod");
        assert_eq!(
            schema_name("coordination.k8s.io", "v1", "Lease"),
            "io.k8s.api.coordination.v1.Lease"
        );
        assert_eq!(camel("serving.knative.dev", false), "servingKnativeDev");
        assert_eq!(camel("v1", true), "V1");
    }
}
