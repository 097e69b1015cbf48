//! The smallest `wasi:http/proxy` component written with wstd: `Hello from wisp!` for any request.

use wstd::http::{Body, Error, Request, Response};

#[wstd::http_server]
async fn main(_req: Request<Body>) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .header("content-type", "text/plain")
        .body("Hello from wisp!\n".into())?)
}
