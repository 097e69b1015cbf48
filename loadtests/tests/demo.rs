//! The scale-to-zero demo end to end, shortened: `wisp up` as a process, a scenario played
//! against it through the gateway, the record and the report checked. Nothing here is timed.

mod common;

use std::time::Duration;

use common::wisp_binary;
use wisp_loadtests::demo::{self, DemoOptions};
use wisp_loadtests::wisp_up::repository_root;

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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime
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
}
