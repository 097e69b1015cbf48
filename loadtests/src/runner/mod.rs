//! Runs a [`Scenario`] against a running `wisp up`: applies its autoscaling settings and
//! manifests with kubectl, waits for its Services, then plays its phases in order on one clock
//! (each load phase starts on a whole second of the run, so every request lands in the second
//! it was due) while a sampler reads the Services' scaling state from `/metrics`. The result is
//! a [`RunRecord`] for the reports.

mod kubectl;
mod many;
mod sampler;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::generator::{self, LiveFigures, LiveSink, Load, RateShape, Timeline};
use crate::record::{Failure, PhaseSpan, RunRecord};
use crate::scenario::{self, Phase, Scenario, TargetServices};
use crate::target::Target;

pub use kubectl::Kubectl;
pub use sampler::{Sampler, scrape};

/// Where the cluster under test listens.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The gateway (used unless the scenario names one).
    pub gateway: SocketAddr,
    /// The metrics endpoint (`/metrics`).
    pub metrics: SocketAddr,
    /// A kubeconfig for the cluster's API.
    pub kubeconfig: PathBuf,
}

/// What the runner reports as it goes, once a second.
#[derive(Debug, Clone)]
pub struct Progress {
    pub phase: String,
    /// Seconds since the run started.
    pub second: u64,
    /// The last whole second's requests, every load of the phase together: sent and succeeded
    /// (so, per second), errors, p99 latency.
    pub requests: LiveFigures,
    /// The target Services' replicas as last sampled.
    pub desired: i64,
    pub actual: i64,
    pub panic: bool,
    pub queued: i64,
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("kubectl {action} failed: {message}")]
    Kubectl { action: String, message: String },
    /// A many-services target's template could not be read or copied.
    #[error("the Services' template {}: {message}", path.display())]
    Template { path: PathBuf, message: String },
    #[error("the scenario's target: {0}")]
    Target(#[from] crate::target::TargetError),
    #[error(transparent)]
    Generator(#[from] generator::GeneratorError),
    #[error(
        "the Services did not reach {replicas} replicas within {} (last seen: {actual}); check \
         the autoscaling settings or raise the timeout",
        scenario::format_duration(*timeout)
    )]
    WaitFor {
        replicas: u32,
        timeout: Duration,
        actual: i64,
    },
    /// A phase failed; `index` counts from 0, as `phases[i]` in the scenario file.
    #[error("phases[{index}] ({kind}): {error}")]
    Phase {
        index: usize,
        kind: &'static str,
        error: Box<RunError>,
    },
}

/// A run that stopped before its end: what it recorded until then (its `failure` says where
/// and why, for the report) and the error that stopped it.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RunFailure {
    /// Everything recorded until the failure, `failure` included (boxed: it is large).
    pub record: Box<RunRecord>,
    /// What stopped the run.
    pub error: RunError,
}

/// Plays `scenario` against the cluster at `endpoints`, calling `progress` about once a second.
///
/// A failure (of the set-up or of a phase) stops the run, but what it recorded until then is
/// kept: the error comes with the partial record, whose `failure` names the phase.
pub async fn run(
    scenario: &Scenario,
    endpoints: &Endpoints,
    progress: impl Fn(&Progress) + Send + Sync + 'static,
) -> Result<RunRecord, RunFailure> {
    let mut record = RunRecord {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        machine: machine(),
        ..RunRecord::default()
    };
    let kubectl = Kubectl::new(endpoints.kubeconfig.clone());
    let (services, targets) = match set_up(scenario, endpoints, &kubectl).await {
        Ok(set) => set,
        Err(error) => {
            record.failure = Some(Failure {
                phase: None,
                what: "set-up".to_owned(),
                message: error.to_string(),
            });
            return Err(RunFailure {
                record: Box::new(record),
                error,
            });
        }
    };

    let started = Instant::now();
    let sampler = Arc::new(Sampler::start(endpoints.metrics, services, started));
    let progress = Arc::new(progress);
    let live = LiveSink::new(tokio::time::Instant::from_std(started));
    let mut failed = None;
    let phases = &scenario.phases;
    let mut first = 0;
    while first < phases.len() {
        // A run of scheduled load phases (a ramp into a hold, steps) plays as one: each starts
        // when the one before it has sent its last request by schedule, while that one's last
        // answers are still coming back, so the load does not pause at the boundary.
        let length = phases[first..]
            .iter()
            .take_while(|phase| runs_on_into_the_next(phase))
            .count()
            .max(1);
        let chain = &phases[first..first + length];
        let mut begins = Vec::with_capacity(length);
        let mut at = align_to_second(started).await;
        for phase in chain {
            begins.push(at);
            at += whole_seconds(phase.planned_duration());
        }
        let outcomes =
            futures::future::join_all(chain.iter().zip(&begins).map(|(phase, begin)| {
                let (targets, kubectl, sampler, live) = (&targets, &kubectl, &sampler, &live);
                let (progress, begin) = (progress.clone(), *begin);
                async move {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(started + begin)).await;
                    let reporter = report_progress(
                        phase.kind(),
                        started,
                        sampler.clone(),
                        live.clone(),
                        progress,
                    );
                    let outcome = play(phase, targets, kubectl, sampler, live).await;
                    reporter.abort();
                    (outcome, started.elapsed())
                }
            }))
            .await;
        for (offset, (phase, (begin, (outcome, end)))) in chain
            .iter()
            .zip(begins.into_iter().zip(outcomes))
            .enumerate()
        {
            let index = first + offset;
            record.phases.push(PhaseSpan {
                kind: phase.kind().to_owned(),
                label: label(phase),
                start: begin,
                end,
            });
            match outcome {
                Ok(Some(phase_timeline)) => record.timeline.absorb(&phase_timeline, begin),
                Ok(None) => {}
                Err(error) => {
                    record.failure = Some(Failure {
                        phase: Some(index),
                        what: format!("phases[{index}] ({})", label(phase)),
                        message: error.to_string(),
                    });
                    failed = Some(RunError::Phase {
                        index,
                        kind: phase.kind(),
                        error: Box::new(error),
                    });
                    break;
                }
            }
        }
        if failed.is_some() {
            break;
        }
        first += length;
    }
    let elapsed = started.elapsed().max(record.timeline.elapsed);
    record.timeline.finish(elapsed);
    (record.samples, record.cold_starts) = sampler.stop().await;
    match failed {
        None => Ok(record),
        Some(error) => Err(RunFailure {
            record: Box::new(record),
            error,
        }),
    }
}

