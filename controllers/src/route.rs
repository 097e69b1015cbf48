//! The Route controller: resolves `spec.traffic` to ready revisions, writes the Route's status
//! (traffic, URLs with the `config-domain` domain, AllTrafficAssigned, IngressReady,
//! CertificateProvisioned, Ready) and labels revisions `active` or `reserve`.
//!
//! `IngressReady` is shared with the data plane: this controller resets it to Unknown whenever
//! it changes `status.traffic`, and otherwise leaves whatever the data plane last wrote, which
//! flips it to True once the gateway serves that traffic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use wisp_api::knative::condition_types::{
    ALL_TRAFFIC_ASSIGNED, CERTIFICATE_PROVISIONED, INGRESS_READY, READY,
};
use wisp_api::knative::conditions::{self, Condition, ConditionStatus};
use wisp_api::knative::{
    Addressable, CONFIG_DOMAIN, Configuration, Revision, Route, RouteStatus, SYSTEM_NAMESPACE,
    TrafficTarget, labels,
};
use wisp_api::nodes::RouteReport;

use super::backoff::Backoff;
use super::domain::{cluster_local_url, domain_from, route_url, tag_url};
use super::meta;
use super::nodes::{self, Nodes};
use super::revision_cache::{RevisionCache, RevisionChanges};
use super::revision_status::NodeView;
use super::route_index::RouteIndex;
use super::shared_watch::{Changes, Shared};
use super::store_ready::StoreReady;
use super::written_labels::WrittenLabels;
use super::{Error, RESYNC, log_outcome};

/// How long a reconcile waits for the first list of `config-domain` before using the default
/// domain (the ConfigMap's arrival re-reconciles every Route anyway).
const DOMAIN_WAIT: Duration = Duration::from_secs(5);

/// `serving.knative.dev/routingState` of a revision created and not routed to yet (Knative's
/// `RoutingStatePending`): it becomes `active` once a route sends it traffic.
pub(super) const PENDING: &str = "pending";
/// `serving.knative.dev/routingState` of a revision some route sends traffic to.
pub(super) const ACTIVE: &str = "active";
/// `serving.knative.dev/routingState` of a revision no route sends traffic to.
pub(super) const RESERVE: &str = "reserve";

/// What the reconciler shares across reconciles.
struct Context {
    client: Client,
    backoff: Backoff,
    /// Every Route (the controller's own cache): the routing state of a revision depends on
    /// all of them.
    routes: Store<Route>,
    /// Which Routes name which revisions and follow which configurations.
    index: Arc<RouteIndex>,
    /// `knative-serving/config-domain`, kept current by a watch.
    domains: Store<ConfigMap>,
    /// Whether `domains` had its first list (any number of reconciles may wait for it).
    domains_listed: StoreReady,
    /// Every Revision, kept by the watch that also triggers this controller.
    revisions: RevisionCache,
    /// Every Configuration (the shared cache), read instead of asking the API server on each
    /// reconcile: its changes trigger the Routes that follow it, after the store has them.
    configurations: Store<Configuration>,
    configurations_listed: StoreReady,
    /// The wisp nodes: `IngressReady` waits for every Ready one.
    nodes: Nodes,
    /// Routing-state labels written that the revision cache may not show yet.
    written_labels: WrittenLabels,
}

/// The caches this controller reads, shared with the others, and its streams of their changes.
pub(super) struct Watched {
    pub routes: Store<Route>,
    pub route_changes: Changes<Route>,
    /// Kept from the same watch as `routes`.
    pub route_index: Arc<RouteIndex>,
    pub configurations: Shared<Configuration>,
    pub configuration_changes: Changes<Configuration>,
    pub revisions: RevisionCache,
    /// The significant changes of `revisions`.
    pub revision_changes: RevisionChanges,
}

