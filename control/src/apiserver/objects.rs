//! The object operations behind the HTTP verbs: get, list, create, update, patch, status writes
//! and delete, each one store transaction running the whole admission chain (schema check →
//! server-owned metadata → Knative defaults → Knative validation) inside it, so what is
//! validated is exactly what is stored. HTTP-free: the garbage collector and, later, the
//! embedded controllers call these too.

use std::sync::{Arc, Mutex};

use http::StatusCode;
use serde_json::Value;

use crate::admission::{self, ClusterDefaults, Operation};
use crate::field_error::FieldError;
use crate::registry::{self, Resource};
use crate::schema;
use crate::store::{ObjectKey, Outcome, Scope, Store, StoreError};

use super::core;
use super::gc::{Collector, Propagation};
use super::metadata::{self, finalizers, is_terminating, meta_str};
use super::patch::{self, PatchType};
use super::query::FieldValidation;
use super::secrets;
use super::status::ApiError;

/// How a write treats its body and what it returns.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: run everything, store nothing.
    pub dry_run: bool,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// `fieldManager` (required for apply patches).
    pub field_manager: Option<String>,
    /// The authenticated user, for Knative's creator/lastModifier annotations.
    pub user: String,
    /// Fields the raw body repeated (found before decoding, which keeps only the last).
    pub duplicate_fields: Vec<String>,
}

/// What a successful write returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// 201 for a create, 200 otherwise.
    pub code: StatusCode,
    /// The object as stored (or as it would be, on a dry run).
    pub object: Value,
    /// `Warning` header texts (unknown fields under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
}

/// A PATCH request's body and type.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// Which kind of patch.
    pub kind: PatchType,
    /// The patch document.
    pub body: Value,
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted {
    /// The object is gone; its last state.
    Removed(Value),
    /// Finalizers hold it: it now carries a deletionTimestamp.
    Pending(Value),
}

/// The operations, over one store.
#[derive(Clone)]
pub struct Objects {
    store: Store,
    collector: Collector,
    /// The resourceVersions of the `config-defaults` and `config-autoscaler` whose problems
    /// were last logged, so a bad value is reported once per change, not on every write.
    defaults_reported: Arc<Mutex<Option<String>>>,
}

