//! Holds the request open for `?ms=N` milliseconds on an async timer (no busy wait), then reports when.
//! `?note=TEXT` prints TEXT on stdout first, so a test can see the request reach the guest
//! (the host logs guest output) instead of guessing with a sleep.

use std::time::{SystemTime, UNIX_EPOCH};
use wstd::http::{Body, Error, Request, Response, StatusCode};
use wstd::time::Duration;

const DEFAULT_MS: u64 = 100;
const MAX_MS: u64 = 600_000;

#[wstd::http_server]
async fn main(req: Request<Body>) -> Result<Response<Body>, Error> {
    let ms = match query_param(req.uri().query(), "ms").map(str::parse::<u64>) {
        None => DEFAULT_MS,
        Some(Ok(ms)) => ms.min(MAX_MS),
        Some(Err(e)) => return bad_request(&format!("ms: {e}\n")),
    };
    if let Some(note) = query_param(req.uri().query(), "note") {
        println!("{note}");
    }
    let start = unix_ns();
    wstd::task::sleep(Duration::from_millis(ms)).await;
    let end = unix_ns();
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(
            format!(r#"{{"slept_ms":{ms},"start_unix_ns":{start},"end_unix_ns":{end}}}"#).into(),
        )?)
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn bad_request(msg: &str) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header("content-type", "text/plain")
        .body(msg.into())?)
}
