//! What the loadtests' integration tests share.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The `wisp` binary of this build, never an old one. `cargo test --workspace` has built it (for
/// wisp's own end-to-end tests) before any test runs, and then it is used as it is: building it
/// unconditionally would rebuild its dependencies with `-p wisp`'s own feature set in the middle
/// of a workspace run. When it is missing (`cargo test -p wisp-loadtests` builds only this
/// package) or older than a source it is built from, it is built here first, once per test
/// process. `$WISP` is taken as given.
pub fn wisp_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_if_needed).clone()
}

fn build_if_needed() -> PathBuf {
    if let Some(binary) = wisp_loadtests::peers::wisp_binary() {
        let root = wisp_loadtests::wisp_up::repository_root();
        let newer = wisp_loadtests::freshness::newer_source(&binary, &root);
        if std::env::var_os("WISP").is_some() || newer.is_none() {
            return binary;
        }
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "wisp", "--bin", "wisp"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p wisp failed");
    let binary = wisp_loadtests::peers::wisp_binary()
        .expect("the wisp binary next to the test's target dir");
    let root = wisp_loadtests::wisp_up::repository_root();
    if let Some(source) = wisp_loadtests::freshness::newer_source(&binary, &root) {
        // Cargo found nothing to rebuild: the source's time moved without its content changing.
        eprintln!(
            "note: {} is up to date for cargo though older than {}",
            binary.display(),
            source.display()
        );
    }
    binary
}