/// Why a write closure stopped without writing.
enum Stop {
    Api(ApiError),
    /// Dry run: everything passed; what would have been stored.
    DryRun(DryRun),
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<ApiError> for Stop {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

/// The new state a write proposes, given the current one.
enum Change {
    Create(Value),
    Replace(Value),
    Patch(PatchType, Value),
}

impl Objects {
    /// Operations over `store`, reporting removals to `collector`.
    pub fn new(store: Store, collector: Collector) -> Self {
        Self {
            store,
            collector,
            defaults_reported: Arc::default(),
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// One object.
    pub async fn get(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.store
            .get(&key(resource, namespace, name))
            .await
            .map_err(|error| ApiError::from_store(resource, name, error))
    }

    /// Every object of `resource` in `namespace` (all namespaces when `None`), with the
    /// resourceVersion the list is current at.
    pub async fn list(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<(Vec<Value>, u64), ApiError> {
        let mut scope = Scope::resource(resource.store_resource());
        if let Some(namespace) = namespace {
            scope = scope.in_namespace(namespace);
        }
        if let Some(name) = name {
            scope = scope.named(name);
        }
        let list = self
            .store
            .list(&scope)
            .await
            .map_err(|error| ApiError::from_store(resource, "", error))?;
        Ok((list.items, list.resource_version))
    }

    /// POST: creates `object` in `namespace`. A taken name is 409; a `generateName` collision
    /// is retried with a new suffix, as the real server does.
    pub async fn create(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        object: Value,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        self.check_namespace_open(resource, namespace).await?;
        let generated = meta_str(&object, "name").is_none_or(str::is_empty)
            && meta_str(&object, "generateName").is_some_and(|prefix| !prefix.is_empty());
        let attempts = if generated { 8 } else { 1 };
        let mut last = None;
        for _ in 0..attempts {
            let mut candidate = object.clone();
            // Name the object before entering the transaction: the store key needs it.
            let name = match meta_str(&candidate, "name").filter(|name| !name.is_empty()) {
                Some(name) => name.to_owned(),
                None => {
                    let prefix = meta_str(&candidate, "generateName").unwrap_or("");
                    if prefix.is_empty() {
                        return Err(name_required(resource));
                    }
                    let name = metadata::generate_name(prefix);
                    metadata::metadata_mut(&mut candidate)?
                        .insert("name".into(), name.clone().into());
                    name
                }
            };
            match self
                .write(
                    resource,
                    namespace,
                    &name,
                    false,
                    Change::Create(candidate),
                    options,
                )
                .await
            {
                Err(error) if generated && error.reason == "AlreadyExists" => last = Some(error),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| ApiError::internal("could not generate a free name")))
    }

    /// PUT: replaces the object (or its status).
    pub async fn update(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        status: bool,
        object: Value,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        self.write(
            resource,
            namespace,
            name,
            status,
            Change::Replace(object),
            options,
        )
        .await
    }

    /// PATCH: applies a patch to the object (or its status); an apply patch creates a missing
    /// object.
    pub async fn patch(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        status: bool,
        patch: Patch,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let Patch { kind, body } = patch;
        if kind == PatchType::Apply && options.field_manager.is_none() {
            return Err(ApiError {
                code: StatusCode::UNPROCESSABLE_ENTITY,
                reason: "Invalid",
                message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required \
                          value: is required for apply patch"
                    .into(),
                details: None,
            });
        }
        // Only an apply that creates is new content; one that changes an existing object (a
        // controller dropping its finalizer) must work in a terminating namespace too.
        if kind == PatchType::Apply
            && !status
            && self
                .store
                .get(&key(resource, namespace, name))
                .await
                .is_err_and(|error| matches!(error, StoreError::NotFound { .. }))
        {
            self.check_namespace_open(resource, namespace).await?;
        }
        self.write(
            resource,
            namespace,
            name,
            status,
            Change::Patch(kind, body),
            options,
        )
        .await
    }

    /// DELETE: removes the object, or starts its deletion if finalizers hold it. Dependents
    /// are then collected according to `propagation`.
    pub async fn delete(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        options: DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let DeleteOptions {
            preconditions,
            propagation,
            grace_period_seconds,
            dry_run,
        } = options;
        let hold = resource.group.is_empty() && resource.plural == "namespaces";
        if hold && super::PROTECTED_NAMESPACES.contains(&name) {
            return Err(ApiError::forbidden(
                resource,
                name,
                format!("namespaces {name:?} is forbidden: this namespace may not be deleted"),
            ));
        }
        let target = key(resource, namespace, name);
        let url_name = name.to_owned();
        let outcome = self
            .store
            .mutate(&target, move |current| -> Result<Option<Value>, Stop> {
                let current = current.ok_or_else(|| ApiError::not_found(resource, &url_name))?;
                preconditions.check(resource, &url_name, current)?;
                // A namespace always passes through Terminating: its contents go first. So does
                // a Pod running on a node, until that node confirms (see `pod_grace`).
                let grace = pod_grace(resource, current, grace_period_seconds);
                let result = if hold || !finalizers(current).is_empty() || grace > 0 {
                    let mut marked = current.clone();
                    metadata::mark_deleted(&mut marked, grace);
                    // Remembered as Kubernetes does, so the policy still holds when whatever
                    // holds the object lets go of it.
                    if propagation == Propagation::Orphan && !hold {
                        metadata::add_orphan_finalizer(&mut marked);
                    }
                    if hold {
                        marked["status"] = serde_json::json!({"phase": "Terminating"});
                    }
                    Some(marked)
                } else {
                    None
                };
                if dry_run {
                    return Err(Stop::DryRun(DryRun {
                        pending: result.is_some(),
                        object: result.unwrap_or_else(|| current.clone()),
                        created: false,
                    }));
                }
                Ok(result)
            })
            .await;
        let outcome = match outcome {
            Err(Stop::Store(StoreError::Unreadable { key, reason })) if !dry_run => {
                // Stored before writes were checked: nothing of it can be read (finalizers,
                // preconditions), so it goes at once — the one way out for it.
                tracing::warn!(%key, reason, "deleting an object that cannot be decoded");
                let stub = serde_json::json!({
                    "apiVersion": resource.api_version(),
                    "kind": resource.kind,
                    "metadata": {"name": name, "namespace": namespace},
                });
                self.store
                    .remove_unreadable(&key, stub)
                    .await
                    .map(Outcome::Deleted)
                    .map_err(Stop::Store)
            }
            other => other,
        };
        let outcome = self.settle(resource, name, outcome)?;
        match outcome {
            Settled::DryRun(dry) if dry.pending => Ok(Deleted::Pending(dry.object)),
            Settled::DryRun(dry) => Ok(Deleted::Removed(dry.object)),
            Settled::Stored(Outcome::Deleted(object)) => {
                self.collector.removed(resource, &object, propagation);
                Ok(Deleted::Removed(object))
            }
            Settled::Stored(outcome) => {
                let object = outcome
                    .into_object()
                    .ok_or_else(|| ApiError::not_found(resource, name))?;
                if hold {
                    self.collector.terminate_namespace(name);
                }
                Ok(Deleted::Pending(object))
            }
        }
    }

    /// Refuses content for a namespace that does not exist or is being deleted.
    async fn check_namespace_open(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
    ) -> Result<(), ApiError> {
        let (Some(namespace), true) = (namespace, resource.namespaced) else {
            return Ok(());
        };
        let object = self.get(namespaces_resource()?, None, namespace).await?;
        namespace_open(resource, namespace, Some(&object))
    }

    /// The shared write: one transaction computing the new state from the current one.
    async fn write(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        status: bool,
        change: Change,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        // Only the node makes pods and nodes; the cluster admin may change or delete them (the
        // handlers enforce who may write what; this keeps the rule for in-process callers).
        if resource.read_only
            && options.user != crate::credentials::NODE_USER
            && matches!(change, Change::Create(_))
        {
            return Err(ApiError::method_not_allowed(resource, "writing"));
        }
        if !options.duplicate_fields.is_empty()
            && options.field_validation == FieldValidation::Strict
        {
            return Err(strict_decoding_error(
                resource,
                !matches!(change, Change::Patch(..)),
                options
                    .duplicate_fields
                    .iter()
                    .map(|field| format!("duplicate field {field:?}")),
            ));
        }
        let warnings = Arc::new(Mutex::new(
            options
                .duplicate_fields
                .iter()
                .filter(|_| options.field_validation == FieldValidation::Warn)
                .map(|field| format!("duplicate field {field:?}"))
                .collect::<Vec<_>>(),
        ));
        let target = key(resource, namespace, name);
        // Status writes (the data plane's, every second at most per revision) are not admitted,
        // so they need no defaults read.
        let defaults = if status {
            ClusterDefaults::KNATIVE
        } else {
            self.cluster_defaults(resource).await
        };
        let step = Step {
            defaults,
            resource,
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            status,
            options: options.clone(),
            warnings: Arc::clone(&warnings),
        };
        let outcome = match (namespace, resource.namespaced) {
            (Some(namespace), true) => {
                // Content is created against the namespace as it is in the same transaction:
                // checked only before it, a create could land in a namespace whose deletion
                // had already emptied it, and outlive it.
                let namespaces = namespaces_resource()?;
                let guard = key(namespaces, None, namespace);
                let namespace = namespace.to_owned();
                self.store
                    .mutate_guarded(&target, &guard, move |current, namespace_object| {
                        if current.is_none() {
                            namespace_open(resource, &namespace, namespace_object)?;
                        }
                        step.decide(current, change)
                    })
                    .await
            }
            _ => {
                self.store
                    .mutate(&target, move |current| step.decide(current, change))
                    .await
            }
        };
        let settled = self.settle(resource, name, outcome)?;
        let warnings = std::mem::take(&mut *crate::store::lock(&warnings));
        let (code, object) = match settled {
            Settled::DryRun(dry) if dry.created => (StatusCode::CREATED, dry.object),
            Settled::DryRun(dry) => (StatusCode::OK, dry.object),
            Settled::Stored(Outcome::Created(object)) => (StatusCode::CREATED, object),
            Settled::Stored(Outcome::Deleted(object)) => {
                // The last finalizer went: the object is gone now, its dependents deleted
                // unless its delete asked to orphan them.
                let propagation = if finalizers(&object).contains(&metadata::ORPHAN_FINALIZER) {
                    Propagation::Orphan
                } else {
                    Propagation::Background
                };
                self.collector.removed(resource, &object, propagation);
                (StatusCode::OK, object)
            }
            Settled::Stored(outcome) => (
                StatusCode::OK,
                outcome
                    .into_object()
                    .ok_or_else(|| ApiError::not_found(resource, name))?,
            ),
        };
        Ok(Written {
            code,
            object,
            warnings,
        })
    }

    /// `knative-serving/config-defaults`, with the scale bounds of `config-autoscaler`, for a
    /// write of a Knative kind, read afresh so a change applies to the next write; Knative's
    /// values where they are absent.
    async fn cluster_defaults(&self, resource: &Resource) -> ClusterDefaults {
        if resource.group != crate::registry::SERVING_GROUP {
            return ClusterDefaults::KNATIVE;
        }
        let (defaults_data, defaults_version) = self
            .knative_config_map(wisp_api::knative::CONFIG_DEFAULTS)
            .await;
        let (autoscaler_data, autoscaler_version) = self
            .knative_config_map(wisp_api::knative::CONFIG_AUTOSCALER)
            .await;
        let (defaults, mut problems) = ClusterDefaults::from_data(&defaults_data);
        let (defaults, autoscaler_problems) = defaults.with_autoscaler(&autoscaler_data);
        problems.extend(autoscaler_problems);
        let version = Some(format!(
            "{}/{}",
            defaults_version.unwrap_or_default(),
            autoscaler_version.unwrap_or_default()
        ));
        let mut reported = crate::store::lock(&self.defaults_reported);
        if !problems.is_empty() && *reported != version {
            for problem in problems {
                tracing::warn!("{problem}");
            }
            *reported = version;
        }
        defaults
    }

    /// The `data` and resourceVersion of `knative-serving/<name>`; empty when it is absent or
    /// cannot be read (which is logged).
    async fn knative_config_map(
        &self,
        name: &str,
    ) -> (std::collections::BTreeMap<String, String>, Option<String>) {
        let Some(config_maps) = crate::registry::lookup("", "v1", "configmaps") else {
            return Default::default();
        };
        let stored = self
            .store
            .get(&key(
                config_maps,
                Some(wisp_api::knative::SYSTEM_NAMESPACE),
                name,
            ))
            .await;
        let object = match stored {
            Ok(object) => object,
            Err(crate::store::StoreError::NotFound { .. }) => return Default::default(),
            Err(error) => {
                tracing::warn!(%error, "cannot read {name}; using Knative's defaults");
                return Default::default();
            }
        };
        let data = object
            .get("data")
            .cloned()
            .and_then(|data| serde_json::from_value(data).ok())
            .unwrap_or_default();
        (
            data,
            meta_str(&object, "resourceVersion").map(str::to_owned),
        )
    }

    fn settle(
        &self,
        resource: &'static Resource,
        name: &str,
        outcome: Result<Outcome, Stop>,
    ) -> Result<Settled, ApiError> {
        match outcome {
            Ok(outcome) => Ok(Settled::Stored(outcome)),
            Err(Stop::DryRun(dry)) => Ok(Settled::DryRun(dry)),
            Err(Stop::Api(error)) => Err(error),
            Err(Stop::Store(error)) => Err(ApiError::from_store(resource, name, error)),
        }
    }
}

enum Settled {
    Stored(Outcome),
    DryRun(DryRun),
}

/// What a dry run would have done.
struct DryRun {
    /// The object as it would be (for a deletion: as it was last).
    object: Value,
    /// Whether it would have been created (201).
    created: bool,
    /// Whether a delete would have left it held by finalizers.
    pending: bool,
}

/// The 422 of a create with neither a name nor a generateName.
fn name_required(resource: &Resource) -> ApiError {
    ApiError::invalid(
        resource,
        "",
        vec![FieldError::required(
            "metadata.name",
            "Required value: name or generateName is required",
        )],
    )
}

/// What a DELETE asks besides its target (`DeleteOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// `preconditions`.
    pub preconditions: Preconditions,
    /// `propagationPolicy` (or `orphanDependents`).
    pub propagation: Propagation,
    /// `gracePeriodSeconds`: how long a running Pod may take to stop.
    pub grace_period_seconds: Option<i64>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// A Pod's grace period on deletion, as the real server's pod strategy decides it: a Pod
/// bound to a node and not finished waits `Terminating` for that node (its kubelet; here a
/// `wisp node`) to confirm the containers stopped with a grace period of 0 — the request's
/// `gracePeriodSeconds`, else the Pod's `terminationGracePeriodSeconds`, else 30. Anything
/// else is deleted at once (0).
fn pod_grace(resource: &Resource, pod: &Value, requested: Option<i64>) -> i64 {
    let is_pod = resource.group.is_empty() && resource.plural == "pods";
    let bound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|node| !node.is_empty());
    let finished = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if !is_pod || !bound || finished {
        return 0;
    }
    let current = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    let grace = requested
        .or(current)
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30);
    // A deletion already under way may be shortened, never lengthened.
    match current {
        Some(current) => grace.min(current),
        None => grace,
    }
}

/// `DeleteOptions.preconditions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// The object must have this uid.
    pub uid: Option<String>,
    /// The object must be at this resourceVersion.
    pub resource_version: Option<String>,
}

impl Preconditions {
    fn check(&self, resource: &Resource, name: &str, current: &Value) -> Result<(), ApiError> {
        if let Some(uid) = &self.uid
            && meta_str(current, "uid") != Some(uid.as_str())
        {
            return Err(ApiError::conflict(resource, name));
        }
        if let Some(rv) = &self.resource_version
            && meta_str(current, "resourceVersion") != Some(rv.as_str())
        {
            return Err(ApiError::conflict(resource, name));
        }
        Ok(())
    }
}

/// Everything one write's transaction needs (moved onto the store's writer thread).
struct Step {
    resource: &'static Resource,
    namespace: Option<String>,
    name: String,
    status: bool,
    options: WriteOptions,
    warnings: Arc<Mutex<Vec<String>>>,
    /// `config-defaults` as read just before the write.
    defaults: ClusterDefaults,
}

impl Step {
    fn decide(self, current: Option<&Value>, change: Change) -> Result<Option<Value>, Stop> {
        let resource = self.resource;
        let name = self.name.as_str();
        let decoded = !matches!(change, Change::Patch(..));
        let (candidate, current) = match (change, current) {
            (Change::Create(_), Some(_)) => {
                return Err(ApiError::already_exists(resource, name).into());
            }
            (Change::Create(body), None) => (body, None),
            (Change::Patch(PatchType::Apply, mut body), None) if !self.status => {
                // An apply patch that creates names its object by the URL.
                match meta_str(&body, "name") {
                    Some(given) if !given.is_empty() && given != name => {
                        return Err(ApiError::bad_request(format!(
                            "the name of the object ({given}) does not match the name on the \
                             URL ({name})"
                        ))
                        .into());
                    }
                    _ => {
                        metadata::metadata_mut(&mut body)?.insert("name".into(), name.into());
                    }
                }
                (body, None)
            }
            (Change::Replace(_) | Change::Patch(..), None) => {
                return Err(ApiError::not_found(resource, name).into());
            }
            (Change::Replace(body), Some(current)) => {
                self.check_replace_precondition(&body, current)?;
                (body, Some(current))
            }
            (Change::Patch(kind, body), Some(current)) => {
                let mut patched = patch::apply(kind, current, &body)?;
                if kind == PatchType::Apply && !self.status {
                    patch::sync_last_applied(
                        self.options.field_manager.as_deref(),
                        &body,
                        &mut patched,
                    );
                }
                if let Some(rv) = body
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    && meta_str(current, "resourceVersion") != Some(rv)
                {
                    return Err(ApiError::conflict(resource, name).into());
                }
                (patched, Some(current))
            }
        };
        let stored = match current {
            Some(current) if self.status => self.status_write(current, candidate)?,
            current => self.main_write(current, candidate, decoded)?,
        };
        if self.options.dry_run {
            return Err(Stop::DryRun(DryRun {
                created: current.is_none(),
                // A write that would complete a deletion shows the object as it was last.
                object: stored.or_else(|| current.cloned()).unwrap_or(Value::Null),
                pending: false,
            }));
        }
        Ok(stored)
    }

    /// PUT requires the resourceVersion it was based on for custom resources (§2.4) and for
    /// Leases (whose strategy refuses unconditional updates, so a leader election write can
    /// never clobber another's), and checks it for every kind.
    fn check_replace_precondition(&self, body: &Value, current: &Value) -> Result<(), ApiError> {
        match meta_str(body, "resourceVersion").filter(|rv| !rv.is_empty()) {
            Some(rv) if meta_str(current, "resourceVersion") != Some(rv) => {
                Err(ApiError::conflict(self.resource, &self.name))
            }
            Some(_) => Ok(()),
            None if !self.resource.group.is_empty() => Err(ApiError::invalid(
                self.resource,
                &self.name,
                vec![FieldError::invalid(
                    "metadata.resourceVersion",
                    "Invalid value: 0x0: must be specified for an update",
                )],
            )),
            None => Ok(()),
        }
    }

    fn status_write(&self, current: &Value, candidate: Value) -> Result<Option<Value>, ApiError> {
        let updated = metadata::apply_status(current, &candidate);
        let report = schema::check(self.resource, &updated);
        if !report.invalid.is_empty() {
            return Err(ApiError::invalid(self.resource, &self.name, report.invalid));
        }
        Ok(Some(updated))
    }

    /// `decoded`: the candidate is the request's body (create, replace), not a patch's result.
    fn main_write(
        &self,
        current: Option<&Value>,
        mut candidate: Value,
        decoded: bool,
    ) -> Result<Option<Value>, ApiError> {
        let resource = self.resource;
        let name = self.name.as_str();
        self.check_fields(&mut candidate, decoded)?;
        let namespace = self.namespace.as_deref();
        let operation = match current {
            None => {
                metadata::prepare_create(resource, namespace, &mut candidate)?;
                Operation::Create
            }
            Some(current) => {
                metadata::prepare_update(resource, namespace, name, current, &mut candidate)?;
                Operation::Update
            }
        };
        let request = admission::Request {
            resource,
            operation,
            old: current,
            user: &self.options.user,
            defaults: &self.defaults,
        };
        if current.is_none() {
            core::default_new(resource, &mut candidate);
        }
        secrets::normalize(resource, &mut candidate);
        admission::default(&request, &mut candidate);
        if let Some(current) = current {
            metadata::set_generation(current, &mut candidate)?;
        }
        let mut invalid_name = core::validate_name(resource, &candidate);
        invalid_name.extend(secrets::validate(resource, current, &candidate));
        if !invalid_name.is_empty() {
            return Err(ApiError::invalid(resource, name, invalid_name));
        }
        admission::validate(&request, &candidate)
            .map_err(|causes| ApiError::denied(resource, name, causes))?;
        // Only an object finalizers held completes its deletion here; a namespace (which
        // carries none) is completed by the garbage collector once it is empty.
        let held = current.is_some_and(|current| !finalizers(current).is_empty());
        let released = finalizers(&candidate).is_empty()
            || (current.is_some_and(metadata::held_by_others)
                && !metadata::held_by_others(&candidate));
        if held && is_terminating(&candidate) && released {
            // The last finalizer was removed (but for the orphan policy's own, which is ours to
            // carry out): deletion completes now.
            return Ok(None);
        }
        Ok(Some(candidate))
    }

    /// Type errors always refuse the object (422); unknown fields per `fieldValidation`.
    fn check_fields(&self, candidate: &mut Value, decoded: bool) -> Result<(), ApiError> {
        let report = schema::check(self.resource, candidate);
        if !report.invalid.is_empty() {
            return Err(ApiError::invalid(self.resource, &self.name, report.invalid));
        }
        if report.unknown.is_empty() {
            return Ok(());
        }
        match self.options.field_validation {
            FieldValidation::Strict => Err(strict_decoding_error(
                self.resource,
                decoded,
                report
                    .unknown
                    .iter()
                    .map(|field| format!("unknown field {field:?}")),
            )),
            FieldValidation::Warn => {
                crate::store::lock(&self.warnings).extend(
                    report
                        .unknown
                        .iter()
                        .map(|field| format!("unknown field {field:?}")),
                );
                schema::prune(self.resource, candidate);
                Ok(())
            }
            FieldValidation::Ignore => {
                schema::prune(self.resource, candidate);
                Ok(())
            }
        }
    }
}

/// The 400 of `fieldValidation=Strict` (wording of the real server's strict decoder). A body
/// the real server decodes (create, replace) fails with the decoder's prefix too: `Service in
/// version "v1" cannot be handled as a Service: strict decoding error: unknown field …`.
fn strict_decoding_error(
    resource: &Resource,
    decoded: bool,
    problems: impl Iterator<Item = String>,
) -> ApiError {
    let problems = problems.collect::<Vec<_>>().join(", ");
    let message = if decoded {
        format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding \
             error: {problems}",
            kind = resource.kind,
            version = resource.version,
        )
    } else {
        format!("strict decoding error: {problems}")
    };
    ApiError::bad_request(message)
}

/// The store key of an object.
/// The core `namespaces` resource.
fn namespaces_resource() -> Result<&'static Resource, ApiError> {
    registry::lookup("", "v1", "namespaces")
        .ok_or_else(|| ApiError::internal("the namespaces resource is not registered"))
}

