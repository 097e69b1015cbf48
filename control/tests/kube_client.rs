//! The kube-rs matrix of reference §9 against the real server: server-side apply, the status
//! subresource and generation, `watcher` (list+watch and streaming lists), `reflector` with
//! paging, `metadata_watcher`, `Controller::owns`, recovery after a 410, finalizers, garbage
//! collection, selectors, dry runs, generateName and authentication — each test on its own
//! cluster, every wait bounded so a server bug fails instead of hanging.

mod support;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use http::StatusCode;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::{PartialObjectMeta, Request};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, Event as Finalizer};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{Controller, reflector, watcher as watch_objects};
use kube::{Client, CustomResource, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use support::Cluster;
use tokio::sync::mpsc;

/// How long any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

/// A Knative Service. The spec is kept as raw JSON so server defaults round-trip untouched.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Service",
    namespaced,
    status = "KnativeStatus",
    schema = "disabled"
)]
struct ServiceSpec {
    #[serde(flatten)]
    fields: Map<String, Value>,
}

/// A Knative Configuration (what a Service owns).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Configuration",
    namespaced,
    status = "KnativeStatus",
    schema = "disabled"
)]
struct ConfigurationSpec {
    #[serde(flatten)]
    fields: Map<String, Value>,
}

/// The status of both kinds: only observedGeneration is looked at.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
struct KnativeStatus {
    #[serde(
        rename = "observedGeneration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    observed_generation: Option<i64>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// `spec.template` running `image`.
fn template(image: &str) -> Map<String, Value> {
    match json!({"template": {"spec": {"containers": [{"image": image}]}}}) {
        Value::Object(fields) => fields,
        _ => unreachable!(),
    }
}

fn service(name: &str, image: &str) -> Service {
    let mut service = Service::new(
        name,
        ServiceSpec {
            fields: template(image),
        },
    );
    service.metadata.namespace = Some("default".into());
    service
}

fn labelled(name: &str, labels: &[(&str, &str)]) -> Service {
    let mut service = service(name, "ghcr.io/example/hello:1");
    service.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    service
}

/// A Configuration owned (as its controller) by `owner`.
fn owned_configuration(name: &str, owner: &Service) -> Configuration {
    let mut configuration = Configuration::new(
        name,
        ConfigurationSpec {
            fields: template("ghcr.io/example/hello:1"),
        },
    );
    configuration.metadata.namespace = owner.metadata.namespace.clone();
    configuration.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "serving.knative.dev/v1".into(),
        kind: "Service".into(),
        name: owner.name_any(),
        uid: owner.uid().expect("owner has a uid"),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    configuration
}

fn image_of(service: &Service) -> Option<&str> {
    service
        .spec
        .fields
        .get("template")?
        .pointer("/spec/containers/0/image")?
        .as_str()
}

fn generation(service: &Service) -> i64 {
    service.metadata.generation.expect("generation is set")
}

/// `future`, or a failure naming `what` after [`WAIT`].
async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(WAIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// The next item of `stream` for which `pick` gives something, skipping the rest.
async fn next_matching<S, T, R>(
    what: &str,
    stream: &mut S,
    mut pick: impl FnMut(T) -> Option<R>,
) -> R
where
    S: Stream<Item = T> + Unpin,
{
    within(what, async {
        loop {
            let item = stream
                .next()
                .await
                .unwrap_or_else(|| panic!("stream ended before {what}"));
            if let Some(found) = pick(item) {
                return found;
            }
        }
    })
    .await
}

/// Polls `check` until it holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

fn services(client: &Client) -> Api<Service> {
    Api::namespaced(client.clone(), "default")
}

fn configurations(client: &Client) -> Api<Configuration> {
    Api::namespaced(client.clone(), "default")
}

fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

async fn is_gone<K>(api: &Api<K>, name: &str) -> bool
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(_) => false,
        Err(error) => api_code(&error) == Some(404),
    }
}

fn names<'a>(items: impl IntoIterator<Item = &'a Service>) -> BTreeSet<String> {
    items.into_iter().map(ResourceExt::name_any).collect()
}

#[test]
fn apply_patch_creates_then_merges_and_needs_a_field_manager() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let url = Service::url_path(&(), Some("default"));
        let send_apply = |service: Service, params: PatchParams| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let request = Request::new(url)
                    .patch("hello", &params, &Patch::Apply(&service))
                    .expect("apply request");
                let response = within("apply", client.send(request.map(Into::into)))
                    .await
                    .expect("apply is answered");
                response.status()
            }
        };
        let params = PatchParams::apply("wisp-test");
        assert_eq!(
            send_apply(service("hello", "ghcr.io/example/hello:1"), params.clone()).await,
            StatusCode::CREATED
        );
        assert_eq!(
            send_apply(service("hello", "ghcr.io/example/hello:2"), params.clone()).await,
            StatusCode::OK
        );

        let api = services(&client);
        let stored = api.get("hello").await.expect("applied object exists");
        assert_eq!(image_of(&stored), Some("ghcr.io/example/hello:2"));
        assert_eq!(generation(&stored), 2, "the spec change bumped generation");

        // The typed call merges labels into the existing object.
        let mut with_label = service("hello", "ghcr.io/example/hello:2");
        with_label.metadata.labels = Some([("team".to_owned(), "a".to_owned())].into());
        let applied = api
            .patch("hello", &params.clone().force(), &Patch::Apply(&with_label))
            .await
            .expect("apply again");
        assert_eq!(applied.labels().get("team").map(String::as_str), Some("a"));
        assert_eq!(
            applied.uid(),
            stored.uid(),
            "apply merged, did not recreate"
        );

        let missing_manager = PatchParams::default();
        let error = api
            .patch(
                "hello",
                &missing_manager,
                &Patch::Apply(&service("hello", "ghcr.io/example/hello:3")),
            )
            .await
            .expect_err("apply without fieldManager is refused");
        let kube::Error::Api(status) = error else {
            panic!("expected an API error, got {error:?}");
        };
        assert_eq!(status.code, 422);
        assert_eq!(status.reason, "Invalid");
        assert!(
            status.message.contains("fieldManager"),
            "{}",
            status.message
        );
    });
}

