//! Burns CPU: `?n=N` rounds of an xorshift/FNV fold the optimizer cannot remove.

use core::hint::black_box;
use wstd::http::{Body, Error, Request, Response, StatusCode};

const DEFAULT_N: u64 = 1_000_000;

#[wstd::http_server]
async fn main(req: Request<Body>) -> Result<Response<Body>, Error> {
    let n = match query_param(req.uri().query(), "n").map(str::parse::<u64>) {
        None => DEFAULT_N,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            return Ok(Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .header("content-type", "text/plain")
                .body(format!("n: {e}\n").into())?);
        }
    };
    let result = work(black_box(n));
    Ok(Response::builder()
        .header("content-type", "text/plain")
        .body(format!("n={n} result={result}\n").into())?)
}

/// `n` rounds of xorshift64 folded into an FNV-1a hash; each round depends on the previous one.
fn work(n: u64) -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        hash = (hash ^ black_box(x)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}
