//! The Service controller: a Configuration and a Route of the Service's name, kept equal to
//! what the Service asks for (template, traffic, propagated labels and annotations), and the
//! Service's status mirroring both.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use wisp_api::knative::condition_types::{CONFIGURATIONS_READY, READY, ROUTES_READY};
use wisp_api::knative::conditions::{self, Condition, ConditionStatus};
use wisp_api::knative::labels;
use wisp_api::knative::{
    Configuration, ConfigurationSpec, Route, RouteSpec, Service, ServiceStatus, TrafficTarget,
};

use super::backoff::Backoff;
use super::meta::{self, controller_reference, is_controlled_by, propagated};
use super::shared_watch::Changes;
use super::{Error, RESYNC, log_outcome};

/// What the reconciler shares across reconciles.
struct Context {
    client: Client,
    backoff: Backoff,
    /// Every Service (the controller's own cache), to forget the failures of deleted ones.
    services: Store<Service>,
    /// Every Configuration and Route, from the shared watches that also trigger this
    /// controller: a reconcile reads its children here instead of asking the API server.
    configurations: Store<Configuration>,
    routes: Store<Route>,
}

/// The caches of the Service's children, shared with the other controllers, and its streams of
/// their changes.
pub(super) struct Watched {
    pub configurations: Store<Configuration>,
    pub configuration_changes: Changes<Configuration>,
    pub routes: Store<Route>,
    pub route_changes: Changes<Route>,
}

/// Runs the controller until the future is dropped.
pub(super) async fn run(client: Client, watched: Watched) {
    let Watched {
        configurations,
        configuration_changes,
        routes,
        route_changes,
    } = watched;
    let controller = Controller::new(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let context = Arc::new(Context {
        client: client.clone(),
        backoff: Backoff::default(),
        services: controller.store(),
        configurations,
        routes,
    });
    controller
        .with_config(super::controller_config())
        .owns_stream(configuration_changes)
        .owns_stream(route_changes)
        .run(reconcile, error_policy, context)
        .for_each(|outcome| {
            log_outcome("Service", outcome);
            futures::future::ready(())
        })
        .await;
}

fn error_policy(svc: Arc<Service>, error: &Error, context: Arc<Context>) -> Action {
    context.backoff.failed(svc.as_ref(), error)
}

async fn reconcile(svc: Arc<Service>, context: Arc<Context>) -> Result<Action, Error> {
    context.backoff.forget_deleted_when_grown(&context.services);
    let action = reconcile_service(&svc, &context).await?;
    context.backoff.succeeded(svc.as_ref());
    Ok(action)
}

async fn reconcile_service(svc: &Service, context: &Context) -> Result<Action, Error> {
    if svc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let client = &context.client;
    let namespace = meta::namespace(svc)?;
    let uid = meta::uid(svc)?;
    let configuration = ensure(
        &Api::<Configuration>::namespaced(client.clone(), &namespace),
        &context.configurations,
        desired_configuration(svc)?,
        &uid,
        configuration_update,
    )
    .await?;
    let route = ensure(
        &Api::<Route>::namespaced(client.clone(), &namespace),
        &context.routes,
        desired_route(svc)?,
        &uid,
        route_update,
    )
    .await?;

    let old = svc.status.clone().unwrap_or_default();
    let status = next_status(
        &old,
        svc.metadata.generation,
        &configuration,
        &route,
        &meta::now(),
    );
    if status != old {
        let mut updated = svc.clone();
        updated.status = Some(status);
        Api::<Service>::namespaced(client.clone(), &namespace)
            .replace_status(&svc.name_any(), &PostParams::default(), &updated)
            .await?;
    }
    Ok(Action::requeue(RESYNC))
}

/// Creates `desired`, or brings the existing object of its name to it when the Service owns
/// that object; an object someone else owns is left alone and reported. The object is read
/// from `cache`; when the cache is behind (a create finds the name taken, a replace finds a
/// newer version) the API server's copy decides, and a conflict left over is retried by the
/// controller like any failed reconcile.
async fn ensure<K>(
    api: &Api<K>,
    cache: &Store<K>,
    desired: K,
    owner_uid: &str,
    update: fn(&K, &K) -> Option<K>,
) -> Result<Child<K>, Error>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug,
    K: serde::Serialize + serde::de::DeserializeOwned,
{
    let name = desired.name_any();
    let key = ObjectRef::<K>::new(&name).within(desired.meta().namespace.as_deref().unwrap_or(""));
    let existing = match cache.get(&key) {
        Some(cached) => Some(K::clone(&cached)),
        None => match api.create(&PostParams::default(), &desired).await {
            Ok(created) => {
                tracing::info!(kind = %K::kind(&()), %name, "created");
                return Ok(Child::Owned(created));
            }
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                api.get_opt(&name).await?
            }
            Err(error) => return Err(error.into()),
        },
    };
    match existing {
        None => Ok(Child::Owned(
            api.create(&PostParams::default(), &desired).await?,
        )),
        Some(existing) if is_controlled_by(existing.meta(), owner_uid) => {
            match update(&existing, &desired) {
                Some(changed) => Ok(Child::Owned(
                    api.replace(&name, &PostParams::default(), &changed).await?,
                )),
                None => Ok(Child::Owned(existing)),
            }
        }
        Some(_) => Ok(Child::NotOwned(name)),
    }
}

