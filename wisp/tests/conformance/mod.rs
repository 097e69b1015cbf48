//! Knative Serving's API conformance behaviours (reference/kubernetes-api.md §7), written once
//! against a [`Kube`]: `up_conformance.rs` runs them on `wisp up` (its embedded API server),
//! `kube_conformance.rs` on a genuine kube-apiserver with `wisp controller`s and `wisp node`s.
//! Each case works in the namespace its `Kube` acts in and names hosts through it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Kube, WAIT, condition, condition_of, image, ksvc};

pub mod api;
pub mod guests;
pub mod lifecycle;

fn str_at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Behaviour 1, 4, 10: create → Configuration, Route and Revision of the right names, all
/// Ready, the URL serves; the revision carries its generation and the component's digest.
pub fn create_service_becomes_ready_and_serves(up: &Kube) {
    up.apply(&ksvc("hello", &image("hello")));
    let service = up.wait_ready("ksvc", "hello");
    assert_eq!(
        str_at(&service, "/status/url"),
        format!("http://{}", up.host("hello"))
    );
    assert_eq!(
        str_at(&service, "/status/latestReadyRevisionName"),
        "hello-00001"
    );
    assert_eq!(condition(&service, "ConfigurationsReady"), Some("True"));
    assert_eq!(condition(&service, "RoutesReady"), Some("True"));
    let traffic = &service["status"]["traffic"];
    assert_eq!(traffic[0]["revisionName"], "hello-00001");
    assert_eq!(traffic[0]["percent"], 100);
    assert_eq!(traffic[0]["latestRevision"], true);

    up.wait_ready("configuration", "hello");
    up.wait_ready("route", "hello");
    let revision = up.wait_ready("revision", "hello-00001");
    assert_eq!(
        str_at(
            &revision,
            "/metadata/labels/serving.knative.dev~1configurationGeneration"
        ),
        "1"
    );
    assert_eq!(
        str_at(&revision, "/metadata/labels/serving.knative.dev~1service"),
        "hello"
    );
    let digest = str_at(&revision, "/status/containerStatuses/0/imageDigest");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "digest {digest:?}"
    );
    assert_eq!(condition(&revision, "ResourcesAvailable"), Some("True"));
    assert_eq!(condition(&revision, "ContainerHealthy"), Some("True"));

    assert_eq!(up.list("revisions", None).len(), 1);
    assert_eq!(up.list("configurations", None).len(), 1);
    assert_eq!(up.list("routes", None).len(), 1);

    let (status, body) = up.http_get(&up.host("hello"), "/");
    assert_eq!((status, body.as_str()), (200, "Hello from wisp!\n"));
    let printed = up.kubectl(&["get", "ksvc", "hello"]);
    assert!(
        printed.contains(&format!("http://{}", up.host("hello"))),
        "{printed}"
    );
    assert!(printed.contains("True"), "{printed}");
}

