//! The Knative controllers against the real API server, with the test playing the data plane:
//! it marks revisions Ready (with an image digest) or failed, and flips a Route's IngressReady
//! once the route has a status, as the gateway sync would. Every wait is bounded.

mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use support::Cluster;
use tokio::task::JoinHandle;
use wisp_api::knative::condition_types::{CONFIGURATIONS_READY, READY, ROUTES_READY};
use wisp_api::knative::conditions::{self, Condition, ConditionStatus};
use wisp_api::knative::{Configuration, Revision, Route, Service, TrafficTarget, labels};
use wisp_api::nodes;
use wisp_controllers as controllers;

/// How long any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);
/// A fake image the fake data plane never readies by itself.
const HOLD: &str = "hold";
/// A fake image the fake data plane fails as missing.
const MISSING: &str = "missing";

/// A cluster with the controllers and a fake data plane running on it.
struct Fixture {
    tasks: Vec<JoinHandle<()>>,
    client: Client,
    cluster: Cluster,
}

impl Fixture {
    fn start() -> Self {
        let cluster = Cluster::start();
        let client = cluster.client();
        let node_client = cluster.node_client();
        let tasks = vec![
            cluster.runtime().spawn(controllers::run(
                client.clone(),
                controllers::Settings::default(),
            )),
            cluster
                .runtime()
                .spawn(data_plane(client.clone(), node_client)),
        ];
        Self {
            tasks,
            client,
            cluster,
        }
    }

    fn run<F: Future>(&self, future: F) -> F::Output {
        self.cluster.runtime().block_on(future)
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), "default")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The name the fake node reports under.
const NODE: &str = "fake";

/// A node's side of the contract (`wisp_api::nodes`), by polling: it registers a Ready Node,
/// reports each revision Ready (or failed) in its `status.annotations`, and reports each route
/// served once the route controller has written its traffic.
async fn data_plane(client: Client, node_client: Client) {
    register_node(&node_client).await;
    let revisions: Api<Revision> = Api::all(client.clone());
    let routes: Api<Route> = Api::all(client.clone());
    loop {
        if let Ok(list) = revisions.list(&Default::default()).await {
            for revision in list {
                let image = image_of_revision(&revision);
                let decided = revision
                    .status
                    .as_ref()
                    .is_some_and(|s| s.annotations.contains_key(&nodes::report_key(NODE)));
                if decided || image.contains(HOLD) {
                    continue;
                }
                let _ = report(&client, &revision, !image.contains(MISSING)).await;
            }
        }
        if let Ok(list) = routes.list(&Default::default()).await {
            for route in list {
                let Some(mut status) = route.status.clone() else {
                    continue;
                };
                if status.observed_generation.is_none() {
                    continue;
                }
                let served = nodes::encode(&nodes::RouteReport {
                    serving: nodes::traffic_hash(&status.traffic, status.url.as_deref()),
                    problem: None,
                });
                if status.annotations.get(&nodes::report_key(NODE)) == Some(&served) {
                    continue;
                }
                status.annotations.insert(nodes::report_key(NODE), served);
                let mut updated = route.clone();
                updated.status = Some(status);
                let api: Api<Route> =
                    Api::namespaced(client.clone(), &route.namespace().unwrap_or_default());
                let _ = api
                    .replace_status(&route.name_any(), &PostParams::default(), &updated)
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The fake node's Node object, Ready, with a heartbeat Lease that outlasts any test.
async fn register_node(node_client: &Client) {
    register(node_client, NODE, 3600).await;
}

/// A Ready wisp Node `name` whose Lease, renewed once now, lasts `lease_seconds`.
async fn register(node_client: &Client, name: &str, lease_seconds: i32) {
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {nodes::NODE_LABEL: "true"}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .expect("a node");
    Api::<Node>::all(node_client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("the node registers");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": nodes::NODE_LEASE_NAMESPACE},
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": lease_seconds,
            "renewTime": "2026-01-01T00:00:00.000000Z",
        },
    }))
    .expect("a lease");
    Api::<Lease>::namespaced(node_client.clone(), nodes::NODE_LEASE_NAMESPACE)
        .create(&PostParams::default(), &lease)
        .await
        .expect("the node's lease");
}

#[test]
fn a_node_whose_lease_lapses_turns_unknown_and_loses_its_pods() {
    let fixture = Fixture::start();
    let node_client = fixture.cluster.node_client();
    fixture.run(async {
        register(&node_client, "lapsing", 2).await;
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "hello-00001-lapsing-1", "namespace": "default"},
            "spec": {"nodeName": "lapsing", "containers": [{"name": "user-container", "image": "hello.wasm"}]},
        }))
        .expect("a pod");
        let pods: Api<Pod> = Api::namespaced(node_client.clone(), "default");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("the node's pod");
        let nodes_api: Api<Node> = Api::all(fixture.client.clone());
        wait_for(&nodes_api, "lapsing", "the lapsed node turns Unknown", |node| {
            node.status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .any(|c| c.type_ == "Ready" && c.status == "Unknown")
        })
        .await;
        let gone = async {
            while pods.get_opt("hello-00001-lapsing-1").await.ok().flatten().is_some() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(WAIT, gone)
            .await
            .expect("the lapsed node's pod is deleted");
        // The healthy node, whose lease lasts, is left alone.
        let healthy = nodes_api.get(NODE).await.expect("the fake node");
        let conditions = healthy.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    });
}

