//! The serve loop against hostile clients, over real loopback sockets: slow heads, idle
//! connections, oversized heads, more connections than allowed, and a drain with a thousand
//! sockets open. Each checks what the hostile client gets and that a well-behaved client keeps
//! being answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wisp_gateway::metrics::DataPlaneMetrics;
use wisp_gateway::server::{Server, ServerLimits};

/// How long a test waits for something that must happen.
const WAIT: Duration = Duration::from_secs(20);

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    metrics: Arc<DataPlaneMetrics>,
}

/// The queries of the `/slow` requests the handler has begun, so a test can wait for its own
/// to be in the server (tests share the process, hence one list keyed by query).
static SLOW_BEGUN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Waits until the handler has begun a `/slow?{query}` request.
async fn slow_request_begun(query: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let begun = SLOW_BEGUN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|q| q == query);
        if begun {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/slow?{query} never reached the handler"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `/` answers `ok`; `/slow` answers `slept` after a second.
async fn handler(request: Request<Incoming>, _peer: SocketAddr) -> Response<Full<Bytes>> {
    if request.uri().path() == "/slow" {
        let query = request.uri().query().unwrap_or_default().to_owned();
        SLOW_BEGUN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(query);
        tokio::time::sleep(Duration::from_secs(1)).await;
        return Response::new(Full::new(Bytes::from_static(b"slept")));
    }
    Response::new(Full::new(Bytes::from_static(b"ok")))
}

async fn start(limits: ServerLimits) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let metrics = Arc::new(DataPlaneMetrics::new());
    let server = Server::new(limits).with_metrics(metrics.connections("gateway"));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(listener, handler, async {
                let _ = stopped.await;
            })
            .await;
    });
    Running {
        addr,
        stop: Some(stop),
        task,
        metrics,
    }
}

fn quick() -> ServerLimits {
    ServerLimits {
        header_read_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(1),
        grace_period: Duration::from_secs(2),
        ..ServerLimits::default()
    }
}

/// Sends one HTTP/1.1 request on `stream` and reads its answer (status, body), leaving the
/// connection open.
async fn exchange(stream: &mut TcpStream, path: &str, extra: &str) -> (u16, String) {
    let head = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    read_answer(stream).await
}

/// Reads one answer with a `content-length` body.
async fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buffer))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())
                    .flatten()
            })
            .unwrap_or(0);
        if body.len() >= length {
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|code| code.parse().ok())
                .expect("status line");
            return (status, body.to_owned());
        }
    }
}

/// Waits until the server closes `stream` (EOF or reset); whatever it sent before.
async fn closed_by_server(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buffer))
            .await
            .expect("the server closes the connection in time")
        {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&raw).into_owned(),
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
        }
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

