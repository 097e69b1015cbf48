//! Traps on every request, so the host must contain it: by default a panic (with
//! `panic = "abort"` a wasm `unreachable`); `?kind=overflow` recurses until the wasm stack is
//! exhausted.

use core::hint::black_box;
use wstd::http::{Body, Error, Request, Response};

#[wstd::http_server]
async fn main(req: Request<Body>) -> Result<Response<Body>, Error> {
    if req.uri().query() == Some("kind=overflow") {
        let depth = recurse(black_box(1));
        return Ok(Response::new(
            format!("unreachable: depth {depth}\n").into(),
        ));
    }
    panic!("trap sample: deliberate panic");
}

/// Works after the call, so it cannot become a loop; only scalars, so every frame lives on the
/// wasm call stack (not in linear memory) and the engine's stack limit is what stops it.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    if black_box(n) == 0 {
        return 0;
    }
    recurse(black_box(n + 1)).wrapping_add(black_box(n))
}