fn image_of_revision(revision: &Revision) -> String {
    revision
        .spec
        .fields
        .get("containers")
        .and_then(|c| c.pointer("/0/image"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Reports a revision as a node would: ready with a digest, or failed.
async fn report(client: &Client, revision: &Revision, ok: bool) -> kube::Result<Revision> {
    let image = image_of_revision(revision);
    let report = nodes::RevisionReport {
        state: if ok {
            nodes::RevisionState::Ready
        } else {
            nodes::RevisionState::Failed
        },
        generation: revision.metadata.generation,
        container: Some("user-container".into()),
        image_digest: ok.then(|| format!("sha256:{}", "ab".repeat(32))),
        reason: (!ok).then(|| "ContainerMissing".into()),
        message: (!ok).then(|| format!("Unable to fetch image {image:?}: no such file")),
        actual: 0,
        desired: 0,
        capped: None,
    };
    let mut status = revision.status.clone().unwrap_or_default();
    status
        .annotations
        .insert(nodes::report_key(NODE), nodes::encode(&report));
    let mut updated = revision.clone();
    updated.status = Some(status);
    let api: Api<Revision> =
        Api::namespaced(client.clone(), &revision.namespace().unwrap_or_default());
    api.replace_status(&revision.name_any(), &PostParams::default(), &updated)
        .await
}

/// Marks the revision `name` Ready as the data plane would, re-reading it after a conflict
/// (the route controller may have relabelled it in between).
async fn ready_up(client: &Client, name: &str) {
    let revisions: Api<Revision> = Api::namespaced(client.clone(), "default");
    let attempts = async {
        loop {
            if let Ok(revision) = revisions.get(name).await
                && report(client, &revision, true).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(WAIT, attempts).await.is_err() {
        panic!("could not mark {name} ready");
    }
}

/// The object, once `accept` holds for it.
async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, accept: impl Fn(&K) -> bool) -> K
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut last = None;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Some(object)) = api.get_opt(name).await {
                if accept(&object) {
                    return object;
                }
                last = Some(object);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    match found {
        Ok(object) => object,
        Err(_) => panic!("timed out waiting for {name} to be {what}; last seen: {last:#?}"),
    }
}

fn ready_condition(conds: &[Condition]) -> Option<&Condition> {
    conditions::get(conds, READY)
}

fn service_ready(svc: &Service) -> bool {
    svc.status.as_ref().is_some_and(|s| {
        s.observed_generation == svc.metadata.generation
            && conditions::is_true(&s.conditions, READY)
    })
}

fn service_manifest(name: &str, image: &str) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{"image": image}]}}}
    }))
    .expect("a Service")
}

