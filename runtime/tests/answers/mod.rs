//! One request to a replica and what came back: its status, its body as text, and whether a
//! fresh or a reused instance served it (`Server-Timing`'s `instance;desc=`).

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use wisp_runtime::Replica;

pub struct Answer {
    pub status: StatusCode,
    pub body: String,
    pub instance: String,
}

pub async fn call(replica: &Replica, path: &str) -> Answer {
    let request = Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = replica.handle(request, "test".into()).await;
    let status = response.status();
    let timing = response
        .headers()
        .get("server-timing")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let instance = timing
        .split(", ")
        .find_map(|metric| metric.strip_prefix("instance;desc="))
        .unwrap_or("(none)")
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        instance,
    }
}
