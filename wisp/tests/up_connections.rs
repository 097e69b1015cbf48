//! `wisp up`'s node takes the connection flags: a client that sends `G` is cut off on the
//! gateway and the metrics port while a Service keeps answering, a trusted proxy's forwarding
//! headers are kept, and SIGTERM with hundreds of idle sockets and a request whose body never
//! ends exits 0 once the grace period is over.

mod cluster;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cluster::{Up, WAIT, image, ksvc};
use common::sockets::{connect, read_until_closed};

/// Reads one answer's head (up to the blank line) on a kept-alive connection; its status.
fn read_head(stream: &mut TcpStream) -> u16 {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("an answer in time");
        assert!(n > 0, "closed before an answer");
        raw.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&raw);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line")
}

#[test]
fn the_node_gateway_takes_the_connection_flags() {
    let mut up = Up::start(&[
        "--header-read-timeout",
        "1s",
        "--grace-period",
        "2s",
        "--drain-delay",
        "0s",
        "--trusted-proxy",
        "127.0.0.1/32",
    ]);
    up.apply(&ksvc("echo", &image("echo")));
    up.wait_ready("ksvc", "echo");
    let host = up.host("echo");

    let mut gateway_g = connect(up.gateway);
    gateway_g.write_all(b"G").expect("write");
    let mut metrics_g = connect(up.metrics);
    metrics_g.write_all(b"G").expect("write");
    assert_eq!(up.http_get(&host, "/").0, 200);
    assert_eq!(read_until_closed(&mut gateway_g), "");
    assert_eq!(read_until_closed(&mut metrics_g), "");
    assert_eq!(up.http_get(&host, "/").0, 200, "still serving");
    let metrics = up.metrics();
    for listener in ["gateway", "admin"] {
        let series = format!(
            r#"wisp_connections_closed_by_server_total{{listener="{listener}",reason="header_timeout"}} "#
        );
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with(&series) && !line.ends_with(" 0")),
            "{series} in:\n{metrics}"
        );
    }

    // The test client is 127.0.0.1, the trusted proxy: its earlier hop stays.
    let http = up.http().clone();
    let url = format!("http://{}/", up.gateway);
    let echoed = up.runtime().block_on(async move {
        let response = http
            .get(url)
            .header("host", host.as_str())
            .header("x-forwarded-for", "1.2.3.4")
            .send()
            .await
            .expect("answered");
        response
            .headers()
            .get("echo-header-x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    });
    assert_eq!(echoed, "1.2.3.4, 127.0.0.1");

    // Hundreds of kept-alive idle sockets, and one request whose body never ends.
    let host = up.host("echo");
    let mut idle: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut socket = connect(up.gateway);
            socket
                .write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
                .expect("write");
            assert_eq!(read_head(&mut socket), 200);
            socket
        })
        .collect();
    let mut endless = connect(up.gateway);
    endless
        .write_all(
            format!("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000000\r\n\r\nthe start")
                .as_bytes(),
        )
        .expect("write");
    // SIGTERM once the endless request is in flight to the guest, not after a guessed delay.
    let deadline = Instant::now() + WAIT;
    loop {
        let in_flight: f64 = up
            .metrics()
            .lines()
            .filter(|l| l.starts_with("wisp_revision_requests_in_flight{"))
            .filter(|l| l.contains("service=\"echo\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if in_flight >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the endless request never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    up.process.terminate();
    let exit = up.process.wait_exit();
    assert!(
        exit.success(),
        "{exit:?}\n{}",
        cluster::tail(&up.process.logs())
    );
    for socket in idle.iter_mut().step_by(37) {
        read_until_closed(socket);
    }
    read_until_closed(&mut endless);
}
