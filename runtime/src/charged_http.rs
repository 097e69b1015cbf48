//! Host memory a guest makes wisp hold through `wasi:http` — the header fields it builds and the
//! buffer behind each outgoing body — charged to its replica's memory budget.
//!
//! wasmtime-wasi-http bounds one `fields` resource (its field size limit) but not how many a
//! guest creates and keeps: a guest looping over 100 KiB header fields would grow the host
//! without bound. The linker's functions that allocate for the guest are shadowed by wrappers
//! that charge first and then call wasmtime-wasi-http's own implementation. Charges last until
//! the instance ends (a dropped `fields` does not give its bytes back early): real handlers build
//! a few KiB of headers per request, so the stricter account costs them nothing.

use std::mem::size_of;

use http::{HeaderName, HeaderValue};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi_http::FieldMap;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{
    self as wit, HeaderError, Host as _, HostFields,
};
use wasmtime_wasi_http::p2::body::HostOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostOutgoingRequest, HostOutgoingResponse};

use crate::host::Host;

/// The `wasi:http/types` instance wasmtime-wasi-http 48 defines (guests importing any 0.2.x
/// version are linked to it).
const TYPES_INSTANCE: &str = "wasi:http/types@0.2.12";

/// What one field costs the host beyond its bytes (the map's name and value slots), as
/// wasmtime-wasi-http counts it for its own per-`fields` limit.
const FIELD_OVERHEAD: u64 = (size_of::<HeaderName>() + size_of::<HeaderValue>()) as u64;

/// Bytes of one outgoing body chunk (the guest's write permit).
pub const OUTGOING_BODY_CHUNK: usize = 64 * 1024;

/// What one outgoing body may hold in the host while nobody reads it: its channel keeps two
/// chunks (wasmtime-wasi-http's one buffered chunk plus the slot it always adds).
const OUTGOING_BODY_BUFFER: u64 = 2 * OUTGOING_BODY_CHUNK as u64;

fn field_cost(name: &str, value_bytes: usize) -> u64 {
    (name.len() + value_bytes) as u64 + FIELD_OVERHEAD
}

/// Replaces the allocating `wasi:http/types` functions of `linker` (already holding
/// wasmtime-wasi-http's) with charged ones.
pub fn charge_http_allocations(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(TYPES_INSTANCE)?;

    types.func_wrap(
        "[static]fields.from-list",
        |mut store: StoreContextMut<'_, Host>, (entries,): (Vec<(String, Vec<u8>)>,)| {
            let bytes = entries
                .iter()
                .map(|(name, value)| field_cost(name, value.len()))
                .sum();
            charge_fields(&mut store, bytes)?;
            let mut http = store.data_mut().http();
            let result = match HostFields::from_list(&mut http, entries) {
                Ok(fields) => Ok(fields),
                Err(error) => Err(http.convert_header_error(error)?),
            };
            Ok((result,))
        },
    )?;

    types.func_wrap(
        "[method]fields.set",
        |mut store: StoreContextMut<'_, Host>,
         (fields, name, values): (Resource<FieldMap>, String, Vec<Vec<u8>>)| {
            let bytes = values
                .iter()
                .map(|value| field_cost(&name, value.len()))
                .sum();
            charge_fields(&mut store, bytes)?;
            let mut http = store.data_mut().http();
            let outcome = HostFields::set(&mut http, fields, name, values);
            let result = header_result(&mut http, outcome)?;
            Ok((result,))
        },
    )?;

    types.func_wrap(
        "[method]fields.append",
        |mut store: StoreContextMut<'_, Host>,
         (fields, name, value): (Resource<FieldMap>, String, Vec<u8>)| {
            let bytes = field_cost(&name, value.len());
            charge_fields(&mut store, bytes)?;
            let mut http = store.data_mut().http();
            let outcome = HostFields::append(&mut http, fields, name, value);
            let result = header_result(&mut http, outcome)?;
            Ok((result,))
        },
    )?;

    types.func_wrap(
        "[method]fields.clone",
        |mut store: StoreContextMut<'_, Host>, (fields,): (Resource<FieldMap>,)| {
            // A clone shares its map until either side changes, then copies it whole: charged
            // as the copy it may become.
            let bytes = {
                let map = store.data_mut().table.get(&fields)?;
                map.iter()
                    .map(|(name, value)| field_cost(name.as_str(), value.len()))
                    .sum()
            };
            charge_fields(&mut store, bytes)?;
            let cloned = HostFields::clone(&mut store.data_mut().http(), fields)?;
            Ok((cloned,))
        },
    )?;

    types.func_wrap(
        "[method]outgoing-response.body",
        |mut store: StoreContextMut<'_, Host>, (response,): (Resource<HostOutgoingResponse>,)| {
            let body = wit::HostOutgoingResponse::body(&mut store.data_mut().http(), response)?;
            Ok((charge_body(store, body)?,))
        },
    )?;

    types.func_wrap(
        "[method]outgoing-request.body",
        |mut store: StoreContextMut<'_, Host>, (request,): (Resource<HostOutgoingRequest>,)| {
            let body = wit::HostOutgoingRequest::body(&mut store.data_mut().http(), request)?;
            Ok((charge_body(store, body)?,))
        },
    )?;

    linker.allow_shadowing(false);
    Ok(())
}

