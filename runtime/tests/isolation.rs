//! Faults stay inside their request: while guests trap, spin and exhaust memory on the same
//! engine, 200 concurrent `hello` requests all succeed.

mod settle;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use settle::settled;
use wisp_runtime::{
    ArtifactSource, MIB, Replica, ReplicaIdentity, ReplicaLimits, Runtime, RuntimeConfig,
};

async fn replica(runtime: &Runtime, path: &str, limits: ReplicaLimits) -> Replica {
    let prepared = runtime
        .prepare(&ArtifactSource::parse(path))
        .await
        .expect("prepare sample");
    let identity = ReplicaIdentity {
        revision: path.rsplit('/').next().unwrap_or(path).to_owned(),
        ..ReplicaIdentity::default()
    };
    prepared.start_replica(&identity, limits)
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn status_and_body(replica: &Replica, path: &str) -> (u16, String) {
    let response = replica.handle(get(path), "test".into()).await;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map(|b| b.to_bytes());
    (
        status,
        String::from_utf8_lossy(&body.unwrap_or_default()).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_keeps_serving_while_other_guests_trap_spin_and_hog() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let limits = ReplicaLimits::default();
    let hello = replica(&runtime, wisp_samples::HELLO, limits.clone()).await;
    let trap = replica(&runtime, wisp_samples::TRAP, limits.clone()).await;
    let spin = replica(
        &runtime,
        wisp_samples::SPIN,
        ReplicaLimits {
            timeout: Duration::from_secs(3),
            ..limits.clone()
        },
    )
    .await;
    let hog = replica(
        &runtime,
        wisp_samples::HOG,
        ReplicaLimits {
            memory: 64 * MIB,
            ..limits.clone()
        },
    )
    .await;

    let mut faults = Vec::new();
    for _ in 0..2 {
        let spin = spin.clone();
        faults.push(tokio::spawn(async move {
            ("spin", status_and_body(&spin, "/").await)
        }));
        let hog = hog.clone();
        faults.push(tokio::spawn(async move {
            ("hog", status_and_body(&hog, "/").await)
        }));
    }
    for _ in 0..4 {
        let trap = trap.clone();
        faults.push(tokio::spawn(async move {
            ("trap", status_and_body(&trap, "/").await)
        }));
    }

    let hellos: Vec<_> = (0..200)
        .map(|_| {
            let hello = hello.clone();
            tokio::spawn(async move { status_and_body(&hello, "/").await })
        })
        .collect();
    for result in futures::future::join_all(hellos).await {
        let (status, body) = result.unwrap();
        assert_eq!((status, body.as_str()), (200, "Hello from wisp!\n"));
    }

    for fault in futures::future::join_all(faults).await {
        let (name, (status, body)) = fault.unwrap();
        match name {
            "spin" => assert_eq!(status, 504, "{name}: {body}"),
            // The two hogs share one budget: whichever runs out beside the other is told to
            // retry (503); one alone at its limit is at fault (500).
            "hog" if status == 503 => assert!(body.contains("is out of memory"), "{body}"),
            _ => assert_eq!(status, 500, "{name}: {body}"),
        }
    }
    // Every instance is gone and every byte of the hog's budget came back.
    assert_eq!(settled(&hog).await, (0, 0));
    assert_eq!(settled(&spin).await, (0, 0));
}

/// Two hundred requests spinning in one revision leave another revision's requests served, and
/// its CPU-bound ones too: the busy revision runs at most as many guests at once as there are
/// threads, and its other requests wait their turn in its own queue. Without the turns, a
/// CPU-bound request of another revision gets one time slice in ~200: it took 120 times as long
/// as alone when measured, against 12 times with them — the timeout it is given here is 60 times
/// what it needs alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_spinning_requests_leave_another_revision_served() {
    let runtime = Runtime::new(RuntimeConfig {
        guest_threads: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let start = |path: &'static str, revision: &str, limits: ReplicaLimits| {
        let runtime = runtime.clone();
        let identity = ReplicaIdentity {
            revision: revision.into(),
            ..ReplicaIdentity::default()
        };
        async move {
            runtime
                .prepare(&ArtifactSource::parse(path))
                .await
                .unwrap()
                .start_replica(&identity, limits)
        }
    };
    let hello = start(wisp_samples::HELLO, "hello-00001", ReplicaLimits::default()).await;

    // Enough rounds of the cpu sample to take a third of a second alone.
    let calibrate = start(wisp_samples::CPU, "calibrate", ReplicaLimits::default()).await;
    let mut rounds = 1_000_000u64;
    let alone = loop {
        let started = std::time::Instant::now();
        let (status, _) = status_and_body(&calibrate, &format!("/?n={rounds}")).await;
        assert_eq!(status, 200);
        let took = started.elapsed();
        if took >= Duration::from_millis(300) || rounds >= 1 << 40 {
            break took;
        }
        rounds *= 2;
    };
    let cpu = start(
        wisp_samples::CPU,
        "cpu-00001",
        ReplicaLimits {
            timeout: alone * 60,
            ..ReplicaLimits::default()
        },
    )
    .await;

    let spin = start(
        wisp_samples::SPIN,
        "spin-00001",
        ReplicaLimits {
            timeout: Duration::from_secs(600),
            // Room for 200 instances at once (each starts with about 2 MiB).
            memory: 1024 * MIB,
            ..ReplicaLimits::default()
        },
    )
    .await;
    let spinning: Vec<_> = (0..200)
        .map(|_| {
            let spin = spin.clone();
            tokio::spawn(async move { status_and_body(&spin, "/").await })
        })
        .collect();
    while spin.in_flight() < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Spawned, so they run on the runtime's worker threads beside the spinning guests (the
    // test's own task runs on a thread of its own).
    let served = tokio::spawn(async move {
        for _ in 0..20 {
            assert_eq!(
                status_and_body(&hello, "/").await,
                (200, "Hello from wisp!\n".to_owned())
            );
        }
        status_and_body(&cpu, &format!("/?n={rounds}")).await
    });
    let (status, body) = served.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(spin.in_flight(), 200, "the spinning requests still run");
    for task in spinning {
        task.abort();
    }
}