async fn merge<K>(api: &Api<K>, name: &str, patch: Value) -> K
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch applies")
}

fn set_image(image: &str) -> Value {
    json!({"spec": {"template": {"spec": {"containers": [{"image": image}]}}}})
}

fn traffic_revisions(traffic: &[TrafficTarget]) -> Vec<(Option<String>, Option<i64>)> {
    traffic
        .iter()
        .map(|t| (t.revision_name.clone(), t.percent))
        .collect()
}

fn label<'a, K: ResourceExt>(object: &'a K, key: &str) -> Option<&'a str> {
    object.labels().get(key).map(String::as_str)
}

fn annotation<'a, K: ResourceExt>(object: &'a K, key: &str) -> Option<&'a str> {
    object.annotations().get(key).map(String::as_str)
}

#[test]
fn a_service_makes_its_children_and_becomes_ready() {
    let fx = Fixture::start();
    fx.run(async {
        let services: Api<Service> = fx.api();
        let mut manifest = service_manifest("hello", "hello.wasm");
        manifest.metadata.labels = Some(BTreeMap::from([("juicy".into(), "yes".into())]));
        manifest.metadata.annotations = Some(BTreeMap::from([("note".into(), "kept".into())]));
        let created = services
            .create(&PostParams::default(), &manifest)
            .await
            .expect("created");
        let svc = wait_for(&services, "hello", "Ready", service_ready).await;
        let status = svc.status.clone().unwrap_or_default();
        assert_eq!(
            status.url.as_deref(),
            Some("http://hello.default.localhost")
        );
        assert_eq!(
            status.address.and_then(|a| a.url).as_deref(),
            Some("http://hello.default.svc.cluster.local")
        );
        assert_eq!(
            status.latest_created_revision_name.as_deref(),
            Some("hello-00001")
        );
        assert_eq!(
            status.latest_ready_revision_name.as_deref(),
            Some("hello-00001")
        );
        assert_eq!(
            status.traffic,
            [TrafficTarget {
                revision_name: Some("hello-00001".into()),
                latest_revision: Some(true),
                percent: Some(100),
                ..TrafficTarget::default()
            }]
        );
        for type_ in [CONFIGURATIONS_READY, ROUTES_READY] {
            assert!(conditions::is_true(
                &svc.status.clone().unwrap_or_default().conditions,
                type_
            ));
        }
        let svc_uid = created.uid().expect("uid");

        let cfg: Configuration = fx.api().get("hello").await.expect("configuration");
        let route: Route = fx.api().get("hello").await.expect("route");
        for (kind, meta) in [("Configuration", &cfg.metadata), ("Route", &route.metadata)] {
            let owners = meta.owner_references.clone().unwrap_or_default();
            assert_eq!(owners.len(), 1, "{kind} has one owner");
            assert_eq!(owners[0].uid, svc_uid);
            assert_eq!(owners[0].kind, "Service");
            assert_eq!(owners[0].controller, Some(true));
            assert_eq!(owners[0].block_owner_deletion, Some(true));
            let labels = meta.labels.clone().unwrap_or_default();
            assert_eq!(
                labels.get(labels::SERVICE).map(String::as_str),
                Some("hello")
            );
            assert_eq!(labels.get(labels::SERVICE_UID), Some(&svc_uid));
            assert_eq!(labels.get("juicy").map(String::as_str), Some("yes"));
            let annotations = meta.annotations.clone().unwrap_or_default();
            assert_eq!(annotations.get("note").map(String::as_str), Some("kept"));
            assert!(
                annotations.contains_key(labels::CREATOR),
                "{kind}: {annotations:?}"
            );
            assert!(annotations.contains_key(labels::LAST_MODIFIER));
        }
        assert!(conditions::is_true(
            &route.status.clone().unwrap_or_default().conditions,
            READY
        ));
        assert_eq!(
            route.spec.traffic[0].configuration_name.as_deref(),
            Some("hello")
        );

        let revisions: Api<Revision> = fx.api();
        let revision = wait_for(&revisions, "hello-00001", "active", |r| {
            label(r, labels::ROUTING_STATE) == Some("active")
        })
        .await;
        assert_eq!(label(&revision, labels::CONFIGURATION), Some("hello"));
        assert_eq!(
            label(&revision, labels::CONFIGURATION_GENERATION),
            Some("1")
        );
        assert_eq!(
            label(&revision, labels::CONFIGURATION_UID),
            cfg.uid().as_deref()
        );
        assert_eq!(label(&revision, labels::SERVICE), Some("hello"));
        assert_eq!(
            label(&revision, labels::SERVICE_UID),
            Some(svc_uid.as_str())
        );
        assert_eq!(
            label(&revision, "juicy"),
            None,
            "only template labels reach revisions"
        );
        assert!(annotation(&revision, labels::CREATOR).is_some());
        assert!(annotation(&revision, labels::ROUTING_STATE_MODIFIED).is_some());
        let owners = revision
            .metadata
            .owner_references
            .clone()
            .unwrap_or_default();
        assert_eq!(owners[0].kind, "Configuration");
        assert_eq!(owners[0].uid, cfg.uid().unwrap_or_default());
        let cfg_status = cfg.status.clone().unwrap_or_default();
        assert!(conditions::is_true(&cfg_status.conditions, READY));
        assert_eq!(cfg_status.observed_generation, cfg.metadata.generation);

        // Settled: nothing keeps writing (no status ping-pong between the controllers and
        // the data plane).
        let versions = || async {
            let svc: Service = fx.api().get("hello").await.expect("service");
            let cfg: Configuration = fx.api().get("hello").await.expect("configuration");
            let route: Route = fx.api().get("hello").await.expect("route");
            let rev: Revision = fx.api().get("hello-00001").await.expect("revision");
            [
                svc.resource_version(),
                cfg.resource_version(),
                route.resource_version(),
                rev.resource_version(),
            ]
        };
        let before = versions().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(versions().await, before);
    });
}