/// Behaviour 2: an image change makes `-00002`, which takes all traffic once Ready, while a
/// prober hitting the Service all along sees no error.
pub fn image_change_rolls_out_a_new_revision_without_errors(up: &Kube) {
    up.apply(&ksvc("roll", &image("hello")));
    up.wait_ready("ksvc", "roll");

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let successes = Arc::new(AtomicUsize::new(0));
    let prober = {
        let (stop, failures, successes) = (stop.clone(), failures.clone(), successes.clone());
        let http = up.http().clone();
        let url = format!("http://{}/", up.gateway);
        let host = up.host("roll");
        up.runtime().spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let answer = http.get(&url).header("host", &host).send().await;
                match answer {
                    Ok(response) if response.status() == 200 => {
                        successes.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(response) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        errors.push(response.status().to_string());
                    }
                    Err(error) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        errors.push(error.to_string());
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            errors
        })
    };

    up.apply(&ksvc("roll", &image("echo")));
    let service = up.wait_for("ksvc", "roll", "moved to -00002", |s| {
        condition(s, "Ready") == Some("True")
            && str_at(s, "/status/traffic/0/revisionName") == "roll-00002"
    });
    assert_eq!(
        str_at(&service, "/status/latestCreatedRevisionName"),
        "roll-00002"
    );
    assert_eq!(
        str_at(&service, "/status/latestReadyRevisionName"),
        "roll-00002"
    );
    // Now every request reaches echo (an empty body back for an empty GET), not hello.
    for _ in 0..20 {
        let (status, body) = up.http_get(&up.host("roll"), "/");
        assert_eq!((status, body.as_str()), (200, ""));
    }
    // The prober's own requests after the switch: it has seen more than the rollout.
    let seen = successes.load(Ordering::Relaxed);
    let deadline = Instant::now() + WAIT;
    while successes.load(Ordering::Relaxed) < seen + 20 && failures.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the prober stalled");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let errors = up.runtime().block_on(prober).expect("prober");
    assert!(successes.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "prober errors: {errors:?}"
    );
}

/// Behaviour 3: editing template labels, then annotations, each makes a new revision.
pub fn template_metadata_changes_create_revisions(up: &Kube) {
    let base = ksvc("meta", &image("hello"));
    up.apply(&base);
    up.wait_ready("ksvc", "meta");
    let labelled = base.replace(
        "  template:\n",
        "  template:\n    metadata:\n      labels:\n        tier: gold\n",
    );
    up.apply(&labelled);
    let revision = up.wait_ready("revision", "meta-00002");
    assert_eq!(str_at(&revision, "/metadata/labels/tier"), "gold");
    let annotated = base.replace(
        "  template:\n",
        "  template:\n    metadata:\n      labels:\n        tier: gold\n      annotations:\n        note: second\n",
    );
    up.apply(&annotated);
    let revision = up.wait_ready("revision", "meta-00003");
    assert_eq!(str_at(&revision, "/metadata/annotations/note"), "second");
    up.wait_for("ksvc", "meta", "reported -00003 as latest", |s| {
        str_at(s, "/status/latestReadyRevisionName") == "meta-00003"
    });
    // A traffic-only change makes no revision.
    assert_eq!(
        up.list("revisions", Some("serving.knative.dev/service=meta"))
            .len(),
        3
    );
}

