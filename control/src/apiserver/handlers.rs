//! Request dispatch: authentication, then discovery, OpenAPI and version documents, or the
//! resource verbs (reference §2.1: GET item = get, GET collection = list or watch, POST =
//! create, PUT = update, PATCH = patch or apply, DELETE = delete or deletecollection).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::credentials::{Credentials, Identity, authorization};
use crate::discovery::{self, Representation, Root};
use crate::openapi;
use crate::registry::{self, Resource};
use crate::schema;
use crate::store::StoredJson;
use crate::table::{self, IncludeObject};

use super::body;
use super::gc::Propagation;
use super::metadata::meta_str;
use super::metrics::{ApiMetrics, RequestLabels};
use super::objects::{
    DeleteOptions, Deleted, Objects, Patch, Preconditions, WriteOptions, Written,
};
use super::paging::Token;
use super::patch::PatchType;
use super::path::{self, ResourcePath, Target};
use super::query::{FieldValidation, Query};
use super::respond::{self, Body, Shape};
use super::selection::Selection;
use super::status::{self, ApiError};
use super::version;
use super::watch::{self as watching, WatchRequest};

/// What every request handler shares.
pub struct Context {
    /// The object operations.
    pub objects: Objects,
    /// TLS material and the bearer token requests must carry.
    pub credentials: Credentials,
    /// Largest accepted request body.
    pub max_body: usize,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// Flips to `true` when the server stops (ends open watches).
    pub shutdown: watch::Receiver<bool>,
    /// `host:port` clients reach this server at (for `/api`'s serverAddressByClientCIDRs).
    pub server_address: String,
    /// Requests answered, served at `/metrics`.
    pub metrics: ApiMetrics,
}

/// Answers one request; never fails (errors become `Status` responses).
pub async fn handle(context: Arc<Context>, request: Request<Incoming>) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (verb, resource) = verb_and_resource(&request);
    let response = match route(&context, request).await {
        Ok(response) => response,
        Err(error) => {
            if error.code.is_server_error() {
                tracing::warn!(%method, %path, %error, "request failed");
            } else {
                tracing::debug!(%method, %path, %error, "request refused");
            }
            respond::error(&error)
        }
    };
    context.metrics.count(RequestLabels {
        verb,
        resource,
        code: response.status().as_u16(),
    });
    response
}

/// What a request is counted as: the Kubernetes verb and resource it names, or its lowercase
/// HTTP method and no resource.
pub(super) fn verb_and_resource(request: &Request<Incoming>) -> (String, String) {
    let method = request.method();
    let fallback = || (method.as_str().to_ascii_lowercase(), String::new());
    let Ok(Target::Resource(target)) = path::parse(request.uri().path()) else {
        return fallback();
    };
    let Ok(query) = Query::parse(request.uri().query()) else {
        return fallback();
    };
    let Ok(verb) = verb(method, &target, &query) else {
        return fallback();
    };
    let resource = if target.status {
        format!("{}/status", target.resource.plural)
    } else {
        target.resource.plural.to_owned()
    };
    (verb.to_owned(), resource)
}

async fn route(context: &Context, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let (parts, body) = request.into_parts();
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    let identity = context.credentials.authenticate(authorization);
    // Whether a path exists is for those with a token to learn, as on the real server: an
    // unknown path answers 401 before 404.
    let target = match path::parse(parts.uri.path()) {
        Ok(target) => target,
        Err(_) if identity.is_none() => return Err(ApiError::unauthorized()),
        Err(error) => return Err(error),
    };
    // `/version` and health checks are public on the real server too (the
    // system:public-info-viewer role); everything else needs the token.
    let public = matches!(target, Target::Version | Target::Health);
    if !public && identity.is_none() {
        return Err(ApiError::unauthorized());
    }
    if let Target::Resource(resource_path) = target {
        let identity = identity.ok_or_else(ApiError::unauthorized)?;
        return resource(context, parts, body, resource_path, identity).await;
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Err(ApiError {
            code: StatusCode::METHOD_NOT_ALLOWED,
            reason: "MethodNotAllowed",
            message: format!("{} is read-only: use GET", parts.uri.path()),
            details: None,
        });
    }
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    document(context, target, accept, parts.uri.path())
}

