//! Never responds: an infinite busy loop the host can only stop by interrupting it (epoch deadline).

use core::hint::black_box;
use wstd::http::{Body, Error, Request, Response};

#[wstd::http_server]
async fn main(_req: Request<Body>) -> Result<Response<Body>, Error> {
    let mut i: u64 = 0;
    loop {
        // `black_box` keeps the loop body, so the optimizer can neither remove nor hoist it.
        i = black_box(i.wrapping_add(1));
    }
}
