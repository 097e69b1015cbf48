//! The control plane at scale: N Knative Services created through `wisp up`'s API and brought
//! to Ready (Configuration, Route, Revision and the data plane's status for each), with the
//! process's memory and CPU, beside the same creates stored by the API server alone
//! (`wisp api-server`), the floor under any control plane built on it. The Services start at
//! zero replicas (`allow-zero-initial-scale`), so this measures the controllers, not replicas.
//! The third row is the same creates through wisp's controllers and a wisp node on the genuine
//! kube-apiserver + etcd ([`KubeEnv`], with `deploy/kubernetes/` applied): the API server wisp
//! embeds against the one it implements. Knative Serving itself is not measured: it needs its
//! container images and a kubelet to run them, which this machine does not have.

use std::time::{Duration, Instant};

use crate::kube_env::{self, KubeEnv};
use crate::manifests::ServiceManifest;
use crate::peers;
use crate::report;
use crate::wisp_on_kube::{self, Credentials};

use super::api::Footprint;
use super::cluster::{self, Cluster, cpu_time};
use super::{Scratch, wisp_binary};

/// How long the process is watched after the last Service became Ready, for its idle CPU.
const IDLE_WINDOW: Duration = Duration::from_secs(10);

struct Measured {
    created: Duration,
    ready: Option<Duration>,
    memory: Footprint,
    /// CPU used by each process from the first create to the last Ready.
    cpu: Vec<(String, Duration)>,
    idle_cpu: Option<Duration>,
}

impl Measured {
    fn cpu_total(&self) -> Duration {
        self.cpu.iter().map(|(_, used)| *used).sum()
    }
}

/// CPU time used so far by each of `processes`.
fn cpu_times(processes: &[(String, u32)]) -> anyhow::Result<Vec<(String, Duration)>> {
    processes
        .iter()
        .map(|(name, pid)| Ok((name.clone(), cpu_time(*pid)?)))
        .collect()
}

/// CPU used by each process between two readings of [`cpu_times`].
fn cpu_since(
    before: &[(String, Duration)],
    processes: &[(String, u32)],
) -> anyhow::Result<Vec<(String, Duration)>> {
    let now = cpu_times(processes)?;
    Ok(now
        .into_iter()
        .zip(before)
        .map(|((name, now), (_, then))| (name, now.saturating_sub(*then)))
        .collect())
}

fn total(cpu: &[(String, Duration)]) -> Duration {
    cpu.iter().map(|(_, used)| *used).sum()
}

