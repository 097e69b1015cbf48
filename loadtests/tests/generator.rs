//! The load generator against small hyper servers started here on 127.0.0.1: counts add up in
//! every mode, the open-loop schedule holds under a slow target, statuses land in their class.
//! Timing is asserted only where the server makes it certain (latency ≥ its delay).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use wisp_loadtests::generator::{
    self, GeneratorError, Load, Mode, Protocol, RateShape, Step, Timeline,
};
use wisp_loadtests::target::{Target, TargetError};

/// A server that answers every request after `delay` with `status` — or 404 when `host` is set
/// and the request's Host (or h2 authority) is another one. HTTP/1.1 and h2c both.
async fn serve(delay: Duration, status: u16, host: Option<&'static str>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| async move {
                    tokio::time::sleep(delay).await;
                    let seen = request
                        .headers()
                        .get(http::header::HOST)
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned)
                        .or_else(|| request.uri().authority().map(|a| a.to_string()))
                        .unwrap_or_default();
                    let status = match host {
                        Some(wanted) if wanted != seen => 404,
                        _ => status,
                    };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from_static(b"hello")))
                            .unwrap(),
                    )
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn target(addr: SocketAddr) -> Target {
    Target::parse(&format!("http://{addr}/")).unwrap()
}

fn assert_adds_up(timeline: &Timeline) {
    let totals = timeline.totals;
    assert_eq!(totals.accounted(), totals.sent, "{totals:?}");
    assert_eq!(timeline.sum_of_seconds(), totals);
    for second in &timeline.seconds {
        assert_eq!(second.counts.accounted(), second.counts.sent, "{second:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_keeps_its_rate_under_a_slow_target_and_its_counts_add_up() {
    let delay = Duration::from_millis(200);
    let addr = serve(delay, 200, None).await;
    let shape = RateShape::Constant(200.0);
    let load = Load::open(target(addr), shape.clone(), Duration::from_secs(2));
    let timeline = generator::run(&load).await.unwrap();

    assert_adds_up(&timeline);
    let totals = timeline.totals;
    // The schedule is deterministic: every request it holds leaves, slow answers or not.
    assert_eq!(totals.sent, shape.count_before(Duration::from_secs(2)));
    assert_eq!(totals.sent, 400);
    assert_eq!(timeline.seconds.len(), 2);
    assert_eq!(timeline.seconds[0].counts.sent, 200);
    assert_eq!(timeline.seconds[1].counts.sent, 200);
    assert_eq!(totals.succeeded, 400, "{totals:?}");
    assert_eq!(timeline.elapsed, Duration::from_secs(2));
    // Latency counts from when a request was due, so it can never be under the server's delay
    // (less the histogram's rounding: three significant digits).
    assert_eq!(timeline.latency_us.len(), 400);
    assert!(
        timeline.latency_us.min() >= 199_800,
        "{}",
        timeline.latency_us.min()
    );
    let p50 = timeline.seconds[1].percentiles().unwrap().p50;
    assert!(p50 >= Duration::from_millis(198), "{p50:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_workers_fill_the_timeline() {
    let addr = serve(Duration::ZERO, 200, None).await;
    let load = Load::closed(target(addr), 4, Duration::from_millis(1500));
    let timeline = generator::run(&load).await.unwrap();
    assert_adds_up(&timeline);
    assert!(timeline.totals.sent > 10, "{:?}", timeline.totals);
    assert_eq!(timeline.totals.succeeded, timeline.totals.sent);
    assert_eq!(timeline.seconds.len(), 2);
    assert!(timeline.seconds.iter().all(|second| second.counts.sent > 0));

    // Bounded by count alone, the workers stop at exactly that many.
    let load = Load {
        duration: None,
        max_requests: Some(57),
        ..Load::closed(target(addr), 3, Duration::ZERO)
    };
    let timeline = generator::run(&load).await.unwrap();
    assert_adds_up(&timeline);
    assert_eq!(timeline.totals.sent, 57);
    assert_eq!(timeline.totals.succeeded, 57);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_header_routes_over_http1_and_h2c() {
    let addr = serve(Duration::ZERO, 200, Some("hello.default.example.com")).await;
    let mut routed = target(addr);
    routed.host = "hello.default.example.com".to_owned();
    for protocol in [Protocol::Http1, Protocol::H2c { connections: 2 }] {
        let load = Load {
            protocol,
            max_requests: Some(30),
            ..Load::open(
                routed.clone(),
                RateShape::Constant(100.0),
                Duration::from_secs(1),
            )
        };
        let timeline = generator::run(&load).await.unwrap();
        assert_adds_up(&timeline);
        assert_eq!(timeline.totals.sent, 30, "{protocol:?}");
        assert_eq!(timeline.totals.succeeded, 30, "{protocol:?}");
    }
    // The address's own authority is not the routed host: every answer is a 404.
    let load = Load {
        max_requests: Some(10),
        ..Load::closed(target(addr), 2, Duration::from_secs(1))
    };
    let timeline = generator::run(&load).await.unwrap();
    assert_eq!(timeline.totals.client_errors, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_counted_in_the_5xx_class() {
    let addr = serve(Duration::ZERO, 500, None).await;
    let load = Load::open(
        target(addr),
        RateShape::Steps(vec![Step {
            rate: 50.0,
            lasts: Duration::from_secs(1),
        }]),
        Duration::from_secs(1),
    );
    let timeline = generator::run(&load).await.unwrap();
    assert_adds_up(&timeline);
    assert_eq!(timeline.totals.sent, 50);
    assert_eq!(timeline.totals.server_errors, 50);
    assert_eq!(timeline.totals.succeeded, 0);
    assert_eq!(timeline.totals.failed(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_flight_cap_drops_and_unanswered_requests_time_out() {
    let addr = serve(Duration::from_millis(300), 200, None).await;
    // 100 rps against 300 ms answers needs ~30 in flight; with 5 allowed, most are dropped.
    let load = Load {
        mode: Mode::Open {
            shape: RateShape::Constant(100.0),
            max_in_flight: 5,
        },
        ..Load::open(
            target(addr),
            RateShape::Constant(0.0),
            Duration::from_secs(1),
        )
    };
    let timeline = generator::run(&load).await.unwrap();
    assert_adds_up(&timeline);
    let totals = timeline.totals;
    assert_eq!(totals.sent, 100);
    assert!(totals.dropped >= 50, "{totals:?}");
    assert!(totals.succeeded >= 5, "{totals:?}");

    // A request timeout shorter than the server's delay: every request times out.
    let load = Load {
        request_timeout: Duration::from_millis(100),
        ..Load::open(
            target(addr),
            RateShape::Constant(20.0),
            Duration::from_millis(500),
        )
    };
    let timeline = generator::run(&load).await.unwrap();
    assert_adds_up(&timeline);
    assert_eq!(timeline.totals.sent, 10);
    assert_eq!(timeline.totals.timeouts, 10);

    // Answers slower than the grace: the run ends anyway, counting them as timeouts.
    let hanging = serve(Duration::from_secs(60), 200, None).await;
    let load = Load {
        grace: Duration::from_millis(200),
        ..Load::closed(target(hanging), 3, Duration::from_millis(300))
    };
    let started = std::time::Instant::now();
    let timeline = generator::run(&load).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_adds_up(&timeline);
    assert_eq!(timeline.totals.sent, 3);
    assert_eq!(timeline.totals.timeouts, 3);
}

#[tokio::test]
async fn only_loopback_targets_and_bounded_runs_are_accepted() {
    assert_eq!(
        Target::parse("http://192.0.2.1:80/"),
        Err(TargetError::NotLoopback("192.0.2.1".parse().unwrap()))
    );
    let mut elsewhere = Target::parse("http://127.0.0.1:9/").unwrap();
    elsewhere.addr = "192.0.2.1:80".parse().unwrap();
    let load = Load::closed(elsewhere, 1, Duration::from_secs(1));
    assert_eq!(
        generator::run(&load).await.unwrap_err(),
        GeneratorError::NotLoopback("192.0.2.1".parse().unwrap())
    );

    let local = Target::parse("http://127.0.0.1:9/").unwrap();
    let unbounded = Load {
        duration: None,
        ..Load::closed(local.clone(), 1, Duration::ZERO)
    };
    assert_eq!(
        generator::run(&unbounded).await.unwrap_err(),
        GeneratorError::Unbounded
    );
    let negative = Load::open(local, RateShape::Constant(-3.0), Duration::from_secs(1));
    assert!(matches!(
        generator::run(&negative).await,
        Err(GeneratorError::Rate(_))
    ));
}

#[tokio::test]
async fn a_closed_port_is_a_transport_error() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let load = Load {
        max_requests: Some(5),
        ..Load::open(
            target(addr),
            RateShape::Constant(50.0),
            Duration::from_secs(1),
        )
    };
    let timeline = generator::run(&load).await.unwrap();
    assert_adds_up(&timeline);
    assert_eq!(timeline.totals.transport_errors, 5);
    assert_eq!(timeline.totals.sent, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_stretch_still_lasts_and_shows_as_empty_seconds() {
    let addr = serve(Duration::ZERO, 200, None).await;
    let shape = RateShape::Steps(vec![
        Step {
            rate: 40.0,
            lasts: Duration::from_millis(500),
        },
        Step {
            rate: 0.0,
            lasts: Duration::from_secs(1),
        },
    ]);
    let load = Load::open(target(addr), shape, Duration::from_millis(1500));
    let started = std::time::Instant::now();
    let timeline = generator::run(&load).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_adds_up(&timeline);
    assert_eq!(timeline.elapsed, Duration::from_millis(1500));
    assert_eq!(timeline.seconds.len(), 2);
    assert_eq!(timeline.seconds[0].counts.succeeded, 20);
    assert_eq!(timeline.seconds[1].counts.sent, 0);
    assert_eq!(timeline.seconds[1].percentiles(), None);
}
