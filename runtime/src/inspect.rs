//! Cheap checks of a file's bytes before any compiling: is it wasm at all, and is it a component?

/// What the first eight bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    NotWasm,
    CoreModule,
    Component,
    UnknownVersion,
}

const MAGIC: &[u8; 4] = b"\0asm";
/// Version 1, layer 0: a core module.
const CORE_PREAMBLE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
/// Layer 1 marks a component; the version half still moves between proposals, so only the layer is
/// compared and wasmtime judges the version.
const COMPONENT_LAYER: [u8; 2] = [0x01, 0x00];

pub fn classify(bytes: &[u8]) -> WasmKind {
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return WasmKind::NotWasm;
    }
    if bytes[4..8] == CORE_PREAMBLE {
        WasmKind::CoreModule
    } else if bytes[6..8] == COMPONENT_LAYER {
        WasmKind::Component
    } else {
        WasmKind::UnknownVersion
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_text_core_modules_and_components_apart() {
        assert_eq!(classify(b"hello world"), WasmKind::NotWasm);
        assert_eq!(classify(b"\0asm"), WasmKind::NotWasm);
        assert_eq!(classify(b"\0asm\x01\0\0\0"), WasmKind::CoreModule);
        assert_eq!(classify(b"\0asm\x0d\0\x01\0"), WasmKind::Component);
        assert_eq!(classify(b"\0asm\x02\0\x02\0"), WasmKind::UnknownVersion);
    }
}
