//! `wisp api-server` end to end, as a real process: acknowledged writes survive a SIGKILL and
//! the credentials survive a restart; malformed and refused requests get the exact Status the
//! real API server sends and change nothing; SIGTERM ends it promptly even with a watch open.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::WispProcess;
use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

/// Concurrent writers in the durability test.
const WRITERS: usize = 16;
/// Acknowledged writes before the server is killed.
const ACKS_BEFORE_KILL: usize = 300;

const SERVICES: &str = "/apis/serving.knative.dev/v1/namespaces/default/services";

/// A running `wisp api-server` and what its start-up lines and kubeconfig say.
struct ApiServerProcess {
    process: WispProcess,
    url: String,
    kubeconfig: std::path::PathBuf,
    ca_pem: Vec<u8>,
    token: String,
}

impl ApiServerProcess {
    fn start(data_dir: &Path) -> Self {
        let process = WispProcess::start(
            &[
                "api-server".as_ref(),
                "--data-dir".as_ref(),
                data_dir.as_os_str(),
                "--api-addr".as_ref(),
                "127.0.0.1:0".as_ref(),
            ],
            2,
        );
        let url = process.value("api").to_owned();
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        let kubeconfig = std::path::PathBuf::from(process.value("kubeconfig"));
        let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
        let config: Value = serde_norway::from_str(&text).expect("kubeconfig is YAML");
        let cluster = &config["clusters"][0]["cluster"];
        assert_eq!(
            cluster["server"],
            url.as_str(),
            "kubeconfig names the new address"
        );
        let ca_pem = STANDARD
            .decode(
                cluster["certificate-authority-data"]
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

    /// A client trusting only this server's CA, sending its token.
    fn client(&self) -> Https {
        Https::new(&self.ca_pem, &self.url, &self.token)
    }

    /// A kube client built from the kubeconfig the server wrote.
    async fn kube_services(&self) -> kube::Api<DynamicObject> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("read");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("kube config");
        let client = kube::Client::try_from(config).expect("kube client");
        let gvk = GroupVersionKind::gvk("serving.knative.dev", "v1", "Service");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "services");
        kube::Api::namespaced_with(client, "default", &resource)
    }
}

/// Raw HTTPS requests to the API with the bearer token.
#[derive(Clone)]
struct Https {
    http: Client,
    base: String,
    token: String,
}

/// An answer: the code and the body as JSON (`Null` when it is not JSON).
#[derive(Debug)]
struct Answer {
    code: StatusCode,
    body: Value,
}

impl Https {
    fn new(ca_pem: &[u8], base: &str, token: &str) -> Self {
        let http = Client::builder()
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).expect("CA PEM"))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Self {
            http,
            base: base.to_owned(),
            token: token.to_owned(),
        }
    }

    /// The same client pointed at another address (after a restart on a new port).
    fn at(&self, base: &str) -> Self {
        Self {
            base: base.to_owned(),
            ..self.clone()
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn send(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
        let response = request.send().await?;
        let code = response.status();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { code, body })
    }

    async fn try_create(&self, object: &Value) -> Result<Answer, reqwest::Error> {
        Self::send(self.request(Method::POST, SERVICES).json(object)).await
    }

    async fn try_merge_patch(&self, name: &str, patch: &Value) -> Result<Answer, reqwest::Error> {
        Self::send(
            self.request(Method::PATCH, &format!("{SERVICES}/{name}"))
                .header("content-type", "application/merge-patch+json")
                .body(patch.to_string()),
        )
        .await
    }

    async fn get(&self, path: &str) -> Answer {
        Self::send(self.request(Method::GET, path))
            .await
            .expect("GET")
    }

    async fn create(&self, object: &Value) -> Answer {
        self.try_create(object).await.expect("POST")
    }
}

/// A minimal Knative Service.
fn ksvc(name: &str) -> Value {
    json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"containers": [{"image": "hello.wasm"}]}}}
    })
}

fn resource_version(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_else(|| panic!("no numeric resourceVersion in {object}"))
}

/// The last acknowledged write of each name: its resourceVersion and `seq` label.
type Acks = Arc<Mutex<HashMap<String, (u64, String)>>>;

