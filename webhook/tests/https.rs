//! The webhook server over real HTTPS on loopback, called the way kube-apiserver calls it (a
//! client trusting only the generated CA), compared with what wisp's embedded API server does
//! with the same objects; and `config-defaults` watched live through the embedded server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use wisp_control::admission::{self, ClusterDefaults};
use wisp_control::apiserver::{ApiServer, ApiServerConfig};
use wisp_control::credentials::ADMIN_USER;
use wisp_webhook::certs::{self, CertBundle};
use wisp_webhook::server::{Limits, Server};
use wisp_webhook::tls::{self, CertSlot};

/// How long any wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

struct Running {
    server: Server,
    slot: Arc<CertSlot>,
    bundle: CertBundle,
}

impl Running {
    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.server.addr().port())
    }
}

async fn start(defaults: watch::Receiver<ClusterDefaults>, limits: Limits) -> Running {
    let names = certs::names(&[]).expect("default names");
    let bundle = certs::mint(&names, SystemTime::now(), certs::LEAF_VALIDITY, None).expect("mint");
    let key = certs::check(&bundle, &names, SystemTime::now()).expect("fresh certificate");
    let slot = CertSlot::new(key);
    let tls = tls::server_config(Arc::clone(&slot)).expect("tls");
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let server = Server::start(listener, tls, defaults, limits).expect("serve");
    Running {
        server,
        slot,
        bundle,
    }
}

/// An HTTPS client trusting `ca` (PEM, possibly several) and nothing else.
fn client_trusting(ca: &str) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .timeout(WAIT);
    for cert in reqwest::Certificate::from_pem_bundle(ca.as_bytes()).expect("PEM") {
        builder = builder.add_root_certificate(cert);
    }
    builder.build().expect("client")
}

fn review(operation: &str, plural: &str, object: &Value, user: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "c0ffee00-0000-4000-8000-000000000001",
            "kind": {"group": "serving.knative.dev", "version": "v1", "kind": "Service"},
            "resource": {"group": "serving.knative.dev", "version": "v1", "resource": plural},
            "name": object["metadata"]["name"],
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": user},
            "object": object,
            "oldObject": null,
        }
    })
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let response = client.post(url).json(body).send().await.expect("posted");
    assert_eq!(response.status(), 200, "{url}");
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["uid"],
        "c0ffee00-0000-4000-8000-000000000001"
    );
    answer["response"].clone()
}

fn apply_patch(object: &Value, response: &Value) -> Value {
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("patch"))
        .expect("base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("JSONPatch");
    let mut object = object.clone();
    json_patch::patch(&mut object, &patch).expect("applies");
    object
}

fn service(name: &str) -> Value {
    json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{"image": "hello.wasm", "env": [{"name": "TARGET", "value": "x"}]}]}}}
    })
}