#[test]
fn status_subresource_and_generation() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        let created = api
            .create(&PostParams::default(), &service("s", "ghcr.io/example/hello:1"))
            .await
            .expect("create");
        assert_eq!(generation(&created), 1);

        let patched = api
            .patch_status(
                "s",
                &PatchParams::default(),
                &Patch::Merge(json!({
                    "spec": {"template": {"spec": {"containers": [{"image": "evil:1"}]}}},
                    "status": {"observedGeneration": 1}
                })),
            )
            .await
            .expect("status patch");
        assert_eq!(
            patched.status.as_ref().and_then(|s| s.observed_generation),
            Some(1)
        );
        assert_eq!(image_of(&patched), Some("ghcr.io/example/hello:1"), "spec untouched");
        assert_eq!(generation(&patched), 1, "status writes never bump generation");

        // A main-resource update ignores the status it carries.
        let mut replacement = patched.clone();
        replacement.status = Some(KnativeStatus {
            observed_generation: Some(99),
            ..KnativeStatus::default()
        });
        let replaced = api
            .replace("s", &PostParams::default(), &replacement)
            .await
            .expect("replace");
        assert_eq!(
            replaced.status.as_ref().and_then(|s| s.observed_generation),
            Some(1),
            "status is kept from the stored object"
        );
        assert_eq!(generation(&replaced), 1, "nothing in spec changed");

        // Labels are metadata: no generation bump.
        let relabelled = api
            .patch(
                "s",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
            )
            .await
            .expect("label patch");
        assert_eq!(generation(&relabelled), 1);

        let respecced = api
            .patch(
                "s",
                &PatchParams::default(),
                &Patch::Merge(json!({
                    "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/example/hello:2"}]}}}
                })),
            )
            .await
            .expect("spec patch");
        assert_eq!(generation(&respecced), 2, "a spec change bumps generation");
        assert_eq!(
            respecced.status.as_ref().and_then(|s| s.observed_generation),
            Some(1)
        );
    });
}

#[test]
fn watcher_sees_applies_and_deletes() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        api.create(&PostParams::default(), &service("before", "ghcr.io/example/hello:1"))
            .await
            .expect("create");
        let mut events = watch_objects(api.clone(), watcher::Config::default()).boxed();
        let initial = next_matching("the initial list", &mut events, |event| match event {
            Ok(Event::InitApply(object)) => Some(object.name_any()),
            Ok(_) => None,
            Err(error) => panic!("watcher error: {error}"),
        })
        .await;
        assert_eq!(initial, "before");
        next_matching("InitDone", &mut events, |event| {
            matches!(event, Ok(Event::InitDone)).then_some(())
        })
        .await;

        api.create(&PostParams::default(), &service("w", "ghcr.io/example/hello:1"))
            .await
            .expect("create");
        let added = next_matching("the create", &mut events, |event| match event {
            Ok(Event::Apply(object)) => Some(object),
            _ => None,
        })
        .await;
        assert_eq!(added.name_any(), "w");

        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/example/hello:2"}]}}}
            })),
        )
        .await
        .expect("update");
        let updated = next_matching("the update", &mut events, |event| match event {
            Ok(Event::Apply(object)) => Some(object),
            _ => None,
        })
        .await;
        assert_eq!(image_of(&updated), Some("ghcr.io/example/hello:2"));

        api.delete("w", &DeleteParams::default())
            .await
            .expect("delete");
        let deleted = next_matching("the delete", &mut events, |event| match event {
            Ok(Event::Delete(object)) => Some(object.name_any()),
            _ => None,
        })
        .await;
        assert_eq!(deleted, "w");
    });
}

#[test]
fn streaming_list_watcher_gets_init_events_then_live_ones() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        for name in ["a", "b"] {
            api.create(
                &PostParams::default(),
                &service(name, "ghcr.io/example/hello:1"),
            )
            .await
            .expect("create");
        }
        let config = watcher::Config::default().streaming_lists();
        let mut events = watch_objects(api.clone(), config).boxed();
        let mut initial = BTreeSet::new();
        within("the streamed initial events", async {
            loop {
                match events.next().await.expect("stream open") {
                    Ok(Event::Init) => {}
                    Ok(Event::InitApply(object)) => {
                        initial.insert(object.name_any());
                    }
                    Ok(Event::InitDone) => break,
                    other => panic!("unexpected before InitDone: {other:?}"),
                }
            }
        })
        .await;
        assert_eq!(initial, BTreeSet::from(["a".to_owned(), "b".to_owned()]));

        api.create(
            &PostParams::default(),
            &service("c", "ghcr.io/example/hello:1"),
        )
        .await
        .expect("create");
        let live = next_matching("the live event", &mut events, |event| match event {
            Ok(Event::Apply(object)) => Some(object.name_any()),
            _ => None,
        })
        .await;
        assert_eq!(live, "c");
    });
}

#[test]
fn paged_reflector_fills_its_store() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        let expected: BTreeSet<String> = (0..5).map(|i| format!("svc-{i}")).collect();
        for name in &expected {
            api.create(
                &PostParams::default(),
                &service(name, "ghcr.io/example/hello:1"),
            )
            .await
            .expect("create");
        }
        let (reader, writer) = reflector::store();
        let stream = reflector(
            writer,
            watch_objects(api.clone(), watcher::Config::default().page_size(1)),
        );
        let driver = tokio::spawn(stream.for_each(|_| async {}));
        within("the reflector's store", reader.wait_until_ready())
            .await
            .expect("store ready");
        let stored: BTreeSet<String> = reader
            .state()
            .iter()
            .map(|object| object.name_any())
            .collect();
        assert_eq!(stored, expected);

        api.delete("svc-0", &DeleteParams::default())
            .await
            .expect("delete");
        eventually("the store to drop svc-0", || {
            let reader = reader.clone();
            async move { reader.state().len() == 4 }
        })
        .await;
        driver.abort();
    });
}