/// The read-only documents: version, health, discovery, OpenAPI.
fn document(
    context: &Context,
    target: Target,
    accept: Option<&str>,
    path: &str,
) -> Result<Response<Body>, ApiError> {
    let not_found = || ApiError::no_route(path);
    Ok(match target {
        Target::Version => respond::json(StatusCode::OK, &version::document()),
        Target::Health => respond::bytes(StatusCode::OK, Bytes::from_static(b"ok"), "text/plain"),
        Target::Metrics => respond::bytes(
            StatusCode::OK,
            Bytes::from(context.metrics.encode()),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        Target::CoreVersions | Target::GroupList => {
            let representation = discovery::negotiate(accept);
            let body = match (representation, &target) {
                (Representation::Aggregated(version), Target::CoreVersions) => {
                    discovery::aggregated(Root::Core, version)
                }
                (Representation::Aggregated(version), _) => {
                    discovery::aggregated(Root::Apis, version)
                }
                (Representation::Legacy, Target::CoreVersions) => {
                    discovery::api_versions(&context.server_address)
                }
                (Representation::Legacy, _) => discovery::api_group_list(),
            };
            respond::bytes(
                StatusCode::OK,
                Bytes::from(body.to_string()),
                representation.content_type(),
            )
        }
        Target::Group(group) => {
            let list = discovery::api_group_list();
            let found = list["groups"]
                .as_array()
                .and_then(|groups| groups.iter().find(|g| g["name"] == group.as_str()))
                .cloned()
                .ok_or_else(not_found)?;
            let mut body = found;
            body["kind"] = "APIGroup".into();
            body["apiVersion"] = "v1".into();
            respond::json(StatusCode::OK, &body)
        }
        Target::ResourceList { group, version } => respond::json(
            StatusCode::OK,
            &discovery::api_resource_list(&group, &version).ok_or_else(not_found)?,
        ),
        Target::OpenApiV2 if crate::openapi_v2::wants_protobuf(accept) => respond::bytes(
            StatusCode::OK,
            Bytes::from(crate::openapi_v2::protobuf()),
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
        ),
        Target::OpenApiV2 => respond::json(StatusCode::OK, &crate::openapi_v2::json()),
        Target::OpenApiRoot => respond::json(StatusCode::OK, openapi::root()),
        Target::OpenApiDocument(document) => {
            let found = openapi::group_version(&document).ok_or_else(not_found)?;
            respond::bytes(StatusCode::OK, found.body.clone(), "application/json")
        }
        Target::Resource(_) => return Err(not_found()),
    })
}

/// 403 for a request the identity may not make, worded like the real server's refusal.
fn forbidden(
    resource: &'static Resource,
    target: &ResourcePath,
    identity: Identity,
    request: &authorization::Request<'_>,
) -> ApiError {
    let plural = if request.status {
        format!("{}/status", resource.plural)
    } else {
        resource.plural.to_owned()
    };
    let group = resource.group;
    let place = match request.namespace {
        Some(namespace) => format!(" in the namespace {namespace:?}"),
        None => " at the cluster scope".to_owned(),
    };
    ApiError::forbidden(
        resource,
        target.name.as_deref().unwrap_or(""),
        format!(
            "User {:?} cannot {} resource {plural:?} in API group {group:?}{place}: the node \
             identity writes only its Node, Pods, Lease (in kube-node-lease), events and the \
             status of Revisions and Routes; use the admin kubeconfig for anything else",
            identity.user(),
            request.verb,
        ),
    )
}

/// The verbs on a resource URL.
async fn resource(
    context: &Context,
    parts: Parts,
    body: Incoming,
    target: ResourcePath,
    identity: Identity,
) -> Result<Response<Body>, ApiError> {
    let query = Query::parse(parts.uri.query())?;
    let resource = target.resource;
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let shape = respond::shape(accept);
    let verb = verb(&parts.method, &target, &query)?;
    let node = identity == Identity::Node;
    let allowed = if target.status {
        resource.has_status && registry::STATUS_VERBS.contains(&verb)
    } else {
        // Pods and Nodes are what nodes report: only a node makes them, but the cluster admin
        // (a node lifecycle controller, an operator) may change or delete them, as on a real
        // cluster when a node is gone.
        resource.allows(verb)
            || (resource.read_only && (node || matches!(verb, "update" | "patch" | "delete")))
    };
    if !allowed {
        return Err(ApiError::method_not_allowed(resource, verb));
    }
    // The node writes only what it reports (credentials::authorization says exactly what), so
    // its token cannot change anything else.
    let request = authorization::Request {
        verb,
        group: resource.group,
        resource: resource.plural,
        status: target.status,
        namespace: target.namespace.as_deref(),
    };
    if node && !authorization::node_may(&request) {
        return Err(forbidden(resource, &target, identity, &request));
    }
    let namespace = target.namespace.as_deref();
    match (verb, target.name.as_deref()) {
        ("get", Some(name)) => {
            let object = context.objects.get(resource, namespace, name).await?;
            Ok(single(resource, &object, shape, &query)?)
        }
        ("list", _) => list(context, &target, &query, shape).await,
        ("watch", _) => watch(context, &target, &query, shape),
        ("create", None) => {
            let (object, options) = read_object(context, &parts, body, &query, identity).await?;
            let written = context
                .objects
                .create(resource, namespace, object, &options)
                .await?;
            Ok(written_response(written))
        }
        ("update", Some(name)) => {
            let (object, options) = read_object(context, &parts, body, &query, identity).await?;
            let written = context
                .objects
                .update(resource, namespace, name, target.status, object, &options)
                .await?;
            Ok(written_response(written))
        }
        ("patch", Some(name)) => {
            let kind = PatchType::from_media_type(&body::media_type(&parts.headers), resource)?;
            let (patch, options) = read_object(context, &parts, body, &query, identity).await?;
            let written = context
                .objects
                .patch(
                    resource,
                    namespace,
                    name,
                    target.status,
                    Patch { kind, body: patch },
                    &options,
                )
                .await?;
            Ok(written_response(written))
        }
        ("delete", Some(name)) => {
            let options = delete_options(context, &parts, body, &query).await?;
            let deleted = context
                .objects
                .delete(resource, namespace, name, options)
                .await?;
            Ok(match deleted {
                Deleted::Removed(object) => respond::json(
                    StatusCode::OK,
                    &status::success(resource, name, meta_str(&object, "uid")),
                ),
                Deleted::Pending(object) => respond::json(StatusCode::OK, &object),
            })
        }
        ("deletecollection", None) => {
            let options = delete_options(context, &parts, body, &query).await?;
            delete_collection(context, &target, &query, options).await
        }
        _ => Err(ApiError::method_not_allowed(resource, verb)),
    }
}

/// The Kubernetes verb of a request.
fn verb(method: &Method, target: &ResourcePath, query: &Query) -> Result<&'static str, ApiError> {
    let item = target.name.is_some();
    Ok(match (method.as_str(), item) {
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) if query.watch => "watch",
        ("GET" | "HEAD", false) => "list",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        (method, _) => {
            return Err(ApiError {
                code: StatusCode::METHOD_NOT_ALLOWED,
                reason: "MethodNotAllowed",
                message: format!(
                    "{method} is not allowed on {}: use GET, POST, PUT, PATCH or DELETE as the \
                     Kubernetes API does",
                    if item { "an object" } else { "a collection" }
                ),
                details: None,
            });
        }
    })
}

