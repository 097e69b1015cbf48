use super::*;
use crate::quantity::Quantity;

const FULL: &str = r#"
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
  namespace: team-a
  labels:
    app: hello
  annotations:
    note: first
  creationTimestamp: null
spec:
  template:
    metadata:
      name: hello-v1
      annotations:
        autoscaling.knative.dev/min-scale: "1"
    spec:
      containerConcurrency: 10
      timeoutSeconds: 30
      serviceAccountName: ignored
      containers:
        - name: user-container
          image: ./hello.wasm
          env:
            - name: GREETING
              value: hi
            - name: FROM_CONFIG
              valueFrom:
                configMapKeyRef:
                  name: cfg
                  key: greeting
          resources:
            limits:
              memory: 64Mi
              cpu: 1
            requests:
              memory: 134217728
          ports:
            - name: h2c
              containerPort: 8080
          readinessProbe:
            httpGet:
              path: /
  traffic:
    - latestRevision: true
      percent: 90
    - revisionName: hello-v1
      percent: 10
      tag: current
status:
  url: http://hello.team-a.example.com
"#;

fn read(yaml: &str) -> Service {
    serde_norway::from_str(yaml).unwrap()
}

#[test]
fn reads_a_full_knative_service_and_tolerates_unknown_fields() {
    let service = read(FULL);
    assert!(service.is_knative_service());
    assert_eq!(service.metadata.name.as_deref(), Some("hello"));
    assert_eq!(service.metadata.namespace_or_default(), "team-a");
    assert_eq!(service.metadata.labels["app"], "hello");
    assert_eq!(service.metadata.annotations["note"], "first");

    let template = &service.spec.template;
    assert_eq!(template.metadata.name.as_deref(), Some("hello-v1"));
    assert_eq!(
        template.metadata.annotations["autoscaling.knative.dev/min-scale"],
        "1"
    );
    assert_eq!(template.spec.container_concurrency, Some(10));
    assert_eq!(template.spec.timeout_seconds_or_default(), 30);

    let [container] = template.spec.containers.as_slice() else {
        panic!("one container expected");
    };
    assert_eq!(container.name, "user-container");
    assert_eq!(container.image, "./hello.wasm");
    assert_eq!(container.env[0].name, "GREETING");
    assert_eq!(container.env[0].value.as_deref(), Some("hi"));
    let from = container.env[1].value_from.as_ref().unwrap();
    assert_eq!(from.config_map_key_ref.as_ref().unwrap().key, "greeting");
    assert_eq!(
        container.resources.memory_limit(),
        Some(&Quantity::new("64Mi"))
    );
    assert_eq!(container.resources.limits["cpu"], Quantity::new("1"));
    assert_eq!(
        container.resources.requests[MEMORY].memory_bytes(),
        Ok(128 << 20)
    );
    assert_eq!(container.ports[0].container_port, Some(8080));
    assert_eq!(container.ports[0].name, "h2c");

    assert_eq!(service.spec.traffic.len(), 2);
    assert_eq!(service.spec.traffic[0].latest_revision, Some(true));
    assert_eq!(service.spec.traffic[0].percent, Some(90));
    assert_eq!(
        service.spec.traffic[1].revision_name.as_deref(),
        Some("hello-v1")
    );
    assert_eq!(service.spec.traffic[1].tag.as_deref(), Some("current"));
}

#[test]
fn a_minimal_service_takes_knative_defaults() {
    let service = read(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: hello}\n\
         spec:\n  template:\n    spec:\n      containers: [{image: hello.wasm}]\n",
    );
    assert_eq!(service.metadata.namespace, None);
    assert_eq!(service.metadata.namespace_or_default(), DEFAULT_NAMESPACE);
    let spec = &service.spec.template.spec;
    assert_eq!(spec.container_concurrency, None);
    assert_eq!(spec.timeout_seconds_or_default(), DEFAULT_TIMEOUT_SECONDS);
    assert_eq!(spec.containers[0].resources.memory_limit(), None);
    assert!(service.spec.traffic.is_empty());
}

#[test]
fn nulls_read_as_empty() {
    let service = read(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: a\n  labels:\n  annotations: ~\n\
         spec:\n  traffic: null\n  template:\n    spec:\n      containers:\n        - image: a.wasm\n          env:\n",
    );
    assert!(service.metadata.labels.is_empty());
    assert!(service.metadata.annotations.is_empty());
    assert!(service.spec.traffic.is_empty());
    assert!(service.spec.template.spec.containers[0].env.is_empty());
}

#[test]
fn an_empty_namespace_is_the_default_one() {
    let meta = ObjectMeta {
        namespace: Some(String::new()),
        ..ObjectMeta::default()
    };
    assert_eq!(meta.namespace_or_default(), "default");
}

#[test]
fn other_kinds_are_not_services() {
    let deployment = read("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 3\n");
    assert!(!deployment.is_knative_service());
    let old = read("apiVersion: serving.knative.dev/v1alpha1\nkind: Service\n");
    assert!(!old.is_knative_service());
}

#[test]
fn wrong_types_are_errors_with_a_location() {
    let error = serde_norway::from_str::<Service>(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nspec:\n  template:\n    spec:\n      containerConcurrency: lots\n",
    )
    .unwrap_err();
    let location = error.location().unwrap();
    assert_eq!(location.line(), 6);
    assert!(
        error
            .to_string()
            .contains("spec.template.spec.containerConcurrency"),
        "{error}"
    );
}

#[test]
fn latest_revision_defaults_to_true_without_a_revision_name() {
    let target = |latest: Option<bool>, revision: Option<&str>| TrafficTarget {
        latest_revision: latest,
        revision_name: revision.map(str::to_owned),
        ..TrafficTarget::default()
    };
    assert!(target(None, None).follows_latest());
    assert!(target(None, Some("")).follows_latest());
    assert!(!target(None, Some("a-00001")).follows_latest());
    assert!(target(Some(true), Some("a-00001")).follows_latest());
    assert!(!target(Some(false), None).follows_latest());
}

#[test]
fn serializes_with_knative_field_names_and_reads_back() {
    let service = read(FULL);
    let json = serde_json::to_value(&service).unwrap();
    assert_eq!(json["apiVersion"], API_VERSION);
    assert_eq!(json["spec"]["template"]["spec"]["containerConcurrency"], 10);
    assert_eq!(
        json["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "64Mi"
    );
    assert_eq!(json["spec"]["traffic"][0]["latestRevision"], true);
    assert!(json["spec"]["traffic"][1].get("latestRevision").is_none());
    assert!(json.get("status").is_none());
    let back: Service = serde_json::from_value(json).unwrap();
    assert_eq!(back, service);
}

#[test]
fn labels_must_be_strings() {
    let error = serde_norway::from_str::<Service>("metadata:\n  labels:\n    tier: [1]\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("metadata.labels"), "{error}");
}