#[test]
fn metadata_watcher_receives_partial_objects() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        api.create(&PostParams::default(), &labelled("m1", &[("app", "x")]))
            .await
            .expect("create");
        // kube 5's form of `metadata_watcher` (now deprecated): an Api over PartialObjectMeta,
        // which asks for `as=PartialObjectMetadata(List)`.
        let metadata: Api<PartialObjectMeta<Service>> = Api::namespaced(client.clone(), "default");
        let mut events = watch_objects(metadata, watcher::Config::default()).boxed();
        let initial = next_matching("the initial metadata", &mut events, |event| match event {
            Ok(Event::InitApply(meta)) => Some(meta),
            Ok(_) => None,
            Err(error) => panic!("metadata watcher error: {error}"),
        })
        .await;
        assert_eq!(initial.name_any(), "m1");
        assert_eq!(initial.labels().get("app").map(String::as_str), Some("x"));
        assert!(initial.metadata.uid.is_some());
        assert!(initial.metadata.resource_version.is_some());

        api.create(&PostParams::default(), &labelled("m2", &[("app", "y")]))
            .await
            .expect("create");
        let live = next_matching("a live metadata event", &mut events, |event| match event {
            Ok(Event::Apply(meta)) => Some(meta),
            _ => None,
        })
        .await;
        assert_eq!(live.name_any(), "m2");
        // As the real server answers `as=PartialObjectMetadata`.
        let types = live.types.expect("PartialObjectMeta carries its type");
        assert_eq!(types.kind, "PartialObjectMetadata");
        assert_eq!(types.api_version, "meta.k8s.io/v1");

        api.delete("m1", &DeleteParams::default())
            .await
            .expect("delete");
        let gone = next_matching("the delete", &mut events, |event| match event {
            Ok(Event::Delete(meta)) => Some(meta.name_any()),
            _ => None,
        })
        .await;
        assert_eq!(gone, "m1");
    });
}

#[test]
fn controller_reconciles_when_an_owned_configuration_changes() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        let owner = api
            .create(
                &PostParams::default(),
                &service("owner", "ghcr.io/example/hello:1"),
            )
            .await
            .expect("create");
        let (reconciled, mut seen) = mpsc::unbounded_channel::<String>();
        let controller = Controller::new(api.clone(), watcher::Config::default())
            .owns(configurations(&client), watcher::Config::default())
            .run(
                |service: Arc<Service>, reconciled: Arc<mpsc::UnboundedSender<String>>| async move {
                    let _ = reconciled.send(service.name_any());
                    Ok::<_, std::io::Error>(Action::await_change())
                },
                |_, _, _| Action::await_change(),
                Arc::new(reconciled),
            )
            .for_each(|_| async {});
        let driver = tokio::spawn(controller);

        let first = within("the first reconcile", seen.recv()).await;
        assert_eq!(first.as_deref(), Some("owner"));

        let configs = configurations(&client);
        configs
            .create(
                &PostParams::default(),
                &owned_configuration("owner", &owner),
            )
            .await
            .expect("create owned configuration");
        let second = within("a reconcile for the new child", seen.recv()).await;
        assert_eq!(second.as_deref(), Some("owner"));

        configs
            .patch(
                "owner",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"changed": "yes"}}})),
            )
            .await
            .expect("change the child");
        let third = within("a reconcile for the changed child", seen.recv()).await;
        assert_eq!(third.as_deref(), Some("owner"));
        driver.abort();
    });
}

#[test]
fn watch_from_a_compacted_version_gets_410_and_watcher_relists() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        let first = api
            .create(
                &PostParams::default(),
                &labelled("old", &[("watched", "yes")]),
            )
            .await
            .expect("create");
        let old_rv = first.resource_version().expect("rv");

        // A watcher whose stream the server ends every second, without bookmarks, so it
        // resumes from the last version it saw — which compaction is about to remove.
        let config = watcher::Config::default()
            .labels("watched=yes")
            .timeout(1)
            .disable_bookmarks();
        let mut events = watch_objects(api.clone(), config).boxed();
        next_matching("the first InitDone", &mut events, |event| {
            matches!(event, Ok(Event::InitDone)).then_some(())
        })
        .await;

        for i in 0..3 {
            api.create(
                &PostParams::default(),
                &labelled(&format!("other-{i}"), &[]),
            )
            .await
            .expect("create unwatched");
        }
        let store = cluster.server().objects().store();
        let current = store.current_rv();
        assert_eq!(store.compact(current).await.expect("compact"), current);

        let stale = api
            .watch(&WatchParams::default(), &old_rv)
            .await
            .expect("a watch from an old version still opens (200)");
        let mut stale = stale.boxed();
        let status = next_matching("the ERROR event", &mut stale, |event| match event {
            Ok(WatchEvent::Error(status)) => Some(status),
            Ok(other) => panic!("expected ERROR, got {other:?}"),
            Err(error) => panic!("expected an ERROR event, got {error}"),
        })
        .await;
        assert_eq!(status.code, 410);
        assert_eq!(status.reason, "Expired");

        // The watcher hits the same 410 on its next reconnect and starts over with a list.
        let relisted = within("the relist", async {
            let mut relisted = BTreeSet::new();
            let mut restarted = false;
            loop {
                match events.next().await.expect("watcher keeps going") {
                    Ok(Event::Init) => restarted = true,
                    Ok(Event::InitApply(object)) if restarted => {
                        relisted.insert(object.name_any());
                    }
                    Ok(Event::InitDone) if restarted => return relisted,
                    _ => {}
                }
            }
        })
        .await;
        assert_eq!(relisted, BTreeSet::from(["old".to_owned()]));

        api.create(
            &PostParams::default(),
            &labelled("new", &[("watched", "yes")]),
        )
        .await
        .expect("create after relist");
        let live = next_matching(
            "a live event after the relist",
            &mut events,
            |event| match event {
                Ok(Event::Apply(object)) => Some(object.name_any()),
                _ => None,
            },
        )
        .await;
        assert_eq!(live, "new");
    });
}

