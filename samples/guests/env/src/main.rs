//! Prints the environment the host gave the instance, one `KEY=VALUE` line per variable, sorted by key.

use wstd::http::{Body, Error, Request, Response};

#[wstd::http_server]
async fn main(_req: Request<Body>) -> Result<Response<Body>, Error> {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    let body: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    Ok(Response::builder()
        .header("content-type", "text/plain")
        .body(body.into())?)
}