pub(super) enum Child<K> {
    /// The Service's own (just created or brought up to date).
    Owned(K),
    /// Someone else's object holds the name.
    NotOwned(String),
}

/// The Route's traffic for the Service's: Knative's rewrite where every target that names no
/// revision follows the Service's Configuration, and no traffic means all of it to the latest
/// ready revision.
pub(super) fn route_traffic(service: &str, traffic: &[TrafficTarget]) -> Vec<TrafficTarget> {
    if traffic.is_empty() {
        return vec![TrafficTarget {
            configuration_name: Some(service.to_owned()),
            latest_revision: Some(true),
            percent: Some(100),
            ..TrafficTarget::default()
        }];
    }
    traffic
        .iter()
        .map(|target| {
            let mut target = target.clone();
            if target.revision_name.as_deref().is_none_or(str::is_empty) {
                target.revision_name = None;
                target.configuration_name = Some(service.to_owned());
            }
            target.url = None;
            target
        })
        .collect()
}

/// Metadata of the Service's children: its name and namespace, the Service's propagated
/// labels and annotations plus the service labels, and a controller reference to it.
pub(super) fn child_metadata(svc: &Service) -> Result<ObjectMeta, Error> {
    let mut labels = propagated(svc.labels());
    labels.insert(labels::SERVICE.to_owned(), svc.name_any());
    labels.insert(labels::SERVICE_UID.to_owned(), meta::uid(svc)?);
    Ok(ObjectMeta {
        name: Some(svc.name_any()),
        namespace: Some(meta::namespace(svc)?),
        labels: Some(labels),
        annotations: Some(propagated(svc.annotations())),
        owner_references: Some(vec![controller_reference(svc)?]),
        ..ObjectMeta::default()
    })
}

/// The Configuration the Service wants.
pub(super) fn desired_configuration(svc: &Service) -> Result<Configuration, Error> {
    Ok(Configuration {
        metadata: child_metadata(svc)?,
        spec: ConfigurationSpec {
            template: svc.spec.template.clone(),
        },
        status: None,
    })
}

/// The Route the Service wants.
pub(super) fn desired_route(svc: &Service) -> Result<Route, Error> {
    Ok(Route {
        metadata: child_metadata(svc)?,
        spec: RouteSpec {
            traffic: route_traffic(&svc.name_any(), &svc.spec.traffic),
        },
        status: None,
    })
}

/// Whether two label or annotation maps are the same (absent = empty).
fn same_map(a: Option<&BTreeMap<String, String>>, b: Option<&BTreeMap<String, String>>) -> bool {
    a.filter(|m| !m.is_empty()) == b.filter(|m| !m.is_empty())
}

