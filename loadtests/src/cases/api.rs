//! The Kubernetes-compatible API server (`wisp api-server`, a process of its own) driven with
//! kube-rs: Knative Services created with a fixed number in flight, lists of all of them (one
//! page, and pages of 500), the delay from a write's acknowledgement to each of many open
//! watches receiving its event, and the server's resident memory — then the same on the
//! genuine kube-apiserver + etcd ([`KubeEnv`]) with the Knative CRDs applied, for ratios.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use hdrhistogram::Histogram;
use kube::api::{
    Api, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;
use tokio::sync::mpsc;

use crate::kube_env::{self, KubeEnv};
use crate::peers;
use crate::report;
use crate::wisp_on_kube;

use super::cluster;
use super::{Scratch, require_open_files, wisp_binary};

/// Items per page of the paged list (kubectl's default chunk size).
pub const PAGE_SIZE: u32 = 500;

/// How long any phase may take before the benchmark gives up instead of hanging.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

/// The Service the watched writes change (the first one created).
const WATCHED_WRITE_TARGET: &str = "bench-00000";

/// Sizes of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Knative Services created.
    pub services: usize,
    /// Creates in flight at once.
    pub in_flight: usize,
    /// Concurrent watches on the services collection.
    pub watchers: usize,
    /// Writes whose events the watchers time.
    pub watched_writes: usize,
    /// Pause between two watched writes, so each is delivered before the next.
    pub write_spacing: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            services: 10_000,
            in_flight: 32,
            watchers: 1_000,
            watched_writes: 20,
            write_spacing: Duration::from_millis(100),
        }
    }
}

/// Resident memory of the server, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak so far.
    pub hwm_kib: u64,
}

/// Memory of each process of a server at one moment (kube-apiserver and etcd are two).
#[derive(Debug, Clone, Default)]
pub struct Footprint(pub Vec<(String, Memory)>);

impl Footprint {
    /// Reads every process's memory now.
    pub fn read(processes: &[(String, u32)]) -> anyhow::Result<Self> {
        processes
            .iter()
            .map(|(name, pid)| Ok((name.clone(), memory(*pid)?)))
            .collect::<anyhow::Result<_>>()
            .map(Self)
    }

    /// The sum over the processes (of peaks reached at different moments, for `hwm_kib`).
    pub fn total(&self) -> Memory {
        self.0.iter().fold(Memory::default(), |sum, (_, m)| Memory {
            rss_kib: sum.rss_kib + m.rss_kib,
            hwm_kib: sum.hwm_kib + m.hwm_kib,
        })
    }

    /// `VmRSS X, VmHWM Y`, and each process apart when there are several.
    fn describe(&self) -> String {
        let total = self.total();
        let mut text = format!("VmRSS {}, VmHWM {}", mib(total.rss_kib), mib(total.hwm_kib));
        if self.0.len() > 1 {
            let parts: Vec<String> = self
                .0
                .iter()
                .map(|(name, m)| format!("{name} {} (peak {})", mib(m.rss_kib), mib(m.hwm_kib)))
                .collect();
            text.push_str(&format!(" ({})", parts.join(", ")));
        }
        text
    }
}

