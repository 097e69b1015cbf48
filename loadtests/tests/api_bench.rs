//! `bench api` at toy sizes against the real `wisp api-server`: every count in the report adds
//! up. Speed is never asserted here.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use wisp_loadtests::cases::api::{self, PAGE_SIZE, Settings};

/// The `wisp` binary of this build. `cargo test --workspace` has built it (for wisp's own
/// end-to-end tests) before any test runs; `cargo test -p wisp-loadtests` alone builds only this
/// package, so then it is built here first. Building it unconditionally would rebuild its
/// dependencies with `-p wisp`'s own feature set in the middle of a workspace run.
fn wisp_binary() -> PathBuf {
    if let Some(binary) = wisp_loadtests::peers::wisp_binary() {
        return binary;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "wisp", "--bin", "wisp"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p wisp failed");
    wisp_loadtests::peers::wisp_binary().expect("the wisp binary next to the test's target dir")
}

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
    assert!(bench.memory_after_creates.rss_kib > 0);
    assert!(bench.memory_at_end.hwm_kib >= bench.memory_after_creates.rss_kib);
    let report = bench.markdown();
    eprintln!("{report}");
    assert!(report.contains("| 50 ok, 0 failed |"), "{report}");
    assert!(report.contains("| 30 of 30 |"), "{report}");
}
