//! A `wisp up` under benchmark: started in a temporary data directory with the flags a case
//! needs, driven through its Kubernetes API with kube-rs (Services created with a fixed number
//! in flight, `config-autoscaler` set, Ready awaited), and read through `/metrics` and `/proc`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use std::collections::HashSet;

use anyhow::{Context, bail};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::ResourceExt;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use wisp_api::nodes::{NODE_LABEL, is_ready as is_node_ready};

use crate::manifests::ServiceManifest;
use crate::runner::scrape;
use crate::scaling_metrics::{cold_starts_by_service, scaling_state};
use crate::wisp_up::{WispUp, repository_root};

/// How long Services may take to become Ready before a case gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(1800);

/// When a Service's replicas were all ready, and what the sampler saw on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicasReady {
    /// From `since` to the first scrape showing every replica ready.
    pub all: Duration,
    /// The ready counts between none and all that a scrape saw, ascending: empty when the data
    /// plane reported every replica in one update.
    pub counts_between: Vec<i64>,
}

/// A running `wisp up` and a client of its API.
pub struct Cluster {
    pub wisp: WispUp,
    client: kube::Client,
}

impl Cluster {
    /// Starts `wisp up` with `flags` (ports are ephemeral, the data directory temporary).
    pub async fn start(wisp: &std::path::Path, flags: &[&str]) -> anyhow::Result<Self> {
        let wisp = WispUp::start_with(wisp, &repository_root(), flags)?;
        let client = client(&wisp.endpoints.kubeconfig).await?;
        Ok(Self { wisp, client })
    }

    /// The gateway's address.
    pub fn gateway(&self) -> std::net::SocketAddr {
        self.wisp.endpoints.gateway
    }

    /// The data plane's cold-start counter per Service of `default`, from `/metrics`.
    pub async fn cold_starts(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let text = scrape(self.wisp.endpoints.metrics)
            .await
            .context("cannot read wisp up's /metrics")?;
        Ok(cold_starts_by_service(&text, "default"))
    }