#[test]
fn template_changes_make_revisions_and_traffic_moves_only_when_ready() {
    let fx = Fixture::start();
    fx.run(async {
        let services: Api<Service> = fx.api();
        let revisions: Api<Revision> = fx.api();
        let routes: Api<Route> = fx.api();
        services
            .create(&PostParams::default(), &service_manifest("hello", "v1.wasm"))
            .await
            .expect("created");
        wait_for(&services, "hello", "Ready", service_ready).await;

        // An image the data plane has not readied yet: a second revision, traffic stays put.
        merge(&services, "hello", set_image("v2-hold.wasm")).await;
        let svc = wait_for(&services, "hello", "rolling out", |s| {
            s.status.as_ref().is_some_and(|st| {
                st.latest_created_revision_name.as_deref() == Some("hello-00002")
            })
        })
        .await;
        let status = svc.status.clone().unwrap_or_default();
        assert_eq!(
            status.latest_ready_revision_name.as_deref(),
            Some("hello-00001")
        );
        assert!(!service_ready(&svc));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let route = routes.get("hello").await.expect("route");
        assert_eq!(
            traffic_revisions(&route.status.clone().unwrap_or_default().traffic),
            [(Some("hello-00001".into()), Some(100))],
            "the old revision keeps serving until the new one is ready"
        );
        let pending = revisions.get("hello-00002").await.expect("revision 2");
        assert_eq!(label(&pending, labels::CONFIGURATION_GENERATION), Some("2"));
        ready_up(&fx.client, "hello-00002").await;
        let svc = wait_for(&services, "hello", "Ready on 00002", |s| {
            service_ready(s)
                && s.status.as_ref().is_some_and(|st| {
                    traffic_revisions(&st.traffic) == [(Some("hello-00002".into()), Some(100))]
                })
        })
        .await;
        assert_eq!(
            svc.status.and_then(|s| s.latest_ready_revision_name).as_deref(),
            Some("hello-00002")
        );
        wait_for(&revisions, "hello-00001", "reserve", |r| {
            label(r, labels::ROUTING_STATE) == Some("reserve")
        })
        .await;
        wait_for(&revisions, "hello-00002", "active", |r| {
            label(r, labels::ROUTING_STATE) == Some("active")
        })
        .await;

        // Template labels, then template annotations: each a new revision carrying them.
        merge(
            &services,
            "hello",
            json!({"spec": {"template": {"metadata": {"labels": {"color": "blue"}}}}}),
        )
        .await;
        let third = wait_for(&revisions, "hello-00003", "made", |_| true).await;
        assert_eq!(label(&third, "color"), Some("blue"));
        // Still the held image: the data plane is the test here.
        ready_up(&fx.client, "hello-00003").await;
        merge(
            &services,
            "hello",
            json!({"spec": {"template": {"metadata": {"annotations": {"autoscaling.knative.dev/target": "5"}}}}}),
        )
        .await;
        let fourth = wait_for(&revisions, "hello-00004", "made", |_| true).await;
        assert_eq!(
            annotation(&fourth, "autoscaling.knative.dev/target"),
            Some("5")
        );
        ready_up(&fx.client, "hello-00004").await;
        wait_for(&services, "hello", "Ready on 00004", |s| {
            service_ready(s)
                && s.status.as_ref().is_some_and(|st| {
                    traffic_revisions(&st.traffic) == [(Some("hello-00004".into()), Some(100))]
                })
        })
        .await;

        // A traffic-only edit moves traffic and makes no revision.
        merge(
            &services,
            "hello",
            json!({"spec": {"traffic": [
                {"revisionName": "hello-00001", "percent": 100, "tag": "old"}
            ]}}),
        )
        .await;
        let svc = wait_for(&services, "hello", "Ready on 00001", |s| {
            service_ready(s)
                && s.status.as_ref().is_some_and(|st| {
                    traffic_revisions(&st.traffic) == [(Some("hello-00001".into()), Some(100))]
                })
        })
        .await;
        assert_eq!(
            svc.status.and_then(|s| s.traffic.first().and_then(|t| t.url.clone())).as_deref(),
            Some("http://old-hello.default.localhost")
        );
        let cfg: Configuration = fx.api().get("hello").await.expect("configuration");
        assert_eq!(cfg.metadata.generation, Some(4));
        let all = revisions.list(&Default::default()).await.expect("list");
        assert_eq!(all.items.len(), 4, "no revision for a traffic-only edit");
    });
}