/// Behaviours 5, 6, 12: Service labels and annotations reach the Configuration and Route (and
/// their removal too); the revision is labelled with its configuration and service; a label
/// put on the Configuration itself does not reach revisions; creator and lastModifier are set.
pub fn labels_and_annotations_propagate(up: &Kube) {
    let with = ksvc("prop", &image("hello")).replace(
        "  name: prop\n",
        "  name: prop\n  labels:\n    juicy: \"yes\"\n  annotations:\n    team: blue\n",
    );
    up.apply(&with);
    up.wait_ready("ksvc", "prop");
    for kind in ["configuration", "route"] {
        let child = up.get(kind, "prop").expect("child exists");
        assert_eq!(str_at(&child, "/metadata/labels/juicy"), "yes", "{kind}");
        assert_eq!(
            str_at(&child, "/metadata/labels/serving.knative.dev~1service"),
            "prop"
        );
        assert_eq!(
            str_at(&child, "/metadata/annotations/team"),
            "blue",
            "{kind}"
        );
        assert_eq!(
            str_at(&child, "/metadata/annotations/serving.knative.dev~1creator"),
            up.admin_user(),
            "{kind}"
        );
        assert!(
            !str_at(
                &child,
                "/metadata/annotations/serving.knative.dev~1lastModifier"
            )
            .is_empty()
        );
        let owner = &child["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "Service");
        assert_eq!(owner["controller"], true);
    }
    let revision = up.get("revision", "prop-00001").expect("revision");
    assert_eq!(
        str_at(
            &revision,
            "/metadata/labels/serving.knative.dev~1configuration"
        ),
        "prop"
    );
    assert_eq!(
        str_at(&revision, "/metadata/labels/serving.knative.dev~1service"),
        "prop"
    );

    up.kubectl(&["label", "configuration", "prop", "only-here=1"]);
    up.apply(&ksvc("prop", &image("hello")));
    for kind in ["configuration", "route"] {
        up.wait_for(kind, "prop", "lost the removed label and annotation", |c| {
            c.pointer("/metadata/labels/juicy").is_none()
                && c.pointer("/metadata/annotations/team").is_none()
        });
    }
    let revisions = up.list("revisions", Some("only-here=1"));
    assert!(
        revisions.is_empty(),
        "configuration labels are not copied to revisions"
    );
}

/// Behaviour 7: a BYO revision name is honoured; changing the template without a new name is
/// refused by the API.
pub fn byo_revision_name_and_refused_change_without_rename(up: &Kube) {
    let named = ksvc("byo", &image("hello")).replace(
        "  template:\n",
        "  template:\n    metadata:\n      name: byo-first\n",
    );
    up.apply(&named);
    let service = up.wait_ready("ksvc", "byo");
    assert_eq!(
        str_at(&service, "/status/latestReadyRevisionName"),
        "byo-first"
    );
    up.wait_ready("revision", "byo-first");
    let changed = named.replace(&image("hello"), &image("echo"));
    let error = up.kubectl_fails(&["apply", "-f", "-"], Some(&changed));
    assert!(
        error.contains("Saw the following changes without a name change"),
        "{error}"
    );
    let renamed = changed.replace("byo-first", "byo-second");
    up.apply(&renamed);
    up.wait_for("ksvc", "byo", "moved to byo-second", |s| {
        condition(s, "Ready") == Some("True")
            && str_at(s, "/status/traffic/0/revisionName") == "byo-second"
    });
}

fn traffic_by_tag(object: &Value) -> BTreeMap<String, (String, i64, String)> {
    object["status"]["traffic"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t["tag"].as_str()?.to_owned(),
                (
                    t["revisionName"].as_str().unwrap_or("").to_owned(),
                    t["percent"].as_i64().unwrap_or(0),
                    t["url"].as_str().unwrap_or("").to_owned(),
                ),
            ))
        })
        .collect()
}

/// Behaviour 8: release shapes — `current` pinned at 100 and `latest` following at 0; a new
/// image keeps traffic pinned while `latest` moves; 50/50 with `candidate` as latestRevision.
pub fn release_traffic_shapes_with_tags(up: &Kube) {
    let release = |image_path: &str, traffic: &str| {
        format!("{}  traffic:\n{traffic}", ksvc("rel", image_path))
    };
    up.apply(&ksvc("rel", &image("hello")));
    up.wait_ready("ksvc", "rel");
    let pinned = "  - tag: current\n    revisionName: rel-00001\n    percent: 100\n  \
                  - tag: latest\n    latestRevision: true\n    percent: 0\n";
    up.apply(&release(&image("hello"), pinned));
    up.apply(&release(&image("echo"), pinned));
    let service = up.wait_for("ksvc", "rel", "routed latest to -00002", |s| {
        condition(s, "Ready") == Some("True")
            && traffic_by_tag(s).get("latest").map(|t| t.0.as_str()) == Some("rel-00002")
    });
    let tags = traffic_by_tag(&service);
    assert_eq!(tags["current"].0, "rel-00001");
    assert_eq!(tags["current"].1, 100);
    assert_eq!(
        tags["current"].2,
        format!("http://{}", up.host("current-rel"))
    );
    assert_eq!(
        tags["latest"].2,
        format!("http://{}", up.host("latest-rel"))
    );
    // The main host still answers from -00001 (hello); the latest tag host from -00002 (echo).
    let (status, body) = up.http_get(&up.host("rel"), "/");
    assert_eq!((status, body.as_str()), (200, "Hello from wisp!\n"));
    let (status, body) = up.http_get(&up.host("latest-rel"), "/");
    assert_eq!(status, 200);
    assert_ne!(body, "Hello from wisp!\n");

    let split = "  - tag: current\n    revisionName: rel-00001\n    percent: 50\n  \
                 - tag: candidate\n    latestRevision: true\n    percent: 50\n";
    up.apply(&release(&image("echo"), split));
    let service = up.wait_for("ksvc", "rel", "split 50/50", |s| {
        condition(s, "Ready") == Some("True") && traffic_by_tag(s).contains_key("candidate")
    });
    let tags = traffic_by_tag(&service);
    assert_eq!(
        tags["candidate"].0, "rel-00002",
        "latestRevision resolves to the newest"
    );
    assert_eq!((tags["current"].1, tags["candidate"].1), (50, 50));
}

