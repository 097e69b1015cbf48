//! What each instance's `Store` holds, and the host side of the guest contract: `wasi:http` (the
//! WASIp2 `proxy` world and the WASIp3 `service` world) plus the `wasi:cli` interfaces std-built
//! guests import; no files, no sockets, no outgoing HTTP.

use std::sync::Arc;

use http_body_util::BodyExt;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    RequestOptions, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::charged_http::{
    OUTGOING_BODY_CHUNK, charge_http_allocations, charge_http_allocations_p3,
};
use crate::error::RuntimeError;
use crate::guest_log::{GuestLog, GuestStream, LogBudget};
use crate::limits::InstanceLimiter;
use crate::memory_reset::SlotWatch;

/// Most resources (streams, pollables, header fields, bodies…) one request may hold at once. A
/// handler uses tens; wasmtime's own default of a million would let a guest hold the host's
/// memory in table slots alone.
pub const MAX_RESOURCES: usize = 2048;

/// Host memory reserved from the replica's budget for a full resource table: its slots and
/// the small host objects behind them.
pub const RESOURCE_TABLE_RESERVATION: u64 = MAX_RESOURCES as u64 * 256;

/// Most bytes one `fields` resource (a header or trailer map) may hold, as wasmtime-wasi-http
/// counts them (wire bytes plus the map's own slots). How many of them a request builds is
/// charged separately, see [`crate::charged_http`].
const FIELD_SIZE_LIMIT: usize = 128 * 1024;

/// The host state of one instance: what it serves requests with, one or (reused) many.
pub struct Host {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: DenyOutgoingHttp,
    pub(crate) limiter: InstanceLimiter,
    log: Arc<LogBudget>,
    stdout: GuestLog,
    stderr: GuestLog,
    /// While the slot-reset choice is being made: marks this instance's pool slot as held for
    /// as long as the store lives (see `memory_reset`).
    slot_watch: Option<SlotWatch>,
}

impl Host {
    pub fn new(
        env: &[(String, String)],
        revision: &Arc<str>,
        request_id: &Arc<str>,
        limiter: InstanceLimiter,
    ) -> Self {
        let log = LogBudget::new(revision.clone(), request_id.clone());
        let stdout = GuestLog::new(GuestStream::Stdout, log.clone());
        let stderr = GuestLog::new(GuestStream::Stderr, log.clone());
        let mut wasi = WasiCtx::builder();
        wasi.envs(env)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(FIELD_SIZE_LIMIT);
        Self {
            table,
            wasi: wasi.build(),
            http,
            hooks: DenyOutgoingHttp {
                revision: revision.clone(),
                request_id: request_id.clone(),
            },
            limiter,
            log,
            stdout,
            stderr,
            slot_watch: None,
        }
    }

    pub(crate) fn watch_slot(&mut self, watch: SlotWatch) {
        self.slot_watch = Some(watch);
    }

    /// Tags what the instance does from now on with the next request it serves (a reused
    /// instance serves many in turn): its log lines, their budget, and denied outgoing calls.
    pub(crate) fn begin_request(&mut self, request_id: &Arc<str>) {
        self.stdout.flush_pending();
        self.stderr.flush_pending();
        self.log.begin_request(request_id.clone());
        self.hooks.request_id = request_id.clone();
    }

    /// Resources (streams, pollables, fields…) the guest still holds between requests.
    pub(crate) fn resources_held(&mut self) -> usize {
        self.table.iter_mut().count()
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

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        OUTGOING_BODY_CHUNK
    }

    fn p3_outgoing_body_chunk_size(&mut self) -> usize {
        OUTGOING_BODY_CHUNK
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
    charge_http_allocations(&mut linker).map_err(link_error)?;
    // WASIp3: its CLI world and HTTP (`@0.3` names never clash with `@0.2` ones); guests built
    // for it (componentize-py, spin-sdk) also import parts of the WASIp2 CLI, linked above.
    wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(link_error)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(link_error)?;
    charge_http_allocations_p3(&mut linker).map_err(link_error)?;
    Ok(linker)
}