#[test]
fn service_labels_and_annotations_propagate_and_their_removal_too() {
    let fx = Fixture::start();
    fx.run(async {
        let services: Api<Service> = fx.api();
        let configurations: Api<Configuration> = fx.api();
        let routes: Api<Route> = fx.api();
        services
            .create(
                &PostParams::default(),
                &service_manifest("hello", "v1.wasm"),
            )
            .await
            .expect("created");
        wait_for(&services, "hello", "Ready", service_ready).await;
        merge(
            &services,
            "hello",
            json!({"metadata": {"labels": {"juicy": "yes"}, "annotations": {"team": "blue"}}}),
        )
        .await;
        let has = |labels: &BTreeMap<String, String>, annotations: &BTreeMap<String, String>| {
            labels.get("juicy").map(String::as_str) == Some("yes")
                && annotations.get("team").map(String::as_str) == Some("blue")
        };
        wait_for(&configurations, "hello", "labelled", |c| {
            has(c.labels(), c.annotations())
        })
        .await;
        wait_for(&routes, "hello", "labelled", |r| {
            has(r.labels(), r.annotations())
        })
        .await;
        merge(
            &services,
            "hello",
            json!({"metadata": {"labels": {"juicy": null}, "annotations": {"team": null}}}),
        )
        .await;
        let gone = |labels: &BTreeMap<String, String>, annotations: &BTreeMap<String, String>| {
            !labels.contains_key("juicy")
                && !annotations.contains_key("team")
                && labels.contains_key(labels::SERVICE)
                && annotations.contains_key(labels::CREATOR)
        };
        wait_for(&configurations, "hello", "unlabelled", |c| {
            gone(c.labels(), c.annotations())
        })
        .await;
        wait_for(&routes, "hello", "unlabelled", |r| {
            gone(r.labels(), r.annotations())
        })
        .await;
        let revisions: Api<Revision> = fx.api();
        assert_eq!(
            revisions
                .list(&Default::default())
                .await
                .expect("list")
                .items
                .len(),
            1,
            "metadata edits of the Service make no revision"
        );
    });
}

