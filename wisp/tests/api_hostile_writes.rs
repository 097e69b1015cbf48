//! Hostile writes to `wisp up`'s API server, through real kubectl: whatever a client sends, the
//! store only ever holds objects it can read back. A JSON patch whose `add`s build an object
//! nested 244 levels deep, a merge patch and an apply that nest 114 levels, and a 2 MiB
//! ConfigMap are each refused with a message saying why and nothing stored, while `get`, `list`,
//! `delete` and the controllers go on working. An object stored unreadable before these checks
//! existed is left out of lists and can still be deleted.

mod cluster;
mod common;

use cluster::{Up, image, ksvc};
use serde_json::{Value, json};

/// `{"a": {"a": … 1}}`, `levels` objects deep.
fn nested(levels: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..levels {
        value = json!({"a": value});
    }
    value
}

/// A ConfigMap manifest as JSON (kubectl's `create configmap` would send protobuf).
fn configmap(name: &str, value: &str) -> String {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"k": value},
    })
    .to_string()
}

fn generation(up: &Up, name: &str) -> i64 {
    up.get("ksvc", name).expect("the Service")["metadata"]["generation"]
        .as_i64()
        .expect("a generation")
}

#[test]
fn writes_no_reader_could_decode_are_refused_and_the_cluster_goes_on() {
    let up = Up::start(&[]);
    up.apply(&ksvc("hello", &image("hello")));
    up.wait_ready("ksvc", "hello");

    // Two `add`s, each well within what a request body may nest, build 244 levels together.
    let affinity = "/spec/template/spec/affinity";
    let patch = json!([
        {"op": "add", "path": affinity, "value": nested(120)},
        {"op": "add", "path": format!("{affinity}{}/b", "/a".repeat(119)), "value": nested(120)},
    ]);
    let refused = up.kubectl_fails(
        &[
            "patch",
            "ksvc",
            "hello",
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
        None,
    );
    assert!(
        refused.contains("levels deep, more than the 100"),
        "{refused}"
    );

    let merge = json!({"spec": {"template": {"spec": {"affinity": nested(110)}}}});
    let refused = up.kubectl_fails(
        &[
            "patch",
            "ksvc",
            "hello",
            "--type=merge",
            "-p",
            &merge.to_string(),
        ],
        None,
    );
    assert!(refused.contains("levels deep"), "{refused}");

    let mut deep_manifest: Value =
        serde_norway::from_str(&ksvc("hello", &image("hello"))).expect("manifest");
    deep_manifest["spec"]["template"]["spec"]["affinity"] = nested(110);
    let refused = up.kubectl_fails(&["apply", "-f", "-"], Some(&deep_manifest.to_string()));
    assert!(refused.contains("levels deep"), "{refused}");
    assert_eq!(generation(&up, "hello"), 1, "nothing was stored");

    // An object over 1.5 MiB: refused whole, as etcd's request limit makes it on a real cluster.
    let big = configmap("big", &"x".repeat(2 << 20));
    let refused = up.kubectl_fails(&["create", "-f", "-"], Some(&big));
    assert!(
        refused.contains("more than the 1572864 bytes an object may be"),
        "{refused}"
    );
    assert!(up.get("configmap", "big").is_none());

    // Reads, lists and the controllers still work: a real change rolls out a new revision.
    assert!(up.kubectl(&["get", "ksvc"]).contains("hello"));
    up.kubectl(&[
        "patch",
        "ksvc",
        "hello",
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"metadata":{"annotations":{"rollout":"2"}}}}}"#,
    ]);
    up.wait_for("ksvc", "hello", "rolled out hello-00002", |service| {
        service["status"]["latestReadyRevisionName"] == "hello-00002"
    });
    up.kubectl(&["delete", "ksvc", "hello"]);
    up.wait_gone("ksvc", "hello");
}

#[test]
fn an_object_stored_unreadable_is_left_out_of_lists_and_can_be_deleted() {
    let up = Up::start(&[]);
    for name in ["legacy", "fine"] {
        up.kubectl_with_input(&["create", "-f", "-"], Some(&configmap(name, "v")));
    }
    // What a server without the checks could store: an object no decoder takes.
    let dir = up.kill();
    let database = rusqlite::Connection::open(dir.path().join("wisp.db")).expect("database");
    let deep = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "legacy", "namespace": "default"},
        "data": nested(250),
    });
    let changed = database
        .execute(
            "UPDATE objects SET object = ?1 WHERE name = 'legacy'",
            [deep.to_string()],
        )
        .expect("update");
    assert_eq!(changed, 1);
    drop(database);

    let up = Up::start_in(dir, &[]);
    let listed = up.kubectl(&["get", "configmaps", "-o", "name"]);
    assert!(listed.contains("configmap/fine"), "{listed}");
    assert!(!listed.contains("legacy"), "{listed}");
    let refused = up.kubectl_fails(&["get", "configmap", "legacy"], None);
    assert!(refused.contains("can only be deleted"), "{refused}");
    up.kubectl(&["delete", "configmap", "legacy"]);
    assert!(up.get("configmap", "legacy").is_none());
    assert!(up.get("configmap", "fine").is_some());
}
