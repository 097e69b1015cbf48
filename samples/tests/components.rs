//! The built samples are real components, each exporting the `wasi:http` handler its toolchain
//! claims: `incoming-handler@0.2.x` (WASIp2) or `handler@0.3.0` (WASIp3).

use std::path::Path;

use wasmparser::{Parser, Payload};

/// `\0asm`, then the component-model layer (version 0x0d, layer 1), not a core module's `1 0 0 0`.
const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// The names the component itself exports (not those of the components and modules nested in it).
fn top_level_exports(name: &str, bytes: &[u8]) -> Vec<String> {
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.unwrap_or_else(|e| panic!("{name}: not a valid component: {e}")) {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    let export = export.unwrap_or_else(|e| panic!("{name}: bad export: {e}"));
                    exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    exports
}

fn read(name: &str, path: &str) -> Vec<u8> {
    let path = Path::new(path);
    assert!(
        path.is_absolute(),
        "{name}: {} is not absolute",
        path.display()
    );
    let bytes = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{name}: cannot read {}: {e}", path.display()));
    assert!(bytes.len() > 8, "{name}: {} is too short", path.display());
    assert_eq!(bytes[..8], COMPONENT_PREAMBLE, "{name}: not a component");
    bytes
}

#[test]
fn every_wasip2_sample_is_a_component_exporting_the_incoming_handler() {
    assert_eq!(wisp_samples::ALL.len(), 22);
    assert_eq!(wisp_samples::wasip2().count(), 19);
    for (name, path) in wisp_samples::wasip2() {
        let exports = top_level_exports(name, &read(name, path));
        assert!(
            exports
                .iter()
                .any(|e| e.starts_with("wasi:http/incoming-handler@0.2.")),
            "{name}: exports {exports:?}, no wasi:http/incoming-handler@0.2.x"
        );
        assert!(
            !exports.iter().any(|e| e.starts_with("wasi:http/handler@")),
            "{name}: a WASIp2 sample exports {exports:?}"
        );
    }
}

#[test]
fn the_wasip3_samples_export_the_final_0_3_0_handler_only() {
    assert_eq!(wisp_samples::WASIP3, ["p3-counter", "p3-hello", "p3-echo"]);
    for name in wisp_samples::WASIP3 {
        let path = wisp_samples::path(name).expect("every WASIP3 name is in ALL");
        let path = path.to_str().expect("sample paths are UTF-8");
        let exports = top_level_exports(name, &read(name, path));
        // Exactly 0.3.0: wasmtime 48 links no `0.3.0-rc-…` prerelease.
        assert_eq!(exports, ["wasi:http/handler@0.3.0"], "{name}");
    }
}

/// Each toolchain's guests export the handler version that toolchain is known to emit: the
/// version is how one tells the toolchains' output apart (and what hosts must accept).
#[test]
fn each_toolchain_exports_its_own_handler_version() {
    let expected = [
        ("hello", "wasi:http/incoming-handler@0.2.12"),
        ("wstd-echo", "wasi:http/incoming-handler@0.2.12"),
        ("hello-wasi", "wasi:http/incoming-handler@0.2.12"),
        ("wasi-echo", "wasi:http/incoming-handler@0.2.12"),
        ("py-hello", "wasi:http/incoming-handler@0.2.0"),
        ("py-echo", "wasi:http/incoming-handler@0.2.0"),
        ("js-hello", "wasi:http/incoming-handler@0.2.10"),
        ("js-echo", "wasi:http/incoming-handler@0.2.10"),
        ("js-hello-handler", "wasi:http/incoming-handler@0.2.10"),
    ];
    for (name, export) in expected {
        let path = wisp_samples::path(name).expect("sample exists");
        let path = path.to_str().expect("sample paths are UTF-8");
        let exports = top_level_exports(name, &read(name, path));
        // wstd's `main` is a binary target: it also exports `wasi:cli/run`.
        let http: Vec<_> = exports
            .iter()
            .filter(|e| e.starts_with("wasi:http/"))
            .collect();
        assert_eq!(http, [export], "{name}: exports {exports:?}");
    }
}

/// The Python and JavaScript guests embed their interpreter: a size far above any Rust guest's
/// is the sign the toolchain, not a stand-in, built them.
#[test]
fn interpreter_guests_carry_their_interpreter() {
    let size = |path: &str| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    for (name, path) in [
        ("py-hello", wisp_samples::PY_HELLO),
        ("py-echo", wisp_samples::PY_ECHO),
    ] {
        assert!(size(path) > 10 << 20, "{name}: {} B", size(path));
    }
    for (name, path) in [
        ("js-hello", wisp_samples::JS_HELLO),
        ("js-echo", wisp_samples::JS_ECHO),
        ("js-hello-handler", wisp_samples::JS_HELLO_HANDLER),
    ] {
        assert!(size(path) > 8 << 20, "{name}: {} B", size(path));
    }
    for (name, path) in [
        ("hello", wisp_samples::HELLO),
        ("p3-hello", wisp_samples::P3_HELLO),
        ("wasi-echo", wisp_samples::WASI_ECHO),
    ] {
        assert!(size(path) < 1 << 20, "{name}: {} B", size(path));
    }
}

#[test]
fn every_sample_is_in_the_samples_directory() {
    for (name, path) in wisp_samples::ALL {
        assert_eq!(
            Path::new(path).parent(),
            Some(wisp_samples::dir()),
            "{name}: outside the directory a wisp under test allows"
        );
    }
}

#[test]
fn path_finds_each_sample_by_name() {
    for (name, path) in wisp_samples::ALL {
        assert_eq!(wisp_samples::path(name), Some(Path::new(path)));
    }
    assert_eq!(
        wisp_samples::path("hello"),
        Some(Path::new(wisp_samples::HELLO))
    );
    assert_eq!(wisp_samples::path("nope"), None);
}

#[test]
fn hello_wasi_is_smaller_than_hello() {
    let size = |p: &str| std::fs::metadata(p).unwrap().len();
    let (wasi, wstd) = (size(wisp_samples::HELLO_WASI), size(wisp_samples::HELLO));
    assert!(
        wasi < wstd,
        "hello-wasi ({wasi} B) should be smaller than hello ({wstd} B)"
    );
}
