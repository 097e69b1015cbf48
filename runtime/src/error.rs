//! Errors of the runtime, each saying what was wrong and what to do about it.

use std::path::PathBuf;

/// Why a component could not be loaded, checked, compiled or prepared.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot read component file {path}: {reason}; check the path and its permissions")]
    ReadFile { path: PathBuf, reason: String },

    #[error(
        "cannot download component from {url}: {reason}; check the URL and that the server is reachable"
    )]
    Download { url: String, reason: String },

    /// A component from an OCI registry could not be pulled; [`wisp_oci::OciError::kind`] says
    /// why (not found, unauthorized, unreachable, …).
    #[error("{0}")]
    Pull(Box<wisp_oci::OciError>),

    #[error("component source {source_name} is not allowed: {refusal}")]
    NotAllowed {
        source_name: String,
        refusal: crate::source_policy::Refusal,
    },

    #[error(
        "{source_name} now holds different bytes (digest {found}) than when this revision was created ({expected}); a revision runs only the bytes it was created with: create a new revision (change the Service's template) to run the new bytes, or put the original bytes back"
    )]
    SourceChanged {
        source_name: String,
        expected: crate::artifact::Digest,
        found: crate::artifact::Digest,
    },

    #[error(
        "component {source_name} is larger than the {limit} byte limit; build a smaller component or raise the limit"
    )]
    TooLarge { source_name: String, limit: u64 },

    #[error(
        "{source_name} is not a WebAssembly file (it does not start with the \\0asm magic bytes); pass a .wasm component built for wasm32-wasip2"
    )]
    NotWasm { source_name: String },

    #[error(
        "{source_name} is a core WebAssembly module, not a component; build it for the wasm32-wasip2 target, or wrap it with `wasm-tools component new`"
    )]
    CoreModule { source_name: String },

    #[error(
        "{source_name} is a WebAssembly file of an unknown version or layer; rebuild it with a current toolchain for wasm32-wasip2"
    )]
    UnknownWasmVersion { source_name: String },

    #[error(
        "{source_name} does not export wasi:http/incoming-handler (it exports: {exports}); build it for the wasi:http/proxy world, e.g. with wstd's #[wstd::http_server]"
    )]
    MissingHandler {
        source_name: String,
        exports: String,
    },

    #[error("{source_name} is not a valid component: {reason}")]
    Invalid { source_name: String, reason: String },

    #[error(
        "{source_name} imports something wisp does not provide: {reason}; wisp offers wasi:http/proxy and wasi:cli, so build against those worlds"
    )]
    Link { source_name: String, reason: String },

    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),

    #[error(
        "compile cache at {path}: {reason}; check that the directory is writable, or run without a cache directory"
    )]
    Cache { path: PathBuf, reason: String },
}