/// The WASIp3 `wasi:http/types` instance wasmtime-wasi-http 48 defines.
const TYPES_INSTANCE_P3: &str = "wasi:http/types@0.3.0";

/// The same charges for WASIp3 guests' header fields. Their bodies are piped through a channel
/// of one chunk per response (see `p3_outgoing_body_chunk_size`), charged with the instance.
pub fn charge_http_allocations_p3(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    use wasmtime_wasi_http::p3::bindings::http::types::{
        HeaderError as P3HeaderError, HostFields as P3Fields,
    };
    type P3Result<T> = Result<T, wasmtime_wasi::TrappableError<P3HeaderError>>;
    /// A header error the guest may handle, or a trap for anything else.
    fn guest_result<T>(result: P3Result<T>) -> wasmtime::Result<Result<T, P3HeaderError>> {
        match result {
            Ok(value) => Ok(Ok(value)),
            Err(error) => Ok(Err(error.downcast()?)),
        }
    }

    linker.allow_shadowing(true);
    let mut types = linker.instance(TYPES_INSTANCE_P3)?;

    types.func_wrap(
        "[static]fields.from-list",
        |mut store: StoreContextMut<'_, Host>, (entries,): (Vec<(String, Vec<u8>)>,)| {
            let bytes = entries
                .iter()
                .map(|(name, value)| field_cost(name, value.len()))
                .sum();
            charge_fields(&mut store, bytes)?;
            let result = P3Fields::from_list(&mut store.data_mut().http(), entries);
            Ok((guest_result(result)?,))
        },
    )?;

    types.func_wrap(
        "[method]fields.set",
        |mut store: StoreContextMut<'_, Host>,
         (fields, name, values): (Resource<FieldMap>, String, Vec<Vec<u8>>)| {
            let bytes = values
                .iter()
                .map(|value| field_cost(&name, value.len()))
                .sum();
            charge_fields(&mut store, bytes)?;
            let result = P3Fields::set(&mut store.data_mut().http(), fields, name, values);
            Ok((guest_result(result)?,))
        },
    )?;

    types.func_wrap(
        "[method]fields.append",
        |mut store: StoreContextMut<'_, Host>,
         (fields, name, value): (Resource<FieldMap>, String, Vec<u8>)| {
            let bytes = field_cost(&name, value.len());
            charge_fields(&mut store, bytes)?;
            let result = P3Fields::append(&mut store.data_mut().http(), fields, name, value);
            Ok((guest_result(result)?,))
        },
    )?;

    types.func_wrap(
        "[method]fields.clone",
        |mut store: StoreContextMut<'_, Host>, (fields,): (Resource<FieldMap>,)| {
            let bytes = {
                let map = store.data_mut().table.get(&fields)?;
                map.iter()
                    .map(|(name, value)| field_cost(name.as_str(), value.len()))
                    .sum()
            };
            charge_fields(&mut store, bytes)?;
            let cloned = P3Fields::clone(&mut store.data_mut().http(), fields)?;
            Ok((cloned,))
        },
    )?;

    linker.allow_shadowing(false);
    Ok(())
}

/// Charges `bytes` of header fields the guest is about to make the host hold.
fn charge_fields(store: &mut StoreContextMut<'_, Host>, bytes: u64) -> wasmtime::Result<()> {
    store.data_mut().limiter.charge_host("header fields", bytes)
}

/// Charges the buffers of an outgoing body the guest was just given.
fn charge_body(
    mut store: StoreContextMut<'_, Host>,
    body: Result<Resource<HostOutgoingBody>, ()>,
) -> wasmtime::Result<Result<Resource<HostOutgoingBody>, ()>> {
    if body.is_ok() {
        store
            .data_mut()
            .limiter
            .charge_host("outgoing body buffers", OUTGOING_BODY_BUFFER)?;
    }
    Ok(body)
}

/// A header operation's error as the guest sees it (or a trap, for errors that are not the
/// guest's to handle).
fn header_result(
    http: &mut wasmtime_wasi_http::WasiHttpCtxView<'_>,
    result: Result<(), wasmtime_wasi_http::p2::HeaderError>,
) -> wasmtime::Result<Result<(), HeaderError>> {
    match result {
        Ok(()) => Ok(Ok(())),
        Err(error) => Ok(Err(http.convert_header_error(error)?)),
    }
}
