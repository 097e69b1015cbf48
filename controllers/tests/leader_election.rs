//! Leader election against the embedded API server: two candidates with short timings (3 s
//! lease, 2 s renew deadline, 0.5 s retry), one leads; a release hands over within a retry or
//! two, a leader that stops renewing is replaced after the lease duration, and a leader whose
//! lease is taken stops its work. Every wait is bounded.

mod support;

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, PostParams};
use support::Cluster;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use wisp_controllers::leader::{Ending, LeaderConfig, LeaderElector};

const NAMESPACE: &str = "kube-system";
const NAME: &str = "wisp-controller";
/// Far beyond any takeover these timings allow (lease 3 s + two jittered retries).
const WAIT: Duration = Duration::from_secs(20);

/// One running candidate.
struct Candidate {
    identity: &'static str,
    leading: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Ending<()>>,
}

impl Candidate {
    fn start(cluster: &Cluster, client: &Client, identity: &'static str) -> Self {
        let config = LeaderConfig {
            lease_duration: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(500),
            ..LeaderConfig::new(NAMESPACE, NAME, identity)
        };
        let elector = LeaderElector::new(client.clone(), config).expect("valid timings");
        let leading = elector.subscribe();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = cluster.runtime().spawn(elector.run(
            async move {
                let _ = stopped.await;
            },
            // The work runs until it is dropped, as the controllers do.
            futures::future::pending::<()>,
        ));
        Self {
            identity,
            leading,
            stop: Some(stop),
            task,
        }
    }

    fn leads(&self) -> bool {
        *self.leading.borrow()
    }
}

fn leases(client: &Client) -> Api<Lease> {
    Api::namespaced(client.clone(), NAMESPACE)
}

async fn lease(client: &Client) -> Lease {
    leases(client).get(NAME).await.expect("the lease exists")
}

fn holder(lease: &Lease) -> Option<String> {
    lease.spec.as_ref()?.holder_identity.clone()
}

fn transitions(lease: &Lease) -> i32 {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .unwrap_or(-1)
}

/// Polls `check` until it holds, failing after [`WAIT`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let polled = tokio::time::timeout(WAIT, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "timed out waiting for {what}");
}

/// Waits until one of the two leads, then checks it is the only one and the lease names it.
/// Returns (leader, standby).
async fn one_leader(client: &Client, a: Candidate, b: Candidate) -> (Candidate, Candidate) {
    eventually("a leader", || async { a.leads() || b.leads() }).await;
    let (leader, standby) = if a.leads() { (a, b) } else { (b, a) };
    // The standby has had several retries by the time the lease shows the leader.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(leader.leads(), "{} still leads", leader.identity);
    assert!(!standby.leads(), "{} must not lead too", standby.identity);
    assert_eq!(
        holder(&lease(client).await).as_deref(),
        Some(leader.identity)
    );
    (leader, standby)
}

#[test]
fn exactly_one_leads_and_a_release_hands_over_at_once() {
    let cluster = Cluster::start();
    let client = cluster.client();
    let a = Candidate::start(&cluster, &client, "a");
    let b = Candidate::start(&cluster, &client, "b");
    cluster.runtime().block_on(async {
        let (mut leader, standby) = one_leader(&client, a, b).await;
        let before = transitions(&lease(&client).await);

        if let Some(stop) = leader.stop.take() {
            stop.send(()).expect("the leader is running");
        }
        let ending = tokio::time::timeout(WAIT, &mut leader.task)
            .await
            .expect("the leader stops")
            .expect("the leader's task does not panic");
        assert_eq!(ending, Ending::Shutdown);
        assert!(!leader.leads());

        // A released lease has no holder, so the standby takes it on its next retry.
        eventually("the standby to lead", || async { standby.leads() }).await;
        let taken = lease(&client).await;
        assert_eq!(holder(&taken).as_deref(), Some(standby.identity));
        assert_eq!(transitions(&taken), before + 1);
        assert_eq!(
            taken.spec.as_ref().and_then(|s| s.lease_duration_seconds),
            Some(3)
        );
    });
}

#[test]
fn a_leader_that_stops_renewing_is_replaced_after_the_lease_duration() {
    let cluster = Cluster::start();
    let client = cluster.client();
    let a = Candidate::start(&cluster, &client, "a");
    let b = Candidate::start(&cluster, &client, "b");
    cluster.runtime().block_on(async {
        let (leader, standby) = one_leader(&client, a, b).await;
        let before = transitions(&lease(&client).await);

        // Gone without a word, as after kill -9: the lease still names it.
        leader.task.abort();
        assert_eq!(
            holder(&lease(&client).await).as_deref(),
            Some(leader.identity)
        );
        eventually("the standby to take over", || async { standby.leads() }).await;
        let taken = lease(&client).await;
        assert_eq!(holder(&taken).as_deref(), Some(standby.identity));
        assert_eq!(transitions(&taken), before + 1);
    });
}

#[test]
fn a_leader_whose_lease_is_taken_stops_its_work() {
    let cluster = Cluster::start();
    let client = cluster.client();
    let mut a = Candidate::start(&cluster, &client, "a");
    cluster.runtime().block_on(async {
        eventually("a to lead", || async { a.leads() }).await;

        // Someone else writes the lease with a long duration: a cannot renew any more.
        let api = leases(&client);
        let mut written = false;
        for _ in 0..20 {
            // a renews every 0.5 s, so the race may need a few tries.
            let stolen = taken_by(lease(&client).await, "intruder", 60);
            if api
                .replace(NAME, &PostParams::default(), &stolen)
                .await
                .is_ok()
            {
                written = true;
                break;
            }
        }
        assert!(written, "the intruder's write lands");

        let ending = tokio::time::timeout(WAIT, &mut a.task)
            .await
            .expect("a gives up after its renew deadline")
            .expect("a's task does not panic");
        assert_eq!(ending, Ending::Lost);
        assert!(!a.leads());
        assert_eq!(holder(&lease(&client).await).as_deref(), Some("intruder"));
    });
}

/// `lease` with another holder and duration.
fn taken_by(mut lease: Lease, holder: &str, seconds: i32) -> Lease {
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = Some(holder.into());
        spec.lease_duration_seconds = Some(seconds);
    }
    lease
}
