//! The shipped scenarios (`rollout`, `many-services`, `step`, `scale-to-zero`), played as shipped (the files in
//! `loadtests/scenarios/`, not copies) through the demo against `wisp up`: they must work, lose
//! no request, and leave the cluster as they say. Each takes about a minute or less as shipped
//! (their autoscaling uses Knative's shortest window), so none is shortened. Nothing here is
//! timed.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    let output = wisp_loadtests::kubectl_tool::command_or_fail()
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

/// The phase spans of a run, by kind, in order.
fn phase_kinds(outcome: &DemoOutcome) -> Vec<&str> {
    outcome
        .record
        .phases
        .iter()
        .map(|p| p.kind.as_str())
        .collect()
}

/// Whether a cold start was seen from the start of phase `index` until the next phase started
/// (the sampler notes a cold start when it next reads the metrics, which may be after a short
/// phase such as a burst has ended).
fn cold_start_in_phase(outcome: &DemoOutcome, index: usize) -> bool {
    let phases = &outcome.record.phases;
    let start = phases[index].start;
    let until = phases
        .get(index + 1)
        .map_or(Duration::MAX, |next| next.start);
    outcome
        .record
        .cold_starts
        .iter()
        .any(|c| c.at >= start && c.at < until)
}

#[test]
fn the_shipped_step_follows_each_step_from_zero_losing_nothing() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = scenario::load(&shipped("step"))
        .expect("the shipped scenario")
        .expected_requests()
        .expect("open-loop phases only");
    assert_eq!(expected, 100 * 10 + 200 * 10 + 300 * 10);
    let (outcome, wisp) = play("step", dir.path());
    assert_nothing_lost(&outcome, expected);
    assert_eq!(phase_kinds(&outcome), ["wait-for", "step"]);
    // The steps start from zero replicas: the first request is a cold start.
    assert!(
        cold_start_in_phase(&outcome, 1),
        "no cold start during the steps: {:?}",
        outcome.record.cold_starts
    );
    let steps = &outcome.record.phases[1];
    assert!(
        outcome
            .record
            .samples
            .iter()
            .any(|s| s.at >= steps.start && s.at <= steps.end && s.actual >= 1),
        "replicas followed the load: {:?}",
        outcome.record.samples
    );
    let service = get(&wisp, &["ksvc", "hello"]);
    assert_eq!(
        service["status"]["latestReadyRevisionName"], "hello-00001",
        "{service:#}"
    );
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn the_shipped_scale_to_zero_scales_up_and_back_to_zero_losing_nothing() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = scenario::load(&shipped("scale-to-zero"))
        .expect("the shipped scenario")
        .expected_requests()
        .expect("open-loop phases only");
    let (outcome, _wisp) = play("scale-to-zero", dir.path());
    assert_nothing_lost(&outcome, expected);
    assert_eq!(
        phase_kinds(&outcome),
        [
            "idle", "wait-for", "burst", "ramp", "constant", "wait-for", "burst"
        ]
    );
    // Both bursts come from zero replicas.
    for burst in [2, 6] {
        assert!(
            cold_start_in_phase(&outcome, burst),
            "no cold start in phase {burst}: {:?} {:?}",
            outcome.record.phases,
            outcome.record.cold_starts
        );
    }
    // 150 requests/s of 100 ms each is 15 in flight: more than one replica's 10.
    let hold = &outcome.record.phases[4];
    let peak_in_hold = outcome
        .record
        .samples
        .iter()
        .filter(|s| s.at >= hold.start && s.at <= hold.end)
        .map(|s| s.actual)
        .max();
    assert!(
        peak_in_hold.is_some_and(|peak| peak >= 2),
        "replicas during the hold: {peak_in_hold:?}"
    );
    // The ramp runs into the hold without a pause: the hold starts when the ramp's schedule
    // ends, and every second from the ramp's start to the hold's end sent requests.
    let ramp = &outcome.record.phases[3];
    assert_eq!(
        hold.start,
        ramp.start + Duration::from_secs(20),
        "{ramp:?} {hold:?}"
    );
    let seconds = &outcome.record.timeline.seconds;
    for second in ramp.start.as_secs()..hold.start.as_secs() + 20 {
        let sent = seconds.get(second as usize).map_or(0, |s| s.counts.sent);
        assert!(
            sent > 0,
            "no request sent in second {second}: the load paused"
        );
    }
    // Between the hold and the last burst the sampler saw zero replicas.
    let last = &outcome.record.phases[6];
    assert!(
        outcome
            .record
            .samples
            .iter()
            .any(|s| s.at >= hold.end && s.at <= last.start && s.actual == 0),
        "back at zero before the last burst: {:?}",
        outcome.record.samples
    );
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
}