/// Behaviour 9: blue/green — a 50/50 split is about even over many requests and each tag
/// host reaches exactly its revision.
pub fn blue_green_split_is_even_and_tags_are_exact(up: &Kube) {
    let blue = ksvc("bg", &image("hello")).replace(
        "  template:\n",
        "  template:\n    metadata:\n      name: bg-blue\n",
    );
    up.apply(&blue);
    up.wait_ready("ksvc", "bg");
    let green = ksvc("bg", &image("echo")).replace(
        "  template:\n",
        "  template:\n    metadata:\n      name: bg-green\n",
    ) + "  traffic:\n  - tag: blue\n    revisionName: bg-blue\n    percent: 50\n  \
         - tag: green\n    revisionName: bg-green\n    percent: 50\n";
    up.apply(&green);
    up.wait_for("ksvc", "bg", "split between blue and green", |s| {
        condition(s, "Ready") == Some("True") && traffic_by_tag(s).len() == 2
    });
    let mut blue_hits = 0;
    const REQUESTS: usize = 400;
    for _ in 0..REQUESTS {
        let (status, body) = up.http_get(&up.host("bg"), "/");
        assert_eq!(status, 200);
        if body == "Hello from wisp!\n" {
            blue_hits += 1;
        }
    }
    // Binomial(400, 0.5): 160..240 is more than four standard deviations either way.
    assert!(
        (160..=240).contains(&blue_hits),
        "blue got {blue_hits} of {REQUESTS}"
    );
    for _ in 0..20 {
        let (_, body) = up.http_get(&up.host("blue-bg"), "/");
        assert_eq!(body, "Hello from wisp!\n");
        let (_, body) = up.http_get(&up.host("green-bg"), "/");
        assert_ne!(body, "Hello from wisp!\n");
    }
}

/// Behaviours 11, 13: a Route and a Configuration created directly (one with generateName)
/// become Ready and serve.
pub fn route_and_configuration_created_directly(up: &Kube) {
    let configuration = format!(
        "apiVersion: serving.knative.dev/v1\nkind: Configuration\nmetadata:\n  name: direct\n\nspec:\n  template:\n    spec:\n      containers:\n      - image: {}\n",
        image("hello")
    );
    let route = "apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata:\n  name: direct\n\nspec:\n  traffic:\n  - configurationName: direct\n    \
                 percent: 100\n";
    up.apply(&configuration);
    up.apply(route);
    let configuration = up.wait_ready("configuration", "direct");
    assert_eq!(
        str_at(&configuration, "/status/latestReadyRevisionName"),
        "direct-00001"
    );
    let route = up.wait_ready("route", "direct");
    assert_eq!(
        str_at(&route, "/status/url"),
        format!("http://{}", up.host("direct"))
    );
    let (status, body) = up.http_get(&up.host("direct"), "/");
    assert_eq!((status, body.as_str()), (200, "Hello from wisp!\n"));

    let generated = format!(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  generateName: gen-\n\nspec:\n  template:\n    spec:\n      containers:\n      - image: {}\n",
        image("hello")
    );
    let created = up.kubectl_with_input(&["create", "-f", "-", "-o", "name"], Some(&generated));
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let name = String::from_utf8_lossy(&created.stdout)
        .trim()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(name.starts_with("gen-") && name.len() > 4, "{name}");
    up.wait_ready("ksvc", &name);
    let (status, _) = up.http_get(&up.host(&name), "/");
    assert_eq!(status, 200);
}

