//! The scale-to-zero demo end to end, shortened: `wisp up` as a process, a scenario played
//! against it through the gateway, the record and the report checked. Nothing here is timed.

mod common;

use std::time::{Duration, Instant};

use common::wisp_binary;
use wisp_loadtests::demo::{self, DemoOptions};
use wisp_loadtests::wisp_up::repository_root;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_short_scale_to_zero_run_loses_nothing_and_reports_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sleep = repository_root().join("samples/knative/sleep.yaml");
    let scenario = dir.path().join("short.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: short\ndescription: scale to zero, shortened for a test\ntarget:\n  \
             service: sleep\n  path: /?ms=20\nmanifests:\n  - {}\nautoscaling:\n  \
             stable-window: 6s\n  scale-to-zero-grace-period: 1s\nphases:\n  \
             - wait-for: {{replicas: 0, timeout: 90s}}\n  - burst: {{requests: 10}}\n  \
             - constant: {{rate: 30, duration: 2s}}\n  - wait-for: {{replicas: 0, timeout: 90s}}\n",
            sleep.display()
        ),
    )
    .expect("write scenario");
    let started = Instant::now();
    let outcome = runtime()
        .block_on(demo::run(&DemoOptions {
            wisp: wisp_binary(),
            scenario,
            report_dir: dir.path().join("report"),
            image_dir: repository_root(),
            verbose: false,
        }))
        .expect("the demo runs");

    let totals = outcome.record.timeline.totals;
    assert!(totals.sent >= 10 + 60, "{totals:?}");
    assert_eq!(totals.accounted(), totals.sent, "{totals:?}");
    assert_eq!(
        totals.succeeded, totals.sent,
        "no request may fail: {totals:?}"
    );
    assert!(
        !outcome.record.cold_starts.is_empty(),
        "the burst from zero is a cold start"
    );
    let samples = &outcome.record.samples;
    let woke = samples
        .iter()
        .position(|s| s.actual > 0)
        .expect("scaled up");
    assert!(
        samples[woke..].iter().any(|s| s.actual == 0),
        "back to zero after the load"
    );
    assert!(
        outcome
            .summary
            .time_to_zero
            .is_some_and(|t| t > Duration::ZERO)
    );
    let html = std::fs::read_to_string(&outcome.html).expect("the HTML report");
    assert_eq!(html.matches("<svg").count(), 4, "four charts");
    let markdown = std::fs::read_to_string(&outcome.markdown).expect("the Markdown report");
    assert!(markdown.contains("burst"), "{markdown}");
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
}

/// A phase that fails (a wait for replicas the Service will never have) stops the run with an
/// error, and the report of what ran until then is written anyway, naming the phase and why.
#[test]
fn a_failed_phase_still_leaves_a_report_naming_it() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let hello = repository_root().join("samples/knative/hello.yaml");
    let scenario = dir.path().join("doomed.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: doomed\ndescription: a wait for replicas that never come\ntarget:\n  \
             service: hello\nmanifests:\n  - {}\nphases:\n  \
             - constant: {{rate: 5, duration: 1s}}\n  \
             - wait-for: {{replicas: 5, timeout: 3s}}\n  - burst: {{requests: 3}}\n",
            hello.display()
        ),
    )
    .expect("write scenario");
    let report_dir = dir.path().join("report");
    let error = runtime()
        .block_on(demo::run(&DemoOptions {
            wisp: wisp_binary(),
            scenario,
            report_dir: report_dir.clone(),
            image_dir: repository_root(),
            verbose: false,
        }))
        .err()
        .expect("a wait-for that cannot be met fails the demo");
    let message = format!("{error:#}");
    assert!(
        message.contains("phases[1] (wait-for)") && message.contains("did not reach 5 replicas"),
        "{message}"
    );

    let html = std::fs::read_to_string(report_dir.join("doomed.html")).expect("the HTML report");
    let markdown =
        std::fs::read_to_string(report_dir.join("doomed.md")).expect("the Markdown report");
    for report in [&html, &markdown] {
        assert!(
            report.contains(
                "The run stopped early: phases[1] (wait for 5 replicas) failed: the Services \
                 did not reach 5 replicas within 3s"
            ),
            "{report}"
        );
    }
    assert_eq!(html.matches("<svg").count(), 4, "the charts of what ran");
    // The phases that ran are in the table, the one after the failure is not.
    assert!(
        markdown.contains("| constant | 5 rps for 1s |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| wait-for | wait for 5 replicas |"),
        "{markdown}"
    );
    assert!(!markdown.contains("| burst |"), "{markdown}");
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
}
