//! wisp's speed must not depend on the shell it starts from. With `RUST_BACKTRACE` or
//! `RUST_LIB_BACKTRACE` set, every wasmtime error would capture a Rust backtrace, and wasmtime
//! makes one such error per request: dropping a `Store` disposes the worker fiber parked in it
//! with a "future dropped" error. wasmtime is built without its `backtrace` feature (see the
//! workspace `Cargo.toml`) so that those errors cost nothing.
//!
//! One test in a binary of its own, because the variable must be set before anything in the
//! process first asks whether to capture.

use std::backtrace::{Backtrace, BacktraceStatus};

#[test]
fn wasmtime_errors_capture_no_backtrace_even_when_the_environment_asks_for_one() {
    // SAFETY: this binary's only test, and nothing else in it reads the environment.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "1") };
    assert_eq!(
        Backtrace::capture().status(),
        BacktraceStatus::Captured,
        "the environment asks for backtraces, so std captures them"
    );
    let shown = format!("{:?}", wasmtime::Error::msg("future dropped"));
    assert!(
        !shown.contains("Stack backtrace"),
        "a wasmtime error captured a backtrace; is wasmtime's `backtrace` feature on again?\n{shown}"
    );
}
