//! `wisp run` against hostile clients: a head that never completes, heads too large or with
//! too many fields, more connections than allowed, a thousand idle and half-open sockets at
//! SIGTERM, and forged forwarding headers. Each checks what the hostile client gets, that a
//! well-behaved client keeps being answered, and (with a thousand sockets) that wisp's memory
//! stays bounded.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::sockets::{WAIT, connect, read_until_closed};
use common::{WispRun, client};

/// What a thousand open sockets may add to wisp's resident memory: hyper keeps a small read
/// buffer and a task per connection, a few KiB each.
const RSS_BOUND_FOR_A_THOUSAND_SOCKETS: u64 = 64 * 1024 * 1024;

fn addr(wisp: &WispRun) -> SocketAddr {
    wisp.base
        .strip_prefix("http://")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("{} is not http://HOST:PORT", wisp.base))
}

/// Sends one request with `Connection: close` and returns the whole answer.
fn request_and_close(addr: SocketAddr, extra_headers: &str) -> String {
    let mut stream = connect(addr);
    let head = format!("GET / HTTP/1.1\r\nHost: run\r\nConnection: close\r\n{extra_headers}\r\n");
    // The server may answer and close before it read everything.
    let _ = stream.write_all(head.as_bytes());
    read_until_closed(&mut stream)
}

/// Sends a request on a kept-alive connection and reads one answer's head and `content-length`
/// body.
fn exchange(stream: &mut TcpStream) -> u16 {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: run\r\n\r\n")
        .expect("write");
    read_answer(stream)
}

fn read_answer(stream: &mut TcpStream) -> u16 {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).expect("an answer in time");
        assert!(n > 0, "closed before an answer");
        raw.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if body.len() >= length {
                return head
                    .split(' ')
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .expect("status line");
            }
        }
    }
}

/// `VmRSS` of a process: its resident memory now, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

async fn get_status(url: String) -> u16 {
    client()
        .get(url)
        .send()
        .await
        .expect("answered")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_client_that_sends_g_is_disconnected_while_another_gets_200() {
    let wisp = WispRun::start(wisp_samples::HELLO, &["--header-read-timeout", "1s"]);
    let addr = addr(&wisp);
    let (mut slowloris, mut silent) = tokio::task::spawn_blocking(move || {
        let mut slowloris = connect(addr);
        slowloris.write_all(b"G").expect("write");
        (slowloris, connect(addr))
    })
    .await
    .expect("connect");

    assert_eq!(get_status(wisp.url("/")).await, 200);
    let (slow_got, silent_got) = tokio::task::spawn_blocking(move || {
        (
            read_until_closed(&mut slowloris),
            read_until_closed(&mut silent),
        )
    })
    .await
    .expect("read");
    assert_eq!(slow_got, "", "closed without an answer");
    assert_eq!(silent_got, "");
    assert_eq!(get_status(wisp.url("/")).await, 200, "still serving");
}

#[test]
fn a_head_too_large_or_with_too_many_fields_gets_431() {
    let wisp = WispRun::start(
        wisp_samples::HELLO,
        &["--max-header-bytes", "16Ki", "--max-headers", "20"],
    );
    let addr = addr(&wisp);
    let huge = format!("X-Big: {}\r\n", "a".repeat(32 * 1024));
    let answer = request_and_close(addr, &huge);
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
        "{answer:?}"
    );
    let many: String = (0..40).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
    let answer = request_and_close(addr, &many);
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
        "{answer:?}"
    );
    let few: String = (0..10).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
    let answer = request_and_close(addr, &few);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
}

#[test]
fn beyond_max_connections_a_client_waits_and_is_served_once_one_closes() {
    let wisp = WispRun::start(wisp_samples::HELLO, &["--max-connections", "2"]);
    let addr = addr(&wisp);
    let mut first = connect(addr);
    let mut second = connect(addr);
    assert_eq!(exchange(&mut first), 200);
    assert_eq!(exchange(&mut second), 200);

    let mut third = connect(addr);
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: run\r\n\r\n")
        .expect("write");
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .expect("read timeout");
    let mut byte = [0u8; 1];
    match third.read(&mut byte) {
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the third connection was answered at the limit: {other:?}"),
    }
    assert_eq!(exchange(&mut first), 200, "the open ones keep working");

    drop(second);
    third.set_read_timeout(Some(WAIT)).expect("read timeout");
    assert_eq!(read_answer(&mut third), 200);
}