/// Runs the controller until the future is dropped.
pub(super) async fn run(client: Client, watched: Watched) {
    let Watched {
        routes,
        route_changes,
        route_index: index,
        configurations,
        configuration_changes,
        revisions,
        revision_changes,
    } = watched;
    let (domains, domain_writer) = reflector::store::<ConfigMap>();
    let domain_config =
        watcher::Config::default().fields(&format!("metadata.name={CONFIG_DOMAIN}"));
    let domain_changes = reflector::reflector(
        domain_writer,
        watcher(
            Api::<ConfigMap>::namespaced(client.clone(), SYSTEM_NAMESPACE),
            domain_config,
        )
        .default_backoff(),
    )
    .touched_objects()
    .filter_map(|change| {
        if let Err(error) = &change {
            tracing::warn!("watching {SYSTEM_NAMESPACE}/{CONFIG_DOMAIN}: {error}");
        }
        futures::future::ready(change.ok().map(|_| ()))
    });

    let controller = Controller::for_stream(route_changes, routes.clone())
        .with_config(super::controller_config());
    let by_configuration = index.clone();
    let by_revision = index.clone();
    let (nodes, node_changes) = nodes::watch(client.clone());
    let context = Arc::new(Context {
        client: client.clone(),
        backoff: Backoff::default(),
        routes,
        index,
        domains_listed: StoreReady::of(&domains),
        domains,
        revisions,
        configurations_listed: configurations.listed,
        configurations: configurations.store,
        nodes,
        written_labels: WrittenLabels::default(),
    });
    controller
        .watches_stream(configuration_changes, move |cfg| {
            by_configuration.following(&cfg.namespace().unwrap_or_default(), &cfg.name_any())
        })
        .watches_stream(revision_changes, move |revision| {
            by_revision.concerning_revision(
                &revision.namespace().unwrap_or_default(),
                &revision.name_any(),
                revision
                    .labels()
                    .get(labels::CONFIGURATION)
                    .map(String::as_str),
            )
        })
        .reconcile_all_on(futures::stream::select(domain_changes, node_changes))
        .run(reconcile, error_policy, context)
        .for_each(|outcome| {
            log_outcome("Route", outcome);
            futures::future::ready(())
        })
        .await;
}

/// The configurations a route follows: those its targets name, and the one of its own name
/// (a Service's Configuration, which a target without `configurationName` means).
pub(super) fn referenced_configurations(route: &Route) -> BTreeSet<String> {
    route
        .spec
        .traffic
        .iter()
        .filter_map(|t| t.configuration_name.clone())
        .chain([route.name_any()])
        .collect()
}

fn error_policy(route: Arc<Route>, error: &Error, context: Arc<Context>) -> Action {
    context.backoff.failed(route.as_ref(), error)
}

async fn reconcile(route: Arc<Route>, context: Arc<Context>) -> Result<Action, Error> {
    context.backoff.forget_deleted_when_grown(&context.routes);
    let action = reconcile_route(&route, &context).await?;
    context.backoff.succeeded(route.as_ref());
    Ok(action)
}

async fn reconcile_route(route: &Route, context: &Context) -> Result<Action, Error> {
    if route.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = meta::namespace(route)?;
    let name = route.name_any();
    let client = &context.client;

    // Before their first list, the caches would call every configuration and revision missing.
    context.configurations_listed.wait().await;
    context.revisions.wait_until_ready().await;
    let mut config_views = BTreeMap::new();
    let mut revision_views = BTreeMap::new();
    for target in &route.spec.traffic {
        if let Some(cfg_name) = followed_configuration(target, &name) {
            if !config_views.contains_key(cfg_name) {
                let view = context
                    .configurations
                    .get(&ObjectRef::new(cfg_name).within(&namespace))
                    .map(|c| view_of(&c));
                config_views.insert(cfg_name.to_owned(), view);
            }
        } else if let Some(revision) = target.revision_name.as_deref()
            && !revision_views.contains_key(revision)
        {
            let view = context
                .revisions
                .get(&namespace, revision)
                .map(|r| ready_of(&r));
            revision_views.insert(revision.to_owned(), view);
        }
    }
    let resolutions: Vec<Resolution> = route
        .spec
        .traffic
        .iter()
        .map(|t| resolve(t, &name, &config_views, &revision_views))
        .collect();

    if tokio::time::timeout(DOMAIN_WAIT, context.domains_listed.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "{SYSTEM_NAMESPACE}/{CONFIG_DOMAIN} not listed yet; using the default domain"
        );
    }
    let domain_object = context
        .domains
        .get(&ObjectRef::new(CONFIG_DOMAIN).within(SYSTEM_NAMESPACE));
    let domain = domain_from(domain_object.as_ref().and_then(|cm| cm.data.as_ref()));

    let old = route.status.clone().unwrap_or_default();
    context.nodes.wait_until_ready().await;
    let nodes = context.nodes.view();
    let view = RouteView {
        name: &name,
        namespace: &namespace,
        generation: route.metadata.generation,
        traffic: &route.spec.traffic,
        domain: &domain,
        nodes: &nodes,
    };
    let status = next_status(&view, &resolutions, &old, &meta::now());
    let changed = status != old;
    let traffic = status.traffic.clone();
    if changed {
        let mut updated = route.clone();
        updated.status = Some(status);
        Api::<Route>::namespaced(client.clone(), &namespace)
            .replace_status(&name, &PostParams::default(), &updated)
            .await?;
    }
    label_routing_states(route, &namespace, &old.traffic, &traffic, context).await?;
    Ok(Action::requeue(RESYNC))
}

