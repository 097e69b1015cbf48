//! Echoes the request: method, path and headers as `echo-*` response headers, the body streamed back.

use wstd::http::{Body, Error, HeaderName, Request, Response};

#[wstd::http_server]
async fn main(req: Request<Body>) -> Result<Response<Body>, Error> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut response = Response::builder()
        .header("echo-method", parts.method.as_str())
        .header("echo-path", path);
    for (name, value) in &parts.headers {
        let echoed = HeaderName::try_from(format!("echo-header-{name}"))?;
        response = response.header(echoed, value);
    }
    // Handing the incoming body over as the response body streams it: wstd splices the request's
    // input stream into the response's output stream chunk by chunk (each chunk bounded by the
    // host's write budget), so the guest never holds the whole body in its memory.
    Ok(response.body(body)?)
}
