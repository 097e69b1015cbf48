//! The API server under a hostile client, end to end with real processes: a flood of slow
//! requests is refused with 429 past `--max-mutating-requests-inflight` while another client's
//! `kubectl get ksvc` is still answered; a request past `--request-timeout` answers 504 while
//! watches keep their own timeout; a second `wisp up` on a data directory in use exits 2
//! naming the first, and a new one starts on it once the first is killed with SIGKILL.

mod cluster;
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::WispProcess;
use futures::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// The slow requests of the flood.
const FLOOD: usize = 2_000;
/// HTTP/2 connections they share (each carries at most 100 at once, the server's default).
const FLOOD_CONNECTIONS: usize = 20;
/// The server's default `--max-mutating-requests-inflight`.
const MUTATING_CAP: usize = 200;
/// The most the server may hold in memory during the flood (VmRSS), a bound this test states.
const FLOOD_RSS_BOUND: u64 = 512 << 20;

/// A running `wisp api-server` and what a client needs to reach it.
struct Server {
    process: WispProcess,
    url: String,
    kubeconfig: PathBuf,
    ca_pem: Vec<u8>,
    token: String,
}

impl Server {
    fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let mut args = vec![
            "api-server",
            "--data-dir",
            data_dir.to_str().expect("UTF-8 path"),
            "--api-addr",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let process = WispProcess::start(&args, 2);
        let url = process.value("api").to_owned();
        let kubeconfig = PathBuf::from(process.value("kubeconfig"));
        let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
        let config: Value = serde_norway::from_str(&text).expect("kubeconfig is YAML");
        let ca_pem = STANDARD
            .decode(
                config["clusters"][0]["cluster"]["certificate-authority-data"]
                    .as_str()
                    .expect("certificate-authority-data"),
            )
            .expect("CA data is base64");
        let token = config["users"][0]["user"]["token"]
            .as_str()
            .expect("token")
            .to_owned();
        Self {
            process,
            url,
            kubeconfig,
            ca_pem,
            token,
        }
    }

    /// A client of its own (its own connection), trusting this server's CA.
    fn client(&self) -> Client {
        Client::builder()
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca_pem).expect("CA PEM"))
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client")
    }

    fn post(&self, client: &Client, path: &str) -> reqwest::RequestBuilder {
        client
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
    }

    /// `kubectl ARGS` with the server's kubeconfig and a discovery cache of its own.
    fn kubectl(&self, cache: &Path, args: &[&str]) -> std::process::Output {
        wisp_loadtests::kubectl_tool::command_or_fail()
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(cache)
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))
            .expect("proc status");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .expect("VmRSS");
        kib * 1024
    }
}

/// A ConfigMap body that sends its first bytes and then nothing until `release` turns true:
/// a client holding its request open as long as it likes.
fn held_body(mut release: watch::Receiver<bool>) -> reqwest::Body {
    let first = futures::stream::once(async {
        Ok::<_, std::io::Error>(b"{\"apiVersion\":\"v1\",".to_vec())
    });
    let rest = futures::stream::once(async move {
        let _ = release.wait_for(|released| *released).await;
        Ok(b"\"kind\":\"ConfigMap\"}".to_vec())
    });
    reqwest::Body::wrap_stream(first.chain(rest))
}