/// Applies the scenario's autoscaling settings and manifests, waits for its Services to be
/// Ready; returns the Services (`(namespace, name)`) and where their load goes.
async fn set_up(
    scenario: &Scenario,
    endpoints: &Endpoints,
    kubectl: &Kubectl,
) -> Result<(BTreeSet<(String, String)>, Vec<Target>), RunError> {
    let autoscaling = scenario.autoscaling.config_map_data();
    if !autoscaling.is_empty() {
        kubectl.apply_config_autoscaler(&autoscaling).await?;
    }
    for manifest in &scenario.manifests {
        kubectl.apply_file(manifest).await?;
    }
    if let TargetServices::Many(many) = &scenario.target.services
        && let Some(template) = &many.template
    {
        let failed = |message: String| RunError::Template {
            path: template.clone(),
            message,
        };
        let text = tokio::fs::read_to_string(template)
            .await
            .map_err(|error| failed(error.to_string()))?;
        let services = many::services(&text, many).map_err(|error| failed(error.to_string()))?;
        kubectl
            .apply_all(
                &format!("{} Services from {}", many.count, template.display()),
                &services,
            )
            .await?;
    }
    let services = services_of(scenario);
    let mut by_namespace: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (namespace, name) in &services {
        by_namespace.entry(namespace).or_default().push(name);
    }
    for (namespace, names) in by_namespace {
        kubectl.wait_ready(namespace, &names).await?;
    }
    let targets = scenario.target.targets(endpoints.gateway)?;
    Ok((services, targets))
}

/// One phase; a load phase returns its timeline (relative to its own start).
async fn play(
    phase: &Phase,
    targets: &[Target],
    kubectl: &Kubectl,
    sampler: &Sampler,
    live: &LiveSink,
) -> Result<Option<Timeline>, RunError> {
    let generate = |loads: Vec<Load>| async move {
        let runs = loads.iter().map(|load| generator::run_live(load, live));
        let mut merged = Timeline::new();
        for result in futures::future::join_all(runs).await {
            let part = result?;
            merged.absorb(&part, Duration::ZERO);
        }
        Ok::<_, RunError>(Some(merged))
    };
    let share = |rate: f64| rate / targets.len().max(1) as f64;
    match phase {
        Phase::Idle(duration) => {
            tokio::time::sleep(*duration).await;
            Ok(None)
        }
        Phase::Apply(path) => {
            kubectl.apply_file(path).await?;
            Ok(None)
        }
        Phase::WaitFor(wait) => {
            let reached = sampler
                .wait_for_actual(i64::from(wait.replicas), wait.timeout)
                .await;
            match reached {
                Ok(()) => Ok(None),
                Err(actual) => Err(RunError::WaitFor {
                    replicas: wait.replicas,
                    timeout: wait.timeout,
                    actual,
                }),
            }
        }
        Phase::Burst(burst) => {
            // Every request at once: one worker per request, one request per worker.
            let per_target = split(u64::from(burst.requests), targets.len());
            let loads = targets
                .iter()
                .zip(per_target)
                .filter(|(_, count)| *count > 0)
                .map(|(target, count)| {
                    let workers = usize::try_from(count).unwrap_or(usize::MAX);
                    let mut load = Load::closed(target.clone(), workers, Duration::from_secs(600));
                    load.max_requests = Some(count);
                    load
                })
                .collect();
            generate(loads).await
        }
        Phase::Constant(constant) => {
            let loads = targets
                .iter()
                .map(|target| match constant.load {
                    scenario::Load::Rate(rate) => Load::open(
                        target.clone(),
                        RateShape::Constant(share(rate)),
                        constant.duration,
                    ),
                    scenario::Load::Concurrency(workers) => Load::closed(
                        target.clone(),
                        usize::try_from(workers).unwrap_or(1).max(1),
                        constant.duration,
                    ),
                })
                .collect();
            generate(loads).await
        }
        Phase::Ramp(ramp) => {
            let loads = targets
                .iter()
                .map(|target| {
                    Load::open(
                        target.clone(),
                        RateShape::Ramp {
                            from: share(ramp.from),
                            to: share(ramp.to),
                            over: ramp.duration,
                        },
                        ramp.duration,
                    )
                })
                .collect();
            generate(loads).await
        }
        Phase::Step(step) => {
            let total = step.hold * u32::try_from(step.rates.len()).unwrap_or(u32::MAX);
            let loads = targets
                .iter()
                .map(|target| {
                    let steps = step
                        .rates
                        .iter()
                        .map(|rate| generator::Step {
                            rate: share(*rate),
                            lasts: step.hold,
                        })
                        .collect();
                    Load::open(target.clone(), RateShape::Steps(steps), total)
                })
                .collect();
            generate(loads).await
        }
    }
}