#[test]
fn finalizer_holds_deletion_until_removed() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        const NAME: &str = "wisp.dev/test-cleanup";
        let api = services(&client);
        api.create(
            &PostParams::default(),
            &service("held", "ghcr.io/example/hello:1"),
        )
        .await
        .expect("create");
        let list = api.list(&ListParams::default()).await.expect("list");
        let list_rv = list.metadata.resource_version.expect("list rv");

        // First pass: the helper adds the finalizer (a JSON patch with `test`).
        let object = Arc::new(api.get("held").await.expect("get"));
        finalizer::finalizer(&api, NAME, object, |event| async move {
            match event {
                Finalizer::Apply(_) => Ok::<_, std::io::Error>(Action::await_change()),
                Finalizer::Cleanup(_) => panic!("not deleting yet"),
            }
        })
        .await
        .expect("finalizer added");
        let object = api.get("held").await.expect("get");
        assert_eq!(object.finalizers(), [NAME.to_owned()]);

        let deleting = api
            .delete("held", &DeleteParams::default())
            .await
            .expect("delete")
            .left()
            .expect("a held object comes back as the object (Left)");
        assert!(deleting.metadata.deletion_timestamp.is_some());
        assert!(!is_gone(&api, "held").await, "still there while finalized");

        let mut watch = api
            .watch(
                &WatchParams::default().fields("metadata.name=held"),
                &list_rv,
            )
            .await
            .expect("watch")
            .boxed();

        // Second pass: cleanup runs and the helper removes the finalizer.
        let cleaned = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&cleaned);
        finalizer::finalizer(&api, NAME, Arc::new(deleting), |event| async move {
            if let Finalizer::Cleanup(_) = event {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            Ok::<_, std::io::Error>(Action::await_change())
        })
        .await
        .expect("finalizer removed");
        assert!(cleaned.load(std::sync::atomic::Ordering::SeqCst));

        let deleted = next_matching("the DELETED event", &mut watch, |event| match event {
            Ok(WatchEvent::Deleted(object)) => Some(object),
            Ok(_) => None,
            Err(error) => panic!("watch error: {error}"),
        })
        .await;
        assert_eq!(deleted.name_any(), "held");
        assert!(is_gone(&api, "held").await);
    });
}

#[test]
fn garbage_collection_follows_owner_references_and_namespaces() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        let configs = configurations(&client);

        // Background: the owned Configuration goes with its Service.
        let owner = api
            .create(
                &PostParams::default(),
                &service("parent", "ghcr.io/example/hello:1"),
            )
            .await
            .expect("create");
        configs
            .create(
                &PostParams::default(),
                &owned_configuration("parent", &owner),
            )
            .await
            .expect("create child");
        let removed = api
            .delete("parent", &DeleteParams::background())
            .await
            .expect("delete");
        assert!(
            removed.is_right(),
            "no finalizers: removed at once (Status)"
        );
        eventually("the child to be collected", || {
            let configs = configs.clone();
            async move { is_gone(&configs, "parent").await }
        })
        .await;

        // Orphan: the child stays, without its reference.
        let owner = api
            .create(
                &PostParams::default(),
                &service("keeper", "ghcr.io/example/hello:1"),
            )
            .await
            .expect("create");
        configs
            .create(
                &PostParams::default(),
                &owned_configuration("keeper", &owner),
            )
            .await
            .expect("create child");
        api.delete("keeper", &DeleteParams::orphan())
            .await
            .expect("delete");
        eventually("the child to be released", || {
            let configs = configs.clone();
            async move {
                let child = configs.get("keeper").await.expect("orphan survives");
                child.owner_references().is_empty()
            }
        })
        .await;
        assert!(is_gone(&api, "keeper").await);

        // Orphan while a finalizer holds the owner: the policy is kept (as Kubernetes keeps it,
        // in the `orphan` finalizer) until the owner goes, and then the child is let go.
        let mut held = service("held-keeper", "ghcr.io/example/hello:1");
        held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
        let owner = api
            .create(&PostParams::default(), &held)
            .await
            .expect("create");
        configs
            .create(
                &PostParams::default(),
                &owned_configuration("held-keeper", &owner),
            )
            .await
            .expect("create child");
        let pending = api
            .delete("held-keeper", &DeleteParams::orphan())
            .await
            .expect("delete")
            .left()
            .expect("held by its finalizer: still there");
        assert_eq!(pending.finalizers(), ["example.com/hold", "orphan"]);
        api.patch(
            "held-keeper",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["orphan"]}})),
        )
        .await
        .expect("the holder lets go");
        eventually("the owner to go", || {
            let api = api.clone();
            async move { is_gone(&api, "held-keeper").await }
        })
        .await;
        eventually("the child to be released, not deleted", || {
            let configs = configs.clone();
            async move {
                let child = configs
                    .get("held-keeper")
                    .await
                    .expect("the orphan survives its owner");
                child.owner_references().is_empty()
            }
        })
        .await;

        // Namespace deletion empties it, then removes it.
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some("doomed".into()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await
            .expect("create namespace");
        let doomed: Api<Service> = Api::namespaced(client.clone(), "doomed");
        let mut inside = service("inside", "ghcr.io/example/hello:1");
        inside.metadata.namespace = Some("doomed".into());
        doomed
            .create(&PostParams::default(), &inside)
            .await
            .expect("create in namespace");
        namespaces
            .delete("doomed", &DeleteParams::default())
            .await
            .expect("delete namespace");
        eventually("the namespace's content to go", || {
            let doomed = doomed.clone();
            async move { is_gone(&doomed, "inside").await }
        })
        .await;
        eventually("the namespace to go", || {
            let namespaces = namespaces.clone();
            async move { is_gone(&namespaces, "doomed").await }
        })
        .await;
    });
}