/// What one run measured.
pub struct ApiBench {
    /// The server, as its row names it.
    pub server: String,
    /// What the server is, for the report's first line.
    pub description: String,
    /// The sizes it ran with.
    pub settings: Settings,
    /// Creates acknowledged with 201.
    pub created: usize,
    /// Creates refused or failed.
    pub create_errors: usize,
    /// Wall time of the create phase.
    pub create_elapsed: Duration,
    /// Latency of each acknowledged create, µs.
    pub create_latency_us: Histogram<u64>,
    /// Items in the one-page list.
    pub listed: usize,
    /// Time of the one-page list.
    pub list_elapsed: Duration,
    /// Items over all pages of the paged list.
    pub paged_listed: usize,
    /// Pages the paged list took.
    pub pages: usize,
    /// Time of the whole paged list.
    pub paged_elapsed: Duration,
    /// Watches opened.
    pub watchers_opened: usize,
    /// Watched writes acknowledged.
    pub watched_writes: usize,
    /// Watcher × write events received.
    pub deliveries: usize,
    /// Delay from a write's acknowledgement to a watcher receiving it, µs (0 when the event
    /// arrived before the acknowledgement).
    pub delivery_delay_us: Histogram<u64>,
    /// Delay from sending a write's request to a watcher receiving its event, µs.
    pub delivery_from_send_us: Histogram<u64>,
    /// Latency of the spaced writes made before any watch is open, µs: the baseline.
    pub write_latency_unwatched_us: Histogram<u64>,
    /// Latency of the same spaced writes with every watch open, µs: watchers must not slow
    /// writes.
    pub write_latency_watched_us: Histogram<u64>,
    /// Server memory once every Service exists.
    pub memory_after_creates: Footprint,
    /// Server memory after the lists.
    pub memory_after_lists: Footprint,
    /// Server memory at the end (watches still open).
    pub memory_at_end: Footprint,
}

/// Starts `wisp api-server` over a scratch directory and measures it.
pub fn run(settings: &Settings) -> anyhow::Result<ApiBench> {
    require_open_files(settings.watchers + settings.in_flight)?;
    let scratch = Scratch::new("api")?;
    let data_dir = scratch.dir.join("data");
    let server = peers::start_wisp_api_server(&wisp_binary()?, &data_dir)?;
    let kubeconfig = data_dir.join("kubeconfig");
    let processes = [("wisp api-server".to_owned(), server.pid())];
    let mut bench = measure_on(settings, &kubeconfig, &processes)?;
    bench.server = "wisp api-server (SQLite)".into();
    bench.description = "wisp api-server (its own process, SQLite store)".into();
    Ok(bench)
}

/// The same on the genuine kube-apiserver + etcd of `scripts/kube-env`, with only the Knative
/// CRDs applied — or, with `webhooks`, all of `deploy/kubernetes/` and a `wisp controller`
/// serving the admission webhooks (standing by, so it reconciles nothing).
pub fn run_on_kube(settings: &Settings, webhooks: bool) -> anyhow::Result<ApiBench> {
    require_open_files(settings.watchers + settings.in_flight)?;
    let env = KubeEnv::start()?;
    let mut processes = vec![
        (
            kube_env::KUBE_APISERVER.to_owned(),
            env.pid(kube_env::KUBE_APISERVER)?,
        ),
        (kube_env::ETCD.to_owned(), env.pid(kube_env::ETCD)?),
    ];
    // Kept alive until the measurement ends.
    let mut controller = None;
    if webhooks {
        wisp_on_kube::install(&env)?;
        wisp_on_kube::hold_controller_lease(&env)?;
        let credentials = wisp_on_kube::Credentials::issue(&env)?;
        let (child, webhook) =
            wisp_on_kube::start_controller(&wisp_binary()?, &credentials, "bench-webhook")?;
        wisp_on_kube::point_webhooks_at(&env, &webhook)?;
        processes.push(("wisp controller (webhook)".to_owned(), child.pid()));
        controller = Some((child, credentials));
    } else {
        wisp_on_kube::apply_crds(&env)?;
    }
    let mut bench = measure_on(settings, &env.kubeconfig, &processes)
        .with_context(|| format!("on the genuine kube-apiserver:\n{}", env.logs()))?;
    drop(controller);
    if webhooks {
        bench.server = "kube-apiserver 1.34 + etcd 3.5, wisp's admission webhooks".into();
        bench.description = "the genuine kube-apiserver 1.34 + etcd 3.5 (scripts/kube-env), deploy/kubernetes applied, every Service write admitted by wisp's defaulting and validating webhooks (a standby wisp controller, over HTTPS on loopback)".into();
    } else {
        bench.server = "kube-apiserver 1.34 + etcd 3.5, CRDs only, no webhooks".into();
        bench.description = "the genuine kube-apiserver 1.34 + etcd 3.5 (scripts/kube-env, etcd with --unsafe-no-fsync), only the Knative CRDs applied and no admission webhooks (they would add a network hop per write that wisp's embedded admission does not pay)".into();
    }
    Ok(bench)
}