/// One object in the representation asked for.
fn single(
    resource: &'static Resource,
    object: &Value,
    shape: Shape,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    Ok(match shape {
        Shape::Object => respond::json(StatusCode::OK, object),
        Shape::PartialMetadata => respond::json(StatusCode::OK, &respond::partial(object)),
        Shape::Table => {
            let include = include_object(query)?;
            respond::json(
                StatusCode::OK,
                &table::table(resource, std::slice::from_ref(object), include, None, true),
            )
        }
    })
}

fn include_object(query: &Query) -> Result<IncludeObject, ApiError> {
    IncludeObject::parse(query.include_object.as_deref())
        .map_err(|error| ApiError::bad_request(error.to_string()))
}

/// Rows read for a filtered list at a time (a page of a filtered list may need several).
const FILTERED_CHUNK: usize = 500;

/// One listed object: its stored text, and its parsed form when something needed it.
struct Row {
    stored: StoredJson,
    parsed: Option<Value>,
}

impl Row {
    fn value(self) -> Result<Value, ApiError> {
        match self.parsed {
            Some(value) => Ok(value),
            None => parse_stored(&self.stored.json),
        }
    }
}

fn parse_stored(json: &str) -> Result<Value, ApiError> {
    serde_json::from_str(json)
        .map_err(|error| ApiError::internal(format!("a stored object is not JSON: {error}")))
}

