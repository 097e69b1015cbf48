//! Plays a [`SoakPlan`] against a `wisp up` this module owns (it must kill and restart it):
//! applies the Services, starts every stream, the rollouts, the zero cycles, an RSS sampler and
//! the kill, all on one clock, and gathers a [`SoakRecord`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::events::{self, Rollout, ZeroCycle};
use super::ledger::{Outage, Request, Tally};
use super::plan::{Expect, SoakPlan};
use super::streams::{Gateway, Stream};
use crate::runner::Kubectl;
use crate::wisp_up::WispUp;

/// How often `wisp up`'s resident memory is read.
const RSS_EVERY: Duration = Duration::from_secs(1);

/// What one stream recorded.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    pub path: String,
    pub rate: f64,
    pub tally: Tally,
}

/// What one Service's streams recorded.
#[derive(Debug, Clone)]
pub struct ServiceRecord {
    pub name: String,
    pub expect: Expect,
    pub streams: Vec<StreamRecord>,
}

impl ServiceRecord {
    /// Its streams together.
    pub fn total(&self) -> Tally {
        let mut total = Tally::default();
        for stream in &self.streams {
            total.absorb(&stream.tally);
        }
        total
    }
}

/// `wisp up`'s resident memory at one instant of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RssSample {
    pub at: Duration,
    pub bytes: u64,
}

/// A whole soak.
#[derive(Debug, Clone)]
pub struct SoakRecord {
    pub plan: SoakPlan,
    pub services: Vec<ServiceRecord>,
    pub outage: Option<Outage>,
    pub rss: Vec<RssSample>,
    pub rollouts: Vec<Rollout>,
    pub zero_cycles: Vec<ZeroCycle>,
    /// From the first request until the last answer.
    pub elapsed: Duration,
    /// E.g. `2 cores, linux x86_64`.
    pub machine: String,
}

impl SoakRecord {
    /// Every stream of every Service together.
    pub fn total(&self) -> Tally {
        let mut total = Tally::default();
        for service in &self.services {
            total.absorb(&service.total());
        }
        total
    }

    /// The highest RSS sampled.
    pub fn peak_rss(&self) -> Option<u64> {
        self.rss.iter().map(|sample| sample.bytes).max()
    }

    /// Everything that makes the soak fail; empty when it passed.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for service in &self.services {
            let total = service.total();
            if total.lost > 0 {
                problems.push(format!(
                    "{}: {} of {} requests lost",
                    service.name, total.lost, total.sent
                ));
            }
        }
        let limit = u64::from(self.plan.rss_limit_mib) << 20;
        match self.peak_rss() {
            None => problems.push("wisp up's RSS was never sampled".to_owned()),
            Some(peak) if peak > limit => problems.push(format!(
                "wisp up's RSS peaked at {} MiB, above the plan's {} MiB",
                peak >> 20,
                self.plan.rss_limit_mib
            )),
            Some(_) => {}
        }
        for rollout in &self.rollouts {
            if let Some(error) = &rollout.error {
                problems.push(format!(
                    "{}: the rollout at {}s: {error}",
                    rollout.service,
                    rollout.at.as_secs()
                ));
            }
        }
        for cycle in &self.zero_cycles {
            if cycle.zero_after.is_none() {
                problems.push(format!(
                    "{}: paused at {}s, it was not at zero replicas by {}s",
                    cycle.service,
                    cycle.paused_at.as_secs(),
                    cycle.resumed_at.as_secs()
                ));
            }
        }
        if self.plan.kill_at.is_some() && self.outage.is_none() {
            problems.push("wisp up was never killed and restarted".to_owned());
        }
        problems
    }
}