fn measure_on(
    settings: &Settings,
    kubeconfig: &std::path::Path,
    processes: &[(String, u32)],
) -> anyhow::Result<ApiBench> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::time::timeout(PHASE_TIMEOUT * 4, measure(settings, kubeconfig, processes))
            .await
            .context("the API benchmark did not finish in time")?
    })
}

async fn measure(
    settings: &Settings,
    kubeconfig: &std::path::Path,
    processes: &[(String, u32)],
) -> anyhow::Result<ApiBench> {
    let services = services_api(kubeconfig).await?;

    let started = Instant::now();
    let (create_latency_us, created, create_errors) = create_all(&services, settings).await?;
    let create_elapsed = started.elapsed();
    let memory_after_creates = Footprint::read(processes)?;
    // Before the list, so the watches (which start at the list's resourceVersion) never see
    // these writes.
    let mut write_latency_unwatched_us = histogram();
    for write in spaced_writes(&services, settings, "unwatched").await? {
        write_latency_unwatched_us.saturating_record(micros(write.acked - write.sent));
    }

    let started = Instant::now();
    let all = services.list(&ListParams::default()).await?;
    let list_elapsed = started.elapsed();
    let list_rv = all
        .metadata
        .resource_version
        .clone()
        .context("the list has no resourceVersion")?;
    let listed = all.items.len();
    drop(all);
    let (paged_listed, pages, paged_elapsed) = paged_list(&services).await?;
    let memory_after_lists = Footprint::read(processes)?;

    let watch = watch_fan_out(&services, settings, &list_rv).await?;
    let memory_at_end = Footprint::read(processes)?;
    Ok(ApiBench {
        server: String::new(),
        description: String::new(),
        settings: settings.clone(),
        created,
        create_errors,
        create_elapsed,
        create_latency_us,
        listed,
        list_elapsed,
        paged_listed,
        pages,
        paged_elapsed,
        watchers_opened: watch.opened,
        watched_writes: watch.writes,
        deliveries: watch.deliveries,
        delivery_delay_us: watch.delay_us,
        delivery_from_send_us: watch.from_send_us,
        write_latency_unwatched_us,
        write_latency_watched_us: watch.write_latency_us,
        memory_after_creates,
        memory_after_lists,
        memory_at_end,
    })
}

/// The services collection in `default`, through a client built from the kubeconfig.
async fn services_api(kubeconfig: &std::path::Path) -> anyhow::Result<Api<DynamicObject>> {
    Ok(cluster::services_api(&cluster::client(kubeconfig).await?))
}

fn service(index: usize) -> anyhow::Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": format!("bench-{index:05}")},
        "spec": {"template": {"spec": {"containers": [{"image": "hello.wasm"}]}}}
    }))?)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid")
}

/// Creates every Service with `in_flight` workers taking the next index; returns the latency
/// histogram, creates acknowledged and creates that failed.
async fn create_all(
    services: &Api<DynamicObject>,
    settings: &Settings,
) -> anyhow::Result<(Histogram<u64>, usize, usize)> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..settings.in_flight.max(1))
        .map(|_| {
            let services = services.clone();
            let next = Arc::clone(&next);
            let total = settings.services;
            tokio::spawn(async move {
                let mut latency = histogram();
                let (mut ok, mut failed) = (0usize, 0usize);
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= total {
                        break;
                    }
                    let object = service(index)?;
                    let started = Instant::now();
                    match services.create(&PostParams::default(), &object).await {
                        Ok(_) => {
                            latency.saturating_record(micros(started.elapsed()));
                            ok += 1;
                        }
                        Err(_) => failed += 1,
                    }
                }
                anyhow::Ok((latency, ok, failed))
            })
        })
        .collect();
    let mut latency = histogram();
    let (mut ok, mut failed) = (0, 0);
    for worker in workers {
        let (worker_latency, worker_ok, worker_failed) =
            tokio::time::timeout(PHASE_TIMEOUT, worker)
                .await
                .context("creates did not finish in time")???;
        latency.add(&worker_latency)?;
        ok += worker_ok;
        failed += worker_failed;
    }
    Ok((latency, ok, failed))
}