#[test]
fn a_chosen_revision_name_is_used() {
    let fx = Fixture::start();
    fx.run(async {
        let services: Api<Service> = fx.api();
        let mut manifest = service_manifest("hello", "v1.wasm");
        manifest.spec.template.metadata.name = Some("hello-blue".into());
        services
            .create(&PostParams::default(), &manifest)
            .await
            .expect("created");
        let svc = wait_for(&services, "hello", "Ready", service_ready).await;
        let status = svc.status.unwrap_or_default();
        assert_eq!(
            status.latest_created_revision_name.as_deref(),
            Some("hello-blue")
        );
        assert_eq!(
            traffic_revisions(&status.traffic),
            [(Some("hello-blue".into()), Some(100))]
        );
        let revisions: Api<Revision> = fx.api();
        let revision = revisions.get("hello-blue").await.expect("named revision");
        assert_eq!(
            label(&revision, labels::CONFIGURATION_GENERATION),
            Some("1")
        );
    });
}

#[test]
fn release_traffic_shapes_resolve_tags_and_their_urls() {
    let fx = Fixture::start();
    fx.run(async {
        let services: Api<Service> = fx.api();
        services
            .create(
                &PostParams::default(),
                &service_manifest("hello", "v1.wasm"),
            )
            .await
            .expect("created");
        wait_for(&services, "hello", "Ready", service_ready).await;
        merge(
            &services,
            "hello",
            json!({"spec": {
                "template": {"spec": {"containers": [{"image": "v2.wasm"}]}},
                "traffic": [
                    {"tag": "current", "revisionName": "hello-00001", "percent": 50},
                    {"tag": "candidate", "latestRevision": true, "percent": 50},
                    {"tag": "latest", "latestRevision": true, "percent": 0}
                ]
            }}),
        )
        .await;
        let svc = wait_for(&services, "hello", "split", |s| {
            service_ready(s)
                && s.status.as_ref().is_some_and(|st| {
                    st.traffic.get(1).and_then(|t| t.revision_name.as_deref())
                        == Some("hello-00002")
                })
        })
        .await;
        let traffic = svc.status.unwrap_or_default().traffic;
        let entry = |tag: &str, revision: &str, percent: i64, latest: bool| TrafficTarget {
            tag: Some(tag.into()),
            revision_name: Some(revision.into()),
            configuration_name: None,
            latest_revision: Some(latest),
            percent: Some(percent),
            url: Some(format!("http://{tag}-hello.default.localhost")),
        };
        assert_eq!(
            traffic,
            [
                entry("current", "hello-00001", 50, false),
                entry("candidate", "hello-00002", 50, true),
                entry("latest", "hello-00002", 0, true),
            ]
        );
    });
}