/// Behaviour 14: a missing component makes the Service, Configuration and Revision
/// Ready=False, with a reason and a message naming the path.
pub fn missing_image_fails_with_reason_and_message(up: &Kube) {
    let missing = std::env::temp_dir().join("wisp-tests-no-such-component.wasm");
    up.apply(&ksvc("lost", &missing.display().to_string()));
    let revision = up.wait_failed("revision", "lost-00001");
    let configuration = up.wait_failed("configuration", "lost");
    let service = up.wait_failed("ksvc", "lost");
    for object in [&revision, &configuration, &service] {
        let ready = condition_of(object, "Ready").expect("Ready condition");
        let reason = ready["reason"].as_str().unwrap_or("");
        let message = ready["message"].as_str().unwrap_or("");
        assert!(!reason.is_empty(), "{ready}");
        assert!(message.contains("no-such-component.wasm"), "{ready}");
        assert!(
            up.node_names()
                .iter()
                .any(|node| message.contains(&format!("(on node {node})"))),
            "the node is named: {ready}"
        );
    }
    let (status, _) = up.http_get(&up.host("lost"), "/");
    assert_eq!(
        status, 404,
        "a Service that never became ready has no route yet"
    );
}

/// Behaviour 15 for WebAssembly: a component that traps is the crashing container. With an
/// HTTP readiness probe (as Knative's conformance image declares one) its revision, the
/// Configuration and the Service go Ready=False with a reason and a message; without one, the
/// trap is each request's own 500 — and either way other Services keep serving.
pub fn trapping_component_fails_its_probe_and_harms_nothing_else(up: &Kube) {
    let probed = ksvc("crash", &image("trap")).replace(
        "      - image: ",
        "      - readinessProbe:\n          httpGet:\n            path: /healthz\n        image: ",
    );
    up.apply(&probed);
    up.apply(&ksvc("trap", &image("trap")));
    up.apply(&ksvc("fine", &image("hello")));
    let revision = up.wait_failed("revision", "crash-00001");
    let configuration = up.wait_failed("configuration", "crash");
    let service = up.wait_failed("ksvc", "crash");
    let ready = condition_of(&revision, "Ready").expect("Ready");
    assert_eq!(ready["reason"], "ProbeFailed", "{ready}");
    for object in [&revision, &configuration, &service] {
        let ready = condition_of(object, "Ready").expect("Ready");
        let message = ready["message"].as_str().unwrap_or("");
        assert!(message.contains("GET /healthz answered 500"), "{ready}");
    }
    assert_eq!(up.http_get(&up.host("crash"), "/").0, 404, "never routed");

    up.wait_ready("ksvc", "trap");
    up.wait_ready("ksvc", "fine");
    for _ in 0..5 {
        let (status, body) = up.http_get(&up.host("trap"), "/");
        assert_eq!(status, 500, "{body}");
        let (status, _) = up.http_get(&up.host("fine"), "/");
        assert_eq!(status, 200);
    }
}

/// Behaviour 16: with `timeoutSeconds: 1`, a request that answers in 0.3 s succeeds and one
/// that would take 3 s gets 504.
pub fn revision_timeout_gives_504_and_faster_requests_succeed(up: &Kube) {
    let manifest = ksvc("slow", &image("sleep")).replace(
        "    spec:\n      containers:",
        "    spec:\n      timeoutSeconds: 1\n      containers:",
    );
    up.apply(&manifest);
    up.wait_ready("ksvc", "slow");
    let (status, body) = up.http_get(&up.host("slow"), "/?ms=300");
    assert_eq!(status, 200, "{body}");
    let (status, _) = up.http_get(&up.host("slow"), "/?ms=3000");
    assert_eq!(status, 504);
}

