//! Paths of the sample guest components, for tests and benchmarks.
//!
//! `build.rs` builds the Rust guests in `samples/guests/` for `wasm32-wasip2` (installing the
//! target with rustup when missing), and the Python and JavaScript guests in `samples/python/` and
//! `samples/js/` with componentize-py and componentize-js (installed pinned, once per machine,
//! under `~/.cache/wisp/toolchains`), all into one directory under `<target dir>/wasm-samples`;
//! this crate exposes the absolute path of each built component, so tests never hard-code target
//! directories. Every sample is a `wasi:http/proxy` component exporting
//! `wasi:http/incoming-handler@0.2.x`, except [`P3_COUNTER`], [`P3_HELLO`] and [`P3_ECHO`], which
//! export the WASIp3 `wasi:http/handler@0.3.0` (see [`WASIP3`]):
//!
//! | sample | behaviour |
//! | --- | --- |
//! | [`HELLO`] | any request: 200, `content-type: text/plain`, body `Hello from wisp!\n` (wstd) |
//! | [`HELLO_WASI`] | the same response, written against the plain `wasi` crate (no wstd, smaller) |
//! | [`ECHO`] | 200; headers `echo-method`, `echo-path` (path and query), `echo-header-<name>` for each request header; the request body streamed back |
//! | [`SLEEP`] | `?ms=N` (default 100, capped at 600000): async sleep, then 200 `{"slept_ms":N,"start_unix_ns":S,"end_unix_ns":E}`; `?note=TEXT` first prints TEXT on stdout (the request reached the guest) |
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
//! The same two guests from every toolchain, so one test table covers them all:
//!
//! | sample | toolchain | world |
//! | --- | --- | --- |
//! | [`HELLO`], [`WSTD_ECHO`] | Rust, wstd 0.6.8 | `wasi:http/proxy`, `incoming-handler@0.2.12` |
//! | [`HELLO_WASI`], [`WASI_ECHO`] | Rust, plain `wasi` 0.14.7 | `wasi:http/proxy`, `incoming-handler@0.2.12` |
//! | [`PY_HELLO`], [`PY_ECHO`] | Python, componentize-py 0.25.1 | `wasi:http/proxy@0.2.0` |
//! | [`JS_HELLO`], [`JS_ECHO`] | JavaScript, componentize-js 0.22.0 (StarlingMonkey `fetch` event) | `wasi:http/proxy@0.2.10` |
//! | [`JS_HELLO_HANDLER`] | JavaScript, componentize-js 0.22.0 (exports `incoming-handler` itself: reusable) | `wasi:http/proxy@0.2.10` |
//! | [`P3_HELLO`], [`P3_ECHO`] | Rust, spin-sdk 7.0.0 | WASIp3, `wasi:http/handler@0.3.0` |
//!
//! A hello answers any request with 200, `content-type: text/plain`, body `Hello from wisp!\n`.
//! An echo answers 200 `text/plain`: with `?env=NAME`, the value of environment variable NAME
//! (404 `NAME is not set\n` when unset); otherwise the request body, byte for byte. [`P3_ECHO`]
//! also takes `?ms=N` (at most 600000): it first waits N ms on an async timer.
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

/// `wstd-echo` (wstd): the echo contract (`?env=NAME`, else the body echoed).
pub const WSTD_ECHO: &str = env!("WISP_SAMPLE_WSTD_ECHO");
/// `wasi-echo` (plain `wasi` crate): the echo contract.
pub const WASI_ECHO: &str = env!("WISP_SAMPLE_WASI_ECHO");
/// `py-hello` (componentize-py): 200 `Hello from wisp!\n`; about 18 MB.
pub const PY_HELLO: &str = env!("WISP_SAMPLE_PY_HELLO");
/// `py-echo` (componentize-py): the echo contract.
pub const PY_ECHO: &str = env!("WISP_SAMPLE_PY_ECHO");
/// `js-hello` (componentize-js): 200 `Hello from wisp!\n`; about 14 MB.
pub const JS_HELLO: &str = env!("WISP_SAMPLE_JS_HELLO");
/// `js-echo` (componentize-js): the echo contract.
pub const JS_ECHO: &str = env!("WISP_SAMPLE_JS_ECHO");
/// `js-hello-handler` (componentize-js): `js-hello` written against `wasi:http/incoming-handler`
/// instead of the `fetch` event, so that one instance can serve many requests (instance reuse).
pub const JS_HELLO_HANDLER: &str = env!("WISP_SAMPLE_JS_HELLO_HANDLER");
/// `p3-hello` (spin-sdk 7, WASIp3 `wasi:http/handler@0.3.0`): 200 `Hello from wisp!\n`.
pub const P3_HELLO: &str = env!("WISP_SAMPLE_P3_HELLO");
/// `p3-echo` (spin-sdk 7, WASIp3): the echo contract, plus `?ms=N` to wait on an async timer first.
pub const P3_ECHO: &str = env!("WISP_SAMPLE_P3_ECHO");

/// The samples that are WASIp3 components (`wasi:http/handler@0.3.0`); every other one is WASIp2.
pub const WASIP3: &[&str] = &["p3-counter", "p3-hello", "p3-echo"];

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
    ("wstd-echo", WSTD_ECHO),
    ("wasi-echo", WASI_ECHO),
    ("py-hello", PY_HELLO),
    ("py-echo", PY_ECHO),
    ("js-hello", JS_HELLO),
    ("js-echo", JS_ECHO),
    ("js-hello-handler", JS_HELLO_HANDLER),
    ("p3-hello", P3_HELLO),
    ("p3-echo", P3_ECHO),
];

/// The WASIp2 samples: [`ALL`] less [`WASIP3`].
pub fn wasip2() -> impl Iterator<Item = (&'static str, &'static str)> {
    ALL.iter()
        .copied()
        .filter(|(name, _)| !WASIP3.contains(name))
}

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