/// `with_kube`: also measure the genuine kube-apiserver row (minutes at 10,000 Services).
pub fn run(count: usize, in_flight: usize, with_kube: bool) -> anyhow::Result<String> {
    let wisp = wisp_binary()?;
    let manifests: Vec<ServiceManifest> = (0..count)
        .map(|i| {
            ServiceManifest::new(format!("svc-{i:05}"), wisp_samples::HELLO)
                .autoscaling("initial-scale", "0")
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let up = runtime.block_on(async {
        let cluster = Cluster::start(&wisp, &[]).await?;
        cluster
            .configure_autoscaler(&[("allow-zero-initial-scale", "true")])
            .await?;
        let processes = [("wisp up".to_owned(), cluster.wisp.pid())];
        let cpu_before = cpu_times(&processes)?;
        let started = Instant::now();
        cluster.create(&manifests, in_flight).await?;
        let created = started.elapsed();
        cluster.wait_ready(count).await?;
        let ready = started.elapsed();
        let cpu = cpu_since(&cpu_before, &processes)?;
        let idle_from = cpu_times(&processes)?;
        tokio::time::sleep(IDLE_WINDOW).await;
        let idle_cpu = total(&cpu_since(&idle_from, &processes)?);
        anyhow::Ok(Measured {
            created,
            ready: Some(ready),
            memory: Footprint::read(&processes)?,
            cpu,
            idle_cpu: Some(idle_cpu),
        })
    })?;

    let scratch = Scratch::new("services")?;
    let data_dir = scratch.dir.join("data");
    let server = peers::start_wisp_api_server(&wisp, &data_dir)?;
    let alone = runtime.block_on(async {
        let client = cluster::client(&data_dir.join("kubeconfig")).await?;
        let processes = [("wisp api-server".to_owned(), server.pid())];
        let cpu_before = cpu_times(&processes)?;
        let started = Instant::now();
        cluster::create_services(&client, &manifests, in_flight).await?;
        let created = started.elapsed();
        anyhow::Ok(Measured {
            created,
            ready: None,
            memory: Footprint::read(&processes)?,
            cpu: cpu_since(&cpu_before, &processes)?,
            idle_cpu: None,
        })
    })?;
    drop(server);

    // A failure is reported in its row; the whole of it (with the control plane's last log
    // lines) goes to stderr, too long for a table cell.
    let on_kube = if with_kube {
        on_kube(&runtime, &wisp, &scratch, &manifests, in_flight).map_err(|error| {
            eprintln!("bench services on the genuine kube-apiserver failed: {error:#}");
            format!("{error}")
        })
    } else {
        Err("left out (--skip-kube)".to_owned())
    };

    let mut out = format!(
        "{count} Knative Services of hello created through the API with kube-rs, {in_flight} creates in flight, all at zero replicas; {}\n\n",
        report::machine_line()
    );
    out.push_str("| server | created in | creates/s | all Ready after | Services Ready/s | RSS at the end | peak RSS | CPU used | CPU in the 10 s after | vs wisp up (time to all Ready, RSS, CPU) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    let kube_row = "genuine kube-apiserver 1.34 + etcd 3.5 + kube-controller-manager, wisp controller + wisp node";
    let mut rows: Vec<(&str, Result<&Measured, &str>)> = vec![
        ("wisp up (API, controllers, data plane)", Ok(&up)),
        ("wisp api-server (storage alone)", Ok(&alone)),
    ];
    rows.push((kube_row, on_kube.as_ref().map_err(String::as_str)));
    for (name, measured) in rows {
        let measured = match measured {
            Ok(measured) => measured,
            Err(reason) => {
                out.push_str(&format!(
                    "| {name} | — | — | — | — | — | — | — | — | not measured: {} |\n",
                    reason.lines().next().unwrap_or_default().replace('|', "/")
                ));
                continue;
            }
        };
        let per_second = |elapsed: Duration| count as f64 / elapsed.as_secs_f64().max(1e-9);
        let vs_up = if std::ptr::eq(measured, &up) {
            "1.00× (the reference)".to_owned()
        } else {
            ratios(measured, &up)
        };
        let memory = measured.memory.total();
        out.push_str(&format!(
            "| {name} | {:.1} s | {:.0} | {} | {} | {} | {} | {:.1} s | {} | {vs_up} |\n",
            measured.created.as_secs_f64(),
            per_second(measured.created),
            measured
                .ready
                .map_or("—".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
            measured
                .ready
                .map_or("—".to_owned(), |d| format!("{:.0}", per_second(d))),
            mib(memory.rss_kib),
            mib(memory.hwm_kib),
            measured.cpu_total().as_secs_f64(),
            measured
                .idle_cpu
                .map_or("—".to_owned(), |d| format!("{:.2} s", d.as_secs_f64())),
        ));
    }
    out.push_str("| Knative Serving | — | — | — | — | — | — | — | — | not measured: it needs its container images and a kubelet to run them, which this machine does not have |\n");
    if let Ok(measured) = &on_kube {
        let parts: Vec<String> = measured
            .memory
            .0
            .iter()
            .zip(&measured.cpu)
            .map(|((name, memory), (_, cpu))| {
                format!(
                    "{name} {} (peak {}), {:.1} s CPU",
                    mib(memory.rss_kib),
                    mib(memory.hwm_kib),
                    cpu.as_secs_f64()
                )
            })
            .collect();
        out.push_str(&format!(
            "\n*{kube_row}, by process (peak RSS is the sum of each process's own peak): {}*\n",
            parts.join("; ")
        ));
    }
    Ok(out)
}

/// How `measured` compares with `wisp up`: ratios of amounts (above 1 is slower or bigger).
fn ratios(measured: &Measured, up: &Measured) -> String {
    let ratio = |ours: f64, theirs: f64| {
        if theirs > 0.0 {
            format!("{:.2}×", ours / theirs)
        } else {
            "—".to_owned()
        }
    };
    let ready = match (measured.ready, up.ready) {
        (Some(ours), Some(theirs)) => ratio(ours.as_secs_f64(), theirs.as_secs_f64()),
        _ => "—".to_owned(),
    };
    let memory = |m: &Measured| m.memory.total().rss_kib as f64;
    format!(
        "{ready}, {}, {}",
        ratio(memory(measured), memory(up)),
        ratio(
            measured.cpu_total().as_secs_f64(),
            up.cpu_total().as_secs_f64()
        ),
    )
}

/// The Services created and brought to Ready through a `wisp controller` and a `wisp node` on
/// the genuine kube-apiserver + etcd, with `deploy/kubernetes/` applied and the webhooks
/// pointed at the controller; memory and CPU of every process of that cluster.
fn on_kube(
    runtime: &tokio::runtime::Runtime,
    wisp: &std::path::Path,
    scratch: &Scratch,
    manifests: &[ServiceManifest],
    in_flight: usize,
) -> anyhow::Result<Measured> {
    let env = KubeEnv::start()?;
    wisp_on_kube::install(&env)?;
    wisp_on_kube::configure_autoscaler(&env, &[("allow-zero-initial-scale", "true")])?;
    let credentials = Credentials::issue(&env)?;
    let (controller, webhook) = wisp_on_kube::start_controller(wisp, &credentials, "bench")?;
    wisp_on_kube::point_webhooks_at(&env, &webhook)?;
    let (node, _gateway) =
        wisp_on_kube::start_node(wisp, &credentials, "wisp-a", &scratch.cache())?;
    let processes = [
        (
            kube_env::KUBE_APISERVER.to_owned(),
            env.pid(kube_env::KUBE_APISERVER)?,
        ),
        (kube_env::ETCD.to_owned(), env.pid(kube_env::ETCD)?),
        (
            kube_env::KUBE_CONTROLLER_MANAGER.to_owned(),
            env.pid(kube_env::KUBE_CONTROLLER_MANAGER)?,
        ),
        ("wisp controller".to_owned(), controller.pid()),
        ("wisp node".to_owned(), node.pid()),
    ];
    let count = manifests.len();
    let measured = runtime.block_on(async {
        let client = cluster::client(&env.kubeconfig).await?;
        let cpu_before = cpu_times(&processes)?;
        let started = Instant::now();
        cluster::create_services(&client, manifests, in_flight).await?;
        let created = started.elapsed();
        cluster::wait_services_ready(&client, count).await?;
        let ready = started.elapsed();
        let cpu = cpu_since(&cpu_before, &processes)?;
        let idle_from = cpu_times(&processes)?;
        tokio::time::sleep(IDLE_WINDOW).await;
        let idle_cpu = total(&cpu_since(&idle_from, &processes)?);
        anyhow::Ok(Measured {
            created,
            ready: Some(ready),
            memory: Footprint::read(&processes)?,
            cpu,
            idle_cpu: Some(idle_cpu),
        })
    });
    measured.map_err(|error| anyhow::anyhow!("{error:#}\n{}", env.logs()))
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}