/// Refuses new content of `resource` in namespace `name` (whose object is `object`) when the
/// namespace does not exist (404) or is being deleted (403), as the real server does.
fn namespace_open(resource: &Resource, name: &str, object: Option<&Value>) -> Result<(), ApiError> {
    let namespaces = namespaces_resource()?;
    match object {
        None => Err(ApiError::not_found(namespaces, name)),
        Some(object) if is_terminating(object) => Err(ApiError::forbidden(
            resource,
            "",
            format!(
                "unable to create new content in namespace {name} because it is being terminated"
            ),
        )),
        Some(_) => Ok(()),
    }
}

pub fn key(resource: &Resource, namespace: Option<&str>, name: &str) -> ObjectKey {
    ObjectKey::new(
        resource.store_resource(),
        if resource.namespaced {
            namespace.unwrap_or("")
        } else {
            ""
        },
        name,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::pod_grace;
    use crate::registry::lookup;

    fn pods() -> &'static crate::registry::Resource {
        lookup("", "v1", "pods").expect("registered")
    }

    #[test]
    fn a_running_pod_on_a_node_waits_for_its_node_and_others_go_at_once() {
        let bound = json!({"spec": {"nodeName": "wisp-a"}, "status": {"phase": "Running"}});
        assert_eq!(pod_grace(pods(), &bound, None), 30, "Kubernetes' default");
        assert_eq!(pod_grace(pods(), &bound, Some(0)), 0, "the node confirms");
        assert_eq!(pod_grace(pods(), &bound, Some(5)), 5);
        let own = json!({"spec": {"nodeName": "n", "terminationGracePeriodSeconds": 7}});
        assert_eq!(pod_grace(pods(), &own, None), 7);

        let unscheduled = json!({"spec": {}});
        assert_eq!(pod_grace(pods(), &unscheduled, None), 0);
        let finished = json!({"spec": {"nodeName": "n"}, "status": {"phase": "Succeeded"}});
        assert_eq!(pod_grace(pods(), &finished, None), 0);
        let services = lookup("serving.knative.dev", "v1", "services").expect("registered");
        assert_eq!(pod_grace(services, &bound, None), 0, "only Pods");
    }

    #[test]
    fn a_deletion_under_way_is_shortened_never_lengthened() {
        let terminating = json!({
            "metadata": {"deletionTimestamp": "t", "deletionGracePeriodSeconds": 10},
            "spec": {"nodeName": "n"},
        });
        assert_eq!(pod_grace(pods(), &terminating, None), 10);
        assert_eq!(pod_grace(pods(), &terminating, Some(60)), 10);
        assert_eq!(pod_grace(pods(), &terminating, Some(0)), 0);
    }
}