#[test]
fn label_and_field_selectors_on_list_and_watch() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        let rv = api
            .list(&ListParams::default())
            .await
            .expect("list")
            .metadata
            .resource_version
            .expect("list rv");
        for service in [
            labelled("front", &[("app", "web"), ("tier", "front")]),
            labelled("back", &[("app", "web"), ("tier", "back")]),
            labelled("db", &[("app", "db")]),
            labelled("bare", &[]),
        ] {
            api.create(&PostParams::default(), &service)
                .await
                .expect("create");
        }
        let cases: &[(&str, &[&str])] = &[
            ("app=web", &["back", "front"]),
            ("app==web", &["back", "front"]),
            ("app!=web", &["bare", "db"]),
            ("tier in (front,middle)", &["front"]),
            ("tier notin (front)", &["back", "bare", "db"]),
            ("tier", &["back", "front"]),
            ("!tier", &["bare", "db"]),
            ("app=web,tier!=front", &["back"]),
        ];
        for (selector, expected) in cases {
            let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
            let listed = api
                .list(&ListParams::default().labels(selector))
                .await
                .unwrap_or_else(|error| panic!("list {selector}: {error}"));
            assert_eq!(names(&listed.items), expected, "list with {selector:?}");

            // The same selector on a watch from before the creates.
            let params = WatchParams::default().labels(selector).timeout(1);
            let watched = within(
                "a selected watch to end",
                api.watch(&params, &rv)
                    .await
                    .expect("watch")
                    .try_filter_map(|event| async move {
                        Ok(match event {
                            WatchEvent::Added(object) => Some(object.name_any()),
                            _ => None,
                        })
                    })
                    .try_collect::<BTreeSet<String>>(),
            )
            .await
            .expect("watch stream");
            assert_eq!(watched, expected, "watch with {selector:?}");
        }

        let by_name = api
            .list(&ListParams::default().fields("metadata.name=db"))
            .await
            .expect("list by name");
        assert_eq!(names(&by_name.items), BTreeSet::from(["db".to_owned()]));
        let not_name = api
            .list(&ListParams::default().fields("metadata.name!=db"))
            .await
            .expect("list by name");
        assert_eq!(names(&not_name.items).len(), 3);
        let watched = within(
            "a field-selected watch to end",
            api.watch(
                &WatchParams::default().fields("metadata.name=db").timeout(1),
                &rv,
            )
            .await
            .expect("watch")
            .try_filter_map(|event| async move {
                Ok(match event {
                    WatchEvent::Added(object) => Some(object.name_any()),
                    _ => None,
                })
            })
            .try_collect::<Vec<String>>(),
        )
        .await
        .expect("watch stream");
        assert_eq!(watched, ["db"]);

        let error = api
            .list(&ListParams::default().fields("spec.template=x"))
            .await
            .expect_err("unsupported field selector");
        assert_eq!(api_code(&error), Some(400));
    });
}

#[test]
fn dry_run_stores_nothing_and_generate_name_adds_a_suffix() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        let dry = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let would_be = api
            .create(&dry, &service("dry", "ghcr.io/example/hello:1"))
            .await
            .expect("dry-run create");
        assert_eq!(would_be.name_any(), "dry");
        assert!(is_gone(&api, "dry").await, "dry run stored nothing");
        let listed = api.list(&ListParams::default()).await.expect("list");
        assert!(listed.items.is_empty());

        let mut generated = service("", "ghcr.io/example/hello:1");
        generated.metadata.name = None;
        generated.metadata.generate_name = Some("gen-".into());
        let created = api
            .create(&PostParams::default(), &generated)
            .await
            .expect("create with generateName");
        let name = created.name_any();
        let suffix = name.strip_prefix("gen-").expect("prefix kept");
        assert_eq!(suffix.len(), 5, "{name}");
        assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{name}"
        );
        api.get(&name)
            .await
            .expect("stored under the generated name");
    });
}

#[test]
fn a_wrong_token_is_401() {
    let cluster = Cluster::start();
    let path = cluster.kubeconfig();
    cluster.runtime().block_on(async {
        let client = with_wrong_token(&path).await;
        let error = within(
            "the refusal",
            services(&client).list(&ListParams::default()),
        )
        .await
        .expect_err("a wrong token is refused");
        assert_eq!(api_code(&error), Some(401), "{error:?}");

        // The right token still works.
        let good = support::client_from(&path).await;
        services(&good)
            .list(&ListParams::default())
            .await
            .expect("the real token is accepted");
    });
}

#[test]
fn a_selected_watch_sees_objects_enter_and_leave_the_selection() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        for service in [
            labelled("front", &[("app", "web")]),
            labelled("db", &[("app", "db")]),
        ] {
            api.create(&PostParams::default(), &service)
                .await
                .expect("create");
        }
        let rv = api
            .list(&ListParams::default())
            .await
            .expect("list")
            .metadata
            .resource_version
            .expect("list rv");
        let params = WatchParams::default().labels("app=web").timeout(2);
        let stream = api.watch(&params, &rv).await.expect("watch");
        let relabel =
            |app: &'static str| Patch::Merge(json!({"metadata": {"labels": {"app": app}}}));
        api.patch("front", &PatchParams::default(), &relabel("db"))
            .await
            .expect("front leaves the selection");
        api.patch("db", &PatchParams::default(), &relabel("web"))
            .await
            .expect("db enters the selection");
        let seen = within(
            "the selected watch to end",
            stream
                .try_filter_map(|event| async move {
                    Ok(match event {
                        WatchEvent::Added(object) => Some(format!("ADDED {}", object.name_any())),
                        WatchEvent::Modified(object) => {
                            Some(format!("MODIFIED {}", object.name_any()))
                        }
                        WatchEvent::Deleted(object) => {
                            Some(format!("DELETED {}", object.name_any()))
                        }
                        _ => None,
                    })
                })
                .try_collect::<Vec<String>>(),
        )
        .await
        .expect("watch stream");
        assert_eq!(seen, ["DELETED front", "ADDED db"]);
    });
}

