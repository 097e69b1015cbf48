//! What a kubectl user sees of the API itself, the same on `wisp up` and on a genuine
//! kube-apiserver with wisp's CRDs and webhooks: Knative's printer columns, `kubectl explain`
//! from the schemas, and admission refusals worded as Knative's webhook words them.

use crate::cluster::{Kube, image, ksvc};

/// How a denial by Knative's validating webhook starts, as kubectl prints it.
pub const WEBHOOK_DENIED: &str = "admission webhook \"validation.webhook.serving.knative.dev\" \
                                  denied the request: validation failed: ";

/// The header row of the table kubectl printed for `kind` (the tables of `get a,b,c` follow
/// one another, each with its header).
fn header_starting(printed: &str, first: &str) -> Vec<String> {
    printed
        .lines()
        .find(|line| line.starts_with("NAME") && line.contains(first))
        .unwrap_or_else(|| panic!("no table with {first:?} in:\n{printed}"))
        .split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `kubectl get ksvc,rev,route` prints Knative's columns for each kind, and `kubectl explain`
/// reads the schema of the template.
pub fn kubectl_prints_knative_columns_and_explains_the_schema(up: &Kube) {
    up.apply(&ksvc("cols", &image("hello")));
    up.wait_ready("ksvc", "cols");
    let printed = up.kubectl(&["get", "ksvc,rev,route"]);
    assert_eq!(
        header_starting(&printed, "LATESTCREATED"),
        [
            "NAME",
            "URL",
            "LATESTCREATED",
            "LATESTREADY",
            "READY",
            "REASON"
        ],
        "{printed}"
    );
    assert_eq!(
        header_starting(&printed, "CONFIG NAME"),
        [
            "NAME",
            "CONFIG NAME",
            "GENERATION",
            "READY",
            "REASON",
            "ACTUAL REPLICAS",
            "DESIRED REPLICAS"
        ],
        "{printed}"
    );
    let route_header = printed
        .lines()
        .filter(|line| line.starts_with("NAME"))
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells == &["NAME", "URL", "READY", "REASON"]);
    assert!(route_header.is_some(), "no Route table in:\n{printed}");
    assert!(
        printed.contains("service.serving.knative.dev/cols"),
        "{printed}"
    );
    assert!(
        printed.contains("revision.serving.knative.dev/cols-00001"),
        "{printed}"
    );
    assert!(
        printed.contains("route.serving.knative.dev/cols"),
        "{printed}"
    );

    let explained = up.kubectl(&["explain", "ksvc.spec.template"]);
    assert!(
        explained.contains("KIND:") && explained.contains("Service"),
        "{explained}"
    );
    assert!(explained.contains("FIELD: template"), "{explained}");
    assert!(explained.contains("spec\t<Object>"), "{explained}");
    let explained = up.kubectl(&["explain", "ksvc.spec.traffic.percent"]);
    assert!(explained.contains("<integer>"), "{explained}");
}

/// Knative's validation refuses bad input with the same words on either API server: traffic
/// that does not sum to 100, a tag defined twice, an invalid autoscaling annotation, and a
/// change to a Revision's spec. Nothing refused is stored.
pub fn admission_refusals_are_knatives_webhook_denials(up: &Kube) {
    let refused = |manifest: &str| -> String {
        let error = up.kubectl_fails(&["apply", "-f", "-"], Some(manifest));
        assert!(error.contains(WEBHOOK_DENIED), "{error}");
        error
    };
    let ninety =
        ksvc("bad", &image("hello")) + "  traffic:\n  - latestRevision: true\n    percent: 90\n";
    let error = refused(&ninety);
    assert!(
        error.contains(&format!(
            "{WEBHOOK_DENIED}Traffic targets sum to 90, want 100: spec.traffic"
        )),
        "{error}"
    );

    let twice = ksvc("bad", &image("hello"))
        + "  traffic:\n  - tag: v1\n    latestRevision: true\n    percent: 50\n  \
           - tag: v1\n    latestRevision: true\n    percent: 50\n";
    let error = refused(&twice);
    assert!(error.contains("Multiple definitions for \"v1\""), "{error}");
    assert!(error.contains("spec.traffic[1].tag"), "{error}");

    let annotated = ksvc("bad", &image("hello")).replace(
        "  template:\n    spec:",
        "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/min-scale: \"-1\"\n    spec:",
    );
    let error = refused(&annotated);
    assert!(
        error.contains("autoscaling.knative.dev/min-scale"),
        "{error}"
    );
    assert!(up.get("ksvc", "bad").is_none(), "nothing refused is stored");

    up.apply(&ksvc("fixed", &image("hello")));
    up.wait_for("revision", "fixed-00001", "was created", |_| true);
    let error = up.kubectl_fails(
        &[
            "patch",
            "revision",
            "fixed-00001",
            "--type",
            "merge",
            "--patch",
            r#"{"spec":{"timeoutSeconds":42}}"#,
        ],
        None,
    );
    assert!(error.contains(WEBHOOK_DENIED), "{error}");
    assert!(
        error.contains("Immutable fields changed (-old +new)"),
        "{error}"
    );
}

