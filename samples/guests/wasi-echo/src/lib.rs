//! The echo contract written against the plain `wasi` crate (no wstd): any request gets 200
//! `text/plain`; `?env=NAME` answers the value of environment variable NAME (404
//! `NAME is not set\n` when unset); otherwise the request body is streamed back byte for byte.

use std::io::{self, Write as _};

use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Echo;

impl wasi::exports::http::incoming_handler::Guest for Echo {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let query = path.split_once('?').map_or("", |(_, query)| query);
        let env_name = form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "env")
            .map(|(_, name)| name.into_owned());
        let outcome = match env_name {
            Some(name) => match std::env::var_os(&name) {
                Some(value) => respond(response_out, 200, value.as_encoded_bytes()),
                None => respond(response_out, 404, format!("{name} is not set\n").as_bytes()),
            },
            None => echo_body(request, response_out),
        };
        // Once the response is sent, a failed body can only be cut short: trap so the host ends
        // the response with an error instead of a body that looks complete.
        if let Err(e) = outcome {
            panic!("wasi-echo: {e}");
        }
    }
}

fn text_response(status: u16) -> OutgoingResponse {
    let headers = Fields::from_list(&[("content-type".to_string(), b"text/plain".to_vec())])
        .expect("content-type is a valid header");
    let response = OutgoingResponse::new(headers);
    response
        .set_status_code(status)
        .expect("status codes used here are valid");
    response
}

fn respond(response_out: ResponseOutparam, status: u16, content: &[u8]) -> io::Result<()> {
    let response = text_response(status);
    let body = response.body().expect("a new response's body is taken once");
    ResponseOutparam::set(response_out, Ok(response));
    let mut out = body.write().expect("a new body's stream is taken once");
    out.write_all(content)?;
    io::Write::flush(&mut out)?;
    drop(out); // the stream is a child of the body: dropped before the body is finished
    OutgoingBody::finish(body, None).map_err(io::Error::other)
}

fn echo_body(request: IncomingRequest, response_out: ResponseOutparam) -> io::Result<()> {
    let incoming = request
        .consume()
        .expect("the request's body is consumed once");
    let response = text_response(200);
    let body = response.body().expect("a new response's body is taken once");
    ResponseOutparam::set(response_out, Ok(response));
    let mut input = incoming
        .stream()
        .expect("the request body's stream is taken once");
    let mut out = body.write().expect("a new body's stream is taken once");
    io::copy(&mut input, &mut out)?;
    io::Write::flush(&mut out)?;
    drop((input, out));
    IncomingBody::finish(incoming);
    OutgoingBody::finish(body, None).map_err(io::Error::other)
}

wasi::http::proxy::export!(Echo);
