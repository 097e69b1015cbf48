use std::path::PathBuf;
use std::time::Duration;

use wisp_gateway::sync::spec::resolve_image;

use super::*;
use crate::file::parse;

const BASE: &str = "/srv/manifests";

fn file(text: &str) -> ServicesFile {
    ServicesFile {
        name: "svc.yaml".into(),
        base_dir: PathBuf::from(BASE),
        documents: parse("svc.yaml", text).unwrap(),
    }
}

fn plan_of(text: &str) -> ServePlan {
    plan(&file(text), &Domain::default()).unwrap()
}

/// Every message, one per line.
fn errors_of(text: &str) -> String {
    plan(&file(text), &Domain::default())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Service named `name` whose container and template spec get `extra` lines (indented
/// under `spec.template.spec`), and whose service spec gets `traffic` lines.
fn service(name: &str, template: &str, traffic: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  template:\n{template}    spec:\n      containers:\n        - image: {name}.wasm\n{traffic}"
    )
}

#[test]
fn a_minimal_service_gets_knative_defaults() {
    let plan = plan_of(&service("hello", "", ""));
    let [hello] = plan.services.as_slice() else {
        panic!("one service expected");
    };
    assert_eq!(hello.document, 1);
    assert_eq!(hello.id(), "default/hello");
    let revision = &hello.revision;
    assert_eq!(revision.key, RevisionKey::new("default", "hello-00001"));
    assert_eq!(revision.service, "hello");
    assert_eq!(revision.configuration, "hello");
    assert_eq!(revision.component, "/srv/manifests/hello.wasm");
    assert_eq!(revision.container_concurrency, 0);
    assert_eq!(revision.timeout, Duration::from_secs(300));
    assert_eq!(revision.memory_limit, None);
    assert!(revision.env.is_empty());
    assert!(revision.annotations.is_empty());
    assert_eq!(
        hello.route,
        RouteConfig::new(
            "default",
            "hello",
            vec![TrafficTarget::new("hello-00001", 100)]
        )
    );
}

#[test]
fn every_field_reaches_the_revision() {
    let text = r#"
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: sleep
  namespace: bench
  annotations:
    ignored: "service annotations stay on the Service"
spec:
  template:
    metadata:
      name: sleep-v2
      annotations:
        autoscaling.knative.dev/min-scale: "1"
    spec:
      containerConcurrency: 10
      timeoutSeconds: 30
      containers:
        - image: ../build/sleep.wasm
          env:
            - name: MODE
              value: fast
            - name: EMPTY
          resources:
            limits:
              memory: 64Mi
          ports:
            - containerPort: 8080
"#;
    let plan = plan_of(text);
    let revision = &plan.services[0].revision;
    assert_eq!(revision.key, RevisionKey::new("bench", "sleep-v2"));
    assert_eq!(revision.component, "/srv/manifests/../build/sleep.wasm");
    assert_eq!(revision.container_concurrency, 10);
    assert_eq!(revision.timeout, Duration::from_secs(30));
    assert_eq!(revision.memory_limit, Some(64 << 20));
    assert_eq!(
        revision.env,
        [
            ("MODE".into(), "fast".into()),
            ("EMPTY".into(), String::new())
        ]
    );
    assert_eq!(revision.annotations.len(), 1);
    assert_eq!(
        revision.annotations["autoscaling.knative.dev/min-scale"],
        "1"
    );
    assert_eq!(plan.services[0].route.namespace, "bench");
    assert_eq!(plan.services[0].route.traffic[0].revision, "sleep-v2");
}

#[test]
fn images_resolve_against_the_manifest_directory() {
    let resolve = |image: &str| resolve_image(image, Path::new(BASE)).unwrap();
    assert_eq!(resolve("hello.wasm"), "/srv/manifests/hello.wasm");
    assert_eq!(resolve("./hello.wasm"), "/srv/manifests/./hello.wasm");
    assert_eq!(
        resolve("../../target/hello.wasm"),
        "/srv/manifests/../../target/hello.wasm"
    );
    assert_eq!(resolve("file:hello.wasm"), "/srv/manifests/hello.wasm");
    assert_eq!(resolve("/abs/hello.wasm"), "/abs/hello.wasm");
    assert_eq!(resolve("file:///abs/hello.wasm"), "/abs/hello.wasm");
    assert_eq!(
        resolve("https://example.com/hello.wasm"),
        "https://example.com/hello.wasm"
    );
}

#[test]
fn names_are_checked() {
    let text = "apiVersion: serving.knative.dev/v1\nkind: Service\nspec: {}\n";
    let message = errors_of(text);
    assert_eq!(
        message,
        "svc.yaml, document 1: metadata.name is missing; name the Service (it becomes the host name)"
    );
    let message = errors_of(&service("1st", "", ""));
    assert!(
        message.contains("metadata.name \"1st\" is not valid: "),
        "{message}"
    );
    assert!(message.contains("must start with a letter"), "{message}");
    let message = errors_of(&service("Hello", "", ""));
    assert!(message.contains("metadata.name \"Hello\""), "{message}");
    let message =
        errors_of(&service("x", "", "").replace("  name: x", "  name: x\n  namespace: Team"));
    assert!(
        message.contains("metadata.namespace \"Team\" is not valid"),
        "{message}"
    );
}

#[test]
fn the_revision_name_follows_knative_rules() {
    let named = |name: &str| service("hello", &format!("    metadata:\n      name: {name}\n"), "");
    assert_eq!(
        plan_of(&named("hello-blue")).services[0].revision.key.name,
        "hello-blue"
    );
    let message = errors_of(&named("other-00001"));
    assert!(message.contains("(service default/hello)"), "{message}");
    assert!(
        message.contains("must start with the Service's name and a dash"),
        "{message}"
    );
    assert!(errors_of(&named("hello-")).contains("must start with"));
    let message = errors_of(&named("hello-Blue"));
    assert!(
        message.contains("spec.template.metadata.name \"hello-Blue\" is not valid"),
        "{message}"
    );
}

#[test]
fn exactly_one_container_with_an_image() {
    let base = service("hello", "", "");
    let none = base.replace(
        "      containers:\n        - image: hello.wasm\n",
        "      containers: []\n",
    );
    assert!(errors_of(&none).contains("containers is empty; add one container"));
    let two = base.replace(
        "- image: hello.wasm\n",
        "- image: hello.wasm\n        - image: sidecar.wasm\n",
    );
    assert!(errors_of(&two).contains("has 2 entries; wisp runs exactly one component"));
    let empty = base.replace("- image: hello.wasm", "- image: \"  \"");
    let message = errors_of(&empty);
    assert_eq!(
        message,
        "svc.yaml, document 1 (service default/hello): spec.template.spec.containers[0].image is \
         empty; set it to the path or URL of a .wasm component"
    );
    let missing = base.replace("- image: hello.wasm", "- name: user-container");
    assert!(errors_of(&missing).contains("image is empty"));
}

#[test]
fn ranges_are_checked() {
    let with_spec = |line: &str| {
        service("hello", "", "").replace("    spec:\n", &format!("    spec:\n      {line}\n"))
    };
    assert_eq!(
        plan_of(&with_spec("containerConcurrency: 1000")).services[0]
            .revision
            .container_concurrency,
        1000
    );
    assert!(
        errors_of(&with_spec("containerConcurrency: 1001"))
            .contains("containerConcurrency is 1001; it must be from 0 (unlimited) to 1000")
    );
    assert!(errors_of(&with_spec("containerConcurrency: -1")).contains("is -1"));
    assert_eq!(
        plan_of(&with_spec("timeoutSeconds: 3600")).services[0]
            .revision
            .timeout,
        Duration::from_secs(3600)
    );
    assert!(
        errors_of(&with_spec("timeoutSeconds: 0"))
            .contains("timeoutSeconds is 0; it must be from 1 to 3600")
    );
    assert!(errors_of(&with_spec("timeoutSeconds: 3601")).contains("timeoutSeconds is 3601"));
}

#[test]
fn container_details_are_checked() {
    let with_container = |lines: &str| {
        service("hello", "", "").replace(
            "- image: hello.wasm\n",
            &format!("- image: hello.wasm\n{lines}"),
        )
    };
    let message = errors_of(&with_container(
        "          resources:\n            limits:\n              memory: lots\n",
    ));
    assert!(
        message.contains("resources.limits.memory: invalid memory quantity \"lots\""),
        "{message}"
    );
    let message = errors_of(&with_container(
        "          resources:\n            limits:\n              memory: 0\n",
    ));
    assert!(message.contains("limits.memory is 0"), "{message}");
    let message = errors_of(&with_container(
        "          env:\n            - name: SECRET\n              valueFrom:\n                secretKeyRef: {name: s, key: k}\n",
    ));
    assert!(message.contains("env SECRET uses valueFrom"), "{message}");
    assert!(message.contains("give it a literal value"), "{message}");
    let message = errors_of(&with_container("          env:\n            - value: x\n"));
    assert!(message.contains("env[0] has no name"), "{message}");
    let message = errors_of(&with_container(
        "          ports:\n            - containerPort: 1\n            - containerPort: 2\n",
    ));
    assert!(message.contains("more than one port"), "{message}");
}

fn traffic_of(lines: &str) -> Result<Vec<TrafficTarget>, String> {
    let text = service("hello", "", &format!("  traffic:\n{lines}"));
    match plan(&file(&text), &Domain::default()) {
        Ok(plan) => Ok(plan.services[0].route.traffic.clone()),
        Err(errors) => Err(errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

#[test]
fn traffic_entries_may_name_only_this_revision() {
    assert_eq!(
        traffic_of("    - latestRevision: true\n      percent: 100\n").unwrap(),
        [TrafficTarget::new("hello-00001", 100)]
    );
    assert_eq!(
        traffic_of("    - percent: 100\n").unwrap(),
        [TrafficTarget::new("hello-00001", 100)],
        "no revisionName defaults to the latest revision"
    );
    assert_eq!(
        traffic_of("    - revisionName: hello-00001\n      percent: 100\n").unwrap(),
        [TrafficTarget::new("hello-00001", 100)]
    );
    let message = traffic_of("    - revisionName: hello-00002\n      percent: 100\n").unwrap_err();
    assert!(
        message.contains(
            "spec.traffic[0].revisionName \"hello-00002\" is not this Service's revision"
        ),
        "{message}"
    );
    assert!(message.contains("one revision per Service"), "{message}");
    let message = traffic_of(
        "    - revisionName: hello-00001\n      latestRevision: true\n      percent: 100\n",
    )
    .unwrap_err();
    assert!(
        message.contains("sets both revisionName and latestRevision: true"),
        "{message}"
    );
    let message = traffic_of("    - latestRevision: false\n      percent: 100\n").unwrap_err();
    assert!(
        message.contains("latestRevision: false but no revisionName"),
        "{message}"
    );
    let message = traffic_of("    - configurationName: hello\n      percent: 100\n").unwrap_err();
    assert!(
        message.contains("configurationName is not allowed"),
        "{message}"
    );
}

#[test]
fn traffic_tags_are_kept_and_percents_must_sum_to_100() {
    assert_eq!(
        traffic_of("    - latestRevision: true\n      percent: 100\n    - revisionName: hello-00001\n      tag: current\n")
            .unwrap(),
        [
            TrafficTarget::new("hello-00001", 100),
            TrafficTarget::new("hello-00001", 0).tagged("current"),
        ]
    );
    let message = traffic_of("    - percent: 60\n    - percent: 30\n      tag: b\n").unwrap_err();
    assert!(
        message.contains("spec.traffic percents sum to 90; they must sum to 100"),
        "{message}"
    );
    let message = traffic_of("    - percent: 101\n").unwrap_err();
    assert!(
        message.contains("spec.traffic[0].percent is 101"),
        "{message}"
    );
    let message = traffic_of("    - percent: 100\n      tag: Bad_Tag\n").unwrap_err();
    assert!(
        message.contains("spec.traffic: tag \"Bad_Tag\" is not a DNS label"),
        "{message}"
    );
    let message = traffic_of("    - percent: 50\n      tag: x\n    - percent: 50\n      tag: x\n")
        .unwrap_err();
    assert!(
        message.contains("tag \"x\" appears more than once"),
        "{message}"
    );
}

#[test]
fn duplicates_across_documents_are_rejected() {
    let hello = service("hello", "", "");
    let message = errors_of(&format!("{hello}---\n{hello}"));
    assert_eq!(
        message,
        "svc.yaml, document 2 (service default/hello): document 1 already defines this Service; \
         give one of them another metadata.name, or merge them"
    );
    // The same name in another namespace is another Service.
    let other = hello.replace("  name: hello", "  name: hello\n  namespace: other");
    assert_eq!(plan_of(&format!("{hello}---\n{other}")).services.len(), 2);
    // Two Services whose revisions would share a name.
    let a = service("a", "    metadata:\n      name: a-b-00001\n", "");
    let ab = service("a-b", "", "");
    let message = errors_of(&format!("{a}---\n{ab}"));
    assert!(message.contains("document 2 (service default/a-b): its revision default/a-b-00001 is also made by document 1"), "{message}");
}

#[test]
fn host_clashes_between_services_name_the_document() {
    // Service `b`'s tag `a` would be served at `a-b.default.localhost`, the host of Service `a-b`.
    let ab = service("a-b", "", "");
    let b = service("b", "", "  traffic:\n    - percent: 100\n      tag: a\n");
    let message = errors_of(&format!("{ab}---\n{b}"));
    assert!(
        message.contains("document 2 (service default/b)"),
        "{message}"
    );
    assert!(message.contains("a-b.default.localhost"), "{message}");
}

#[test]
fn every_bad_document_is_reported() {
    let good = service("good", "", "");
    let bad1 = service("bad1", "", "").replace("image: bad1.wasm", "image: \"\"");
    let bad2 = service("bad2", "", "  traffic:\n    - percent: 10\n");
    let message = errors_of(&format!("{bad1}---\n{good}---\n{bad2}"));
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), 2, "{message}");
    assert!(
        lines[0].starts_with("svc.yaml, document 1 (service default/bad1): "),
        "{message}"
    );
    assert!(
        lines[1].starts_with("svc.yaml, document 3 (service default/bad2): "),
        "{message}"
    );
}

#[test]
fn the_sample_manifests_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/manifests");
    for (file, service, concurrency) in [("hello.yaml", "hello", 0), ("sleep.yaml", "sleep", 10)] {
        let file = crate::file::load(&dir.join(file)).unwrap();
        let plan = plan(&file, &Domain::default()).unwrap();
        let [planned] = plan.services.as_slice() else {
            panic!("{}: one Service expected", file.name);
        };
        assert_eq!(planned.name, service);
        let revision = &planned.revision;
        assert_eq!(revision.container_concurrency, concurrency);
        let built = format!(
            "/samples/manifests/../../target/wasm-samples/wasm32-wasip2/release/{service}.wasm"
        );
        assert!(
            revision.component.ends_with(&built),
            "{}",
            revision.component
        );
    }
}