/// Lists everything in pages of [`PAGE_SIZE`]: (items, pages, elapsed).
async fn paged_list(services: &Api<DynamicObject>) -> anyhow::Result<(usize, usize, Duration)> {
    let started = Instant::now();
    let (mut items, mut pages) = (0, 0);
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(PAGE_SIZE);
        if let Some(token) = token.take() {
            params = params.continue_token(&token);
        }
        let page = services.list(&params).await?;
        items += page.items.len();
        pages += 1;
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    Ok((items, pages, started.elapsed()))
}

struct FanOut {
    opened: usize,
    writes: usize,
    deliveries: usize,
    delay_us: Histogram<u64>,
    from_send_us: Histogram<u64>,
    write_latency_us: Histogram<u64>,
}

/// One acknowledged write of [`spaced_writes`].
struct TimedWrite {
    rv: String,
    sent: Instant,
    acked: Instant,
}

/// `settings.watched_writes` label changes of [`WATCHED_WRITE_TARGET`], one at a time and
/// `write_spacing` apart, each timed from its request to its acknowledgement.
async fn spaced_writes(
    services: &Api<DynamicObject>,
    settings: &Settings,
    phase: &str,
) -> anyhow::Result<Vec<TimedWrite>> {
    let mut writes = Vec::with_capacity(settings.watched_writes);
    for write in 0..settings.watched_writes {
        tokio::time::sleep(settings.write_spacing).await;
        let patch = Patch::Merge(json!({"metadata": {"labels": {
            "bench-write": format!("{phase}-{write}"),
        }}}));
        let sent = Instant::now();
        let written = services
            .patch(WATCHED_WRITE_TARGET, &PatchParams::default(), &patch)
            .await?;
        let acked = Instant::now();
        let rv = written
            .metadata
            .resource_version
            .context("a write answered without a resourceVersion")?;
        writes.push(TimedWrite { rv, sent, acked });
    }
    Ok(writes)
}

/// Opens the watches, then makes the spaced writes and times each event's arrival at each
/// watch against the write's acknowledgement.
async fn watch_fan_out(
    services: &Api<DynamicObject>,
    settings: &Settings,
    from_rv: &str,
) -> anyhow::Result<FanOut> {
    let expected = settings.watched_writes;
    let (arrivals, mut received) = mpsc::unbounded_channel::<(String, Instant)>();
    let params = WatchParams::default().timeout(290);
    let mut streams = Vec::with_capacity(settings.watchers);
    for _ in 0..settings.watchers {
        // `watch` returns once the server has answered, i.e. once the watch is open.
        streams.push(services.watch(&params, from_rv).await?);
    }
    let opened = streams.len();
    let watchers: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(stream);
                let mut seen = 0;
                while seen < expected {
                    match stream.next().await {
                        Some(Ok(WatchEvent::Modified(object))) => {
                            let at = Instant::now();
                            if object.metadata.name.as_deref() == Some(WATCHED_WRITE_TARGET)
                                && let Some(rv) = object.metadata.resource_version
                            {
                                seen += 1;
                                let _ = arrivals.send((rv, at));
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    }
                }
            })
        })
        .collect();
    drop(arrivals);

    let mut write_latency_us = histogram();
    let mut acknowledged = std::collections::HashMap::new();
    for write in spaced_writes(services, settings, "watched").await? {
        write_latency_us.saturating_record(micros(write.acked - write.sent));
        acknowledged.insert(write.rv, (write.sent, write.acked));
    }
    let mut arrivals = Vec::with_capacity(opened * expected);
    let deadline = tokio::time::Instant::now() + PHASE_TIMEOUT;
    while arrivals.len() < opened * expected {
        match tokio::time::timeout_at(deadline, received.recv()).await {
            Ok(Some(arrival)) => arrivals.push(arrival),
            Ok(None) | Err(_) => break,
        }
    }
    for watcher in watchers {
        watcher.abort();
    }
    let mut delay_us = histogram();
    let mut from_send_us = histogram();
    let mut deliveries = 0;
    for (rv, at) in arrivals {
        let Some((sent, acked)) = acknowledged.get(&rv) else {
            bail!("a watch delivered resourceVersion {rv}, which no timed write returned");
        };
        deliveries += 1;
        delay_us.saturating_record(micros(at.saturating_duration_since(*acked)));
        from_send_us.saturating_record(micros(at.saturating_duration_since(*sent)));
    }
    Ok(FanOut {
        opened,
        writes: acknowledged.len(),
        deliveries,
        delay_us,
        from_send_us,
        write_latency_us,
    })
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

