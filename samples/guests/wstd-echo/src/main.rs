//! The echo contract with wstd: any request gets 200 `text/plain`; `?env=NAME` answers the value
//! of environment variable NAME (404 `NAME is not set\n` when unset); otherwise the request body
//! is streamed back byte for byte.

use wstd::http::{Body, Error, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(req: Request<Body>) -> Result<Response<Body>, Error> {
    let env_name = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(key, _)| key == "env")
        .map(|(_, name)| name.into_owned());
    let (status, body) = match env_name {
        Some(name) => match std::env::var_os(&name) {
            Some(value) => (StatusCode::OK, value.into_encoded_bytes().into()),
            None => (
                StatusCode::NOT_FOUND,
                format!("{name} is not set\n").into(),
            ),
        },
        // Handing the incoming body over as the response body streams it back chunk by chunk.
        None => (StatusCode::OK, req.into_body()),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)?)
}