fn same_metadata(existing: &ObjectMeta, desired: &ObjectMeta) -> bool {
    same_map(existing.labels.as_ref(), desired.labels.as_ref())
        && same_map(existing.annotations.as_ref(), desired.annotations.as_ref())
}

/// `existing` with the desired labels, annotations and spec, or `None` when it has them:
/// labels and annotations are replaced whole, so one removed from the Service goes from
/// the child too.
fn updated_metadata(existing: &ObjectMeta, desired: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        labels: desired.labels.clone(),
        annotations: desired.annotations.clone(),
        ..existing.clone()
    }
}

/// The existing Configuration brought to `desired`, or `None` when it already is.
pub(super) fn configuration_update(
    existing: &Configuration,
    desired: &Configuration,
) -> Option<Configuration> {
    if existing.spec == desired.spec && same_metadata(&existing.metadata, &desired.metadata) {
        return None;
    }
    Some(Configuration {
        metadata: updated_metadata(&existing.metadata, &desired.metadata),
        spec: desired.spec.clone(),
        status: existing.status.clone(),
    })
}

/// The existing Route brought to `desired`, or `None` when it already is.
pub(super) fn route_update(existing: &Route, desired: &Route) -> Option<Route> {
    if existing.spec == desired.spec && same_metadata(&existing.metadata, &desired.metadata) {
        return None;
    }
    Some(Route {
        metadata: updated_metadata(&existing.metadata, &desired.metadata),
        spec: desired.spec.clone(),
        status: existing.status.clone(),
    })
}

/// `type_` carrying the status, reason and message of `ready` (Unknown when absent).
fn mirror(type_: &str, ready: Option<&Condition>) -> Condition {
    let mut condition = Condition::new(type_, ready.map_or(ConditionStatus::Unknown, |c| c.status));
    if let Some(ready) = ready {
        condition.reason = ready.reason.clone();
        condition.message = ready.message.clone();
    }
    condition
}

fn not_owned(type_: &str, kind: &str, name: &str) -> Condition {
    Condition::new(type_, ConditionStatus::False).because(
        "NotOwned",
        format!("There is an existing {kind} {name:?} that we do not own."),
    )
}

fn out_of_date(type_: &str, kind: &str) -> Condition {
    Condition::new(type_, ConditionStatus::Unknown).because(
        "OutOfDate",
        format!("The {kind} is still working to reflect the latest desired specification."),
    )
}

/// Whether the Route's status already sends traffic where its spec asks, with the targets
/// that follow `configuration` read as its latest ready revision: a ready Route still serving
/// the previous revision is not yet what the Service asked for.
pub(super) fn traffic_migrated(
    spec: &[TrafficTarget],
    status: &[TrafficTarget],
    configuration: &str,
    latest_ready: Option<&str>,
) -> bool {
    spec.len() == status.len()
        && spec.iter().zip(status).all(|(want, got)| {
            let want_revision = if want.configuration_name.as_deref() == Some(configuration) {
                latest_ready
            } else {
                want.revision_name.as_deref()
            };
            want_revision == got.revision_name.as_deref()
                && want.percent.unwrap_or(0) == got.percent.unwrap_or(0)
                && want.tag == got.tag
        })
}