fn metric(metrics: &DataPlaneMetrics, series: &str) -> f64 {
    let text = metrics.encode().expect("encode");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

#[tokio::test]
async fn a_slow_head_is_cut_off_while_another_client_is_served() {
    let server = start(quick()).await;
    let mut slowloris = connect(server.addr).await;
    slowloris.write_all(b"G").await.expect("write");
    let mut silent = connect(server.addr).await;

    let mut polite = connect(server.addr).await;
    assert_eq!(exchange(&mut polite, "/", "").await, (200, "ok".into()));

    assert_eq!(closed_by_server(&mut slowloris).await, "");
    assert_eq!(closed_by_server(&mut silent).await, "");
    // The polite client's fresh request is still answered on a new connection.
    let mut again = connect(server.addr).await;
    assert_eq!(exchange(&mut again, "/", "").await, (200, "ok".into()));
    assert_eq!(
        metric(
            &server.metrics,
            r#"wisp_connections_closed_by_server_total{listener="gateway",reason="header_timeout"}"#
        ),
        2.0
    );
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_once_idle_and_a_head_begun_late_is_cut() {
    let server = start(quick()).await;
    let mut idle = connect(server.addr).await;
    assert_eq!(exchange(&mut idle, "/", "").await, (200, "ok".into()));
    assert_eq!(closed_by_server(&mut idle).await, "");

    let mut dribbling = connect(server.addr).await;
    assert_eq!(exchange(&mut dribbling, "/", "").await, (200, "ok".into()));
    dribbling.write_all(b"GET / HT").await.expect("write");
    assert_eq!(closed_by_server(&mut dribbling).await, "");
    let text = server.metrics.encode().expect("encode");
    assert!(
        text.contains(
            r#"wisp_connections_closed_by_server_total{listener="gateway",reason="idle_timeout"} "#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn oversized_and_overlong_heads_get_431_and_the_server_goes_on() {
    let limits = ServerLimits {
        max_header_bytes: 16 * 1024,
        max_headers: 20,
        ..ServerLimits::default()
    };
    let server = start(limits).await;

    let mut big = connect(server.addr).await;
    let huge = format!("X-Big: {}\r\n", "a".repeat(32 * 1024));
    let head = format!("GET / HTTP/1.1\r\nHost: test\r\n{huge}\r\n");
    // The server may answer and close before it has read everything we send.
    let _ = big.write_all(head.as_bytes()).await;
    let answer = closed_by_server(&mut big).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");

    let mut many = connect(server.addr).await;
    let fields: String = (0..40).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
    let _ = many
        .write_all(format!("GET / HTTP/1.1\r\nHost: test\r\n{fields}\r\n").as_bytes())
        .await;
    let answer = closed_by_server(&mut many).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");

    let mut fine = connect(server.addr).await;
    let fields: String = (0..10).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
    assert_eq!(exchange(&mut fine, "/", &fields).await, (200, "ok".into()));
}

#[tokio::test]
async fn beyond_max_connections_a_client_waits_until_one_closes() {
    let limits = ServerLimits {
        max_connections: 2,
        ..ServerLimits::default()
    };
    let server = start(limits).await;
    let mut first = connect(server.addr).await;
    let mut second = connect(server.addr).await;
    assert_eq!(exchange(&mut first, "/", "").await, (200, "ok".into()));
    assert_eq!(exchange(&mut second, "/", "").await, (200, "ok".into()));

    // The third connects (the kernel's backlog takes it) but is not served yet.
    let mut third = connect(server.addr).await;
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(700), third.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "the third connection was served at the limit"
    );

    // The open ones keep working.
    assert_eq!(exchange(&mut first, "/", "").await, (200, "ok".into()));
    drop(second);
    assert_eq!(read_answer(&mut third).await, (200, "ok".into()));
    assert!(
        metric(
            &server.metrics,
            r#"wisp_connections_limit_reached_total{listener="gateway"}"#
        ) >= 1.0
    );
}

#[tokio::test]
async fn a_drain_with_a_thousand_idle_and_half_open_sockets_ends_in_the_grace_period() {
    let limits = ServerLimits {
        // Long timeouts: only the drain may end these connections.
        header_read_timeout: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(600),
        grace_period: Duration::from_secs(2),
        ..ServerLimits::default()
    };
    let mut server = start(limits).await;
    let mut sockets = Vec::new();
    for i in 0..1000 {
        let mut socket = connect(server.addr).await;
        match i % 3 {
            0 => socket.write_all(b"G").await.expect("write"),
            1 => assert_eq!(exchange(&mut socket, "/", "").await.0, 200),
            _ => {}
        }
        sockets.push(socket);
    }
    let mut in_flight = connect(server.addr).await;
    in_flight
        .write_all(b"GET /slow?drain HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    // The drain starts once the server has taken the slow request.
    slow_request_begun("drain").await;

    let _ = server.stop.take().map(|stop| stop.send(()));
    assert_eq!(read_answer(&mut in_flight).await, (200, "slept".into()));
    tokio::time::timeout(WAIT, &mut server.task)
        .await
        .expect("the server stops in time")
        .expect("server task");
    // Idle and half-open sockets were closed, not left to the client.
    for socket in sockets.iter_mut().step_by(97) {
        closed_by_server(socket).await;
    }
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "the listener is closed"
    );
}