/// Labels the revisions this route follows or routed to: `active` when some route's status
/// sends them traffic, `reserve` otherwise. Only labels that change are written.
async fn label_routing_states(
    route: &Route,
    namespace: &str,
    old_traffic: &[TrafficTarget],
    new_traffic: &[TrafficTarget],
    context: &Context,
) -> Result<(), Error> {
    let revisions: Api<Revision> = Api::namespaced(context.client.clone(), namespace);
    let mut current: BTreeMap<String, Option<String>> = BTreeMap::new();
    // The cached resourceVersion each state was read at, which a label written is decided over.
    let mut versions: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut read = |revision: &Revision| {
        let name = revision.name_any();
        let version = revision.metadata.resource_version.clone();
        let state = context.written_labels.state(
            namespace,
            &name,
            revision.labels().get(labels::ROUTING_STATE).cloned(),
            version.as_deref(),
        );
        current.insert(name.clone(), state);
        versions.insert(name, version);
    };
    context.revisions.wait_until_ready().await;
    let mut followed: BTreeSet<String> = BTreeSet::new();
    for cfg in referenced_configurations(route) {
        for revision in context.revisions.of_configuration(namespace, &cfg) {
            followed.insert(revision.name_any());
            read(&revision);
        }
    }
    for name in routed(old_traffic).chain(routed(new_traffic)) {
        if !followed.contains(name)
            && let Some(revision) = context.revisions.get(namespace, name)
        {
            followed.insert(name.to_owned());
            read(&revision);
        }
    }
    let mut active: BTreeSet<String> = routed(new_traffic).map(str::to_owned).collect();
    // Another route may send traffic to a revision this one does not: before labelling one
    // `reserve`, ask the index which routes name it and read their status traffic.
    let own_name = route.name_any();
    let to_reserve: Vec<String> = routing_changes(&current, &active)
        .into_iter()
        .filter(|(_, state)| *state == RESERVE)
        .map(|(name, _)| name)
        .collect();
    for revision in to_reserve {
        let routed_elsewhere = context
            .index
            .concerning_revision(namespace, &revision, None)
            .into_iter()
            .filter(|other| other.name != own_name)
            .filter_map(|other| context.routes.get(&other))
            .any(|other| {
                other
                    .status
                    .iter()
                    .flat_map(|status| &status.traffic)
                    .any(|target| target.revision_name.as_deref() == Some(revision.as_str()))
            });
        if routed_elsewhere {
            active.insert(revision);
        }
    }
    for (name, state) in routing_changes(&current, &active) {
        let patch = json!({"metadata": {
            "labels": {labels::ROUTING_STATE: state},
            "annotations": {labels::ROUTING_STATE_MODIFIED: meta::now()},
        }});
        revisions
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        let over_version = versions.get(&name).cloned().flatten();
        context
            .written_labels
            .wrote(namespace, &name, state, over_version);
    }
    Ok(())
}

/// The revisions a status's traffic names.
fn routed(traffic: &[TrafficTarget]) -> impl Iterator<Item = &str> {
    traffic.iter().filter_map(|t| t.revision_name.as_deref())
}

/// The routing-state labels to write: revisions in `active` become `active`, the others
/// `reserve`, except `pending` ones, which wait to be routed (as in Knative: a new revision
/// goes from `pending` to `active` in one write, not through `reserve` while it starts);
/// revisions already labelled so are left alone.
pub(super) fn routing_changes(
    current: &BTreeMap<String, Option<String>>,
    active: &BTreeSet<String>,
) -> Vec<(String, &'static str)> {
    current
        .iter()
        .filter_map(|(name, state)| {
            let wanted = if active.contains(name) {
                ACTIVE
            } else if state.as_deref() == Some(PENDING) {
                return None;
            } else {
                RESERVE
            };
            (state.as_deref() != Some(wanted)).then(|| (name.clone(), wanted))
        })
        .collect()
}

