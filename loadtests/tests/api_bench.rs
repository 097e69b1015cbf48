//! `bench api` at toy sizes against the real `wisp api-server`: every count in the report adds
//! up. Speed is never asserted here.

mod common;

use std::time::Duration;

use common::wisp_binary;
use wisp_loadtests::cases::api::{self, PAGE_SIZE, Settings};

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
