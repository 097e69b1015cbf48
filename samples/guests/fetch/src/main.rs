//! Tries an outgoing HTTP request to `?url=` (default `http://127.0.0.1:9/`) and reports what
//! happened: 200 with the upstream status, or 502 with the error the host gave the guest. Under
//! wisp, which allows no outgoing HTTP, this shows the denial a guest sees.

use wstd::http::{Body, Client, Error, Request, Response, StatusCode};

const DEFAULT_URL: &str = "http://127.0.0.1:9/";

#[wstd::http_server]
async fn main(req: Request<Body>) -> Result<Response<Body>, Error> {
    let url = req
        .uri()
        .query()
        .and_then(|query| query.split('&').find_map(|kv| kv.strip_prefix("url=")))
        .unwrap_or(DEFAULT_URL)
        .to_owned();
    let outgoing = Request::get(url.as_str()).body(Body::empty())?;
    let (status, text) = match Client::new().send(outgoing).await {
        Ok(response) => (
            StatusCode::OK,
            format!("upstream answered {}\n", response.status()),
        ),
        Err(error) => (
            StatusCode::BAD_GATEWAY,
            format!("outgoing request failed: {error:?}\n"),
        ),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(text.into())?)
}