/// `VmRSS` and `VmHWM` of a process.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .with_context(|| format!("no {name} in {path}"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl ApiBench {
    /// The report: what was run and on what, then a Markdown table.
    pub fn markdown(&self) -> String {
        let s = &self.settings;
        let mut out = format!(
            "{} driven by kube-rs over HTTPS: {} Knative Services created {} in flight, listed, then {} watches on the collection timing {} writes spaced {} ms apart; {}\n\n",
            self.description,
            s.services,
            s.in_flight,
            s.watchers,
            s.watched_writes,
            s.write_spacing.as_millis(),
            report::machine_line()
        );
        out.push_str(
            "| measurement | count | rate | p50 | p99 | max |\n|---|---:|---:|---:|---:|---:|\n",
        );
        let rate = self.created as f64 / self.create_elapsed.as_secs_f64().max(1e-9);
        out.push_str(&format!(
            "| create ksvc ({} in flight) | {} ok, {} failed | {:.0}/s | {} | {} | {} |\n",
            s.in_flight,
            self.created,
            self.create_errors,
            rate,
            report::micros(self.create_latency_us.value_at_quantile(0.5)),
            report::micros(self.create_latency_us.value_at_quantile(0.99)),
            report::micros(self.create_latency_us.max()),
        ));
        out.push_str(&format!(
            "| list all, one page | {} items | — | — | — | {} |\n",
            self.listed,
            report::micros(micros(self.list_elapsed)),
        ));
        out.push_str(&format!(
            "| list all, pages of {PAGE_SIZE} | {} items in {} pages | — | — | — | {} |\n",
            self.paged_listed,
            self.pages,
            report::micros(micros(self.paged_elapsed)),
        ));
        for (label, latency) in [
            ("no watch open", &self.write_latency_unwatched_us),
            (
                &*format!("{} watches open", self.watchers_opened),
                &self.write_latency_watched_us,
            ),
        ] {
            out.push_str(&format!(
                "| one write at a time, {label} | {} | — | {} | {} | {} |\n",
                latency.len(),
                report::micros(latency.value_at_quantile(0.5)),
                report::micros(latency.value_at_quantile(0.99)),
                report::micros(latency.max()),
            ));
        }
        out.push_str(&format!(
            "| watch event delay after the write's ack ({} watches × {} writes) | {} of {} | — | {} | {} | {} |\n",
            self.watchers_opened,
            self.watched_writes,
            self.deliveries,
            self.watchers_opened * self.watched_writes,
            report::micros(self.delivery_delay_us.value_at_quantile(0.5)),
            report::micros(self.delivery_delay_us.value_at_quantile(0.99)),
            report::micros(self.delivery_delay_us.max()),
        ));
        out.push_str(&format!(
            "| same events, delay after the write's request was sent | {} | — | {} | {} | {} |\n",
            self.deliveries,
            report::micros(self.delivery_from_send_us.value_at_quantile(0.5)),
            report::micros(self.delivery_from_send_us.value_at_quantile(0.99)),
            report::micros(self.delivery_from_send_us.max()),
        ));
        out.push_str(&format!(
            "\nserver memory after the creates: {}; after the lists: {}; at the end (watches open): {}\n",
            self.memory_after_creates.describe(),
            self.memory_after_lists.describe(),
            self.memory_at_end.describe(),
        ));
        out
    }

    fn creates_per_second(&self) -> f64 {
        self.created as f64 / self.create_elapsed.as_secs_f64().max(1e-9)
    }
}