/// A list: read with a key cursor, so a page costs its own size; objects are parsed only when
/// a selector or a Table needs them, and otherwise spliced into the response as stored.
async fn list(
    context: &Context,
    target: &ResourcePath,
    query: &Query,
    shape: Shape,
) -> Result<Response<Body>, ApiError> {
    let resource = target.resource;
    let selection = Selection::new(target, query)?;
    let filtering = selection.filters();
    let token = query
        .continue_token
        .as_deref()
        .map(Token::decode)
        .transpose()?;
    let limit = query.limit;
    let chunk = limit.map(|limit| {
        if filtering {
            limit.saturating_add(1).max(FILTERED_CHUNK)
        } else {
            limit.saturating_add(1)
        }
    });
    let mut after = token.as_ref().map(Token::after);
    let mut snapshot_rv = None;
    let mut rows: Vec<Row> = Vec::new();
    let mut more = false;
    'read: loop {
        let page = context
            .objects
            .store()
            .list_json(&selection.scope, after.clone(), chunk)
            .await
            .map_err(|error| ApiError::from_store(resource, "", error))?;
        snapshot_rv.get_or_insert(page.resource_version);
        let exhausted = chunk.is_none_or(|chunk| page.items.len() < chunk);
        for stored in page.items {
            after = Some((stored.namespace.clone(), stored.name.clone()));
            let parsed = if filtering {
                let value = parse_stored(&stored.json)?;
                if !selection.matches(&value) {
                    continue;
                }
                Some(value)
            } else {
                None
            };
            if limit.is_some_and(|limit| rows.len() == limit) {
                more = true;
                break 'read;
            }
            rows.push(Row { stored, parsed });
        }
        if exhausted {
            break;
        }
    }
    let rv = token
        .as_ref()
        .map_or(snapshot_rv.unwrap_or(0), |token| token.rv);
    let continue_token = rows.last().filter(|_| more).map(|last| {
        Token {
            rv,
            namespace: last.stored.namespace.clone(),
            name: last.stored.name.clone(),
        }
        .encode()
    });
    if shape == Shape::Object {
        return Ok(spliced_list(resource, &rows, rv, continue_token.as_deref()));
    }
    let items = rows
        .into_iter()
        .map(Row::value)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match shape {
        Shape::Table => {
            let include = include_object(query)?;
            let mut body = table::table(resource, &items, include, Some(&rv.to_string()), true);
            if let Some(token) = &continue_token {
                body["metadata"]["continue"] = token.clone().into();
            }
            respond::json(StatusCode::OK, &body)
        }
        shape => respond::json(
            StatusCode::OK,
            &respond::list(resource, items, rv, continue_token.as_deref(), shape),
        ),
    })
}

/// A list response written around the objects' stored text.
fn spliced_list(
    resource: &Resource,
    rows: &[Row],
    rv: u64,
    continue_token: Option<&str>,
) -> Response<Body> {
    let metadata = respond::list_metadata(rv, continue_token);
    let head = format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{metadata},\"items\":[",
        Value::from(resource.list_kind),
        Value::from(resource.api_version()),
    );
    let size = head.len()
        + rows
            .iter()
            .map(|row| row.stored.json.len() + 1)
            .sum::<usize>()
        + 2;
    let mut body = String::with_capacity(size);
    body.push_str(&head);
    for (index, row) in rows.iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        body.push_str(&row.stored.json);
    }
    body.push_str("]}");
    respond::bytes(StatusCode::OK, Bytes::from(body), "application/json")
}

fn watch(
    context: &Context,
    target: &ResourcePath,
    query: &Query,
    shape: Shape,
) -> Result<Response<Body>, ApiError> {
    let resource = target.resource;
    let request = WatchRequest {
        resource,
        selection: Selection::new(target, query)?,
        from: query.resource_version,
        send_initial_events: query.send_initial_events,
        bookmarks: query.allow_bookmarks,
        timeout: query.timeout,
        shape,
        include: include_object(query)?,
    };
    Ok(watching::start(
        context.objects.clone(),
        request,
        context.bookmark_interval,
        context.shutdown.clone(),
    ))
}

