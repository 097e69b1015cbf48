//! A hostile guest that makes the host hold memory for it rather than using its own linear
//! memory. `?what=` picks the attack; each keeps every handle it makes, so nothing is freed:
//!
//! - `headers`: header fields of 100 KiB each, one `fields` resource after another;
//! - `bodies`: outgoing responses whose bodies are written and never read;
//! - `resources`: clock pollables, until the resource table is full;
//! - `logs` (`&kib=N`, default 4096): N KiB of stdout, in 1 KiB lines, then 200 `logged N KiB`.
//!
//! And the three classic faults, so that one Service can take every kind of hostile request (the
//! soak scenario's hostile Service does):
//!
//! - `trap`: a panic (a wasm `unreachable`);
//! - `spin`: a loop that never yields, until the request's timeout;
//! - `hog`: linear memory grown 1 MiB at a time, every page written, until the limit stops it.
//!
//! All but `logs` loop until the host stops them; if it never does they would run forever.

use std::io::Write as _;

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const FIELD_VALUE: usize = 100 * 1024;

struct Flood;

impl wasi::exports::http::incoming_handler::Guest for Flood {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let query = request
            .path_with_query()
            .and_then(|p| p.split_once('?').map(|(_, q)| q.to_owned()))
            .unwrap_or_default();
        match query_param(&query, "what").unwrap_or("headers") {
            "headers" => headers(),
            "bodies" => bodies(),
            "resources" => resources(),
            "trap" => panic!("flood: a deliberate trap"),
            "spin" => spin(),
            "hog" => hog(),
            "logs" => {
                let kib = query_param(&query, "kib")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(4096usize);
                let line = format!("{}\n", "x".repeat(1023));
                let mut stdout = std::io::stdout();
                for _ in 0..kib {
                    let _ = stdout.write_all(line.as_bytes());
                }
                let _ = stdout.flush();
                respond(response_out, 200, &format!("logged {kib} KiB\n"));
            }
            other => respond(response_out, 400, &format!("unknown what={other}\n")),
        }
    }
}

fn headers() {
    let value = vec![b'h'; FIELD_VALUE];
    let mut kept = Vec::new();
    loop {
        let fields = Fields::new();
        if fields.append("x-flood", &value).is_err() {
            panic!("flood: the host refused a header after {} fields", kept.len());
        }
        kept.push(fields);
    }
}

fn bodies() {
    let chunk = vec![b'b'; 64 * 1024];
    let mut kept = Vec::new();
    loop {
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("a new response's body");
        let stream = body.write().expect("a new body's stream");
        // Write what the host lets us without blocking, and keep it buffered.
        while let Ok(permit) = stream.check_write() {
            if permit == 0 {
                break;
            }
            let n = (permit as usize).min(chunk.len());
            if stream.write(&chunk[..n]).is_err() {
                break;
            }
        }
        kept.push((response, body, stream));
    }
}

fn resources() {
    let mut kept = Vec::new();
    loop {
        kept.push(wasi::clocks::monotonic_clock::subscribe_duration(1_000_000_000));
    }
}

fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn hog() -> ! {
    const MIB: usize = 1 << 20;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        // `vec!` aborts when the allocator fails: the trap the host contains.
        kept.push(vec![0xa5; MIB]);
        std::hint::black_box(&kept);
    }
}

fn respond(out: ResponseOutparam, status: u16, text: &str) {
    let headers = Fields::from_list(&[("content-type".to_string(), b"text/plain".to_vec())])
        .expect("valid header");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let body = response.body().expect("body taken once");
    ResponseOutparam::set(out, Ok(response));
    let mut stream = body.write().expect("stream taken once");
    let _ = stream.write_all(text.as_bytes());
    let _ = stream.flush();
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

wasi::http::proxy::export!(Flood);
