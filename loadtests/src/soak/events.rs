//! The soak's events, each on its own clock beside the load: a new revision of a Service every
//! so often (through the Kubernetes API, as `kubectl patch` would), and a Service let go to zero
//! replicas and brought back. What each did is recorded for the report.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio::sync::watch;
use wisp_api::knative::Service;
use wisp_api::knative::conditions;

use crate::runner::scrape;
use crate::scaling_metrics::scaling_state;

/// How often an event polls what it waits for.
const POLL: Duration = Duration::from_millis(250);
/// The template annotation a rollout changes: any template change makes a new revision.
pub const ROLLOUT_ANNOTATION: &str = "soak.wisp.dev/rollout";

/// One rollout: when it was asked for, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub service: String,
    /// When the patch was sent, on the run's clock.
    pub at: Duration,
    /// The new revision, once Ready and serving, and how long after `at` that was.
    pub ready: Option<(String, Duration)>,
    /// Why it never got there, if it did not.
    pub error: Option<String>,
}

/// One trip to zero and back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroCycle {
    pub service: String,
    /// When the load paused, on the run's clock.
    pub paused_at: Duration,
    /// How long after the pause the revision had no replica, if it got there.
    pub zero_after: Option<Duration>,
    /// When the load came back (the next request is a cold start).
    pub resumed_at: Duration,
}

/// Rolls out a new revision of `namespace/name` every `every` until `until`.
pub async fn rollouts(
    client: Client,
    namespace: String,
    name: String,
    every: Duration,
    started: Instant,
    until: Duration,
) -> Vec<Rollout> {
    let api: Api<Service> = Api::namespaced(client, &namespace);
    let mut done = Vec::new();
    for round in 1u32.. {
        let at = every.saturating_mul(round);
        if at >= until {
            break;
        }
        tokio::time::sleep_until((started + at).into()).await;
        let deadline = started + (at + every).min(until);
        let (ready, error) = match roll_out(&api, &name, round, deadline).await {
            Ok(revision) => (Some((revision, started.elapsed().saturating_sub(at))), None),
            Err(error) => (None, Some(error)),
        };
        done.push(Rollout {
            service: name.clone(),
            at,
            ready,
            error,
        });
    }
    done
}

/// Patches the template and waits, until `deadline`, for the new revision to be the Ready one;
/// its name. API errors are retried until then (the API may be down while `wisp up` restarts).
async fn roll_out(
    api: &Api<Service>,
    name: &str,
    round: u32,
    deadline: Instant,
) -> Result<String, String> {
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
        ROLLOUT_ANNOTATION: round.to_string(),
    }}}}});
    let generation = loop {
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(patched) => break patched.metadata.generation,
            Err(error) if Instant::now() >= deadline => {
                return Err(format!("the patch was refused until the deadline: {error}"));
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    };
    let mut last = "never read back".to_owned();
    while Instant::now() < deadline {
        match api.get(name).await {
            Ok(service) => {
                let status = service.status.unwrap_or_default();
                let settled = status.observed_generation >= generation
                    && conditions::is_true(&status.conditions, "Ready")
                    && status.latest_created_revision_name.is_some()
                    && status.latest_ready_revision_name == status.latest_created_revision_name;
                if settled && let Some(revision) = status.latest_ready_revision_name {
                    return Ok(revision);
                }
                last = format!(
                    "observed generation {:?} of {generation:?}, latest created {:?}, latest ready {:?}",
                    status.observed_generation,
                    status.latest_created_revision_name,
                    status.latest_ready_revision_name
                );
            }
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(POLL).await;
    }
    Err(format!("not Ready and serving in time; last seen: {last}"))
}

/// Pauses `namespace/name`'s load for the second half of every `every` until `until`, waits
/// for it to reach zero replicas (read from the node's `/metrics`), and resumes it at the
/// period's end.
pub async fn zero_cycles(
    metrics: SocketAddr,
    namespace: String,
    name: String,
    every: Duration,
    pause: watch::Sender<bool>,
    started: Instant,
    until: Duration,
) -> Vec<ZeroCycle> {
    let selected = BTreeSet::from([(namespace, name.clone())]);
    let mut cycles = Vec::new();
    for round in 0u32.. {
        let start = every.saturating_mul(round);
        let (paused_at, resume_at) = (start + every / 2, start + every);
        if resume_at > until {
            break;
        }
        tokio::time::sleep_until((started + paused_at).into()).await;
        let _ = pause.send(true);
        let mut zero_after = None;
        while started.elapsed() < resume_at {
            // A scrape that does not mention the Service (a node just restarted) says nothing
            // about its replicas.
            let state = scrape(metrics)
                .await
                .map(|text| scaling_state(&text, &selected));
            if state.is_some_and(|state| state.seen && state.actual == 0) {
                zero_after = Some(started.elapsed().saturating_sub(paused_at));
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        tokio::time::sleep_until((started + resume_at).into()).await;
        let _ = pause.send(false);
        cycles.push(ZeroCycle {
            service: name.clone(),
            paused_at,
            zero_after,
            resumed_at: resume_at,
        });
    }
    cycles
}
