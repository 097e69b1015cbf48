//! Host routing, traffic splits, tags, route updates under load, and the headers every response
//! carries.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::StatusCode;
use wisp_gateway::routing::{RouteConfig, TrafficTarget};

use crate::harness::{NS, Plane, annotated, host, revision};

fn revision_of(body: &str) -> String {
    body.lines()
        .find_map(|line| line.strip_prefix("K_REVISION="))
        .unwrap_or("<none>")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_host_gets_404_naming_it_with_request_id_and_timing() {
    let plane = Plane::start().await;
    let answer = plane.get("nowhere.default.localhost", "/").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(
        answer.body.contains("nowhere.default.localhost"),
        "{}",
        answer.body
    );
    assert!(answer.headers.contains_key("x-request-id"));
    assert!(
        answer.headers["server-timing"]
            .to_str()
            .unwrap()
            .starts_with("queue;dur=")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_carries_forwarded_headers_and_gets_every_timing() {
    let plane = Plane::start().await;
    plane.serve(revision("echo", wisp_samples::ECHO)).await;
    let answer = plane.get(&host("echo"), "/path?q=1").await;
    assert_eq!(answer.status, StatusCode::OK);
    let header = |name: &str| {
        answer
            .headers
            .get(format!("echo-header-{name}"))
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header("x-forwarded-for"), "127.0.0.1");
    assert_eq!(header("x-forwarded-host"), host("echo"));
    assert_eq!(header("x-forwarded-proto"), "http");
    assert!(
        header("forwarded").contains("for=\"127.0.0.1:"),
        "{}",
        header("forwarded")
    );
    assert_eq!(
        header("x-request-id"),
        answer.headers["x-request-id"].to_str().unwrap()
    );
    let timing = answer.headers["server-timing"].to_str().unwrap();
    for entry in ["queue;dur=", "instantiate;dur=", "handler;dur="] {
        assert!(timing.contains(entry), "{timing}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifty_fifty_split_lands_within_five_percent_and_tags_reach_their_revision() {
    let plane = Plane::start().await;
    let mut blue = revision("blue", wisp_samples::ENV);
    blue.service = "split".into();
    let mut green = revision("green", wisp_samples::ENV);
    green.service = "split".into();
    plane.data_plane.apply_revision(blue).await.expect("blue");
    plane.data_plane.apply_revision(green).await.expect("green");
    plane
        .add_route(RouteConfig::new(
            NS,
            "split",
            vec![
                TrafficTarget::new("blue-00001", 50).tagged("blue"),
                TrafficTarget::new("green-00001", 50).tagged("green"),
            ],
        ))
        .await;

    let plane = Arc::new(plane);
    let mut workers = Vec::new();
    for _ in 0..8 {
        let plane = plane.clone();
        workers.push(tokio::spawn(async move {
            let mut seen: HashMap<String, u32> = HashMap::new();
            for _ in 0..250 {
                let answer = plane.get(&host("split"), "/").await;
                assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
                *seen.entry(revision_of(&answer.body)).or_default() += 1;
            }
            seen
        }));
    }
    let mut seen: HashMap<String, u32> = HashMap::new();
    for worker in workers {
        for (revision, count) in worker.await.expect("worker") {
            *seen.entry(revision).or_default() += count;
        }
    }
    assert_eq!(seen.values().sum::<u32>(), 2000);
    for revision in ["blue-00001", "green-00001"] {
        let count = seen.get(revision).copied().unwrap_or(0);
        assert!(
            (900..=1100).contains(&count),
            "{revision} got {count} of 2000: {seen:?}"
        );
    }

    for (tag, revision) in [("blue", "blue-00001"), ("green", "green-00001")] {
        for _ in 0..50 {
            let answer = plane.get(&format!("{tag}-split.{NS}.localhost"), "/").await;
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(revision_of(&answer.body), revision);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_updates_under_load_lose_nothing() {
    let plane = Arc::new(Plane::start().await);
    for name in ["old", "new"] {
        let mut config = revision(name, wisp_samples::ENV);
        config.service = "flip".into();
        plane
            .data_plane
            .apply_revision(config)
            .await
            .expect("apply");
    }
    let route =
        |revision: &str| RouteConfig::new(NS, "flip", vec![TrafficTarget::new(revision, 100)]);
    plane.add_route(route("old-00001")).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..6 {
        let (plane, stop) = (plane.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut answered: HashMap<String, u32> = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                let answer = plane.get(&host("flip"), "/").await;
                assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
                *answered.entry(revision_of(&answer.body)).or_default() += 1;
            }
            answered
        }));
    }
    for round in 0..60 {
        let target = if round % 2 == 0 {
            "new-00001"
        } else {
            "old-00001"
        };
        plane.add_route(route(target)).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut answered: HashMap<String, u32> = HashMap::new();
    for client in clients {
        for (revision, count) in client.await.expect("client") {
            *answered.entry(revision).or_default() += count;
        }
    }
    // Every answer came from one of the two revisions; both served.
    assert_eq!(answered.len(), 2, "{answered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_requests_are_routed_by_authority() {
    use http_body_util::{BodyExt, Empty};
    let plane = Plane::start().await;
    plane.serve(revision("hello", wisp_samples::HELLO)).await;
    let stream = tokio::net::TcpStream::connect(plane.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2c handshake");
    tokio::spawn(connection);
    let request = http::Request::get(format!("http://{}/", host("hello")))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.expect("h2c response");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"Hello from wisp!\n");
}

/// A revision no route names is unreachable: it goes to zero whatever its min-scale, and back
/// to its min-scale once a route names it again, whether the routes change one at a time
/// (`update_routes`, as a node's route sync feeds them) or all at once (`set_routes`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrouted_revision_goes_to_zero_whatever_its_min_scale() {
    let plane = Plane::start().await;
    let key = plane
        .serve(annotated(
            revision("kept", wisp_samples::HELLO),
            &[("min-scale", "2")],
        ))
        .await;
    let route = RouteConfig::new(NS, "kept", vec![TrafficTarget::new(&key.name, 100)]);
    let at_min_scale = || async {
        plane.advance(1);
        plane
            .wait_for(&key, "min-scale's two replicas", |s| s.ready_replicas == 2)
            .await;
    };
    at_min_scale().await;

    // A second route naming it too: removing one of the two leaves it routed.
    plane
        .add_route(RouteConfig::new(
            NS,
            "also",
            vec![TrafficTarget::new(&key.name, 100)],
        ))
        .await;
    plane.remove_route("also").await;
    // Two minutes on: the autoscaler's decision (made by `advance` itself, not later by the
    // scaler task) still holds min-scale's two; unrouted, it would be zero by now.
    plane.advance(120);
    let state = plane.state(&key);
    assert_eq!(
        (state.desired_replicas, state.wanted_replicas),
        (2, 2),
        "{state:?}"
    );

    plane.remove_route("kept").await;
    plane.idle_until_zero(&key).await;

    plane.add_route(route.clone()).await;
    at_min_scale().await;

    let problems = plane.data_plane.set_routes(Vec::new()).await;
    assert!(problems.is_empty(), "{problems:?}");
    plane.idle_until_zero(&key).await;
    let problems = plane.data_plane.set_routes(vec![route]).await;
    assert!(problems.is_empty(), "{problems:?}");
    at_min_scale().await;
}