/// A Configuration as a traffic target sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct ConfigurationView {
    pub latest_ready: Option<String>,
    pub ready: ConditionStatus,
}

fn view_of(cfg: &Configuration) -> ConfigurationView {
    let status = cfg.status.clone().unwrap_or_default();
    ConfigurationView {
        latest_ready: status.latest_ready_revision_name.filter(|n| !n.is_empty()),
        ready: conditions::get(&status.conditions, READY)
            .map_or(ConditionStatus::Unknown, |c| c.status),
    }
}

/// A revision's readiness (Unknown until the data plane reports).
fn ready_of(revision: &Revision) -> ConditionStatus {
    revision
        .status
        .as_ref()
        .and_then(|s| conditions::get(&s.conditions, READY))
        .map_or(ConditionStatus::Unknown, |c| c.status)
}

/// The configuration a target follows, if it follows one: its `configurationName`, or the
/// route's own name (a Service's Configuration).
pub(super) fn followed_configuration<'a>(
    target: &'a TrafficTarget,
    route: &'a str,
) -> Option<&'a str> {
    target
        .follows_latest()
        .then(|| target.configuration_name.as_deref().unwrap_or(route))
}

/// What a traffic target resolved to.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Resolution {
    /// A ready revision.
    Revision(String),
    /// None yet: the AllTrafficAssigned condition saying why.
    Unassigned(Condition),
}

impl Resolution {
    fn revision(&self) -> Option<&str> {
        match self {
            Resolution::Revision(name) => Some(name),
            Resolution::Unassigned(_) => None,
        }
    }

    fn unassigned(&self) -> Option<&Condition> {
        match self {
            Resolution::Revision(_) => None,
            Resolution::Unassigned(why) => Some(why),
        }
    }
}

fn unassigned(status: ConditionStatus, reason: &str, message: String) -> Resolution {
    Resolution::Unassigned(Condition::new(ALL_TRAFFIC_ASSIGNED, status).because(reason, message))
}

/// Resolves one target against the configurations and revisions it names (`None` = absent).
pub(super) fn resolve(
    target: &TrafficTarget,
    route: &str,
    configurations: &BTreeMap<String, Option<ConfigurationView>>,
    revisions: &BTreeMap<String, Option<ConditionStatus>>,
) -> Resolution {
    use ConditionStatus::{False, True, Unknown};
    if let Some(cfg) = followed_configuration(target, route) {
        return match configurations.get(cfg).cloned().flatten() {
            None => unassigned(
                False,
                "ConfigurationMissing",
                format!("Configuration {cfg:?} referenced in traffic not found."),
            ),
            Some(ConfigurationView {
                latest_ready: Some(revision),
                ..
            }) => Resolution::Revision(revision),
            Some(view) => unassigned(
                if view.ready == False { False } else { Unknown },
                "RevisionMissing",
                format!("Configuration {cfg:?} does not have any ready Revision."),
            ),
        };
    }
    let revision = target.revision_name.clone().unwrap_or_default();
    match revisions.get(&revision).copied().flatten() {
        None => unassigned(
            False,
            "RevisionMissing",
            format!("Revision {revision:?} referenced in traffic not found."),
        ),
        Some(True) => Resolution::Revision(revision),
        Some(False) => unassigned(
            False,
            "RevisionFailed",
            format!("Revision {revision:?} failed to become ready."),
        ),
        Some(Unknown) => unassigned(
            Unknown,
            "RevisionMissing",
            format!("Revision {revision:?} is not yet ready."),
        ),
    }
}

/// The route facts its status is computed from.
pub(super) struct RouteView<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub generation: Option<i64>,
    pub traffic: &'a [TrafficTarget],
    pub domain: &'a str,
    /// The wisp nodes, whose reports decide `IngressReady`.
    pub nodes: &'a NodeView,
}

