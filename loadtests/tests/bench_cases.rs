//! Benchmark cases at toy sizes against real `wisp` processes: every count in their reports adds
//! up and every proof they print holds. Speed is never asserted here.

mod common;

use std::time::Duration;

use common::wisp_binary;
use wisp_loadtests::cases::api::{self, PAGE_SIZE, Settings};
use wisp_loadtests::cases::scale;

#[test]
fn api_bench_counts_add_up() {
    let binary = wisp_binary();
    assert!(binary.is_file(), "{}", binary.display());
    let settings = Settings {
        services: 50,
        in_flight: 8,
        watchers: 10,
        watched_writes: 3,
        write_spacing: Duration::from_millis(20),
    };
    let bench = api::run(&settings).expect("bench api");
    assert_eq!(bench.created, 50);
    assert_eq!(bench.create_errors, 0);
    assert_eq!(bench.create_latency_us.len(), 50);
    assert_eq!(bench.listed, 50);
    assert_eq!(bench.paged_listed, 50);
    assert_eq!(bench.pages, 50usize.div_ceil(PAGE_SIZE as usize));
    assert_eq!(bench.watchers_opened, 10);
    assert_eq!(bench.watched_writes, 3);
    assert_eq!(bench.deliveries, 30);
    assert_eq!(bench.delivery_delay_us.len(), 30);
    assert_eq!(bench.write_latency_unwatched_us.len(), 3);
    assert_eq!(bench.write_latency_watched_us.len(), 3);
    assert!(bench.memory_after_creates.total().rss_kib > 0);
    assert!(bench.memory_at_end.total().hwm_kib >= bench.memory_after_creates.total().rss_kib);
    let report = bench.markdown();
    eprintln!("{report}");
    assert!(report.contains("| 50 ok, 0 failed |"), "{report}");
    assert!(report.contains("| 30 of 30 |"), "{report}");

    // A peer that could not run gets a row saying why, and the reference row stays.
    let compared = api::compare(&[
        ("wisp api-server".to_owned(), Ok(bench)),
        (
            "kube-apiserver".to_owned(),
            Err("scripts/kube-env is missing\nmore".to_owned()),
        ),
    ]);
    assert!(
        compared.contains(
            "| kube-apiserver | — | — | — | — | — | — | — | missing: scripts/kube-env is missing |"
        ),
        "{compared}"
    );
    assert!(compared.contains("1.00× (the reference)"), "{compared}");
}

/// `bench cold-start` with its registry case (a real docker-registry, installed by
/// scripts/test-deps): every first request was a cold start by the data plane's own counter, and
/// the registry's access log shows one download per new component and none for a cached one
/// (the case fails itself otherwise).
#[test]
fn cold_start_bench_proves_its_cold_starts_and_its_pulls() {
    let report = scale::cold_starts(3, 1).expect("bench cold-start");
    assert!(
        report.contains("0 → 1 for each of the 6 Services"),
        "{report}"
    );
    assert!(
        report.contains("the second downloaded none (1 rounds)"),
        "{report}"
    );
    for row in [
        "| wisp up, image from the registry: first request (cold start) | 3 | 0 | 0 |",
        "| new component, from the registry by tag (pinned, first pull, compiled) | 1 |",
        "| same component again, from the registry by tag (pinned, blob cached) | 1 |",
    ] {
        assert!(report.contains(row), "no row {row:?} in\n{report}");
    }
}
