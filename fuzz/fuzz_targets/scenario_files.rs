//! The load tests' scenario files and soak plans (YAML read with positions for errors). Input:
//! the file's text, read both ways.
//!
//! Invariants: reading never panics, and an error always says where (a line, when the parser
//! knows one, is within the text).

#![no_main]

use libfuzzer_sys::fuzz_target;
use wisp_loadtests::{scenario, soak};

fuzz_target!(|text: &str| {
    let lines = text.lines().count().max(1);
    if let Err(error) = scenario::parse("fuzz.yaml", text) {
        assert!(error.line.is_none_or(|line| line <= lines + 1), "{error}");
    }
    if let Err(error) = soak::plan::parse("fuzz.yaml", text) {
        assert!(error.line.is_none_or(|line| line <= lines + 1), "{error}");
    }
});
