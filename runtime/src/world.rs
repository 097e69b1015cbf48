//! Which `wasi:http` world a component serves, told from its exports when it is linked.

use wasmtime::Engine;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::host::Host;

/// The world of a prepared component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// WASIp2: exports `wasi:http/incoming-handler@0.2.x`.
    WasiP2,
    /// WASIp3: exports `wasi:http/handler@0.3.x` (the async component model).
    WasiP3,
}

impl World {
    /// The export a component of this world serves requests through, without its patch version.
    pub fn handler_export(self) -> &'static str {
        match self {
            Self::WasiP2 => "wasi:http/incoming-handler@0.2",
            Self::WasiP3 => "wasi:http/handler@0.3",
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::WasiP2 => "WASIp2",
            Self::WasiP3 => "WASIp3",
        })
    }
}

/// A component linked and pre-instantiated for its world.
#[derive(Clone)]
pub(crate) enum Linked {
    P2(ProxyPre<Host>),
    P3(ServicePre<Host>),
}

impl Linked {
    pub(crate) fn engine(&self) -> &Engine {
        match self {
            Self::P2(pre) => pre.engine(),
            Self::P3(pre) => pre.engine(),
        }
    }

    pub(crate) fn world(&self) -> World {
        match self {
            Self::P2(_) => World::WasiP2,
            Self::P3(_) => World::WasiP3,
        }
    }
}