#[test]
fn a_failed_revision_fails_the_configuration_and_the_service() {
    let fx = Fixture::start();
    fx.run(async {
        let services: Api<Service> = fx.api();
        services
            .create(
                &PostParams::default(),
                &service_manifest("hello", "missing.wasm"),
            )
            .await
            .expect("created");
        let svc = wait_for(&services, "hello", "failed", |s| {
            s.status.as_ref().is_some_and(|st| {
                ready_condition(&st.conditions).is_some_and(|c| c.status == ConditionStatus::False)
            })
        })
        .await;
        let ready = ready_condition(&svc.status.unwrap_or_default().conditions)
            .cloned()
            .unwrap_or_default();
        assert_eq!(ready.reason.as_deref(), Some("RevisionFailed"));
        let message = ready.message.unwrap_or_default();
        assert!(
            message.contains("hello-00001")
                && message.contains("Unable to fetch image")
                && message.contains("(on node fake)"),
            "the failure names its revision, its cause and the node it failed on: {message}"
        );
        let cfg: Configuration = fx.api().get("hello").await.expect("configuration");
        let cfg_ready = ready_condition(&cfg.status.unwrap_or_default().conditions)
            .cloned()
            .unwrap_or_default();
        assert_eq!(cfg_ready.status, ConditionStatus::False);
        assert_eq!(cfg_ready.reason.as_deref(), Some("RevisionFailed"));
        assert!(cfg_ready.message.is_some_and(|m| !m.is_empty()));
    });
}

#[test]
fn a_route_and_configuration_made_directly_work_together() {
    let fx = Fixture::start();
    fx.run(async {
        let configurations: Api<Configuration> = fx.api();
        let routes: Api<Route> = fx.api();
        let cfg: Configuration = serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
            "metadata": {"name": "direct", "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [{"image": "v1.wasm"}]}}}
        }))
        .expect("a Configuration");
        configurations
            .create(&PostParams::default(), &cfg)
            .await
            .expect("created");
        let route: Route = serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Route",
            "metadata": {"name": "front", "namespace": "default"},
            "spec": {"traffic": [{"configurationName": "direct", "latestRevision": true, "percent": 100}]}
        }))
        .expect("a Route");
        routes
            .create(&PostParams::default(), &route)
            .await
            .expect("created");
        let route = wait_for(&routes, "front", "Ready", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| conditions::is_true(&s.conditions, READY))
        })
        .await;
        let status = route.status.unwrap_or_default();
        assert_eq!(status.url.as_deref(), Some("http://front.default.localhost"));
        assert_eq!(
            traffic_revisions(&status.traffic),
            [(Some("direct-00001".into()), Some(100))]
        );
        let cfg = configurations.get("direct").await.expect("configuration");
        assert_eq!(
            cfg.status.and_then(|s| s.latest_ready_revision_name).as_deref(),
            Some("direct-00001")
        );
        // A second Route pins the first revision.
        let pinned: Route = serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Route",
            "metadata": {"name": "pinned", "namespace": "default"},
            "spec": {"traffic": [{"revisionName": "direct-00001", "percent": 100}]}
        }))
        .expect("a Route");
        routes
            .create(&PostParams::default(), &pinned)
            .await
            .expect("created");
        wait_for(&routes, "pinned", "Ready", |r| {
            r.status.as_ref().is_some_and(|s| {
                traffic_revisions(&s.traffic) == [(Some("direct-00001".into()), Some(100))]
                    && conditions::is_true(&s.conditions, READY)
            })
        })
        .await;
        // A rollout on the Configuration moves the Route once the new revision is ready.
        merge(&configurations, "direct", set_image("v2.wasm")).await;
        wait_for(&routes, "front", "on 00002", |r| {
            r.status.as_ref().is_some_and(|s| {
                traffic_revisions(&s.traffic) == [(Some("direct-00002".into()), Some(100))]
                    && conditions::is_true(&s.conditions, READY)
            })
        })
        .await;
        // The pass that labelled the new revision `active` also decided the old one's label:
        // `front` no longer routes it, but `pinned` does, so it stays `active`.
        let revisions: Api<Revision> = fx.api();
        wait_for(&revisions, "direct-00002", "active", |r| {
            label(r, labels::ROUTING_STATE) == Some("active")
        })
        .await;
        let old = revisions.get("direct-00001").await.expect("revision 1");
        assert_eq!(label(&old, labels::ROUTING_STATE), Some("active"));
    });
}