#[test]
fn paged_lists_with_a_selector_return_every_match_once() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        for index in 0..7 {
            let app = if index % 2 == 0 { "web" } else { "db" };
            api.create(
                &PostParams::default(),
                &labelled(&format!("svc-{index}"), &[("app", app)]),
            )
            .await
            .expect("create");
        }
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut params = ListParams::default().labels("app=web").limit(2);
        let first_rv = loop {
            let page = api.list(&params).await.expect("page");
            pages += 1;
            seen.extend(page.items.iter().map(|item| item.name_any()));
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break page.metadata.resource_version,
            }
        };
        assert_eq!(seen, ["svc-0", "svc-2", "svc-4", "svc-6"]);
        assert_eq!(pages, 2);
        let unpaged = api.list(&ListParams::default()).await.expect("list");
        assert_eq!(first_rv, unpaged.metadata.resource_version);
    });
}

#[test]
fn a_selected_watch_resumed_after_a_delete_still_sees_it() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        for service in [
            labelled("gone", &[("app", "web")]),
            labelled("moved", &[("app", "web")]),
        ] {
            api.create(&PostParams::default(), &service)
                .await
                .expect("create");
        }
        let listed = api
            .list(&ListParams::default().labels("app=web"))
            .await
            .expect("list");
        let rv = listed.metadata.resource_version.expect("list rv");
        // Both change between the client's list and its watch.
        api.delete("gone", &DeleteParams::default())
            .await
            .expect("delete");
        api.patch(
            "moved",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
        )
        .await
        .expect("relabel");
        let params = WatchParams::default().labels("app=web").timeout(1);
        let seen = within(
            "the resumed watch to end",
            api.watch(&params, &rv)
                .await
                .expect("watch")
                .try_filter_map(|event| async move {
                    Ok(match event {
                        WatchEvent::Deleted(object) => Some(object.name_any()),
                        _ => None,
                    })
                })
                .try_collect::<Vec<String>>(),
        )
        .await
        .expect("watch stream");
        assert_eq!(seen, ["gone", "moved"]);
    });
}

#[test]
fn a_dry_run_delete_of_a_held_object_returns_it_and_changes_nothing() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        let mut held = labelled("held", &[]);
        held.metadata.finalizers = Some(vec!["example.com/hold".to_owned()]);
        let created = api
            .create(&PostParams::default(), &held)
            .await
            .expect("create");
        let params = DeleteParams {
            dry_run: true,
            ..DeleteParams::default()
        };
        let answer = api.delete("held", &params).await.expect("dry-run delete");
        let object = answer
            .left()
            .expect("held by its finalizer: the object, not a Status");
        assert!(object.metadata.deletion_timestamp.is_some());
        let stored = api.get("held").await.expect("still there");
        assert!(stored.metadata.deletion_timestamp.is_none());
        assert_eq!(stored.resource_version(), created.resource_version());
    });
}

#[test]
fn a_create_without_name_or_generate_name_is_invalid() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        let nameless = labelled("", &[]);
        let error = api
            .create(&PostParams::default(), &nameless)
            .await
            .expect_err("no name");
        let kube::Error::Api(status) = error else {
            panic!("expected a Status, got {error}");
        };
        assert_eq!(status.code, 422);
        assert!(
            status
                .message
                .contains("metadata.name: Required value: name or generateName is required"),
            "{}",
            status.message
        );
        let listed = api.list(&ListParams::default()).await.expect("list");
        assert!(listed.items.is_empty());
    });
}

#[test]
fn only_the_node_identity_writes_pods_and_it_writes_nothing_else() {
    use k8s_openapi::api::core::v1::Pod;
    let cluster = Cluster::start();
    let admin = cluster.client();
    let node_kubeconfig = cluster.server().node_kubeconfig().to_path_buf();
    cluster.runtime().block_on(async {
        let node = support::client_from(&node_kubeconfig).await;
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "hello-00001-1", "labels": {"serving.knative.dev/revision": "hello-00001"}},
            "spec": {"nodeName": "local", "containers": [{"name": "user-container", "image": "hello.wasm"}]},
            "status": {"phase": "Running"}
        }))
        .expect("pod");
        let error = Api::<Pod>::namespaced(admin.clone(), "default")
            .create(&PostParams::default(), &pod)
            .await
            .expect_err("pods are read-only to users");
        assert_eq!(api_code(&error), Some(405), "{error:?}");

        let pods = Api::<Pod>::namespaced(node.clone(), "default");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("the node reports its pods");
        let listed = Api::<Pod>::namespaced(admin.clone(), "default")
            .list(&ListParams::default().labels("serving.knative.dev/revision=hello-00001"))
            .await
            .expect("users read pods");
        assert_eq!(listed.items.len(), 1);

        let error = services(&node)
            .create(&PostParams::default(), &service("by-node", "a.wasm"))
            .await
            .expect_err("the node cannot write services");
        assert_eq!(api_code(&error), Some(403), "{error:?}");
        pods.delete("hello-00001-1", &DeleteParams::default())
            .await
            .expect("the node deletes its pods");
    });
}

