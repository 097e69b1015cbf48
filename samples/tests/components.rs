//! The built samples are real components exporting `wasi:http/incoming-handler`.

use std::path::Path;

/// `\0asm`, then the component-model layer (version 0x0d, layer 1), not a core module's `1 0 0 0`.
const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

#[test]
fn every_sample_is_a_component_exporting_the_incoming_handler() {
    assert_eq!(wisp_samples::ALL.len(), 13);
    for (name, path) in wisp_samples::ALL {
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
        let exports = |export: &[u8]| bytes.windows(export.len()).any(|w| w == export);
        assert!(
            exports(b"wasi:http/incoming-handler@0.2.") || exports(b"wasi:http/handler@0.3."),
            "{name}: neither wasi:http/incoming-handler@0.2 nor wasi:http/handler@0.3 in {}",
            path.display()
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
