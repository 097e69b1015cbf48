//! Panics on every request; with `panic = "abort"` the panic is a wasm trap the host must contain.

use wstd::http::{Body, Error, Request, Response};

#[wstd::http_server]
async fn main(_req: Request<Body>) -> Result<Response<Body>, Error> {
    panic!("trap sample: deliberate panic");
}