/// Plays `plan` against `wisp` (started by the caller, on its own data directory), calling
/// `progress` with a line about every 10 s. Errors are set-up failures and a restart that did
/// not come back; everything else is in the record.
pub async fn run(
    plan: &SoakPlan,
    wisp: WispUp,
    progress: impl Fn(&str) + Send + Sync + 'static,
) -> anyhow::Result<(SoakRecord, WispUp)> {
    let endpoints = wisp.endpoints.clone();
    set_up(plan, &Kubectl::new(endpoints.kubeconfig.clone())).await?;
    let client = kube_client(&endpoints.kubeconfig).await?;
    let gateway = Gateway::new(endpoints.gateway);

    let started = Instant::now();
    let until = plan.duration;
    let pid = Arc::new(AtomicU32::new(wisp.pid()));
    let rss = Arc::new(Mutex::new(Vec::new()));
    let sampler = tokio::spawn(sample_rss(pid.clone(), rss.clone(), started));

    let mut streams = JoinSet::new();
    let mut rollouts = JoinSet::new();
    let mut cycles = JoinSet::new();
    let mut records = Vec::new();
    for service in &plan.services {
        let (pause, paused) = watch::channel(false);
        let mut service_records = Vec::new();
        for load in &service.load {
            let sink = Arc::new(Mutex::new(Vec::new()));
            service_records.push((load.path.clone(), load.rate, sink.clone()));
            streams.spawn(
                Stream {
                    gateway: gateway.clone(),
                    host: service.host(),
                    path: load.path.clone(),
                    rate: load.rate,
                    started,
                    until,
                    paused: paused.clone(),
                    records: sink,
                }
                .run(),
            );
        }
        records.push((service.name.clone(), service.expect, service_records));
        if let Some(every) = service.rollout_every {
            rollouts.spawn(events::rollouts(
                client.clone(),
                service.namespace.clone(),
                service.name.clone(),
                every,
                started,
                until,
            ));
        }
        if let Some(every) = service.scale_to_zero_every {
            cycles.spawn(events::zero_cycles(
                endpoints.metrics,
                service.namespace.clone(),
                service.name.clone(),
                every,
                pause,
                started,
                until,
            ));
        }
    }
    let reporter = tokio::spawn(report_progress(
        records
            .iter()
            .flat_map(|(_, _, sinks)| sinks.iter().map(|(_, _, sink)| sink.clone()))
            .collect(),
        rss.clone(),
        started,
        progress,
    ));

    let (wisp, outage) = match plan.kill_at {
        Some(kill_at) => {
            tokio::time::sleep_until((started + kill_at).into()).await;
            let (wisp, outage) = kill_and_restart(wisp, started, &pid).await?;
            (wisp, Some(outage))
        }
        None => (wisp, None),
    };

    while streams.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let rollouts = joined(rollouts).await;
    let zero_cycles = joined(cycles).await;
    sampler.abort();
    reporter.abort();
    let services = records
        .into_iter()
        .map(|(name, expect, sinks)| ServiceRecord {
            name,
            expect,
            streams: sinks
                .into_iter()
                .map(|(path, rate, sink)| StreamRecord {
                    path,
                    rate,
                    tally: Tally::of(&taken(&sink), expect, outage),
                })
                .collect(),
        })
        .collect();
    let rss = rss.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let record = SoakRecord {
        plan: plan.clone(),
        services,
        outage,
        rss,
        rollouts,
        zero_cycles,
        elapsed,
        machine: crate::runner::machine(),
    };
    Ok((record, wisp))
}

/// Applies the autoscaling settings and every Service, and waits for them to be Ready.
async fn set_up(plan: &SoakPlan, kubectl: &Kubectl) -> anyhow::Result<()> {
    let autoscaling = plan.autoscaling.config_map_data();
    if !autoscaling.is_empty() {
        kubectl.apply_config_autoscaler(&autoscaling).await?;
    }
    for service in &plan.services {
        kubectl.apply_file(&service.manifest).await?;
    }
    for service in &plan.services {
        kubectl
            .wait_ready(&service.namespace, &[service.name.as_str()])
            .await?;
    }
    Ok(())
}

async fn kube_client(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read {}", kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
            .with_context(|| format!("cannot use {}", kubeconfig.display()))?;
    kube::Client::try_from(config).context("cannot make a Kubernetes client")
}

/// SIGKILLs `wisp up` and starts it again (blocking process work, off the async workers);
/// the outage on the run's clock.
async fn kill_and_restart(
    mut wisp: WispUp,
    started: Instant,
    pid: &AtomicU32,
) -> anyhow::Result<(WispUp, Outage)> {
    pid.store(0, Ordering::Relaxed);
    let killed = started.elapsed();
    let wisp = tokio::task::spawn_blocking(move || {
        wisp.kill_and_restart()?;
        Ok::<_, anyhow::Error>(wisp)
    })
    .await
    .context("the restart's thread failed")?
    .context("wisp up did not come back after the kill")?;
    let back = started.elapsed();
    pid.store(wisp.pid(), Ordering::Relaxed);
    Ok((wisp, Outage { killed, back }))
}

/// Reads `/proc/PID/status` every [`RSS_EVERY`] while a process runs (`pid` is 0 while none does).
async fn sample_rss(pid: Arc<AtomicU32>, samples: Arc<Mutex<Vec<RssSample>>>, started: Instant) {
    let mut tick = tokio::time::interval(RSS_EVERY);
    loop {
        tick.tick().await;
        let current = pid.load(Ordering::Relaxed);
        if current == 0 {
            continue;
        }
        if let Some(bytes) = resident_bytes(current).await {
            samples
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(RssSample {
                    at: started.elapsed(),
                    bytes,
                });
        }
    }
}

/// `VmRSS` of process `pid`, in bytes.
async fn resident_bytes(pid: u32) -> Option<u64> {
    let status = tokio::fs::read_to_string(format!("/proc/{pid}/status"))
        .await
        .ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

async fn report_progress(
    sinks: Vec<Arc<Mutex<Vec<Request>>>>,
    rss: Arc<Mutex<Vec<RssSample>>>,
    started: Instant,
    progress: impl Fn(&str),
) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tick.tick().await;
        let answered: usize = sinks
            .iter()
            .map(|sink| sink.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum();
        let latest = rss
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .map_or(0, |sample| sample.bytes >> 20);
        progress(&format!(
            "{:>4}s  {answered} requests done  wisp up RSS {latest} MiB",
            started.elapsed().as_secs()
        ));
    }
}

fn taken(sink: &Mutex<Vec<Request>>) -> Vec<Request> {
    std::mem::take(&mut *sink.lock().unwrap_or_else(PoisonError::into_inner))
}

async fn joined<T: 'static>(mut tasks: JoinSet<Vec<T>>) -> Vec<T> {
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(items) = done {
            all.extend(items);
        }
    }
    all
}
