//! The echo contract for WASIp3 with spin-sdk 7 (exports `wasi:http/handler@0.3.0`): any request
//! gets 200 `text/plain`; `?env=NAME` answers the value of environment variable NAME (404
//! `NAME is not set\n` when unset); otherwise the request body is streamed back byte for byte.
//! `?ms=N` (at most 600000) first waits N ms on an async timer, so one instance holds many
//! requests at once; a malformed `ms` gets 400 with the reason.

use std::time::Duration;

use spin_sdk::http::{IntoResponse, Request, Response, StatusCode};
use spin_sdk::http_service;

const MAX_MS: u64 = 600_000;

#[http_service]
async fn echo(request: Request) -> Result<impl IntoResponse, spin_sdk::http::Error> {
    let query = request.uri().query().unwrap_or("");
    let param = |wanted: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == wanted)
            .map(|(_, value)| value.into_owned())
    };
    if let Some(ms) = param("ms") {
        match ms.parse::<u64>() {
            Ok(ms) => spin_sdk::time::sleep(Duration::from_millis(ms.min(MAX_MS))).await,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("ms: {e}\n").into_bytes()),
        }
    }
    if let Some(name) = param("env") {
        return match std::env::var_os(&name) {
            Some(value) => text(StatusCode::OK, value.into_encoded_bytes()),
            None => text(
                StatusCode::NOT_FOUND,
                format!("{name} is not set\n").into_bytes(),
            ),
        };
    }
    // The incoming body handed over as the response body streams it back as it arrives.
    let body = spin_sdk::http::box_body(request.into_body());
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain")
        .body(body)?)
}

fn text(
    status: StatusCode,
    content: Vec<u8>,
) -> Result<Response<spin_sdk::http::BoxBody>, spin_sdk::http::Error> {
    let body = spin_sdk::http::box_body(spin_sdk::http::FullBody::new(content.into()));
    Ok(Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)?)
}
