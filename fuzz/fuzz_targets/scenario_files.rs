//! The load tests' scenario files and soak plans (YAML read with positions for errors). Input:
//! the file's text, read both ways.
//!
//! Invariants: reading never panics, and an error always says where (a line, when the parser
//! knows one, is within the text, counting lines as the YAML parser does).

#![no_main]

use libfuzzer_sys::fuzz_target;
use wisp_loadtests::{scenario, soak};

fuzz_target!(|text: &str| {
    let lines = yaml_lines(text);
    if let Err(error) = scenario::parse("fuzz.yaml", text) {
        assert!(error.line.is_none_or(|line| line <= lines + 1), "{error}");
    }
    if let Err(error) = soak::plan::parse("fuzz.yaml", text) {
        assert!(error.line.is_none_or(|line| line <= lines + 1), "{error}");
    }
});

/// Lines as libyaml counts them: CR LF, CR, LF, NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR each
/// end one (YAML 1.1's line breaks).
fn yaml_lines(text: &str) -> usize {
    text.replace("\r\n", "\n")
        .split(['\r', '\n', '\u{85}', '\u{2028}', '\u{2029}'])
        .count()
}