/// `total` split as evenly as possible over `parts` (the first ones get the remainder).
fn split(total: u64, parts: usize) -> Vec<u64> {
    let parts = parts.max(1) as u64;
    (0..parts)
        .map(|i| total / parts + u64::from(i < total % parts))
        .collect()
}

/// Whether the phase sends by a schedule that ends at a known time, so the next such phase can
/// start right then instead of after the last answers are in.
fn runs_on_into_the_next(phase: &Phase) -> bool {
    matches!(phase, Phase::Constant(_) | Phase::Ramp(_) | Phase::Step(_))
}

/// `duration` rounded up to whole seconds: a run's timeline is kept per second, so phases begin
/// on whole seconds of it.
fn whole_seconds(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs() + u64::from(duration.subsec_nanos() > 0))
}

/// Sleeps until the next whole second of the run (now, if on one); returns that instant's offset.
async fn align_to_second(started: Instant) -> Duration {
    let elapsed = started.elapsed();
    let next = Duration::from_secs(elapsed.as_secs() + u64::from(elapsed.subsec_nanos() > 0));
    tokio::time::sleep(next.saturating_sub(elapsed)).await;
    next
}

fn report_progress(
    phase: &'static str,
    started: Instant,
    sampler: Arc<Sampler>,
    live: LiveSink,
    progress: Arc<impl Fn(&Progress) + Send + Sync + 'static>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let latest = sampler.latest();
            progress(&Progress {
                phase: phase.to_owned(),
                second: started.elapsed().as_secs(),
                requests: live.last_whole_second(),
                desired: latest.map_or(0, |s| s.desired),
                actual: latest.map_or(0, |s| s.actual),
                panic: latest.is_some_and(|s| s.panic),
                queued: latest.map_or(0, |s| s.queued),
            });
        }
    })
}

/// The `(namespace, name)` of every Service the scenario sends load to.
fn services_of(scenario: &Scenario) -> BTreeSet<(String, String)> {
    match &scenario.target.services {
        TargetServices::Service { name, namespace } => {
            BTreeSet::from([(namespace.clone(), name.clone())])
        }
        TargetServices::Many(many) => many
            .names()
            .map(|name| (many.namespace.clone(), name))
            .collect(),
        TargetServices::Host(host) => {
            // `{name}.{namespace}.{domain}`, as the gateway routes it.
            let mut labels = host.split('.');
            match (labels.next(), labels.next()) {
                (Some(name), Some(namespace)) => {
                    BTreeSet::from([(namespace.to_owned(), name.to_owned())])
                }
                _ => BTreeSet::new(),
            }
        }
    }
}

/// A short description of a phase for reports.
fn label(phase: &Phase) -> String {
    let seconds = |d: &Duration| scenario::format_duration(*d);
    match phase {
        Phase::Idle(d) => format!("idle {}", seconds(d)),
        Phase::Apply(path) => format!("apply {}", path.display()),
        Phase::WaitFor(w) => format!("wait for {} replicas", w.replicas),
        Phase::Burst(b) => format!("burst of {}", b.requests),
        Phase::Constant(c) => match c.load {
            scenario::Load::Rate(rate) => format!("{rate} rps for {}", seconds(&c.duration)),
            scenario::Load::Concurrency(n) => {
                format!("{n} concurrent for {}", seconds(&c.duration))
            }
        },
        Phase::Ramp(r) => format!("ramp {}→{} rps over {}", r.from, r.to, seconds(&r.duration)),
        Phase::Step(s) => format!("steps {:?} rps, {} each", s.rates, seconds(&s.hold)),
    }
}

/// `N cores, OS` for report footers.
pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "{cores} cores, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_split_evenly_with_the_remainder_first() {
        assert_eq!(split(10, 3), [4, 3, 3]);
        assert_eq!(split(2, 4), [1, 1, 0, 0]);
        assert_eq!(split(5, 0), [5]);
    }
}
