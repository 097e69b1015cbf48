//! Counts the requests its instance has served, to show what instance reuse carries between
//! requests: with a fresh instance per request every answer is `1`.
//!
//! `?keep_kib=N` also keeps N KiB of memory for the instance's life (memory that reuse would
//! pile up); `?trap=1` panics after counting, a trap in the middle of a reused instance's life.

use core::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use wstd::http::{Body, Error, Request, Response, StatusCode};

static SERVED: AtomicU64 = AtomicU64::new(0);
static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[wstd::http_server]
async fn main(req: Request<Body>) -> Result<Response<Body>, Error> {
    let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    let query = req.uri().query();
    if let Some(kib) = query_param(query, "keep_kib") {
        let Ok(kib) = kib.parse::<usize>() else {
            return Ok(Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .header("content-type", "text/plain")
                .body(format!("keep_kib: not a number: {kib}\n").into())?);
        };
        let chunk = vec![0x5a_u8; kib * 1024];
        if let Ok(mut kept) = KEPT.lock() {
            kept.push(black_box(chunk));
        }
    }
    if query_param(query, "trap") == Some("1") {
        panic!("counter: deliberate trap after {served} requests");
    }
    Ok(Response::builder()
        .header("content-type", "text/plain")
        .body(format!("{served}\n").into())?)
}

fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}
