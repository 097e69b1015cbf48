//! The shipped soak plan (`loadtests/scenarios/soak.yaml`, the file itself), played shortened:
//! one minute instead of ten, with every event still in it — three rollouts, a trip to zero and
//! back, and a `kill -9` of `wisp up` with its restart, beside a hostile Service. No request may
//! be lost, memory must stay under the plan's limit, and every event must have happened.
//! Nothing here is timed.

mod common;

use std::time::Duration;

use common::wisp_binary;
use wisp_loadtests::soak::plan::Expect;
use wisp_loadtests::soak::{self, Overrides, SoakOptions};
use wisp_loadtests::wisp_up::repository_root;

#[test]
fn the_shipped_soak_loses_nothing_when_shortened() {
    let report_dir = tempfile::tempdir().expect("report dir");
    let options = SoakOptions {
        wisp: wisp_binary(),
        plan: repository_root().join("loadtests/scenarios/soak.yaml"),
        overrides: Overrides {
            duration: Some(Duration::from_secs(60)),
            kill_at: Some(Duration::from_secs(45)),
            rollout_every: Some(Duration::from_secs(15)),
            scale_to_zero_every: Some(Duration::from_secs(40)),
        },
        report_dir: report_dir.path().to_path_buf(),
        image_dir: repository_root(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime
        .block_on(soak::play(&options, |line| eprintln!("{line}")))
        .unwrap_or_else(|error| panic!("the soak runs: {error:#}"));
    let record = &outcome.record;
    let report = std::fs::read_to_string(&outcome.markdown).expect("the Markdown report");
    let log = std::fs::read_to_string(&outcome.log).unwrap_or_default();
    let context = format!(
        "{report}\nwisp up's log (last 4 KiB):\n{}",
        tail(&log, 4096)
    );

    assert!(record.problems().is_empty(), "{context}");
    let total = record.total();
    assert_eq!(total.lost, 0, "{context}");
    assert_eq!(
        total.sent,
        total.delivered + total.cut_by_kill + total.sent_while_down,
        "{context}"
    );

    // Every event happened, and the restart came back on the same data directory.
    let outage = record.outage.expect("wisp up was killed and restarted");
    assert_eq!(record.rollouts.len(), 3, "{context}");
    assert!(
        record.rollouts.iter().all(|r| r.ready.is_some()),
        "{context}"
    );
    assert_eq!(record.zero_cycles.len(), 1, "{context}");
    assert!(record.zero_cycles[0].zero_after.is_some(), "{context}");

    // The well-behaved Services were served after the restart, and the hostile one's requests
    // failed the way each attack should, answered every time.
    for service in &record.services {
        let total = service.total();
        assert!(total.sent > 0, "{}: nothing sent\n{context}", service.name);
        match service.expect {
            Expect::Success => assert!(
                total.delivered > 0 && total.outcomes.get("200").copied().unwrap_or(0) > 0,
                "{}\n{context}",
                service.name
            ),
            Expect::Failures => {
                for stream in &service.streams {
                    let answered_500s: u64 = stream
                        .tally
                        .outcomes
                        .iter()
                        .filter(|(status, _)| status.starts_with('5'))
                        .map(|(_, count)| count)
                        .sum();
                    assert!(answered_500s > 0, "{}\n{context}", stream.path);
                    assert!(
                        !stream.tally.outcomes.contains_key("200"),
                        "a hostile request succeeded: {}\n{context}",
                        stream.path
                    );
                }
            }
        }
    }
    let spin = record
        .services
        .iter()
        .flat_map(|s| &s.streams)
        .find(|s| s.path.contains("spin"))
        .expect("a spin stream");
    assert!(spin.tally.outcomes.contains_key("504"), "{context}");

    // Memory was sampled on both sides of the restart, and stayed under the plan's limit.
    let limit = u64::from(record.plan.rss_limit_mib) << 20;
    assert!(
        record.rss.iter().any(|s| s.at < outage.killed)
            && record.rss.iter().any(|s| s.at > outage.back),
        "{context}"
    );
    assert!(record.rss.iter().all(|s| s.bytes <= limit), "{context}");
    let html = std::fs::read_to_string(&outcome.html).expect("the HTML report");
    assert!(
        html.contains("<svg") && html.contains("resident memory"),
        "no RSS chart"
    );
    assert!(report.contains("**PASSED"), "{report}");
}

fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