/// One `status.traffic[]` entry: the target resolved to `revision`, with its tag's URL.
fn status_entry(target: &TrafficTarget, revision: &str, route: &RouteView<'_>) -> TrafficTarget {
    TrafficTarget {
        tag: target.tag.clone(),
        revision_name: Some(revision.to_owned()),
        configuration_name: None,
        latest_revision: Some(target.follows_latest()),
        percent: Some(target.percent.unwrap_or(0)),
        url: target
            .tag
            .as_deref()
            .map(|tag| tag_url(tag, route.name, route.namespace, route.domain)),
    }
}

/// The Route's next status. When every target resolved, `status.traffic` becomes the
/// resolution; otherwise it keeps its previous value (the old revision keeps serving during a
/// rollout) with URLs refreshed for the current domain.
pub(super) fn next_status(
    route: &RouteView<'_>,
    resolutions: &[Resolution],
    old: &RouteStatus,
    now: &str,
) -> RouteStatus {
    let mut status = old.clone();
    let failed = resolutions
        .iter()
        .filter_map(Resolution::unassigned)
        .min_by_key(|c| c.status != ConditionStatus::False);
    let (traffic, assigned): (Vec<TrafficTarget>, Condition) = match failed {
        Some(reason) => {
            let kept = old
                .traffic
                .iter()
                .map(|t| TrafficTarget {
                    url: t
                        .tag
                        .as_deref()
                        .map(|tag| tag_url(tag, route.name, route.namespace, route.domain)),
                    ..t.clone()
                })
                .collect();
            (kept, reason.clone())
        }
        None => {
            let traffic = route
                .traffic
                .iter()
                .zip(resolutions.iter().filter_map(Resolution::revision))
                .map(|(target, revision)| status_entry(target, revision, route))
                .collect();
            (
                traffic,
                Condition::new(ALL_TRAFFIC_ASSIGNED, ConditionStatus::True),
            )
        }
    };
    let url = route_url(route.name, route.namespace, route.domain);
    let ingress = match conditions::get(&old.conditions, INGRESS_READY) {
        // Knative's rule: a node that joins later is not waited for on unchanged traffic.
        Some(stored)
            if stored.is_true() && traffic == old.traffic && old.url.as_deref() == Some(&url) =>
        {
            stored.clone()
        }
        _ => ingress_from_reports(&old.annotations, &traffic, &url, route.nodes),
    };
    status.annotations.retain(|key, _| {
        wisp_api::nodes::report_node(key).is_none_or(|node| route.nodes.known.contains(node))
    });
    status.traffic = traffic;
    status.url = Some(url);
    status.address = Some(Addressable {
        url: Some(cluster_local_url(route.name, route.namespace)),
    });
    status.observed_generation = route.generation;
    conditions::set(&mut status.conditions, assigned, now);
    conditions::set(&mut status.conditions, ingress, now);
    conditions::set(
        &mut status.conditions,
        Condition::new(CERTIFICATE_PROVISIONED, ConditionStatus::True)
            .because("TLSNotEnabled", "auto-tls is not enabled"),
        now,
    );
    conditions::set_ready(
        &mut status.conditions,
        &[ALL_TRAFFIC_ASSIGNED, INGRESS_READY, CERTIFICATE_PROVISIONED],
        now,
    );
    status
}

