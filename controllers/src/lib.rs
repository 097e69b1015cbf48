//! The Knative Serving controllers: Service → Configuration + Route, Configuration → Revision
//! per generation, Revision status from its nodes' reports (conditions, replica sums), Route
//! status (traffic resolution, URLs, routing states, `IngressReady` once every Ready node
//! serves the traffic), and the lifecycle of wisp's virtual nodes (a node whose heartbeat
//! Lease lapses turns `Ready=Unknown` and loses its Pods).
//!
//! They talk to the cluster only through a [`kube::Client`] (kube-runtime controllers, watches
//! and reflectors), so they run unchanged against the embedded API server or a real one. The
//! data plane meets them only through objects (the contract is [`wisp_api::nodes`]): each node
//! reports into `status.annotations` of Revisions and Routes, and these controllers never call
//! a node.
//!
//! Each controller keeps its decisions in pure functions over plain values (unit-tested next to
//! them); the reconcilers only read, call those functions and write what changed.
//!
//! [`leader`] elects one leader among several replicas through a Lease, so the controllers run
//! in one process at a time (DESIGN.md §7).

mod backoff;
mod configuration;
mod domain;
mod image_pin;
mod image_resolver;
pub mod leader;
mod meta;
mod node_lifecycle;
mod nodes;
mod revision;
mod revision_cache;
mod revision_status;
mod route;
mod route_index;
mod service;
mod shared_watch;
mod store_ready;
mod written_labels;

/// Why a reconcile failed; logged and retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    /// An object the controllers need to own or name children after lacks a field the API
    /// server always sets (namespace, uid).
    #[error("{kind} {name} has no {field}")]
    MissingField {
        /// The object's kind.
        kind: String,
        /// The object's name.
        name: String,
        /// The missing metadata field.
        field: &'static str,
    },
}

impl Error {
    /// Whether a retry right away is likely to succeed: another writer changed the object
    /// between our read and our write (409), so the next read sees its change.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api(kube::Error::Api(status)) if status.code == 409)
    }
}

/// What the controllers need besides the API.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// How the Revision controller reaches registries to resolve image tags
    /// (`--insecure-registry`).
    pub registry: wisp_oci::RegistrySettings,
}

/// Runs the Service, Configuration and Route controllers until the future is dropped.
///
/// Failed reconciles are logged (tracing) and retried with a per-object backoff; a conflict
/// (409) is retried quickly. Nothing in here panics on input: a watch that fails is retried by
/// kube-runtime with its default backoff.
pub async fn run(client: kube::Client, settings: Settings) {
    let registry = wisp_oci::Registry::new(settings.registry);
    let (revisions, [revisions_for_configurations, revisions_for_routes], watch_revisions) =
        revision_cache::watch(client.clone());
    let (
        configurations,
        [
            configurations_for_themselves,
            configurations_for_services,
            configurations_for_routes,
        ],
        watch_configurations,
    ) = shared_watch::watch_all(
        kube::Api::<wisp_api::knative::Configuration>::all(client.clone()),
        |_| {},
    );
    // The Route controller's mappers read this index, kept from the shared Route watch.
    let route_index = std::sync::Arc::new(route_index::RouteIndex::default());
    let (routes, [routes_for_themselves, routes_for_services], watch_routes) = {
        let index = route_index.clone();
        shared_watch::watch_all(
            kube::Api::<wisp_api::knative::Route>::all(client.clone()),
            move |event| index.observe(event),
        )
    };
    futures::join!(
        watch_revisions,
        watch_configurations,
        watch_routes,
        service::run(
            client.clone(),
            service::Watched {
                configurations: configurations.store.clone(),
                configuration_changes: configurations_for_services,
                routes: routes.store.clone(),
                route_changes: routes_for_services,
            }
        ),
        configuration::run(
            client.clone(),
            configuration::Watched {
                configurations: configurations.store.clone(),
                configuration_changes: configurations_for_themselves,
                revisions: revisions.clone(),
                revision_changes: revisions_for_configurations,
            }
        ),
        revision::run(client.clone(), registry),
        route::run(
            client.clone(),
            route::Watched {
                routes: routes.store,
                route_changes: routes_for_themselves,
                route_index,
                configurations,
                configuration_changes: configurations_for_routes,
                revisions,
                revision_changes: revisions_for_routes,
            }
        ),
        node_lifecycle::run(client),
    );
}

/// Reconciles of one controller in flight at once. Unbounded, a mass apply (10,000 Services)
/// started thousands of reconciles together, each with its own API requests (and connections)
/// in flight, and the process spent its time switching between them instead of finishing any.
const CONCURRENT_RECONCILES: u16 = 32;

/// How every controller here runs: bounded concurrency. Triggers are not debounced: a
/// debounce delays every reconcile, and a Service goes through three controllers on its way to
/// Ready (100 ms each made a Service's first replicas 200 ms later than without).
fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(CONCURRENT_RECONCILES)
}

/// How often an object is reconciled again with no event: a safety net for an event missed
/// while a watch was being re-established, cheap because unchanged status is not written.
const RESYNC: std::time::Duration = std::time::Duration::from_secs(300);

/// Logs what a controller's run stream reports. Reconcile failures were already logged (with
/// their backoff) by the error policy; a vanished object is routine.
fn log_outcome<K: kube::Resource>(
    kind: &str,
    outcome: Result<
        (
            kube::runtime::reflector::ObjectRef<K>,
            kube::runtime::controller::Action,
        ),
        kube::runtime::controller::Error<Error, kube::runtime::watcher::Error>,
    >,
) {
    use kube::runtime::controller::Error as Failure;
    match outcome {
        Ok(_) | Err(Failure::ObjectNotFound(_) | Failure::ReconcilerFailed(..)) => {}
        Err(error) => tracing::warn!(%kind, "controller: {error}"),
    }
}
