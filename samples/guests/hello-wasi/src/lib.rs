//! The same hello, written against the plain `wasi` crate (no wstd): toolchain independence.

use std::io::Write as _;

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[("content-type".to_string(), b"text/plain".to_vec())])
            .expect("valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body taken once");
        ResponseOutparam::set(response_out, Ok(response));

        let mut out = body.write().expect("stream taken once");
        out.write_all(b"Hello from wisp!\n").expect("write body");
        out.flush().expect("flush body");
        drop(out);
        OutgoingBody::finish(body, None).expect("finish body");
    }
}

wasi::http::proxy::export!(Hello);