#[test]
fn a_config_domain_change_updates_urls_live() {
    let fx = Fixture::start();
    fx.run(async {
        let services: Api<Service> = fx.api();
        let mut manifest = service_manifest("hello", "v1.wasm");
        manifest.spec.traffic = vec![TrafficTarget {
            tag: Some("now".into()),
            latest_revision: Some(true),
            percent: Some(100),
            ..TrafficTarget::default()
        }];
        services
            .create(&PostParams::default(), &manifest)
            .await
            .expect("created");
        wait_for(&services, "hello", "Ready", service_ready).await;
        let config_maps: Api<ConfigMap> = Api::namespaced(fx.client.clone(), "knative-serving");
        let domain: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "config-domain", "namespace": "knative-serving"},
            "data": {"_example": "docs", "example.com": ""}
        }))
        .expect("a ConfigMap");
        config_maps
            .create(&PostParams::default(), &domain)
            .await
            .expect("created");
        let url_is = |url: &'static str, tag_url: &'static str| {
            move |s: &Service| {
                s.status.as_ref().is_some_and(|st| {
                    st.url.as_deref() == Some(url)
                        && st.traffic.first().and_then(|t| t.url.as_deref()) == Some(tag_url)
                })
            }
        };
        wait_for(
            &services,
            "hello",
            "on example.com",
            url_is(
                "http://hello.default.example.com",
                "http://now-hello.default.example.com",
            ),
        )
        .await;
        merge(
            &config_maps,
            "config-domain",
            json!({"data": {"example.com": null, "wisp.test": ""}}),
        )
        .await;
        wait_for(
            &services,
            "hello",
            "on wisp.test",
            url_is(
                "http://hello.default.wisp.test",
                "http://now-hello.default.wisp.test",
            ),
        )
        .await;
        config_maps
            .delete("config-domain", &Default::default())
            .await
            .expect("deleted");
        wait_for(
            &services,
            "hello",
            "back on localhost",
            url_is(
                "http://hello.default.localhost",
                "http://now-hello.default.localhost",
            ),
        )
        .await;
        wait_for(&services, "hello", "Ready again", service_ready).await;
    });
}

#[test]
fn a_child_the_service_does_not_own_is_reported() {
    let fx = Fixture::start();
    fx.run(async {
        let configurations: Api<Configuration> = fx.api();
        let services: Api<Service> = fx.api();
        let foreign: Configuration = serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
            "metadata": {"name": "taken", "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [{"image": "other.wasm"}]}}}
        }))
        .expect("a Configuration");
        configurations
            .create(&PostParams::default(), &foreign)
            .await
            .expect("created");
        services
            .create(
                &PostParams::default(),
                &service_manifest("taken", "mine.wasm"),
            )
            .await
            .expect("created");
        let svc = wait_for(&services, "taken", "NotOwned", |s| {
            s.status.as_ref().is_some_and(|st| {
                conditions::get(&st.conditions, CONFIGURATIONS_READY)
                    .is_some_and(|c| c.reason.as_deref() == Some("NotOwned"))
            })
        })
        .await;
        let ready = ready_condition(&svc.status.unwrap_or_default().conditions)
            .cloned()
            .unwrap_or_default();
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(
            ready.message.as_deref(),
            Some("There is an existing Configuration \"taken\" that we do not own.")
        );
        let cfg = configurations.get("taken").await.expect("still there");
        assert!(
            cfg.metadata.owner_references.unwrap_or_default().is_empty(),
            "the foreign Configuration is left alone"
        );
    });
}