/// The Service's next status from its children.
pub(super) fn next_status(
    old: &ServiceStatus,
    generation: Option<i64>,
    configuration: &Child<Configuration>,
    route: &Child<Route>,
    now: &str,
) -> ServiceStatus {
    let mut status = old.clone();
    status.observed_generation = generation;
    let mut reconciled_configuration = None;
    let configurations_ready = match configuration {
        Child::NotOwned(name) => not_owned(CONFIGURATIONS_READY, "Configuration", name),
        Child::Owned(cfg) => {
            let cfg_status = cfg.status.clone().unwrap_or_default();
            if cfg_status.observed_generation != cfg.metadata.generation {
                out_of_date(CONFIGURATIONS_READY, "Configuration")
            } else {
                status.latest_created_revision_name =
                    cfg_status.latest_created_revision_name.clone();
                status.latest_ready_revision_name = cfg_status.latest_ready_revision_name.clone();
                reconciled_configuration = Some((cfg.name_any(), cfg_status.clone()));
                mirror(
                    CONFIGURATIONS_READY,
                    conditions::get(&cfg_status.conditions, READY),
                )
            }
        }
    };
    let routes_ready = match route {
        Child::NotOwned(name) => not_owned(ROUTES_READY, "Route", name),
        Child::Owned(route) => {
            let route_status = route.status.clone().unwrap_or_default();
            if route_status.observed_generation != route.metadata.generation {
                out_of_date(ROUTES_READY, "Route")
            } else {
                status.url = route_status.url.clone();
                status.address = route_status.address.clone();
                status.traffic = route_status.traffic.clone();
                let ready = mirror(
                    ROUTES_READY,
                    conditions::get(&route_status.conditions, READY),
                );
                let migrated = reconciled_configuration.as_ref().is_none_or(|(name, cfg)| {
                    traffic_migrated(
                        &route.spec.traffic,
                        &route_status.traffic,
                        name,
                        cfg.latest_ready_revision_name.as_deref(),
                    )
                });
                if ready.is_true() && !migrated {
                    Condition::new(ROUTES_READY, ConditionStatus::Unknown).because(
                        "TrafficNotMigrated",
                        "Traffic is not yet migrated to the latest revision.",
                    )
                } else {
                    ready
                }
            }
        }
    };
    conditions::set(&mut status.conditions, configurations_ready, now);
    conditions::set(&mut status.conditions, routes_ready, now);
    conditions::set_ready(
        &mut status.conditions,
        &[CONFIGURATIONS_READY, ROUTES_READY],
        now,
    );
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use wisp_api::knative::{
        ConfigurationStatus, RouteStatus, ServiceSpec, Template, TemplateMeta,
    };

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn service(traffic: Vec<TrafficTarget>) -> Service {
        let mut svc = Service::new(
            "hello",
            ServiceSpec {
                template: Template {
                    metadata: TemplateMeta::default(),
                    spec: serde_json::from_value(
                        serde_json::json!({"containers": [{"image": "a.wasm"}]}),
                    )
                    .expect("object"),
                },
                traffic,
            },
        );
        svc.metadata.namespace = Some("default".into());
        svc.metadata.uid = Some("svc-uid".into());
        svc.metadata.generation = Some(1);
        svc.metadata.labels = Some(BTreeMap::from([("juicy".into(), "yes".into())]));
        svc.metadata.annotations = Some(BTreeMap::from([
            (labels::CREATOR.into(), "alice".into()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".into(),
                "{}".into(),
            ),
        ]));
        svc
    }

    fn pinned(revision: &str, percent: i64, tag: Option<&str>) -> TrafficTarget {
        TrafficTarget {
            revision_name: Some(revision.into()),
            percent: Some(percent),
            tag: tag.map(str::to_owned),
            ..TrafficTarget::default()
        }
    }

    fn ready(status: ConditionStatus) -> Vec<Condition> {
        vec![Condition::new(READY, status)]
    }

    #[test]
    fn targets_without_a_revision_follow_the_services_configuration() {
        let traffic = vec![
            TrafficTarget {
                tag: Some("latest".into()),
                latest_revision: Some(true),
                percent: Some(0),
                ..TrafficTarget::default()
            },
            pinned("hello-00001", 100, Some("current")),
        ];
        let route = route_traffic("hello", &traffic);
        assert_eq!(route[0].configuration_name.as_deref(), Some("hello"));
        assert_eq!(route[0].tag.as_deref(), Some("latest"));
        assert_eq!(route[0].latest_revision, Some(true));
        assert_eq!(
            route[1], traffic[1],
            "pinned targets are copied as they are"
        );
        let default = route_traffic("hello", &[]);
        assert_eq!(default.len(), 1);
        assert_eq!(default[0].configuration_name.as_deref(), Some("hello"));
        assert_eq!(default[0].percent, Some(100));
    }

    #[test]
    fn children_carry_the_services_labels_annotations_and_owner() {
        let svc = service(vec![]);
        let cfg = desired_configuration(&svc).expect("builds");
        assert_eq!(cfg.spec.template, svc.spec.template);
        let labels = cfg.labels();
        assert_eq!(labels.get("juicy").map(String::as_str), Some("yes"));
        assert_eq!(
            labels.get(labels::SERVICE).map(String::as_str),
            Some("hello")
        );
        assert_eq!(
            labels.get(labels::SERVICE_UID).map(String::as_str),
            Some("svc-uid")
        );
        let annotations = cfg.annotations();
        assert_eq!(
            annotations.get(labels::CREATOR).map(String::as_str),
            Some("alice")
        );
        assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        assert!(is_controlled_by(&cfg.metadata, "svc-uid"));
        let route = desired_route(&svc).expect("builds");
        assert_eq!(route.labels(), cfg.labels());
        assert_eq!(route.spec.traffic, route_traffic("hello", &[]));
    }

    #[test]
    fn updates_happen_only_on_a_difference_and_remove_dropped_labels() {
        let svc = service(vec![]);
        let desired = desired_configuration(&svc).expect("builds");
        let mut existing = desired.clone();
        existing.metadata.resource_version = Some("7".into());
        existing.metadata.uid = Some("cfg-uid".into());
        assert!(configuration_update(&existing, &desired).is_none());

        let mut svc_without = svc.clone();
        svc_without.metadata.labels = None;
        let desired = desired_configuration(&svc_without).expect("builds");
        let update = configuration_update(&existing, &desired).expect("labels differ");
        assert!(!update.labels().contains_key("juicy"));
        assert_eq!(update.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(update.metadata.uid.as_deref(), Some("cfg-uid"));

        let route = desired_route(&svc).expect("builds");
        assert!(route_update(&route, &route).is_none());
        let mut moved = route.clone();
        moved.spec.traffic = vec![pinned("hello-00001", 100, None)];
        assert_eq!(
            route_update(&route, &moved).map(|r| r.spec.traffic),
            Some(moved.spec.traffic.clone())
        );
    }

    #[test]
    fn traffic_is_migrated_when_the_status_matches_the_latest_ready() {
        let spec = route_traffic("hello", &[]);
        let status = vec![TrafficTarget {
            revision_name: Some("hello-00001".into()),
            latest_revision: Some(true),
            percent: Some(100),
            ..TrafficTarget::default()
        }];
        assert!(traffic_migrated(
            &spec,
            &status,
            "hello",
            Some("hello-00001")
        ));
        assert!(!traffic_migrated(
            &spec,
            &status,
            "hello",
            Some("hello-00002")
        ));
        assert!(!traffic_migrated(&spec, &[], "hello", Some("hello-00001")));
        let pinned_spec = vec![pinned("hello-00001", 100, Some("v1"))];
        let mut pinned_status = pinned_spec.clone();
        pinned_status[0].url = Some("http://v1-hello.default.localhost".into());
        assert!(traffic_migrated(
            &pinned_spec,
            &pinned_status,
            "hello",
            None
        ));
    }

    fn owned_configuration(generation: i64, status: ConfigurationStatus) -> Configuration {
        let mut cfg = desired_configuration(&service(vec![])).expect("builds");
        cfg.metadata.generation = Some(generation);
        cfg.status = Some(status);
        cfg
    }

    fn owned_route(status: RouteStatus) -> Route {
        let mut route = desired_route(&service(vec![])).expect("builds");
        route.metadata.generation = Some(1);
        route.status = Some(status);
        route
    }

    #[test]
    fn status_mirrors_ready_children() {
        let cfg = owned_configuration(
            1,
            ConfigurationStatus {
                observed_generation: Some(1),
                conditions: ready(ConditionStatus::True),
                latest_created_revision_name: Some("hello-00001".into()),
                latest_ready_revision_name: Some("hello-00001".into()),
            },
        );
        let route = owned_route(RouteStatus {
            observed_generation: Some(1),
            conditions: ready(ConditionStatus::True),
            url: Some("http://hello.default.localhost".into()),
            address: None,
            traffic: vec![TrafficTarget {
                revision_name: Some("hello-00001".into()),
                latest_revision: Some(true),
                percent: Some(100),
                ..TrafficTarget::default()
            }],
            ..RouteStatus::default()
        });
        let status = next_status(
            &ServiceStatus::default(),
            Some(1),
            &Child::Owned(cfg),
            &Child::Owned(route),
            NOW,
        );
        assert!(conditions::is_true(&status.conditions, READY));
        assert_eq!(
            status.latest_ready_revision_name.as_deref(),
            Some("hello-00001")
        );
        assert_eq!(
            status.url.as_deref(),
            Some("http://hello.default.localhost")
        );
        assert_eq!(status.traffic.len(), 1);
        assert_eq!(status.observed_generation, Some(1));
    }

    #[test]
    fn a_ready_route_still_on_the_old_revision_is_not_migrated() {
        let cfg = owned_configuration(
            2,
            ConfigurationStatus {
                observed_generation: Some(2),
                conditions: ready(ConditionStatus::True),
                latest_created_revision_name: Some("hello-00002".into()),
                latest_ready_revision_name: Some("hello-00002".into()),
            },
        );
        let route = owned_route(RouteStatus {
            observed_generation: Some(1),
            conditions: ready(ConditionStatus::True),
            traffic: vec![TrafficTarget {
                revision_name: Some("hello-00001".into()),
                percent: Some(100),
                ..TrafficTarget::default()
            }],
            ..RouteStatus::default()
        });
        let status = next_status(
            &ServiceStatus::default(),
            Some(2),
            &Child::Owned(cfg),
            &Child::Owned(route),
            NOW,
        );
        let routes = conditions::get(&status.conditions, ROUTES_READY).cloned();
        assert_eq!(
            routes.and_then(|c| c.reason),
            Some("TrafficNotMigrated".into())
        );
        assert!(!conditions::is_true(&status.conditions, READY));
    }

    #[test]
    fn failures_and_foreign_children_make_the_service_not_ready() {
        let cfg = owned_configuration(
            1,
            ConfigurationStatus {
                observed_generation: Some(1),
                conditions: vec![Condition::new(READY, ConditionStatus::False).because(
                    "RevisionFailed",
                    "Revision \"hello-00001\" failed with message: x.",
                )],
                latest_created_revision_name: Some("hello-00001".into()),
                latest_ready_revision_name: None,
            },
        );
        let status = next_status(
            &ServiceStatus::default(),
            Some(1),
            &Child::Owned(cfg.clone()),
            &Child::NotOwned("hello".into()),
            NOW,
        );
        let ready = conditions::get(&status.conditions, READY)
            .cloned()
            .unwrap_or_default();
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(ready.reason.as_deref(), Some("RevisionFailed"));
        let routes = conditions::get(&status.conditions, ROUTES_READY)
            .cloned()
            .unwrap_or_default();
        assert_eq!(routes.reason.as_deref(), Some("NotOwned"));
        assert_eq!(
            routes.message.as_deref(),
            Some("There is an existing Route \"hello\" that we do not own.")
        );

        // A Configuration that has not seen its latest spec says so instead of its old state.
        let mut stale = cfg;
        stale.metadata.generation = Some(2);
        let status = next_status(
            &ServiceStatus::default(),
            Some(2),
            &Child::Owned(stale),
            &Child::NotOwned("hello".into()),
            NOW,
        );
        let configs = conditions::get(&status.conditions, CONFIGURATIONS_READY).cloned();
        assert_eq!(configs.and_then(|c| c.reason), Some("OutOfDate".into()));
    }
}