/// A revision cannot demand unbounded replicas: a memory limit below the 2Mi a replica needs and
/// a scale beyond Knative's int32 range are refused, each with the field, the bound and what to
/// set, on either API server (the genuine one through `wisp-webhook`).
pub fn replica_demands_beyond_the_bounds_are_refused(up: &Kube) {
    let tiny = ksvc("greedy", &image("hello")).replace(
        "    spec:\n      containers:\n      - image:",
        "    spec:\n      containers:\n      - resources:\n          limits:\n            memory: \"1\"\n        image:",
    );
    assert!(tiny.contains("memory: \"1\""), "{tiny}");
    let error = up.kubectl_fails(&["apply", "-f", "-"], Some(&tiny));
    assert!(error.contains(WEBHOOK_DENIED), "{error}");
    assert!(
        error.contains(
            "\"1\" (1 B) is below the 2Mi a replica needs to hold a WebAssembly component; set \
             it to 2Mi or more (e.g. 128Mi), or remove it to get the default: \
             spec.template.spec.containers[0].resources.limits.memory"
        ),
        "{error}"
    );

    let billions = ksvc("greedy", &image("hello")).replace(
        "  template:\n    spec:",
        "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/min-scale: \"4000000000\"\n    spec:",
    );
    let error = up.kubectl_fails(&["apply", "-f", "-"], Some(&billions));
    assert!(error.contains(WEBHOOK_DENIED), "{error}");
    assert!(
        error.contains(
            "autoscaling.knative.dev/min-scale = \"4000000000\" is invalid: it must be an \
             integer from 0 to 2147483647"
        ),
        "{error}"
    );
    assert!(
        up.get("ksvc", "greedy").is_none(),
        "nothing refused is stored"
    );
}

/// A `kind: List` file, which kubectl takes apart itself (checking its items against the
/// server's OpenAPI v2 document first): each item is applied, and applying again changes
/// nothing.
pub fn a_list_file_is_applied_item_by_item(up: &Kube) {
    let service: serde_json::Value =
        serde_norway::from_str(&ksvc("listed", &image("hello"))).expect("manifest");
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "listed"},
             "data": {"greeting": "hello"}},
            service,
        ],
    })
    .to_string();
    let applied = up.kubectl_with_input(&["apply", "-f", "-"], Some(&list));
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let printed = String::from_utf8_lossy(&applied.stdout);
    assert!(printed.contains("configmap/listed created"), "{printed}");
    assert!(
        printed.contains("service.serving.knative.dev/listed created"),
        "{printed}"
    );
    up.wait_ready("ksvc", "listed");
    let again = up.kubectl_with_input(&["apply", "-f", "-"], Some(&list));
    let printed = String::from_utf8_lossy(&again.stdout);
    assert!(printed.contains("configmap/listed unchanged"), "{printed}");
}

/// Registry credentials as Kubernetes users make them: `kubectl create secret docker-registry`
/// (whose body kubectl sends as protobuf) is stored as a `kubernetes.io/dockerconfigjson` Secret
/// holding the docker config, and a Secret of that type whose data is no docker config is
/// refused without its contents being quoted.
pub fn docker_registry_secrets_are_made_and_checked(up: &Kube) {
    up.kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "--docker-server=registry.example.com:5000",
        "--docker-username=puller",
        "--docker-password=conformance-s3cr3t",
    ]);
    let secret = up.get("secret", "regcred").expect("the secret");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let encoded = secret["data"][".dockerconfigjson"]
        .as_str()
        .expect("the docker config");
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    let config: serde_json::Value = serde_json::from_slice(&decoded).expect("JSON");
    assert_eq!(
        config["auths"]["registry.example.com:5000"]["username"],
        "puller"
    );

    let refused = up.kubectl_fails(
        &["apply", "-f", "-"],
        Some(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: broken\n\
             type: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"auths\": nope'\n",
        ),
    );
    assert!(
        refused.contains(
            "Secret \"broken\" is invalid: data[.dockerconfigjson]: Invalid value: \
             \"<secret contents redacted>\": "
        ),
        "{refused}"
    );
    assert!(!refused.contains("nope"), "{refused}");
    assert!(up.get("secret", "broken").is_none());
}
