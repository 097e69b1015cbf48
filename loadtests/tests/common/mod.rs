//! What the loadtests' integration tests share.

use std::path::PathBuf;
use std::process::Command;

/// The `wisp` binary of this build. `cargo test --workspace` has built it (for wisp's own
/// end-to-end tests) before any test runs; `cargo test -p wisp-loadtests` alone builds only this
/// package, so then it is built here first. Building it unconditionally would rebuild its
/// dependencies with `-p wisp`'s own feature set in the middle of a workspace run.
pub fn wisp_binary() -> PathBuf {
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
