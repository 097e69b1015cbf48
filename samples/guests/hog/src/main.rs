//! Grows memory 1 MiB at a time (`?mb=N` to stop after N MiB) until allocation fails, then traps.

use core::hint::black_box;
use wstd::http::{Body, Error, Request, Response, StatusCode};

const MIB: usize = 1 << 20;

#[wstd::http_server]
async fn main(req: Request<Body>) -> Result<Response<Body>, Error> {
    let limit = match query_param(req.uri().query(), "mb").map(str::parse::<usize>) {
        None => None,
        Some(Ok(mb)) => Some(mb),
        Some(Err(e)) => {
            return Ok(Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .header("content-type", "text/plain")
                .body(format!("mb: {e}\n").into())?);
        }
    };
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    while limit.is_none_or(|mb| chunks.len() < mb) {
        if allocate_chunk(&mut chunks).is_none() {
            panic!("hog: allocation failed after {} MiB", chunks.len());
        }
    }
    Ok(Response::builder()
        .header("content-type", "text/plain")
        .body(format!("allocated {} MiB\n", chunks.len()).into())?)
}

/// Allocates one more MiB and writes to all of it (so it is really used), or `None` when out of memory.
fn allocate_chunk(chunks: &mut Vec<Vec<u8>>) -> Option<()> {
    chunks.try_reserve(1).ok()?;
    let mut chunk = Vec::new();
    chunk.try_reserve_exact(MIB).ok()?;
    chunk.resize(MIB, 0xa5); // within the reserved capacity: no reallocation, touches every page
    chunks.push(chunk);
    // Makes the chunks observable, so the optimizer can elide neither the allocations nor the writes.
    black_box(&*chunks);
    Some(())
}

fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}