/// Reads and decodes a write's body, with the options the query and the raw body give.
async fn read_object(
    context: &Context,
    parts: &Parts,
    body: Incoming,
    query: &Query,
    identity: Identity,
) -> Result<(Value, WriteOptions), ApiError> {
    let bytes = body::read(body, &parts.headers, context.max_body).await?;
    let media_type = body::media_type(&parts.headers);
    // The scan reads the raw body again: only worth it when the answer is used.
    let scan = media_type.ends_with("json") && query.field_validation != FieldValidation::Ignore;
    let large = bytes.len() > INLINE_PARSE_BYTES;
    let parse = move || {
        let object = body::decode(&bytes, &media_type)?;
        let duplicates = if scan {
            schema::duplicate_fields(&bytes)
        } else {
            Vec::new()
        };
        Ok::<_, ApiError>((object, duplicates))
    };
    // Parsing megabytes takes milliseconds: off the async workers, which serve everyone else.
    let (object, duplicate_fields) = if large {
        tokio::task::spawn_blocking(parse)
            .await
            .map_err(|error| ApiError::internal(format!("parsing the body failed: {error}")))??
    } else {
        parse()?
    };
    let options = WriteOptions {
        dry_run: query.dry_run,
        field_validation: query.field_validation,
        field_manager: query.field_manager.clone(),
        user: identity.user().to_owned(),
        duplicate_fields,
    };
    Ok((object, options))
}

/// Bodies up to this size are parsed where they arrive; larger ones on the blocking pool.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// DeleteOptions from the body (kubectl and kube-rs send one) and the query.
async fn delete_options(
    context: &Context,
    parts: &Parts,
    body: Incoming,
    query: &Query,
) -> Result<DeleteOptions, ApiError> {
    let bytes = body::read(body, &parts.headers, context.max_body).await?;
    let options = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        body::decode_json(&bytes)?
    };
    let policy = options
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(query.propagation_policy.as_deref());
    let orphan = options.get("orphanDependents").and_then(Value::as_bool) == Some(true);
    let propagation = if orphan {
        Propagation::Orphan
    } else {
        Propagation::parse(policy)?
    };
    let text = |pointer: &str| {
        options
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let preconditions = Preconditions {
        uid: text("/preconditions/uid"),
        resource_version: text("/preconditions/resourceVersion"),
    };
    let dry_run = query.dry_run
        || options
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|modes| modes.iter().any(|mode| mode == "All"));
    let grace_period_seconds = match options.get("gracePeriodSeconds") {
        None | Some(Value::Null) => query.grace_period_seconds,
        Some(value) => Some(value.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!(
                "gracePeriodSeconds: Invalid value: {value}: must be an integer"
            ))
        })?),
    };
    if let Some(grace) = grace_period_seconds
        && grace < 0
    {
        return Err(ApiError::bad_request(format!(
            "gracePeriodSeconds: Invalid value: {grace}: must be greater than or equal to 0"
        )));
    }
    Ok(DeleteOptions {
        preconditions,
        propagation,
        grace_period_seconds,
        dry_run,
    })
}

async fn delete_collection(
    context: &Context,
    target: &ResourcePath,
    query: &Query,
    options: DeleteOptions,
) -> Result<Response<Body>, ApiError> {
    let resource = target.resource;
    let selection = Selection::new(target, query)?;
    let listed = context
        .objects
        .store()
        .list(&selection.scope)
        .await
        .map_err(|error| ApiError::from_store(resource, "", error))?;
    for object in listed
        .items
        .iter()
        .filter(|object| selection.matches(object))
    {
        let name = meta_str(object, "name").unwrap_or_default();
        match context
            .objects
            .delete(
                resource,
                meta_str(object, "namespace"),
                name,
                DeleteOptions {
                    preconditions: Preconditions::default(),
                    ..options.clone()
                },
            )
            .await
        {
            Ok(_) => {}
            Err(error) if error.reason == "NotFound" => {}
            Err(error) => return Err(error),
        }
    }
    Ok(respond::json(
        StatusCode::OK,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
    ))
}

fn written_response(written: Written) -> Response<Body> {
    respond::with_warnings(
        respond::json(written.code, &written.object),
        &written.warnings,
    )
}
