//! Paths of the sample guest components, for tests and benchmarks.
//!
//! `build.rs` builds the Rust guests in `samples/guests/` for `wasm32-wasip2` (installing the
//! target with rustup when missing) into `<target dir>/wasm-samples`, and this crate exposes the
//! absolute path of each built component, so tests never hard-code target directories. Every
//! sample is a `wasi:http/proxy` component exporting `wasi:http/incoming-handler`:
//!
//! | sample | behaviour |
//! | --- | --- |
//! | [`HELLO`] | any request: 200, `content-type: text/plain`, body `Hello from wisp!\n` (wstd) |
//! | [`HELLO_WASI`] | the same response, written against the plain `wasi` crate (no wstd, smaller) |
//! | [`ECHO`] | 200; headers `echo-method`, `echo-path` (path and query), `echo-header-<name>` for each request header; the request body streamed back |
//! | [`SLEEP`] | `?ms=N` (default 100, capped at 600000): async sleep, then 200 `{"slept_ms":N,"start_unix_ns":S,"end_unix_ns":E}` |
//! | [`CPU`] | `?n=N` (default 1000000): N rounds of busy work, then 200 `n=N result=R\n` |
//! | [`TRAP`] | panics (`trap sample: deliberate panic`): a wasm trap; `?kind=overflow`: unbounded recursion, a stack-overflow trap |
//! | [`SPIN`] | loops forever, never responds |
//! | [`HOG`] | allocates and touches 1 MiB chunks; `?mb=N`: 200 `allocated N MiB\n` after N MiB; otherwise (or when allocation fails first) panics `hog: allocation failed after K MiB` |
//! | [`ENV`] | 200, `text/plain`, the environment as sorted `KEY=VALUE\n` lines |
//! | [`FETCH`] | tries an outgoing GET to `?url=` (default `http://127.0.0.1:9/`): 200 `upstream answered S`, or 502 `outgoing request failed: E` |
//! | [`FLOOD`] | hostile: makes the host hold memory, keeping every handle — `?what=headers` (100 KiB header fields), `bodies` (unread outgoing bodies), `resources` (pollables) loop until stopped; `what=logs&kib=N`: N KiB of stdout, then 200 `logged N KiB`; `what=trap`, `spin`, `hog`: the three classic faults from one component |
//! | [`COUNTER`] | 200 `N\n`, the requests its instance has served (always `1` with a fresh instance per request); `?keep_kib=N` keeps N KiB for the instance's life; `?trap=1` traps after counting |
//! | [`P3_COUNTER`] | WASIp3 (spin-sdk 7): the same as `counter`, counted on arrival; `?ms=N` first waits N ms on an async timer, so requests overlap on one instance |
//!
//! A malformed query value (`?ms=x`, `?n=x`, `?mb=x`) gets a 400 with a one-line reason.

use std::path::Path;

/// `hello` (wstd): 200 `Hello from wisp!\n`.
pub const HELLO: &str = env!("WISP_SAMPLE_HELLO");
/// `hello-wasi` (plain `wasi` crate): 200 `Hello from wisp!\n`.
pub const HELLO_WASI: &str = env!("WISP_SAMPLE_HELLO_WASI");
/// `echo`: method, path and headers as `echo-*` headers; the body streamed back.
pub const ECHO: &str = env!("WISP_SAMPLE_ECHO");
/// `sleep`: `?ms=N`, async sleep, JSON with the interval slept.
pub const SLEEP: &str = env!("WISP_SAMPLE_SLEEP");
/// `cpu`: `?n=N` rounds of busy work.
pub const CPU: &str = env!("WISP_SAMPLE_CPU");
/// `trap`: panics, a wasm trap.
pub const TRAP: &str = env!("WISP_SAMPLE_TRAP");
/// `spin`: an infinite loop, never responds.
pub const SPIN: &str = env!("WISP_SAMPLE_SPIN");
/// `hog`: grows memory 1 MiB at a time (`?mb=N` to stop) until allocation fails.
pub const HOG: &str = env!("WISP_SAMPLE_HOG");
/// `env`: the environment, sorted `KEY=VALUE` lines.
pub const ENV: &str = env!("WISP_SAMPLE_ENV");
/// `fetch`: tries an outgoing request to `?url=`; 502 with the guest-visible error when denied.
pub const FETCH: &str = env!("WISP_SAMPLE_FETCH");
/// `flood`: hostile, makes the host hold header fields, bodies or resources until stopped, or
/// traps, spins or hogs memory (`?what=trap|spin|hog`).
pub const FLOOD: &str = env!("WISP_SAMPLE_FLOOD");
/// `counter`: the requests its instance has served, to show what instance reuse keeps.
pub const COUNTER: &str = env!("WISP_SAMPLE_COUNTER");
/// `p3-counter`: WASIp3 (spin-sdk 7), `counter` with `?ms=N` to overlap requests on an instance.
pub const P3_COUNTER: &str = env!("WISP_SAMPLE_P3_COUNTER");

/// Every sample as (name, absolute path of the component).
pub const ALL: &[(&str, &str)] = &[
    ("hello", HELLO),
    ("hello-wasi", HELLO_WASI),
    ("echo", ECHO),
    ("sleep", SLEEP),
    ("cpu", CPU),
    ("trap", TRAP),
    ("spin", SPIN),
    ("hog", HOG),
    ("env", ENV),
    ("fetch", FETCH),
    ("flood", FLOOD),
    ("counter", COUNTER),
    ("p3-counter", P3_COUNTER),
];

/// The directory every built sample is in: what a `wisp up` or `wisp node` under test allows
/// with `--allow-path`.
pub fn dir() -> &'static Path {
    Path::new(HELLO).parent().unwrap_or(Path::new("/"))
}

/// The path of the sample called `name` (as in [`ALL`], e.g. `"hello-wasi"`), if there is one.
pub fn path(name: &str) -> Option<&'static Path> {
    ALL.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| Path::new(*p))
}