/// Creates and updates Services until a request fails (the server was killed) or `stop`.
async fn writer(api: Https, id: usize, acks: Acks, count: Arc<AtomicUsize>, stop: Arc<AtomicBool>) {
    let mut created = 0usize;
    for step in 0usize.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let seq = step.to_string();
        // Alternate creating a new Service and relabelling one created before.
        let (name, answer) = if step % 2 == 0 || created == 0 {
            let name = format!("w{id}-{created}");
            let mut object = ksvc(&name);
            object["metadata"]["labels"] = json!({"seq": seq});
            let answer = api.try_create(&object).await;
            if answer.as_ref().is_ok_and(|a| a.code == StatusCode::CREATED) {
                created += 1;
            }
            (name, answer)
        } else {
            let name = format!("w{id}-{}", step % created);
            let patch = json!({"metadata": {"labels": {"seq": seq}}});
            (name.clone(), api.try_merge_patch(&name, &patch).await)
        };
        let Ok(answer) = answer else { return };
        if !answer.code.is_success() {
            // A 5xx from a server going down is not an acknowledgement; anything else is a bug.
            assert!(
                answer.code.is_server_error(),
                "write of {name} refused: {answer:?}"
            );
            return;
        }
        let rv = resource_version(&answer.body);
        assert_eq!(answer.body["metadata"]["labels"]["seq"], seq.as_str());
        acks.lock().unwrap().insert(name, (rv, seq));
        count.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_and_credentials_survive_a_kill() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut first = ApiServerProcess::start(data.path());
    let api = first.client();

    let acks: Acks = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| {
            tokio::spawn(writer(
                api.clone(),
                id,
                Arc::clone(&acks),
                Arc::clone(&count),
                Arc::clone(&stop),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while count.load(Ordering::Relaxed) < ACKS_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "only {} writes acknowledged; logs:\n{}",
            count.load(Ordering::Relaxed),
            first.process.logs()
        );
        if writers.iter().any(|writer| writer.is_finished()) {
            // Surface the writer's panic rather than a vaguer one here.
            for writer in writers {
                writer.await.expect("writer panicked");
            }
            panic!("a writer stopped before the server was killed");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Mid-stream: the writers are still sending when the process dies.
    first.process.kill();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer panicked");
    }
    let acknowledged = acks.lock().unwrap().clone();
    assert!(acknowledged.len() >= WRITERS, "{acknowledged:?}");
    let newest_ack = acknowledged
        .values()
        .map(|(rv, _)| *rv)
        .max()
        .expect("acks");
    eprintln!(
        "{} writes acknowledged over {} Services before the kill; newest rv {newest_ack}",
        count.load(Ordering::Relaxed),
        acknowledged.len()
    );

    let second = ApiServerProcess::start(data.path());
    assert_eq!(second.ca_pem, first.ca_pem, "the CA survives a restart");
    assert_eq!(second.token, first.token, "the token survives a restart");
    assert_eq!(second.kubeconfig, first.kubeconfig);
    // The old client (its trust and token) works against the new address.
    let api = api.at(&second.url);
    for (name, (rv, seq)) in &acknowledged {
        let answer = api.get(&format!("{SERVICES}/{name}")).await;
        assert_eq!(
            answer.code,
            StatusCode::OK,
            "{name} was acknowledged: {answer:?}"
        );
        let stored = resource_version(&answer.body);
        assert!(stored >= *rv, "{name}: acknowledged {rv}, stored {stored}");
        if stored == *rv {
            assert_eq!(answer.body["metadata"]["labels"]["seq"], seq.as_str());
        }
    }

    // A client built from the rewritten kubeconfig sees them all too.
    let services = second.kube_services().await;
    let listed = services
        .list(&ListParams::default())
        .await
        .expect("kube list");
    let names: std::collections::HashSet<String> = listed
        .items
        .iter()
        .filter_map(|object| object.metadata.name.clone())
        .collect();
    for name in acknowledged.keys() {
        assert!(names.contains(name), "{name} missing from the kube list");
    }
    let list_rv: u64 = listed
        .metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .expect("list resourceVersion");
    assert!(list_rv >= newest_ack);

    let after = api.create(&ksvc("after-restart")).await;
    assert_eq!(after.code, StatusCode::CREATED, "{after:?}");
    let after_rv = resource_version(&after.body);
    assert!(
        after_rv > newest_ack,
        "new write got {after_rv}, an acknowledged one had {newest_ack}"
    );
}

/// What a refused request must answer.
struct Refusal {
    code: StatusCode,
    reason: &'static str,
    message: &'static str,
}

fn assert_refused(case: &str, answer: &Answer, expected: &Refusal) {
    assert_eq!(answer.code, expected.code, "{case}: {answer:?}");
    assert_eq!(answer.body["kind"], "Status", "{case}: {answer:?}");
    assert_eq!(answer.body["status"], "Failure", "{case}: {answer:?}");
    assert_eq!(answer.body["code"], expected.code.as_u16(), "{case}");
    assert_eq!(answer.body["reason"], expected.reason, "{case}: {answer:?}");
    let message = answer.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(expected.message),
        "{case}: message {message:?} lacks {:?}",
        expected.message
    );
}

/// The collection's resourceVersion and the `hello` Service, to compare before and after.
async fn snapshot(api: &Https) -> (Value, Value) {
    let list = api.get(SERVICES).await;
    assert_eq!(list.code, StatusCode::OK, "{list:?}");
    let hello = api.get(&format!("{SERVICES}/hello")).await;
    assert_eq!(hello.code, StatusCode::OK, "{hello:?}");
    (list.body["metadata"]["resourceVersion"].clone(), hello.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_real_status_and_changes_nothing() {
    let data = tempfile::tempdir().expect("temp dir");
    let server = ApiServerProcess::start(data.path());
    let api = server.client();
    let created = api.create(&ksvc("hello")).await;
    assert_eq!(created.code, StatusCode::CREATED, "{created:?}");
    let before = snapshot(&api).await;
    let item = format!("{SERVICES}/hello");

    let with = |edit: &dyn Fn(&mut Value)| {
        let mut object = ksvc("other");
        edit(&mut object);
        object
    };
    let post = |object: Value| api.request(Method::POST, SERVICES).json(&object);
    let patch = |kind: &str, body: String| {
        api.request(Method::PATCH, &item)
            .header("content-type", kind)
            .body(body)
    };
    let bad_request = |message| Refusal {
        code: StatusCode::BAD_REQUEST,
        reason: "BadRequest",
        message,
    };
    let garbage: Vec<u8> = (0u8..=255).rev().cycle().take(4096).collect();
    let ten_megabytes = format!(
        "{{\"apiVersion\":\"serving.knative.dev/v1\",\"kind\":\"Service\",\"metadata\":{{\"name\":\"big\",\"annotations\":{{\"a\":\"{}\"}}}}}}",
        "x".repeat(10 * 1024 * 1024)
    );
    let long_name = "a".repeat(64);
    let cases: Vec<(&str, reqwest::RequestBuilder, Refusal)> = vec![
        (
            "unknown field under fieldValidation=Strict",
            api.request(Method::POST, &format!("{SERVICES}?fieldValidation=Strict"))
                .json(&with(&|o| o["spec"]["foo"] = json!(1))),
            bad_request("strict decoding error: unknown field \"spec.foo\""),
        ),
        (
            "a string where an integer belongs",
            post(with(&|o| {
                o["spec"]["template"]["spec"]["containerConcurrency"] = json!("x")
            })),
            Refusal {
                code: StatusCode::UNPROCESSABLE_ENTITY,
                reason: "Invalid",
                message: "spec.template.spec.containerConcurrency in body must be of type integer: \"string\"",
            },
        ),
        (
            "traffic summing to 90",
            post(with(&|o| {
                o["spec"]["traffic"] = json!([{"latestRevision": true, "percent": 90}])
            })),
            bad_request(
                "admission webhook \"validation.webhook.serving.knative.dev\" denied the request: \
                 validation failed: Traffic targets sum to 90, want 100",
            ),
        ),
        (
            "a duplicate tag",
            post(with(&|o| {
                o["spec"]["traffic"] = json!([
                    {"tag": "a", "latestRevision": true, "percent": 50},
                    {"tag": "a", "latestRevision": true, "percent": 50}
                ])
            })),
            bad_request("Multiple definitions for \"a\""),
        ),
        (
            "a name of 64 characters",
            post(ksvc(&long_name)),
            bad_request(
                "validation failed: not a DNS 1035 label: it is 64 characters long; the most \
                 is 63: metadata.name",
            ),
        ),
        (
            "a 10 MB body",
            api.request(Method::POST, SERVICES)
                .header("content-type", "application/json")
                .body(ten_megabytes),
            Refusal {
                code: StatusCode::PAYLOAD_TOO_LARGE,
                reason: "RequestEntityTooLarge",
                message: "larger than the server's limit of 3145728 bytes",
            },
        ),
        (
            "garbage bytes",
            api.request(Method::POST, SERVICES)
                .header("content-type", "application/json")
                .body(garbage),
            bad_request("the request body is not valid JSON: expected value at line 1 column 1"),
        ),
        (
            "a JSON patch whose test fails",
            patch(
                "application/json-patch+json",
                json!([
                    {"op": "test", "path": "/metadata/name", "value": "not-hello"},
                    {"op": "replace", "path": "/metadata/labels", "value": {"patched": "yes"}}
                ])
                .to_string(),
            ),
            Refusal {
                code: StatusCode::UNPROCESSABLE_ENTITY,
                reason: "Invalid",
                message: "the server rejected our request due to an error in our request",
            },
        ),
        (
            "a strategic merge patch on a Knative Service",
            patch(
                "application/strategic-merge-patch+json",
                json!({"metadata": {"labels": {"patched": "yes"}}}).to_string(),
            ),
            Refusal {
                code: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                reason: "UnsupportedMediaType",
                message: "the body of the request was in an unknown format",
            },
        ),
        (
            "no token",
            api.http
                .post(format!("{}{SERVICES}", api.base))
                .json(&ksvc("other")),
            Refusal {
                code: StatusCode::UNAUTHORIZED,
                reason: "Unauthorized",
                message: "Unauthorized",
            },
        ),
        (
            "an unknown path without a token: whether it exists is not told",
            api.http.get(format!("{}/no/such/path", api.base)),
            Refusal {
                code: StatusCode::UNAUTHORIZED,
                reason: "Unauthorized",
                message: "Unauthorized",
            },
        ),
        (
            "an unknown path with the token",
            api.request(Method::GET, "/no/such/path"),
            Refusal {
                code: StatusCode::NOT_FOUND,
                reason: "NotFound",
                message: "the server could not find the requested resource",
            },
        ),
        (
            "a wrong token",
            api.http
                .post(format!("{}{SERVICES}", api.base))
                .bearer_auth(format!("{}x", api.token))
                .json(&ksvc("other")),
            Refusal {
                code: StatusCode::UNAUTHORIZED,
                reason: "Unauthorized",
                message: "Unauthorized",
            },
        ),
        (
            "a body whose namespace differs from the URL",
            post(with(&|o| o["metadata"]["namespace"] = json!("kube-system"))),
            bad_request(
                "the namespace of the provided object (kube-system) does not match the \
                 namespace sent on the request (default)",
            ),
        ),
    ];
    for (case, request, expected) in cases {
        let answer = Https::send(request)
            .await
            .unwrap_or_else(|error| panic!("{case}: no answer: {error:?}"));
        assert_refused(case, &answer, &expected);
        assert_eq!(snapshot(&api).await, before, "{case} changed the store");
    }
    assert_eq!(
        api.get(&format!("{SERVICES}/other")).await.code,
        StatusCode::NOT_FOUND
    );
    // Nothing wedged: the server still answers reads and writes.
    let after = api.create(&ksvc("after")).await;
    assert_eq!(after.code, StatusCode::CREATED, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_server_promptly_with_a_watch_open() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut server = ApiServerProcess::start(data.path());
    let api = server.client();
    let watch = api
        .request(Method::GET, &format!("{SERVICES}?watch=true"))
        .send()
        .await
        .expect("watch");
    assert_eq!(watch.status(), StatusCode::OK);
    let mut events = watch.bytes_stream();
    let created = api.create(&ksvc("hello")).await;
    assert_eq!(created.code, StatusCode::CREATED);
    let first = tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .expect("an event within 20 s")
        .expect("an event")
        .expect("event bytes");
    assert!(
        String::from_utf8_lossy(&first).contains("\"ADDED\""),
        "{first:?}"
    );

    let asked = Instant::now();
    server.process.terminate();
    // The watch ends (the server does not wait for the client to hang up) ...
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(_)) = events.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the open watch was not ended by SIGTERM");
    // ... and the process exits cleanly.
    let status = server.process.wait_exit();
    assert!(status.success(), "{status:?}");
    eprintln!("exited {:?} after SIGTERM", asked.elapsed());
}
