//! The shipped `rollout` and `many-services` scenarios, played as shipped (the files in
//! `loadtests/scenarios/`, not copies) through the demo against `wisp up`: they must work, lose
//! no request, and leave the cluster as they say. Nothing here is timed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::wisp_binary;
use serde_json::Value;
use wisp_loadtests::demo::{self, DemoOptions, DemoOutcome};
use wisp_loadtests::scenario::{self, TargetServices};
use wisp_loadtests::wisp_up::{WispUp, repository_root};

fn shipped(name: &str) -> PathBuf {
    repository_root().join(format!("loadtests/scenarios/{name}.yaml"))
}

/// Plays a shipped scenario; the `wisp up` it ran against is still running.
fn play(name: &str, report_dir: &Path) -> (DemoOutcome, WispUp) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(demo::run_keeping_cluster(&DemoOptions {
            wisp: wisp_binary(),
            scenario: shipped(name),
            report_dir: report_dir.to_path_buf(),
            image_dir: repository_root(),
            verbose: false,
        }))
        .unwrap_or_else(|error| panic!("the shipped {name} scenario runs: {error:#}"))
}

/// `kubectl get WHAT… -n default -o json` against the run's cluster.
fn get(wisp: &WispUp, what: &[&str]) -> Value {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&wisp.endpoints.kubeconfig)
        .arg("get")
        .args(what)
        .args(["-n", "default", "-o", "json"])
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "kubectl get {what:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("kubectl prints JSON")
}

fn assert_nothing_lost(outcome: &DemoOutcome, expected: u64) {
    let totals = outcome.record.timeline.totals;
    assert_eq!(totals.sent, expected, "{totals:?}");
    assert_eq!(totals.accounted(), totals.sent, "{totals:?}");
    assert_eq!(
        totals.succeeded, totals.sent,
        "no request may fail: {totals:?}"
    );
    assert!(outcome.record.failure.is_none());
    assert!(outcome.html.is_file() && outcome.markdown.is_file());
}

#[test]
fn the_shipped_rollout_moves_the_traffic_to_the_new_revision_losing_nothing() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = scenario::load(&shipped("rollout"))
        .expect("the shipped scenario")
        .expected_requests()
        .expect("open-loop phases only");
    let (outcome, wisp) = play("rollout", dir.path());
    assert_nothing_lost(&outcome, expected);

    let service = get(&wisp, &["ksvc", "hello"]);
    assert_eq!(
        service["status"]["latestReadyRevisionName"], "hello-00002",
        "{service:#}"
    );
    let route = get(&wisp, &["route", "hello"]);
    let traffic = route["status"]["traffic"]
        .as_array()
        .expect("route traffic");
    assert_eq!(traffic.len(), 1, "{route:#}");
    assert_eq!(traffic[0]["revisionName"], "hello-00002", "{route:#}");
    assert_eq!(traffic[0]["percent"], 100, "{route:#}");
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn the_shipped_many_services_wakes_each_service_once_losing_nothing() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = scenario::load(&shipped("many-services")).expect("the shipped scenario");
    let TargetServices::Many(many) = &scenario.target.services else {
        panic!("many-services targets many Services");
    };
    let count = u64::from(many.count);
    let (outcome, wisp) = play("many-services", dir.path());
    assert_nothing_lost(&outcome, count);

    // One request to each Service, each from zero replicas: one cold start apiece.
    assert_eq!(
        outcome.record.cold_starts.len() as u64,
        count,
        "{:?}",
        outcome.record.cold_starts
    );
    // The Services were made from the template, under their own names.
    let list = get(&wisp, &["ksvc"]);
    let ready: Vec<(&str, &str)> = list["items"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|service| {
            Some((
                service["metadata"]["name"].as_str()?,
                service["status"]["latestReadyRevisionName"].as_str()?,
            ))
        })
        .collect();
    for name in many.names() {
        let revision = format!("{name}-00001");
        assert!(
            ready.contains(&(name.as_str(), revision.as_str())),
            "{name} is not Ready: {ready:?}"
        );
    }
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
}