/// wisp's embedded API server on loopback, and an admin client of it.
async fn embedded() -> (ApiServer, Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("data dir");
    let server = ApiServer::start(ApiServerConfig::new(
        dir.path(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    ))
    .await
    .expect("API server");
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let client = Client::try_from(config).expect("client");
    (server, client, dir)
}

fn services(client: &Client) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "serving.knative.dev".into(),
        version: "v1".into(),
        api_version: "serving.knative.dev/v1".into(),
        kind: "Service".into(),
        plural: "services".into(),
    };
    Api::namespaced_with(client.clone(), "default", &resource)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_and_refusals_match_the_embedded_server() {
    let (_defaults, receiver) = watch::channel(ClusterDefaults::KNATIVE);
    let webhook = start(receiver, Limits::default()).await;
    let https = client_trusting(&webhook.bundle.ca);
    let (api_server, client, _dir) = embedded().await;

    // Defaulting: the patched object holds what the embedded server stores for the same
    // Service written by the same user.
    let object = service("hello");
    let response = post(
        &https,
        &webhook.url("localhost", "/defaulting"),
        &review("CREATE", "services", &object, ADMIN_USER),
    )
    .await;
    let patched = apply_patch(&object, &response);
    let stored = services(&client)
        .create(
            &PostParams::default(),
            &serde_json::from_value(object.clone()).expect("object"),
        )
        .await
        .expect("the embedded server admits it");
    let stored = serde_json::to_value(stored).expect("json");
    assert_eq!(patched["spec"], stored["spec"]);
    for annotation in [
        "serving.knative.dev/creator",
        "serving.knative.dev/lastModifier",
    ] {
        assert_eq!(
            patched["metadata"]["annotations"][annotation],
            stored["metadata"]["annotations"][annotation],
            "{annotation}"
        );
    }
    assert_eq!(patched["spec"]["template"]["spec"]["timeoutSeconds"], 300);

    // Validation of what was defaulted: allowed.
    let response = post(
        &https,
        &webhook.url("127.0.0.1", "/validation"),
        &review("CREATE", "services", &patched, ADMIN_USER),
    )
    .await;
    assert_eq!(response["allowed"], true, "{response}");

    // Traffic summing to 90: what a real API server would show (its prefix before our
    // message) is exactly the embedded server's refusal.
    let mut ninety = service("ninety");
    ninety["spec"]["traffic"] = json!([{"latestRevision": true, "percent": 90}]);
    let defaulted = apply_patch(
        &ninety,
        &post(
            &https,
            &webhook.url("localhost", "/defaulting"),
            &review("CREATE", "services", &ninety, ADMIN_USER),
        )
        .await,
    );
    let response = post(
        &https,
        &webhook.url("localhost", "/validation"),
        &review("CREATE", "services", &defaulted, ADMIN_USER),
    )
    .await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 400);
    assert_eq!(response["status"]["reason"], "BadRequest");
    let shown = admission::denied_by(
        admission::WEBHOOK_NAME,
        response["status"]["message"].as_str().expect("message"),
    );
    let refusal = services(&client)
        .create(
            &PostParams::default(),
            &serde_json::from_value(ninety).expect("object"),
        )
        .await
        .expect_err("the embedded server refuses it");
    let kube::Error::Api(status) = refusal else {
        panic!("not an API refusal: {refusal}");
    };
    assert_eq!(status.code, 400);
    assert_eq!(shown, status.message);
    assert_eq!(
        shown,
        "admission webhook \"validation.webhook.serving.knative.dev\" denied the request: \
         validation failed: Traffic targets sum to 90, want 100: spec.traffic"
    );

    webhook.server.shutdown().await;
    api_server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_cost_only_themselves() {
    let (_defaults, receiver) = watch::channel(ClusterDefaults::KNATIVE);
    let limits = Limits {
        max_body: 64 * 1024,
        request_timeout: Duration::from_millis(500),
    };
    let webhook = start(receiver, limits).await;
    let https = client_trusting(&webhook.bundle.ca);
    let validation = webhook.url("localhost", "/validation");

    let malformed = https
        .post(&validation)
        .body("{\"apiVersion\": ")
        .send()
        .await
        .expect("sent");
    assert_eq!(malformed.status(), 400);
    assert!(
        malformed
            .text()
            .await
            .expect("text")
            .contains("not an AdmissionReview")
    );

    let huge = https
        .post(&validation)
        .body(vec![b' '; 64 * 1024 + 1])
        .send()
        .await
        .expect("sent");
    assert_eq!(huge.status(), 413);

    // A body that never finishes is cut off at the deadline.
    let stalled = futures::StreamExt::chain(
        futures::stream::iter([Ok::<_, std::io::Error>("{".to_owned())]),
        futures::stream::pending(),
    );
    let started = Instant::now();
    let slow = https
        .post(&validation)
        .body(reqwest::Body::wrap_stream(stalled))
        .send()
        .await
        .expect("answered");
    assert_eq!(slow.status(), 408);
    assert!(started.elapsed() < WAIT);

    let wrong_method = https.get(&validation).send().await.expect("sent");
    assert_eq!(wrong_method.status(), 405);
    let nowhere = https
        .post(webhook.url("localhost", "/mutate"))
        .send()
        .await
        .expect("sent");
    assert_eq!(nowhere.status(), 404);

    // Anything but a Knative kind is allowed untouched.
    let mut other = review(
        "CREATE",
        "configmaps",
        &json!({"metadata": {"name": "Bad_Name"}}),
        "u",
    );
    other["request"]["resource"]["group"] = json!("");
    let response = post(&https, &validation, &other).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none());

    // And the server still serves.
    let health = https
        .get(webhook.url("127.0.0.1", "/healthz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(health.status(), 200);
    webhook.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let (_defaults, receiver) = watch::channel(ClusterDefaults::KNATIVE);
    let webhook = start(receiver, Limits::default()).await;
    let url = webhook.url("localhost", "/healthz");
    let old_ca = client_trusting(&webhook.bundle.ca);
    assert_eq!(old_ca.get(&url).send().await.expect("sent").status(), 200);

    let names = certs::names(&[]).expect("names");
    let now = SystemTime::now();
    let renewed =
        certs::mint(&names, now, certs::LEAF_VALIDITY, Some(&webhook.bundle)).expect("mint");
    webhook
        .slot
        .set(certs::check(&renewed, &names, now).expect("usable"));

    // The new CA bundle (new CA, then the old one) trusts the new leaf; a client that trusts
    // only the old CA no longer does.
    let new_bundle = client_trusting(&renewed.ca);
    assert_eq!(
        new_bundle.get(&url).send().await.expect("sent").status(),
        200
    );
    let only_old = client_trusting(&webhook.bundle.ca);
    assert!(only_old.get(&url).send().await.is_err());
    webhook.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_config_defaults_applies_to_the_next_admission() {
    let (api_server, client, _dir) = embedded().await;
    let (defaults, watching) =
        wisp_webhook::defaults::watch_config_defaults(client.clone(), WAIT).await;
    let webhook = start(defaults, Limits::default()).await;
    let https = client_trusting(&webhook.bundle.ca);
    let timeout_of = || async {
        let object = service("hello");
        let response = post(
            &https,
            &webhook.url("localhost", "/defaulting"),
            &review("CREATE", "services", &object, "alice"),
        )
        .await;
        apply_patch(&object, &response)["spec"]["template"]["spec"]["timeoutSeconds"].clone()
    };
    assert_eq!(timeout_of().await, 300, "no config-defaults: Knative's");

    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "knative-serving");
    let map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "config-defaults", "namespace": "knative-serving"},
        "data": {"revision-timeout-seconds": "42"}
    });
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(map).expect("ConfigMap"),
        )
        .await
        .expect("created");
    let deadline = Instant::now() + WAIT;
    while timeout_of().await != 42 {
        assert!(Instant::now() < deadline, "config-defaults never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    config_maps
        .delete("config-defaults", &Default::default())
        .await
        .expect("deleted");
    while timeout_of().await != 300 {
        assert!(
            Instant::now() < deadline + WAIT,
            "a deleted config-defaults never gave Knative's defaults back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    watching.abort();
    webhook.server.shutdown().await;
    api_server.shutdown().await;
}