/// `IngressReady` from the nodes' reports: True once every Ready node serves exactly this
/// traffic (Knative's ingress probing, through the API), False as soon as one of them cannot
/// serve it (the node named), Unknown while some have not caught up.
fn ingress_from_reports(
    annotations: &BTreeMap<String, String>,
    traffic: &[TrafficTarget],
    url: &str,
    nodes: &NodeView,
) -> Condition {
    const NOT_CONFIGURED: &str = "IngressNotConfigured";
    if nodes.ready.is_empty() {
        return Condition::new(INGRESS_READY, ConditionStatus::Unknown)
            .because(NOT_CONFIGURED, "No Ready wisp node serves routes yet.");
    }
    let hash = wisp_api::nodes::traffic_hash(traffic, Some(url));
    let reports: BTreeMap<&str, RouteReport> = wisp_api::nodes::reports(annotations)
        .filter(|(node, report): &(&str, RouteReport)| {
            nodes.ready.contains(*node) && report.serving == hash
        })
        .collect();
    if let Some((node, problem)) = reports
        .iter()
        .find_map(|(node, report)| Some((node, report.problem.as_deref()?)))
    {
        return Condition::new(INGRESS_READY, ConditionStatus::False)
            .because(NOT_CONFIGURED, format!("{problem} (on node {node})"));
    }
    let waiting: Vec<&str> = nodes
        .ready
        .iter()
        .map(String::as_str)
        .filter(|node| !reports.contains_key(node))
        .collect();
    if waiting.is_empty() {
        return Condition::new(INGRESS_READY, ConditionStatus::True);
    }
    Condition::new(INGRESS_READY, ConditionStatus::Unknown).because(
        NOT_CONFIGURED,
        format!(
            "Waiting for {} {} to serve the new traffic.",
            if waiting.len() == 1 { "node" } else { "nodes" },
            waiting.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use wisp_api::knative::RouteSpec;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn latest(cfg: &str, percent: i64, tag: Option<&str>) -> TrafficTarget {
        TrafficTarget {
            configuration_name: Some(cfg.into()),
            latest_revision: Some(true),
            percent: Some(percent),
            tag: tag.map(str::to_owned),
            ..TrafficTarget::default()
        }
    }

    fn pinned(revision: &str, percent: i64, tag: Option<&str>) -> TrafficTarget {
        TrafficTarget {
            revision_name: Some(revision.into()),
            percent: Some(percent),
            tag: tag.map(str::to_owned),
            ..TrafficTarget::default()
        }
    }

    fn configs(
        latest_ready: Option<&str>,
        ready: ConditionStatus,
    ) -> BTreeMap<String, Option<ConfigurationView>> {
        BTreeMap::from([(
            "hello".to_owned(),
            Some(ConfigurationView {
                latest_ready: latest_ready.map(str::to_owned),
                ready,
            }),
        )])
    }

    static ONE_NODE: std::sync::LazyLock<NodeView> = std::sync::LazyLock::new(|| NodeView {
        ready: BTreeSet::from(["a".to_owned()]),
        known: BTreeSet::from(["a".to_owned()]),
    });

    fn view<'a>(traffic: &'a [TrafficTarget], domain: &'a str) -> RouteView<'a> {
        RouteView {
            name: "hello",
            namespace: "default",
            generation: Some(1),
            traffic,
            domain,
            nodes: &ONE_NODE,
        }
    }

    #[test]
    fn targets_resolve_to_ready_revisions() {
        let revisions = BTreeMap::from([
            ("hello-00001".to_owned(), Some(ConditionStatus::True)),
            ("hello-00002".to_owned(), Some(ConditionStatus::Unknown)),
            ("hello-00003".to_owned(), Some(ConditionStatus::False)),
            ("hello-00004".to_owned(), None),
        ]);
        let cfgs = configs(Some("hello-00001"), ConditionStatus::True);
        assert_eq!(
            resolve(&latest("hello", 100, None), "hello", &cfgs, &revisions),
            Resolution::Revision("hello-00001".into())
        );
        // A target with neither name follows the route's own (Service's) configuration.
        let bare = TrafficTarget {
            percent: Some(100),
            ..TrafficTarget::default()
        };
        assert_eq!(
            resolve(&bare, "hello", &cfgs, &revisions),
            Resolution::Revision("hello-00001".into())
        );
        assert_eq!(
            resolve(
                &pinned("hello-00001", 100, None),
                "hello",
                &cfgs,
                &revisions
            ),
            Resolution::Revision("hello-00001".into())
        );
        let reason = |r: Resolution| {
            r.unassigned()
                .map(|c| (c.status, c.reason.clone().unwrap_or_default()))
        };
        assert_eq!(
            reason(resolve(
                &pinned("hello-00002", 1, None),
                "hello",
                &cfgs,
                &revisions
            )),
            Some((ConditionStatus::Unknown, "RevisionMissing".into()))
        );
        assert_eq!(
            reason(resolve(
                &pinned("hello-00003", 1, None),
                "hello",
                &cfgs,
                &revisions
            )),
            Some((ConditionStatus::False, "RevisionFailed".into()))
        );
        assert_eq!(
            reason(resolve(
                &pinned("hello-00004", 1, None),
                "hello",
                &cfgs,
                &revisions
            )),
            Some((ConditionStatus::False, "RevisionMissing".into()))
        );
        assert_eq!(
            reason(resolve(
                &latest("other", 1, None),
                "hello",
                &cfgs,
                &revisions
            )),
            Some((ConditionStatus::False, "ConfigurationMissing".into()))
        );
        let waiting = resolve(
            &latest("hello", 100, None),
            "hello",
            &configs(None, ConditionStatus::Unknown),
            &revisions,
        );
        let condition = waiting.unassigned().cloned().unwrap_or_default();
        assert_eq!(condition.status, ConditionStatus::Unknown);
        assert_eq!(
            condition.message.as_deref(),
            Some("Configuration \"hello\" does not have any ready Revision.")
        );
        let failed = resolve(
            &latest("hello", 100, None),
            "hello",
            &configs(None, ConditionStatus::False),
            &revisions,
        );
        assert_eq!(
            failed.unassigned().map(|c| c.status),
            Some(ConditionStatus::False)
        );
    }

    #[test]
    fn a_resolved_route_gets_traffic_urls_and_waits_for_the_ingress() {
        let traffic = [
            latest("hello", 50, Some("candidate")),
            pinned("hello-00001", 50, Some("current")),
        ];
        let resolutions = [
            Resolution::Revision("hello-00002".into()),
            Resolution::Revision("hello-00001".into()),
        ];
        let status = next_status(
            &view(&traffic, "example.com"),
            &resolutions,
            &RouteStatus::default(),
            NOW,
        );
        assert_eq!(
            status.url.as_deref(),
            Some("http://hello.default.example.com")
        );
        assert_eq!(
            status.address.and_then(|a| a.url).as_deref(),
            Some("http://hello.default.svc.cluster.local")
        );
        assert_eq!(
            status.traffic,
            [
                TrafficTarget {
                    tag: Some("candidate".into()),
                    revision_name: Some("hello-00002".into()),
                    configuration_name: None,
                    latest_revision: Some(true),
                    percent: Some(50),
                    url: Some("http://candidate-hello.default.example.com".into()),
                },
                TrafficTarget {
                    tag: Some("current".into()),
                    revision_name: Some("hello-00001".into()),
                    configuration_name: None,
                    latest_revision: Some(false),
                    percent: Some(50),
                    url: Some("http://current-hello.default.example.com".into()),
                },
            ]
        );
        assert!(conditions::is_true(
            &status.conditions,
            ALL_TRAFFIC_ASSIGNED
        ));
        assert!(conditions::is_true(
            &status.conditions,
            CERTIFICATE_PROVISIONED
        ));
        let ingress = conditions::get(&status.conditions, INGRESS_READY)
            .cloned()
            .unwrap_or_default();
        assert_eq!(ingress.reason.as_deref(), Some("IngressNotConfigured"));
        assert!(!conditions::is_true(&status.conditions, READY));
        assert_eq!(status.observed_generation, Some(1));
    }

    #[test]
    fn ingress_is_ready_once_every_ready_node_serves_the_traffic() {
        use wisp_api::nodes::{encode, report_key, traffic_hash};
        let url = "http://hello.default.localhost";
        let traffic = [pinned("hello-00002", 100, None)];
        let hash = traffic_hash(&traffic, Some(url));
        let nodes = NodeView {
            ready: BTreeSet::from(["a".to_owned(), "b".to_owned()]),
            known: BTreeSet::from(["a".to_owned(), "b".to_owned(), "c".to_owned()]),
        };
        let serving = |hash: &str, problem: Option<&str>| {
            encode(&RouteReport {
                serving: hash.to_owned(),
                problem: problem.map(str::to_owned),
            })
        };
        let mut reports = BTreeMap::from([
            (report_key("a"), serving(&hash, None)),
            (report_key("b"), serving("0000000000000000", None)),
        ]);
        let waiting = ingress_from_reports(&reports, &traffic, url, &nodes);
        assert_eq!(waiting.status, ConditionStatus::Unknown);
        assert_eq!(
            waiting.message.as_deref(),
            Some("Waiting for node b to serve the new traffic.")
        );
        // A lapsed node (c, known but not Ready) is not waited for.
        reports.insert(report_key("b"), serving(&hash, None));
        assert!(ingress_from_reports(&reports, &traffic, url, &nodes).is_true());
        reports.insert(report_key("b"), serving(&hash, Some("host clash")));
        let failed = ingress_from_reports(&reports, &traffic, url, &nodes);
        assert_eq!(failed.status, ConditionStatus::False);
        assert_eq!(failed.message.as_deref(), Some("host clash (on node b)"));
        let none = ingress_from_reports(&reports, &traffic, url, &NodeView::default());
        assert_eq!(none.status, ConditionStatus::Unknown);
    }

    #[test]
    fn the_data_planes_ingress_ready_stays_until_the_traffic_changes() {
        let traffic = [latest("hello", 100, None)];
        let first = next_status(
            &view(&traffic, "localhost"),
            &[Resolution::Revision("hello-00001".into())],
            &RouteStatus::default(),
            NOW,
        );
        let mut served = first.clone();
        conditions::set(
            &mut served.conditions,
            Condition::new(INGRESS_READY, ConditionStatus::True),
            NOW,
        );
        let again = next_status(
            &view(&traffic, "localhost"),
            &[Resolution::Revision("hello-00001".into())],
            &served,
            NOW,
        );
        assert!(conditions::is_true(&again.conditions, READY));
        let mut settled = again.clone();
        conditions::set_ready(
            &mut settled.conditions,
            &[ALL_TRAFFIC_ASSIGNED, INGRESS_READY, CERTIFICATE_PROVISIONED],
            NOW,
        );
        assert_eq!(again, settled, "no second write once settled");
        let moved = next_status(
            &view(&traffic, "localhost"),
            &[Resolution::Revision("hello-00002".into())],
            &again,
            NOW,
        );
        assert_eq!(
            conditions::get(&moved.conditions, INGRESS_READY).map(|c| c.status),
            Some(ConditionStatus::Unknown)
        );
    }

    #[test]
    fn unresolved_targets_keep_the_previous_traffic() {
        let traffic = [latest("hello", 100, Some("latest"))];
        let before = next_status(
            &view(&traffic, "localhost"),
            &[Resolution::Revision("hello-00001".into())],
            &RouteStatus::default(),
            NOW,
        );
        let pending = Condition::new(ALL_TRAFFIC_ASSIGNED, ConditionStatus::Unknown)
            .because("RevisionMissing", "waiting");
        let failed = Condition::new(ALL_TRAFFIC_ASSIGNED, ConditionStatus::False)
            .because("RevisionFailed", "broken");
        let two = [
            latest("hello", 50, Some("latest")),
            pinned("hello-00009", 50, None),
        ];
        let during = next_status(
            &view(&two, "example.org"),
            &[
                Resolution::Unassigned(pending),
                Resolution::Unassigned(failed),
            ],
            &before,
            NOW,
        );
        assert_eq!(during.traffic.len(), 1);
        assert_eq!(
            during.traffic[0].revision_name.as_deref(),
            Some("hello-00001")
        );
        assert_eq!(
            during.traffic[0].url.as_deref(),
            Some("http://latest-hello.default.example.org"),
            "kept traffic follows a domain change"
        );
        let assigned = conditions::get(&during.conditions, ALL_TRAFFIC_ASSIGNED)
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            assigned.status,
            ConditionStatus::False,
            "a failure outranks a wait"
        );
        assert_eq!(assigned.reason.as_deref(), Some("RevisionFailed"));
    }

    #[test]
    fn routing_states_change_only_where_needed() {
        let current = BTreeMap::from([
            ("hello-00001".to_owned(), Some(ACTIVE.to_owned())),
            ("hello-00002".to_owned(), None),
            ("hello-00003".to_owned(), Some(RESERVE.to_owned())),
            ("hello-00004".to_owned(), Some(ACTIVE.to_owned())),
            ("hello-00005".to_owned(), Some(PENDING.to_owned())),
            ("hello-00006".to_owned(), Some(PENDING.to_owned())),
        ]);
        let active = BTreeSet::from([
            "hello-00001".to_owned(),
            "hello-00002".to_owned(),
            "hello-00006".to_owned(),
        ]);
        assert_eq!(
            routing_changes(&current, &active),
            [
                ("hello-00002".to_owned(), ACTIVE),
                ("hello-00004".to_owned(), RESERVE),
                ("hello-00006".to_owned(), ACTIVE),
            ],
            "a pending revision stays pending until it is routed"
        );
    }

    #[test]
    fn a_route_follows_its_named_and_same_named_configurations() {
        let route = Route::new(
            "hello",
            RouteSpec {
                traffic: vec![latest("other", 100, None), pinned("x-00001", 0, None)],
            },
        );
        let referenced: Vec<String> = referenced_configurations(&route).into_iter().collect();
        assert_eq!(referenced, ["hello", "other"]);
    }
}