/// The servers side by side with ratios against the first (wisp api-server), then each run's
/// own table; a server that could not be measured gets a row saying why.
pub fn compare(runs: &[(String, Result<ApiBench, String>)]) -> String {
    let reference = runs.first().and_then(|(_, run)| run.as_ref().ok());
    let mut out = String::from(
        "| server | creates/s | create p99 | list, one page | list, pages of 500 | one write, watches open (p50) | watch event after the write was sent (p50 / p99) | RSS at the end | vs wisp api-server |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (name, run) in runs {
        let bench = match run {
            Ok(bench) => bench,
            Err(reason) => {
                let reason = reason.lines().next().unwrap_or_default().replace('|', "/");
                out.push_str(&format!(
                    "| {name} | — | — | — | — | — | — | — | missing: {reason} |\n"
                ));
                continue;
            }
        };
        let ratios = match reference {
            Some(wisp) if !std::ptr::eq(wisp, bench) => ratios(bench, wisp),
            Some(_) => "1.00× (the reference)".to_owned(),
            None => "no reference: wisp api-server was not measured".to_owned(),
        };
        out.push_str(&format!(
            "| {} | {:.0} | {} | {} | {} | {} | {} / {} | {} | {} |\n",
            bench.server,
            bench.creates_per_second(),
            report::micros(bench.create_latency_us.value_at_quantile(0.99)),
            report::micros(micros(bench.list_elapsed)),
            report::micros(micros(bench.paged_elapsed)),
            report::micros(bench.write_latency_watched_us.value_at_quantile(0.5)),
            report::micros(bench.delivery_from_send_us.value_at_quantile(0.5)),
            report::micros(bench.delivery_from_send_us.value_at_quantile(0.99)),
            mib(bench.memory_at_end.total().rss_kib),
            ratios,
        ));
    }
    for (_, run) in runs {
        if let Ok(bench) = run {
            out.push('\n');
            out.push_str(&bench.markdown());
        }
    }
    out
}

/// How `bench` compares with `wisp`: creates per second as a ratio of rates (above 1 is
/// faster), times and memory as ratios of amounts (above 1 is slower or bigger).
fn ratios(bench: &ApiBench, wisp: &ApiBench) -> String {
    let ratio = |ours: f64, theirs: f64| {
        if theirs > 0.0 {
            format!("{:.2}×", ours / theirs)
        } else {
            "—".to_owned()
        }
    };
    format!(
        "creates/s {}, list time {}, paged list time {}, write with watches open {}, watch event p99 {}, RSS {}",
        ratio(bench.creates_per_second(), wisp.creates_per_second()),
        ratio(
            bench.list_elapsed.as_secs_f64(),
            wisp.list_elapsed.as_secs_f64()
        ),
        ratio(
            bench.paged_elapsed.as_secs_f64(),
            wisp.paged_elapsed.as_secs_f64()
        ),
        ratio(
            bench.write_latency_watched_us.value_at_quantile(0.5) as f64,
            wisp.write_latency_watched_us.value_at_quantile(0.5) as f64
        ),
        ratio(
            bench.delivery_from_send_us.value_at_quantile(0.99) as f64,
            wisp.delivery_from_send_us.value_at_quantile(0.99) as f64
        ),
        ratio(
            bench.memory_at_end.total().rss_kib as f64,
            wisp.memory_at_end.total().rss_kib as f64
        ),
    )
}
