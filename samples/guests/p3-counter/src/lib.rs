//! The `counter` sample for WASIp3 (spin-sdk 7): counts the requests its instance has taken, to
//! show what reuse carries between requests and how many one instance holds at once.
//!
//! Answers 200 `N\n`, N counted when the request arrives. `?ms=N` first waits N ms (at most
//! 600000) on an async timer, so requests overlap on one instance; `?keep_kib=N` keeps N KiB for
//! the instance's life; `?trap=1` traps after counting.

use core::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use spin_sdk::http::{IntoResponse, Request, StatusCode};
use spin_sdk::http_service;

const MAX_MS: u64 = 600_000;

static TAKEN: AtomicU64 = AtomicU64::new(0);
static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[http_service]
async fn count(request: Request) -> impl IntoResponse {
    let taken = TAKEN.fetch_add(1, Ordering::Relaxed) + 1;
    let query = request.uri().query().unwrap_or("");
    let param = |wanted: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(wanted)?.strip_prefix('='))
    };
    let number = |name: &str| match param(name) {
        None => Ok(0),
        Some(text) => text
            .parse::<u64>()
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("{name}: {e}\n"))),
    };
    let (ms, kib) = match (number("ms"), number("keep_kib")) {
        (Ok(ms), Ok(kib)) => (ms, kib),
        (Err(bad), _) | (_, Err(bad)) => return bad,
    };
    if ms > 0 {
        spin_sdk::time::sleep(Duration::from_millis(ms.min(MAX_MS))).await;
    }
    if kib > 0 {
        let chunk = vec![0x5a_u8; (kib as usize).saturating_mul(1024)];
        if let Ok(mut kept) = KEPT.lock() {
            kept.push(black_box(chunk));
        }
    }
    if param("trap") == Some("1") {
        panic!("p3-counter: deliberate trap after {taken} requests");
    }
    (StatusCode::OK, format!("{taken}\n"))
}