#[tokio::test]
async fn sigterm_with_a_thousand_idle_and_half_open_sockets_exits_0_and_finishes_in_flight() {
    let mut wisp = WispRun::start(
        wisp_samples::SLEEP,
        &[
            "--grace-period",
            "3s",
            // Long timeouts: only the drain may end these sockets.
            "--header-read-timeout",
            "10m",
            "--idle-timeout",
            "10m",
        ],
    );
    let addr = addr(&wisp);
    assert_eq!(get_status(wisp.url("/?ms=1")).await, 200);
    let before = rss(wisp.pid());
    let sockets = tokio::task::spawn_blocking(move || {
        (0..1000)
            .map(|i| {
                let mut socket = connect(addr);
                match i % 3 {
                    0 => socket.write_all(b"G").expect("write"),
                    1 => socket
                        .write_all(b"GET /?ms=1 HTTP/1.1\r\nHost: run\r\n\r\n")
                        .expect("write"),
                    _ => {}
                }
                socket
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("sockets");
    // Every kept-alive socket has its answer, so the server holds all thousand.
    let mut sockets = tokio::task::spawn_blocking(move || {
        let mut sockets = sockets;
        for socket in sockets.iter_mut().skip(1).step_by(3) {
            assert_eq!(read_answer(socket), 200);
        }
        sockets
    })
    .await
    .expect("answers");
    let grown = rss(wisp.pid()).saturating_sub(before);
    assert!(
        grown < RSS_BOUND_FOR_A_THOUSAND_SOCKETS,
        "a thousand sockets took {} MiB",
        grown >> 20
    );
    eprintln!("a thousand sockets took {} KiB", grown >> 10);

    let in_flight = tokio::spawn(async move {
        let response = client()
            .get(format!(
                "http://{addr}/?ms=1500&note=drain-request-in-the-guest"
            ))
            .send()
            .await
            .expect("answered");
        (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        )
    });
    // SIGTERM once the request is in the guest (it prints the note), not after a guessed delay.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !wisp.logs().contains("drain-request-in-the-guest") {
        assert!(
            Instant::now() < deadline,
            "the request never reached the guest:\n{}",
            wisp.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wisp.terminate();
    let (status, body) = in_flight.await.expect("request task");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("slept_ms"), "{body}");
    let exit = tokio::task::spawn_blocking(move || {
        let exit = wisp.wait_exit();
        (exit, wisp.logs())
    })
    .await
    .expect("exit");
    assert!(exit.0.success(), "{:?}\n{}", exit.0, exit.1);
    // The sockets were closed by the server, not left hanging.
    tokio::task::spawn_blocking(move || {
        for socket in sockets.iter_mut().step_by(101) {
            read_until_closed(socket);
        }
    })
    .await
    .expect("closed");
}

/// The echo sample's `echo-header-NAME` answers, all values of one header.
async fn echoed(url: &str, name: &str) -> String {
    let response = client()
        .get(url)
        .header("x-forwarded-for", "1.2.3.4")
        .header("forwarded", "for=1.2.3.4;proto=https")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "bank.example")
        .header("x-real-ip", "1.2.3.4")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    response
        .headers()
        .get_all(format!("echo-header-{name}"))
        .iter()
        .map(|value| value.to_str().unwrap_or("?").to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test]
async fn forged_forwarding_headers_are_replaced_unless_the_peer_is_a_trusted_proxy() {
    let untrusting = WispRun::start(wisp_samples::ECHO, &[]);
    let url = untrusting.url("/");
    assert_eq!(echoed(&url, "x-forwarded-for").await, "127.0.0.1");
    let forwarded = echoed(&url, "forwarded").await;
    assert!(
        forwarded.starts_with("for=\"127.0.0.1:") && !forwarded.contains("1.2.3.4"),
        "{forwarded}"
    );
    assert_eq!(echoed(&url, "x-forwarded-proto").await, "http");
    assert_eq!(
        echoed(&url, "x-forwarded-host").await,
        addr(&untrusting).to_string()
    );
    assert_eq!(echoed(&url, "x-real-ip").await, "");

    let trusting = WispRun::start(wisp_samples::ECHO, &["--trusted-proxy", "127.0.0.1/32"]);
    let url = trusting.url("/");
    assert_eq!(echoed(&url, "x-forwarded-for").await, "1.2.3.4, 127.0.0.1");
    let forwarded = echoed(&url, "forwarded").await;
    assert!(
        forwarded.starts_with("for=1.2.3.4;proto=https | for=\"127.0.0.1:"),
        "{forwarded}"
    );
    assert_eq!(echoed(&url, "x-forwarded-proto").await, "https");
    assert_eq!(echoed(&url, "x-forwarded-host").await, "bank.example");
    assert_eq!(echoed(&url, "x-real-ip").await, "1.2.3.4");
}
