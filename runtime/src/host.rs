//! What each instance's `Store` holds, and the host side of the guest contract: `wasi:http/proxy`
//! plus the `wasi:cli` interfaces std-built guests import; no files, no sockets, no outgoing HTTP.

use std::sync::Arc;

use http_body_util::BodyExt;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    RequestOptions, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::error::RuntimeError;
use crate::guest_log::{GuestLog, GuestStream};
use crate::limits::InstanceLimiter;

/// The per-request state of one instance.
pub struct Host {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: DenyOutgoingHttp,
    pub(crate) limiter: InstanceLimiter,
}

impl Host {
    pub fn new(
        env: &[(String, String)],
        revision: &Arc<str>,
        request_id: &Arc<str>,
        limiter: InstanceLimiter,
    ) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.envs(env)
            .stdout(GuestLog::new(
                GuestStream::Stdout,
                revision.clone(),
                request_id.clone(),
            ))
            .stderr(GuestLog::new(
                GuestStream::Stderr,
                revision.clone(),
                request_id.clone(),
            ))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        Self {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: DenyOutgoingHttp {
                revision: revision.clone(),
                request_id: request_id.clone(),
            },
            limiter,
        }
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Refuses every outgoing request with `HTTP-request-denied`, the error code WASI defines for
/// exactly this, and logs the attempt so the operator sees why the guest failed. The request
/// body is read to its end first, so the guest's body writes succeed and the denial is the one
/// error it sees (a guest that streams forever is stopped by its deadline).
struct DenyOutgoingHttp {
    revision: Arc<str>,
    request_id: Arc<str>,
}

type SendRequestFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<HyperOutgoingBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for DenyOutgoingHttp {
    fn send_request(
        &mut self,
        request: http::Request<HyperOutgoingBody>,
        _options: Option<RequestOptions>,
        _io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendRequestFuture {
        tracing::warn!(
            revision = &*self.revision,
            request = &*self.request_id,
            uri = %request.uri(),
            "denied an outgoing HTTP request: wisp guests may not make outgoing requests"
        );
        Box::new(async move {
            let mut body = request.into_body();
            while let Some(Ok(_)) = body.frame().await {}
            Err(wasmtime_wasi_http::Error::HttpRequestDenied)
        })
    }
}

/// The linker every component is prepared with.
pub fn proxy_linker(engine: &wasmtime::Engine) -> Result<Linker<Host>, RuntimeError> {
    let mut linker = Linker::new(engine);
    let link_error = |error: wasmtime::Error| RuntimeError::Engine(format!("{error:#}"));
    // The whole wasi:cli command world (environment, exit, stdio, terminal, and the filesystem
    // and socket interfaces that std imports but is never given anything to use), then HTTP.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link_error)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(link_error)?;
    Ok(linker)
}
