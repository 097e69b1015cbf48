//! End to end: each sample behaves as documented when served by the reference host,
//! `wasmtime serve -S cli` (found via `$WASMTIME` or PATH). Without a wasmtime CLI the test
//! fails naming the install command (`scripts/test-deps`, run by the README's test command,
//! installs it), so no run passes without having served the samples.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The wasmtime release the samples are checked against (the one wisp embeds).
const INSTALL: &str = "cargo install --locked wasmtime-cli@48.0.8";

/// Where the wasmtime CLI is, or why there is none.
fn find_wasmtime() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("WASMTIME").map(PathBuf::from) {
        return if path.is_file() {
            Ok(path)
        } else {
            // Asked for explicitly: a wrong path is an error, not a search of PATH.
            panic!("$WASMTIME is {} but there is no file there", path.display())
        };
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("wasmtime"))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            format!("no wasmtime CLI on PATH or in $WASMTIME; install it with `{INSTALL}`")
        })
}

/// The wasmtime CLI; its absence fails the test with the command that installs it.
fn wasmtime() -> PathBuf {
    find_wasmtime().unwrap_or_else(|why| panic!("{why} (scripts/test-deps installs it)"))
}

/// A `wasmtime serve` process on an ephemeral loopback port, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(wasmtime: &PathBuf, component: &str, flags: &[&str]) -> Server {
        let mut child = Command::new(wasmtime)
            .args(["serve", "-S", "cli", "--addr", "127.0.0.1:0"])
            .args(flags)
            .arg(component)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wasmtime serve");
        // `Serving HTTP on http://127.0.0.1:PORT/` on stderr; keep draining it afterwards.
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("http://").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('/').to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("wasmtime serve did not print its address")
            .parse()
            .expect("address");
        Server { child, addr }
    }

    fn get(&self, target: &str) -> Reply {
        self.request("GET", target, &[], b"")
    }

    /// One HTTP/1.1 request with `connection: close`; the whole reply, de-chunked.
    fn request(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        // Write from another thread while this one reads: a streaming echo answers before the
        // whole request is sent, and neither side may block on a full socket buffer.
        let mut writer = stream.try_clone().unwrap();
        let request = [head.as_bytes(), body].concat();
        let sender = std::thread::spawn(move || writer.write_all(&request));
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read reply");
        // A host may answer (e.g. an error) and close before reading the whole request: the reply
        // is what the test checks.
        let _ = sender.join();
        Reply::parse(&raw)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn parse(raw: &[u8]) -> Reply {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..end]);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[end + 4..].to_vec();
        if headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v == "chunked")
        {
            body = dechunk(&body);
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_field = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_field.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

/// A number field of the sleep sample's one-line JSON.
fn json_u128(json: &str, key: &str) -> u128 {
    let rest = json.split(&format!("\"{key}\":")).nth(1).unwrap();
    rest.split([',', '}']).next().unwrap().parse().unwrap()
}

#[test]
fn samples_behave_under_wasmtime_serve() {
    let wasmtime = wasmtime();

    for component in [wisp_samples::HELLO, wisp_samples::HELLO_WASI] {
        let server = Server::start(&wasmtime, component, &[]);
        let reply = server.get("/anything?x=1");
        assert_eq!(reply.status, 200, "{component}");
        assert_eq!(reply.header("content-type"), Some("text/plain"));
        assert_eq!(reply.text(), "Hello from wisp!\n");
    }

    let echo = Server::start(&wasmtime, wisp_samples::ECHO, &[]);
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let reply = echo.request("POST", "/a/b?c=d&e", &[("x-Test", "one")], &body);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("echo-method"), Some("POST"));
    assert_eq!(reply.header("echo-path"), Some("/a/b?c=d&e"));
    assert_eq!(reply.header("echo-header-x-test"), Some("one"));
    assert_eq!(reply.header("echo-header-content-length"), Some("3000000"));
    assert!(reply.body == body, "echoed body differs");

    let sleep = Server::start(&wasmtime, wisp_samples::SLEEP, &[]);
    let started = Instant::now();
    let reply = sleep.get("/?ms=300");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.status, 200);
    let json = reply.text();
    assert_eq!(json_u128(&json, "slept_ms"), 300, "{json}");
    let slept = json_u128(&json, "end_unix_ns") - json_u128(&json, "start_unix_ns");
    assert!(slept >= 300_000_000, "{json}");
    assert_eq!(json_u128(&sleep.get("/").text(), "slept_ms"), 100);
    assert_eq!(sleep.get("/?ms=x").status, 400);

    let cpu = Server::start(&wasmtime, wisp_samples::CPU, &[]);
    let reply = cpu.get("/?n=1000");
    assert_eq!(reply.status, 200);
    assert!(
        reply.text().starts_with("n=1000 result="),
        "{}",
        reply.text()
    );
    assert!(cpu.get("/").text().starts_with("n=1000000 result="));
    assert_eq!(cpu.get("/?n=1000").text(), reply.text(), "deterministic");
    assert_eq!(cpu.get("/?n=x").status, 400);

    // A trap, a deadline and an allocation failure are all server errors (the exact status is the
    // host's choice).
    let trap = Server::start(&wasmtime, wisp_samples::TRAP, &[]);
    assert!(trap.get("/").status >= 500);

    let spin = Server::start(&wasmtime, wisp_samples::SPIN, &["-W", "timeout=1s"]);
    let started = Instant::now();
    assert!(spin.get("/").status >= 500);
    assert!(started.elapsed() >= Duration::from_secs(1));

    let hog = Server::start(
        &wasmtime,
        wisp_samples::HOG,
        &["-W", "max-memory-size=67108864"],
    );
    let reply = hog.get("/?mb=16");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "allocated 16 MiB\n")
    );
    assert!(hog.get("/?mb=100").status >= 500, "64 MiB limit");
    assert!(hog.get("/").status >= 500);
    assert_eq!(hog.get("/?mb=x").status, 400);

    let env = Server::start(
        &wasmtime,
        wisp_samples::ENV,
        &["--env", "B_VAR=2", "--env", "A_VAR=1"],
    );
    let reply = env.get("/");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/plain"));
    let text = reply.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        text.ends_with('\n') && lines.starts_with(&["A_VAR=1", "B_VAR=2"]),
        "{text}"
    );
    let keys: Vec<&str> = lines.iter().map(|l| l.split('=').next().unwrap()).collect();
    assert!(keys.is_sorted(), "{text}");
}