/// Waits (generously) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_slow_writes_get_429s_while_another_client_still_reads() {
    let dir = tempfile::tempdir().expect("data dir");
    let server = Arc::new(Server::start(dir.path(), &[]));
    let (release, held) = watch::channel(false);
    let refused = Arc::new(AtomicUsize::new(0));
    let clients: Vec<Client> = (0..FLOOD_CONNECTIONS).map(|_| server.client()).collect();
    let mut flood = tokio::task::JoinSet::new();
    for index in 0..FLOOD {
        let client = clients[index % FLOOD_CONNECTIONS].clone();
        let request = server
            .post(&client, CONFIGMAPS)
            .body(held_body(held.clone()));
        let refused = Arc::clone(&refused);
        flood.spawn(async move {
            let response = request.send().await.expect("an answer");
            let code = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if code == StatusCode::TOO_MANY_REQUESTS {
                refused.fetch_add(1, Ordering::SeqCst);
            }
            (code, retry_after, body)
        });
    }

    // Every request past the cap is refused while the first ones hold their slots.
    eventually("the requests past the cap to be refused", || {
        refused.load(Ordering::SeqCst) >= FLOOD - MUTATING_CAP
    })
    .await;
    let rss = server.rss();

    // Another client (kubectl, its own connections) is answered meanwhile.
    let cache = tempfile::tempdir().expect("kubectl cache");
    let reader = Arc::clone(&server);
    let cache_path = cache.path().to_path_buf();
    let listed = tokio::task::spawn_blocking(move || {
        reader.kubectl(&cache_path, &["get", "ksvc", "-n", "default"])
    })
    .await
    .expect("kubectl");
    assert!(
        listed.status.success(),
        "kubectl get ksvc failed during the flood: {}\n{}",
        String::from_utf8_lossy(&listed.stderr),
        server.process.logs()
    );
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains("No resources found"),
        "{listed:?}"
    );
    assert!(
        refused.load(Ordering::SeqCst) <= FLOOD - MUTATING_CAP,
        "more refusals than requests past the cap: the held ones were refused too"
    );

    release.send(true).expect("release the held bodies");
    let mut answers = Vec::with_capacity(FLOOD);
    while let Some(answer) = flood.join_next().await {
        answers.push(answer.expect("a flood request"));
    }
    let (too_many, others): (Vec<_>, Vec<_>) = answers
        .iter()
        .partition(|(code, _, _)| *code == StatusCode::TOO_MANY_REQUESTS);
    eprintln!(
        "{FLOOD} slow writes: {} refused with 429, {} served; server RSS {} MiB during the flood",
        too_many.len(),
        others.len(),
        rss >> 20
    );
    assert_eq!(too_many.len(), FLOOD - MUTATING_CAP);
    for (_, retry_after, body) in &too_many {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["reason"], "TooManyRequests");
        assert_eq!(body["code"], 429);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("--max-mutating-requests-inflight"),
            "{message}"
        );
    }
    // The held ones were served once their bodies came (an incomplete ConfigMap: refused).
    assert!(
        others.iter().all(|(code, _, _)| code.is_client_error()),
        "{:?}",
        others.iter().map(|(code, _, _)| code).collect::<Vec<_>>()
    );
    assert!(
        rss < FLOOD_RSS_BOUND,
        "the server held {rss} bytes during the flood, over {FLOOD_RSS_BOUND}"
    );

    // The slots came back: a write succeeds.
    let client = server.client();
    let created = server
        .post(&client, CONFIGMAPS)
        .body(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after"}})
                .to_string(),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_timeout_answers_504_and_watches_keep_their_own() {
    let dir = tempfile::tempdir().expect("data dir");
    let server = Server::start(dir.path(), &["--request-timeout", "3s"]);
    let client = server.client();
    let (_never, held) = watch::channel(false);

    // A write whose body never ends is abandoned after --request-timeout.
    let response = server
        .post(&client, CONFIGMAPS)
        .body(held_body(held.clone()))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let status: Value = response.json().await.expect("a Status");
    assert_eq!(status["reason"], "Timeout");
    assert_eq!(status["code"], 504);
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("3s") && message.contains("--request-timeout"),
        "{message}"
    );

    // A client's shorter ?timeout= (kubectl --request-timeout) wins; a malformed one is a 400.
    let response = server
        .post(&client, &format!("{CONFIGMAPS}?timeout=1s"))
        .body(held_body(held.clone()))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let status: Value = response.json().await.expect("a Status");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1s"),
        "{status}"
    );
    let response = client
        .get(format!("{}{CONFIGMAPS}?timeout=soon", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // A watch outlives --request-timeout: it sees a change made after the limit has passed.
    let watch = client
        .get(format!(
            "{}{CONFIGMAPS}?watch=true&timeoutSeconds=30",
            server.url
        ))
        .bearer_auth(&server.token)
        .send()
        .await
        .expect("watch");
    assert_eq!(watch.status(), StatusCode::OK);
    let mut events = watch.bytes_stream();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let created = server
        .post(&client, CONFIGMAPS)
        .body(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}})
                .to_string(),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), StatusCode::CREATED);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.contains("\"late\"") {
        assert!(
            Instant::now() < deadline,
            "the watch never sent the late ConfigMap: {seen}"
        );
        match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the watch ended before the late ConfigMap ({other:?}): {seen}"),
        }
    }
    assert!(seen.contains("\"type\":\"ADDED\""), "{seen}");
}

#[test]
fn a_second_wisp_up_on_a_data_directory_in_use_exits_2_naming_the_first() {
    let up = cluster::Up::start(&[]);
    let pid = up.process.pid();
    let dir = up.data_dir().to_str().expect("UTF-8 path").to_owned();
    for command in ["up", "api-server"] {
        let mut args = vec![command, "--data-dir", &dir, "--api-addr", "127.0.0.1:0"];
        if command == "up" {
            args.extend([
                "--gateway-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ]);
        }
        let (code, _, stderr) = common::run_to_end(&args);
        assert_eq!(code, Some(2), "wisp {command}: {stderr}");
        assert!(
            stderr.contains(&format!("pid {pid}")) && stderr.contains("in use"),
            "wisp {command}: {stderr}"
        );
    }
    // The first one still serves.
    up.kubectl(&["get", "ksvc"]);

    // Killed without a chance to clean up, it leaves the directory free for the next one.
    let dir = up.kill();
    let restarted = cluster::Up::start_in(dir, &[]);
    restarted.kubectl(&["get", "ksvc"]);
    let lock = std::fs::read_to_string(restarted.data_dir().join("lock")).expect("lock file");
    assert_eq!(lock.trim(), restarted.process.pid().to_string());
}
