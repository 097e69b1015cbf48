//! The WASIp3 samples (spin-sdk 7) served by wasmtime's own WASIp3 HTTP host, linked as
//! `wasmtime serve` links it (all of WASI p2 and p3, and p3 `wasi:http`): the hello and echo
//! contract every toolchain's guests share, and one instance serving a request while another is
//! still suspended in it. This checks the guests against the reference host, apart from wisp;
//! `wisp/tests/up_toolchains.rs` serves them through `wisp up`.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p3::Request;
use wasmtime_wasi_http::p3::bindings::Service;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView, default_hooks};

const GREETING: &str = "héllo from the environment — ✓";

struct Host {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// What a request got: status, `content-type`, body.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

fn text(status: u16, body: impl Into<Vec<u8>>) -> Answer {
    Answer {
        status,
        content_type: "text/plain".into(),
        body: body.into(),
    }
}

fn request(method: &str, path: &str, body: Vec<u8>) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(format!("http://localhost{path}"))
        .body(Full::new(Bytes::from(body)))
        .expect("valid request")
}

/// One instance of the sample at `path`, its environment holding `GREETING`.
async fn instantiate(path: &str) -> (Store<Host>, Service) {
    let mut config = Config::new();
    config.wasm_component_model_async(true);
    let engine = Engine::new(&config).expect("engine");
    let component = Component::from_file(&engine, path).expect("a valid component");
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("link WASI p2");
    wasmtime_wasi::p3::add_to_linker(&mut linker).expect("link WASI p3");
    wasmtime_wasi_http::p3::add_to_linker(&mut linker).expect("link wasi:http p3");
    let wasi = WasiCtx::builder().env("GREETING", GREETING).build();
    let mut store = Store::new(
        &engine,
        Host {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
        },
    );
    let service = Service::instantiate_async(&mut store, &component, &linker)
        .await
        .expect("instantiates as a wasi:http/handler@0.3.0 service");
    (store, service)
}

/// Sends each request to one fresh instance of `path`, one after the other.
async fn serve(path: &str, requests: Vec<http::Request<Full<Bytes>>>) -> Vec<Answer> {
    let mut answers = Vec::new();
    for req in requests {
        let (mut store, service) = instantiate(path).await;
        let (req, io) = Request::from_http(default_hooks(), req);
        let answer = store
            .run_concurrent(async |store| {
                let response = service
                    .handle(store, req)
                    .await
                    .expect("no trap")
                    .expect("a response, not an error code");
                let response = store
                    .with(|store| response.into_http(store, async { Ok(()) }))
                    .expect("a valid response");
                let (parts, body) = response.into_parts();
                let body = body.collect().await.expect("whole body").to_bytes();
                io.await.expect("request body delivered");
                Answer {
                    status: parts.status.as_u16(),
                    content_type: parts
                        .headers
                        .get("content-type")
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .unwrap_or_default(),
                    body: body.to_vec(),
                }
            })
            .await
            .expect("the event loop ends cleanly");
        answers.push(answer);
    }
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_hello_says_hello_to_any_request() {
    let answers = serve(
        wisp_samples::P3_HELLO,
        vec![
            request("GET", "/", Vec::new()),
            request("POST", "/any/path?x=1", b"ignored".to_vec()),
        ],
    )
    .await;
    assert_eq!(
        answers,
        [
            text(200, "Hello from wisp!\n"),
            text(200, "Hello from wisp!\n")
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn p3_echo_answers_the_environment_and_echoes_bodies_exactly() {
    let large: Vec<u8> = (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let non_ascii = "ünïcödé, 中文, emoji 🦀 — and a NUL \0 byte\n"
        .as_bytes()
        .to_vec();
    let answers = serve(
        wisp_samples::P3_ECHO,
        vec![
            request("GET", "/?env=GREETING", Vec::new()),
            request("GET", "/?env=WISP_NO_SUCH_VARIABLE", Vec::new()),
            request("POST", "/", non_ascii.clone()),
            request("POST", "/?other=1", large.clone()),
            request("POST", "/", Vec::new()),
            request("GET", "/?ms=1&env=GREETING", Vec::new()),
            request("GET", "/?ms=soon", Vec::new()),
        ],
    )
    .await;
    assert_eq!(
        answers,
        [
            text(200, GREETING),
            text(404, "WISP_NO_SUCH_VARIABLE is not set\n"),
            text(200, non_ascii),
            text(200, large),
            text(200, Vec::new()),
            text(200, GREETING),
            text(400, "ms: invalid digit found in string\n"),
        ]
    );
}

/// `?ms=N` suspends a request on an async timer, not the instance: while one request sleeps
/// (for ten minutes, far beyond this test), the same instance answers another.
#[tokio::test(flavor = "multi_thread")]
async fn one_p3_echo_instance_answers_while_another_request_sleeps_in_it() {
    let (mut store, service) = instantiate(wisp_samples::P3_ECHO).await;
    let hooks = default_hooks();
    let (sleeper, _) = Request::from_http(&mut *hooks, request("GET", "/?ms=600000", Vec::new()));
    let (quick, quick_io) =
        Request::from_http(&mut *hooks, request("POST", "/", b"quick".to_vec()));
    let body = store
        .run_concurrent(async |store| {
            let sleeping = service.handle(store, sleeper);
            let answering = async {
                let response = service
                    .handle(store, quick)
                    .await
                    .expect("no trap")
                    .expect("a response");
                let response = store
                    .with(|store| response.into_http(store, async { Ok(()) }))
                    .expect("a valid response");
                let body = response.into_body().collect().await.expect("whole body");
                quick_io.await.expect("request body delivered");
                body.to_bytes()
            };
            tokio::select! {
                body = answering => body,
                _ = sleeping => panic!("the ten-minute request finished first"),
            }
        })
        .await
        .expect("the event loop ends cleanly");
    assert_eq!(body.as_ref(), b"quick");
}