#[test]
fn the_node_identity_writes_status_nodes_pods_and_its_leases_and_nothing_else() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let cluster = Cluster::start();
    let admin = cluster.client();
    let node_kubeconfig = cluster.server().node_kubeconfig().to_path_buf();
    cluster.runtime().block_on(async {
        let node = support::client_from(&node_kubeconfig).await;
        let knative = |kind: &str| {
            ApiResource::from_gvk(&GroupVersionKind::gvk("serving.knative.dev", "v1", kind))
        };
        let revision: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": "hello-00001", "namespace": "default"},
            "spec": {"containers": [{"image": "hello.wasm"}]}
        }))
        .expect("revision");
        let revisions = |client: &Client| {
            Api::<DynamicObject>::namespaced_with(client.clone(), "default", &knative("Revision"))
        };
        revisions(&admin)
            .create(&PostParams::default(), &revision)
            .await
            .expect("the admin creates revisions");

        // Allowed: the status of a Revision, a Node, a Pod.
        let mut current = revisions(&node).get("hello-00001").await.expect("read");
        current.data["status"] = json!({"observedGeneration": 1});
        current = revisions(&node)
            .replace_status("hello-00001", &PostParams::default(), &current)
            .await
            .expect("the node writes revision status");
        let node_object: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}
        }))
        .expect("node");
        Api::<Node>::all(node.clone())
            .create(&PostParams::default(), &node_object)
            .await
            .expect("the node registers its Node");
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "hello-00001-n2-1"},
            "spec": {"nodeName": "n2", "containers": [{"name": "user-container", "image": "hello.wasm"}]}
        }))
        .expect("pod");
        Api::<Pod>::namespaced(node.clone(), "default")
            .create(&PostParams::default(), &pod)
            .await
            .expect("the node reports its pods");

        // Refused: a Service, the Revision and Route objects, a ConfigMap, a Lease elsewhere.
        let forbidden = |error: kube::Error, what: &str| {
            assert_eq!(api_code(&error), Some(403), "{what}: {error:?}");
            let message = error.to_string();
            assert!(message.contains("system:node:wisp"), "{message}");
        };
        let error = services(&node)
            .create(&PostParams::default(), &service("by-node", "a.wasm"))
            .await
            .expect_err("the node cannot create services");
        forbidden(error, "create ksvc");
        assert!(error_names_verb_and_resource(&node).await);
        let error = revisions(&node)
            .replace("hello-00001", &PostParams::default(), &current)
            .await
            .expect_err("the node cannot update revisions");
        forbidden(error, "update revision");
        let route: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Route",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"traffic": [{"revisionName": "hello-00001", "percent": 100}]}
        }))
        .expect("route");
        let error = Api::<DynamicObject>::namespaced_with(node.clone(), "default", &knative("Route"))
            .replace("hello", &PostParams::default(), &route)
            .await
            .expect_err("the node cannot update routes");
        forbidden(error, "update route");
        let config: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "by-node"}
        }))
        .expect("config map");
        let error = Api::<ConfigMap>::namespaced(node.clone(), "default")
            .create(&PostParams::default(), &config)
            .await
            .expect_err("the node cannot create config maps");
        forbidden(error, "create configmap");
        let lease: Lease = serde_json::from_value(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "n2"}, "spec": {"holderIdentity": "n2"}
        }))
        .expect("lease");
        let error = Api::<Lease>::namespaced(node.clone(), "default")
            .create(&PostParams::default(), &lease)
            .await
            .expect_err("the node cannot write leases outside kube-node-lease");
        forbidden(error, "create lease in default");
        Api::<Lease>::namespaced(node.clone(), "kube-node-lease")
            .create(&PostParams::default(), &lease)
            .await
            .expect("the node writes its lease");
    });
}

/// Whether the node's refusal names the verb and the resource, as the real server's does.
async fn error_names_verb_and_resource(node: &Client) -> bool {
    let error = services(node)
        .create(&PostParams::default(), &service("by-node", "a.wasm"))
        .await
        .expect_err("refused");
    let message = error.to_string();
    message.contains("create") && message.contains("\"services\"")
}

#[test]
fn config_defaults_apply_to_the_next_write() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = services(&client);
        let mut long = service("long", "a.wasm");
        long.spec.fields["template"]["spec"]["timeoutSeconds"] = json!(900);
        let error = api
            .create(&PostParams::default(), &long)
            .await
            .expect_err("above Knative's 600 s maximum");
        assert_eq!(api_code(&error), Some(400), "{error:?}");

        let config: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "config-defaults", "namespace": "knative-serving"},
            "data": {"revision-timeout-seconds": "30", "max-revision-timeout-seconds": "3600"}
        }))
        .expect("config map");
        Api::<ConfigMap>::namespaced(client.clone(), "knative-serving")
            .create(&PostParams::default(), &config)
            .await
            .expect("config-defaults");
        api.create(&PostParams::default(), &long)
            .await
            .expect("the raised maximum admits 900 s");
        let short = api
            .create(&PostParams::default(), &service("short", "a.wasm"))
            .await
            .expect("create");
        assert_eq!(
            short.spec.fields["template"]["spec"]["timeoutSeconds"],
            json!(30)
        );
    });
}