/// Behaviour 17: `containerConcurrency: 1` — the single replica allowed never runs two
/// requests at once under parallel load.
pub fn container_concurrency_one_is_enforced(up: &Kube) {
    let manifest = ksvc("single", &image("sleep")).replace(
        "  template:\n    spec:\n      containers:",
        "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/max-scale: \"1\"\n    spec:\n      containerConcurrency: 1\n      containers:",
    );
    up.apply(&manifest);
    up.wait_ready("ksvc", "single");
    let http = up.http().clone();
    let url = format!("http://{}/?ms=100", up.gateway);
    let host = up.host("single");
    let intervals: Vec<(u64, u64)> = up.runtime().block_on(async move {
        let requests = (0..8).map(|_| {
            let http = http.clone();
            let url = url.clone();
            let host = host.clone();
            async move {
                let response = http
                    .get(url)
                    .header("host", &host)
                    .send()
                    .await
                    .expect("answer");
                let status = response.status();
                let text = response.text().await.expect("a body");
                assert_eq!(status, 200, "{text}");
                sleep_interval(&text)
            }
        });
        futures::future::join_all(requests).await
    });
    assert_eq!(intervals.len(), 8);
    let mut sorted = intervals.clone();
    sorted.sort();
    for pair in sorted.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "two requests overlapped in the one replica: {sorted:?}"
        );
    }
}

/// The sleep sample's `start_unix_ns` and `end_unix_ns`, parsed strictly: a body without both as
/// whole numbers, or with the end before the start, fails the test with the body, so the overlap
/// check cannot pass on values it did not read.
fn sleep_interval(body: &str) -> (u64, u64) {
    let json: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("the sleep sample's reply is not JSON ({e}): {body}"));
    let field = |name: &str| {
        json[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no whole number {name} in the sleep sample's reply: {body}"))
    };
    let (start, end) = (field("start_unix_ns"), field("end_unix_ns"));
    assert!(start > 0 && end >= start, "implausible interval in {body}");
    (start, end)
}

/// Behaviour 18: the container's memory limit is enforced — an allocation within it works,
/// one beyond it fails.
pub fn memory_limit_is_enforced(up: &Kube) {
    let manifest = ksvc("hog", &image("hog")).replace(
        "      - image: ",
        "      - resources:\n          limits:\n            memory: 32Mi\n        image: ",
    );
    up.apply(&manifest);
    up.wait_ready("ksvc", "hog");
    let (status, body) = up.http_get(&up.host("hog"), "/?mb=8");
    assert_eq!((status, body.as_str()), (200, "allocated 8 MiB\n"));
    let (status, _) = up.http_get(&up.host("hog"), "/?mb=64");
    assert_eq!(status, 500, "64 MiB does not fit in a 32 MiB limit");
    let (status, _) = up.http_get(&up.host("hog"), "/?mb=8");
    assert_eq!(status, 200, "the next request starts afresh");
}

/// Behaviour 22: an invalid serviceAccountName is refused at create time with Knative's text.
pub fn invalid_service_account_name_is_refused(up: &Kube) {
    let manifest = ksvc("sa", &image("hello")).replace(
        "    spec:\n      containers:",
        "    spec:\n      serviceAccountName: Not_Valid\n      containers:",
    );
    let error = up.kubectl_fails(&["apply", "-f", "-"], Some(&manifest));
    assert!(
        error.contains("spec.template.spec.serviceAccountName"),
        "{error}"
    );
    assert!(up.get("ksvc", "sa").is_none());
}
