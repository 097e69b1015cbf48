//! A WASIp3 hello with spin-sdk 7: exports `wasi:http/handler@0.3.0`; any request gets 200
//! `text/plain` `Hello from wisp!\n`.

use spin_sdk::http::{IntoResponse, Request, Response, StatusCode};
use spin_sdk::http_service;

#[http_service]
async fn hello(_request: Request) -> impl IntoResponse {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain")
        .body("Hello from wisp!\n".to_string())
}