#[test]
fn leases_take_optimistic_updates_and_keep_microseconds() {
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use k8s_openapi::jiff::Timestamp;

    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let api = Api::<Lease>::namespaced(client.clone(), "kube-system");
        let renew: Timestamp = "2026-05-01T10:00:00.123456Z".parse().expect("timestamp");
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some("wisp-controller".into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some("a_1".into()),
                lease_duration_seconds: Some(15),
                acquire_time: Some(MicroTime(renew)),
                renew_time: Some(MicroTime(renew)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        let created = api
            .create(&PostParams::default(), &lease)
            .await
            .expect("create");
        let got = api.get("wisp-controller").await.expect("get");
        assert_eq!(got.spec, lease.spec, "every field round-trips");

        // On the wire: RFC 3339 with all six fractional digits, as the real server keeps it.
        let raw = client
            .request_text(
                http::Request::get(
                    "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/wisp-controller",
                )
                .body(Vec::new())
                .expect("request"),
            )
            .await
            .expect("raw get");
        let raw: Value = serde_json::from_str(&raw).expect("JSON");
        assert_eq!(raw["spec"]["renewTime"], "2026-05-01T10:00:00.123456Z");
        assert_eq!(raw["kind"], "Lease");
        assert_eq!(raw["apiVersion"], "coordination.k8s.io/v1");

        // Two candidates read the same version; the second write loses with 409 Conflict.
        let mut first = created.clone();
        first.spec.as_mut().expect("spec").holder_identity = Some("b_2".into());
        let renewed = api
            .replace("wisp-controller", &PostParams::default(), &first)
            .await
            .expect("a write based on the current version");
        assert_ne!(
            renewed.metadata.resource_version,
            created.metadata.resource_version
        );
        let mut stale = created.clone();
        stale.spec.as_mut().expect("spec").holder_identity = Some("c_3".into());
        let error = api
            .replace("wisp-controller", &PostParams::default(), &stale)
            .await
            .expect_err("a write based on a stale version");
        assert_eq!(api_code(&error), Some(409), "{error:?}");

        // Like the real lease strategy, an update must say which version it is based on.
        let mut unconditional = renewed.clone();
        unconditional.metadata.resource_version = None;
        let error = api
            .replace("wisp-controller", &PostParams::default(), &unconditional)
            .await
            .expect_err("an update without a resourceVersion");
        assert_eq!(api_code(&error), Some(422), "{error:?}");

        let nodes = Api::<Lease>::namespaced(client.clone(), "kube-node-lease");
        let mut heartbeat = lease.clone();
        heartbeat.metadata.name = Some("node-a".into());
        nodes
            .create(&PostParams::default(), &heartbeat)
            .await
            .expect("kube-node-lease exists");
        let everywhere = Api::<Lease>::all(client.clone())
            .list(&ListParams::default())
            .await
            .expect("list across namespaces");
        let mut listed: Vec<(String, String)> = everywhere
            .items
            .iter()
            .map(|l| (l.namespace().unwrap_or_default(), l.name_any()))
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            [
                ("kube-node-lease".to_owned(), "node-a".to_owned()),
                ("kube-system".to_owned(), "wisp-controller".to_owned())
            ]
        );
        assert_eq!(
            everywhere
                .items
                .iter()
                .find(|l| l.name_any() == "wisp-controller")
                .and_then(|l| l.spec.as_ref()?.holder_identity.clone())
                .as_deref(),
            Some("b_2")
        );
    });
}

#[test]
fn metrics_count_requests_and_need_the_token() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let cluster = Cluster::start();
    let client = cluster.client();
    let path = cluster.kubeconfig();
    cluster.runtime().block_on(async {
        let metrics = |client: Client| async move {
            client
                .request_text(
                    http::Request::get("/metrics")
                        .body(Vec::new())
                        .expect("request"),
                )
                .await
        };
        let count = |text: &str, series: &str| -> u64 {
            text.lines()
                .find(|line| line.starts_with(series))
                .and_then(|line| line.rsplit_once(' '))
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(0)
        };
        let series = "apiserver_request_total{verb=\"list\",resource=\"configmaps\",code=\"200\"}";
        let before = count(&metrics(client.clone()).await.expect("metrics"), series);
        let api = Api::<ConfigMap>::namespaced(client.clone(), "default");
        for _ in 0..3 {
            api.list(&ListParams::default()).await.expect("list");
        }
        let after = metrics(client.clone()).await.expect("metrics");
        assert_eq!(count(&after, series), before + 3, "{after}");

        // With another token: 401, as on every path that is not public.
        let stranger = with_wrong_token(&path).await;
        let error = metrics(stranger).await.expect_err("refused");
        assert_eq!(api_code(&error), Some(401), "{error:?}");
    });
}

/// A client of the server of kubeconfig `path` that presents a token the server never issued.
async fn with_wrong_token(path: &std::path::Path) -> Client {
    let mut kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig");
    for named in &mut kubeconfig.auth_infos {
        if let Some(auth) = named.auth_info.as_mut() {
            auth.token = Some("not-the-token".to_owned().into());
        }
    }
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

/// Creates racing the deletion of their namespace: each one either lands before the deletion
/// starts (and is then deleted with the namespace) or is refused. None may outlive the
/// namespace, whatever the interleaving. Several rounds, since the race is about timing.
#[test]
fn content_never_outlives_its_namespace_when_created_during_its_deletion() {
    let cluster = Cluster::start();
    let client = cluster.client();
    cluster.runtime().block_on(async {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        for round in 0..5 {
            let name = format!("racing-{round}");
            namespaces
                .create(
                    &PostParams::default(),
                    &Namespace {
                        metadata: ObjectMeta {
                            name: Some(name.clone()),
                            ..ObjectMeta::default()
                        },
                        ..Namespace::default()
                    },
                )
                .await
                .expect("create namespace");
            let inside: Api<Service> = Api::namespaced(client.clone(), &name);
            let creates = (0..60).map(|i| {
                let inside = inside.clone();
                let mut object = service(&format!("s{i}"), "ghcr.io/example/hello:1");
                object.metadata.namespace = Some(name.clone());
                async move { inside.create(&PostParams::default(), &object).await.is_ok() }
            });
            let deleting = async {
                tokio::task::yield_now().await;
                namespaces
                    .delete(&name, &DeleteParams::default())
                    .await
                    .expect("delete namespace");
            };
            let (created, ()) = tokio::join!(futures::future::join_all(creates), deleting);
            eventually("the namespace to go", || {
                let namespaces = namespaces.clone();
                let name = name.clone();
                async move { is_gone(&namespaces, &name).await }
            })
            .await;
            let left = inside.list(&ListParams::default()).await.expect("list");
            assert!(
                left.items.is_empty(),
                "round {round}: {} of {} created Services outlived their namespace",
                left.items.len(),
                created.iter().filter(|ok| **ok).count()
            );
        }
    });
}