    /// Sets `knative-serving/config-autoscaler` to `settings` (`key`, `value`).
    pub async fn configure_autoscaler(&self, settings: &[(&str, &str)]) -> anyhow::Result<()> {
        let data: serde_json::Map<String, Value> = settings
            .iter()
            .map(|(key, value)| ((*key).to_owned(), Value::from(*value)))
            .collect();
        let config_map: ConfigMap = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"},
            "data": data,
        }))?;
        Api::<ConfigMap>::namespaced(self.client.clone(), "knative-serving")
            .patch(
                "config-autoscaler",
                &PatchParams::apply("wisp-loadtests").force(),
                &Patch::Apply(&config_map),
            )
            .await
            .context("cannot set knative-serving/config-autoscaler")?;
        Ok(())
    }

    /// Creates `services` in `default` with `in_flight` creates at once.
    pub async fn create(
        &self,
        services: &[ServiceManifest],
        in_flight: usize,
    ) -> anyhow::Result<()> {
        create_services(&self.client, services, in_flight).await
    }

    /// Creates `service` and returns how long it took from the create to the Service's Ready
    /// condition, followed by a watch opened before the create; fails if it turns Ready=False.
    pub async fn time_to_ready(&self, service: &ServiceManifest) -> anyhow::Result<Duration> {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", service.name));
        let mut events = std::pin::pin!(watcher(services_api(&self.client), config));
        // The initial (empty) list is done before the create: the watch then resumes from its
        // resourceVersion, so no change after the create can be missed.
        loop {
            match events.try_next().await? {
                Some(watcher::Event::InitDone) => break,
                Some(_) => continue,
                None => bail!(
                    "the watch on Service {} ended before it began",
                    service.name
                ),
            }
        }
        let started = Instant::now();
        self.create(std::slice::from_ref(service), 1).await?;
        let follow = async {
            while let Some(event) = events.try_next().await? {
                let (watcher::Event::Apply(object) | watcher::Event::InitApply(object)) = event
                else {
                    continue;
                };
                match ready_condition(&object) {
                    Some(("True", _)) => return Ok(started.elapsed()),
                    Some(("False", message)) => {
                        bail!("Service {} failed: {message}", service.name)
                    }
                    _ => {}
                }
            }
            bail!("the watch on Service {} ended", service.name)
        };
        match tokio::time::timeout(READY_TIMEOUT, follow).await {
            Ok(outcome) => outcome,
            Err(_) => bail!("Service {} not Ready after {READY_TIMEOUT:?}", service.name),
        }
    }

    /// Waits until `count` Services of `default` are Ready ([`wait_services_ready`]).
    pub async fn wait_ready(&self, count: usize) -> anyhow::Result<()> {
        wait_services_ready(&self.client, count).await
    }

    /// Waits until the ready replicas of Service `name` (from `/metrics`) reach `replicas`,
    /// sampling every `every`; returns when the first and the last of them were seen.
    pub async fn wait_replicas(
        &self,
        name: &str,
        replicas: i64,
        every: Duration,
        since: Instant,
    ) -> anyhow::Result<ReplicasReady> {
        let services = BTreeSet::from([("default".to_owned(), name.to_owned())]);
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut counts_between = BTreeSet::new();
        loop {
            if let Some(text) = scrape(self.wisp.endpoints.metrics).await {
                let actual = scaling_state(&text, &services).actual;
                if actual >= replicas {
                    return Ok(ReplicasReady {
                        all: since.elapsed(),
                        counts_between: counts_between.into_iter().collect(),
                    });
                }
                if actual > 0 {
                    counts_between.insert(actual);
                }
                if Instant::now() > deadline {
                    bail!(
                        "Service {name} has {actual} of {replicas} replicas after {READY_TIMEOUT:?}"
                    );
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Waits until `count` wisp Nodes are Ready.
    pub async fn wait_nodes_ready(&self, count: usize) -> anyhow::Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let params = ListParams::default().labels(&format!("{NODE_LABEL}=true"));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let ready = nodes
                .list(&params)
                .await?
                .iter()
                .filter(|node| is_node_ready(node))
                .count();
            if ready >= count {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{ready} of {count} wisp nodes Ready after {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Requests the API server has answered so far (`apiserver_request_total`, all series).
    pub async fn api_requests(&self) -> anyhow::Result<f64> {
        let request = http::Request::get("/metrics")
            .body(Vec::new())
            .context("cannot build the /metrics request")?;
        let text = self.client.request_text(request).await?;
        Ok(text
            .lines()
            .filter(|line| line.starts_with("apiserver_request_total{"))
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum())
    }
}

/// Waits until `count` Services of `default` are Ready, following a watch (a list of them
/// all every so often would cost the server, on the same cores, more than it measures).
pub async fn wait_services_ready(client: &kube::Client, count: usize) -> anyhow::Result<()> {
    let mut events =
        std::pin::pin!(watcher(services_api(client), watcher::Config::default()).default_backoff());
    let mut ready: HashSet<String> = HashSet::new();
    let follow = async {
        while let Some(event) = events.try_next().await? {
            match event {
                watcher::Event::Apply(service) | watcher::Event::InitApply(service) => {
                    if is_ready(&service) {
                        ready.insert(service.name_any());
                    } else {
                        ready.remove(&service.name_any());
                    }
                }
                watcher::Event::Delete(service) => {
                    ready.remove(&service.name_any());
                }
                // A relist sends every Service again.
                watcher::Event::Init => ready.clear(),
                watcher::Event::InitDone => {}
            }
            if ready.len() >= count {
                return Ok(());
            }
        }
        bail!("the watch on Services ended")
    };
    match tokio::time::timeout(READY_TIMEOUT, follow).await {
        Ok(outcome) => outcome,
        Err(_) => bail!(
            "{} of {count} Services Ready after {READY_TIMEOUT:?}",
            ready.len()
        ),
    }
}

/// The Knative services collection in `default`.
pub fn services_api(client: &kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("serving.knative.dev", "v1", "Service");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "services");
    Api::namespaced_with(client.clone(), "default", &resource)
}

/// Creates `services` in `default` through `client` with `in_flight` creates at once; fails on
/// the first refusal (a benchmark of half its Services would mislead).
pub async fn create_services(
    client: &kube::Client,
    services: &[ServiceManifest],
    in_flight: usize,
) -> anyhow::Result<()> {
    let api = services_api(client);
    let objects: Arc<Vec<DynamicObject>> = Arc::new(
        services
            .iter()
            .map(|service| {
                let value: Value = serde_norway::from_str(&service.to_yaml())?;
                Ok(serde_json::from_value(value)?)
            })
            .collect::<anyhow::Result<_>>()?,
    );
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..in_flight.max(1))
        .map(|_| {
            let (api, objects, next) = (api.clone(), objects.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(object) = objects.get(index) else {
                        return anyhow::Ok(());
                    };
                    let name = object.metadata.name.as_deref().unwrap_or("?");
                    api.create(&PostParams::default(), object)
                        .await
                        .with_context(|| format!("cannot create Service {name}"))?;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.context("a create worker stopped")??;
    }
    Ok(())
}

/// A client from a kubeconfig file.
pub async fn client(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read {}", kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}

fn is_ready(service: &DynamicObject) -> bool {
    matches!(ready_condition(service), Some(("True", _)))
}

/// The status of a Service's Ready condition, with its reason and message.
fn ready_condition(service: &DynamicObject) -> Option<(&str, String)> {
    let condition = service
        .data
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|condition| condition.get("type").and_then(Value::as_str) == Some("Ready"))?;
    let text = |key: &str| condition.get(key).and_then(Value::as_str).unwrap_or("");
    Some((
        condition.get("status")?.as_str()?,
        format!("{}: {}", text("reason"), text("message")),
    ))
}

/// CPU time a process has used (user + system), from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path} is not a stat line"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 counting from 0 after the name.
    let ticks = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .with_context(|| format!("no CPU time field in {path}"))
    };
    // Linux reports in USER_HZ, which is 100 on every architecture it runs on.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}
