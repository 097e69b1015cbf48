//! Component sources under `wisp up`'s policy, driven with kubectl as a hostile API user would:
//! images outside the allowed directories (existing, missing, or reached through a symlink) are
//! refused with the same message, and a revision whose file is replaced keeps its recorded
//! bytes — served from the compile cache after a restart, or reported as `SourceChanged` when
//! they are nowhere else — while another Service keeps answering.

mod cluster;
mod common;

use std::path::{Path, PathBuf};

use cluster::{Kube, Up, condition_of, image, ksvc, shared_cache};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The most memory `wisp up` may use over this test.
const RSS_BOUND: u64 = 1 << 30;

/// `component` with a custom section named `tag` appended: a valid component whose digest no
/// other test shares (so its compile cache entry is this test's alone).
fn tagged(component: &str, tag: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(component).expect("sample");
    let mut section = Vec::new();
    leb128(&mut section, tag.len());
    section.extend_from_slice(tag.as_bytes());
    bytes.push(0); // custom section id
    leb128(&mut bytes, section.len());
    bytes.extend_from_slice(&section);
    bytes
}

fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The `ContainerHealthy` condition of revision `name`, once it is False.
fn unhealthy(up: &Kube, name: &str) -> Value {
    let revision = up.wait_for("revision", name, "became ContainerHealthy=False", |r| {
        condition_of(r, "ContainerHealthy").is_some_and(|c| c["status"] == "False")
    });
    condition_of(&revision, "ContainerHealthy")
        .cloned()
        .expect("the condition")
}

fn recorded_digest(up: &Kube, revision: &str) -> String {
    let revision = up.wait_ready("revision", revision);
    revision["status"]["annotations"]["wisp.dev/image-digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no recorded digest: {revision}"))
        .to_owned()
}

/// Removes the compiled image of `digest` from the shared compile cache.
fn forget_compiled(digest: &str) {
    let hex = digest.trim_start_matches("sha256:");
    // The test's `wisp up` holds the cache, so this guard does not remove it when dropped.
    let cache = shared_cache();
    for entry in std::fs::read_dir(cache.path())
        .expect("cache dir")
        .flatten()
    {
        for extension in ["cwasm", "sha256"] {
            let path: PathBuf = entry.path().join(format!("{hex}.{extension}"));
            let _ = std::fs::remove_file(path);
        }
    }
}

#[test]
fn sources_follow_the_policy_and_revisions_keep_their_recorded_bytes() {
    let images = tempfile::tempdir().expect("images dir");
    let outside = tempfile::tempdir().expect("outside dir");
    let secret = outside.path().join("secret.wasm");
    std::fs::copy(wisp_samples::HELLO, &secret).expect("copy");
    let missing = outside.path().join("missing.wasm");
    let link = images.path().join("link.wasm");
    std::os::unix::fs::symlink(&secret, &link).expect("symlink");
    let unique = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
    let kept = images.path().join("kept.wasm");
    let kept_bytes = tagged(wisp_samples::HELLO, &format!("kept-{unique}"));
    std::fs::write(&kept, &kept_bytes).expect("write");
    let changed = images.path().join("changed.wasm");
    let changed_bytes = tagged(wisp_samples::HELLO, &format!("changed-{unique}"));
    std::fs::write(&changed, &changed_bytes).expect("write");

    let allow = images.path().display().to_string();
    let flags = ["--allow-path", allow.as_str()];
    let up = Up::start(&flags);
    let path_of = |path: &Path| path.display().to_string();
    let services = [
        ("steady", image("hello")),
        ("kept", path_of(&kept)),
        ("changed", path_of(&changed)),
        ("secret", path_of(&secret)),
        ("missing", path_of(&missing)),
        ("link", path_of(&link)),
    ];
    for (name, image) in &services {
        up.apply(&ksvc(name, image));
    }

    // Outside the allowed directories: one message, whether the file exists, does not, or is
    // reached through a symlink from inside.
    let mut messages = Vec::new();
    for (name, image) in &services[3..] {
        let condition = unhealthy(&up, &format!("{name}-00001"));
        assert_eq!(
            condition["reason"], "SourceNotAllowed",
            "{name}: {condition}"
        );
        let message = condition["message"].as_str().expect("message");
        assert!(message.contains("--allow-path"), "{message}");
        assert!(
            message.contains(&allow),
            "names the allowed directory: {message}"
        );
        messages.push(message.replace(image.as_str(), "<image>"));
        let (status, body) = up.http_get(&up.host(name), "/");
        assert_ne!(status, 200, "{name} must not be served: {body}");
    }
    assert!(
        messages.iter().all(|message| *message == messages[0]),
        "the refusals differ, telling what exists: {messages:#?}"
    );
    assert!(!messages[0].contains("No such file"), "{}", messages[0]);

    // Allowed sources run, and their digest is recorded.
    for name in ["steady", "kept", "changed"] {
        up.wait_ready("ksvc", name);
    }
    assert_eq!(recorded_digest(&up, "kept-00001"), digest(&kept_bytes));
    let changed_digest = recorded_digest(&up, "changed-00001");
    assert_eq!(changed_digest, digest(&changed_bytes));

    // The files are replaced by another component. The running node keeps its compiled bytes.
    let echo = std::fs::read(wisp_samples::ECHO).expect("echo");
    std::fs::write(&kept, &echo).expect("replace");
    std::fs::write(&changed, &echo).expect("replace");
    let hello = (200, "Hello from wisp!\n".to_owned());
    assert_eq!(up.http_get(&up.host("kept"), "/"), hello);

    // A restart: `kept` finds its recorded bytes in the compile cache; `changed` finds them
    // nowhere (its cache entry is gone) and must not run the new file.
    forget_compiled(&changed_digest);
    let peak_before = up.process.peak_rss();
    let dir = up.kill();
    let up = Up::start_in(dir, &flags);
    assert_eq!(
        up.http_get(&up.host("kept"), "/"),
        hello,
        "the recorded bytes, not the new file"
    );
    let condition = unhealthy(&up, "changed-00001");
    assert_eq!(condition["reason"], "SourceChanged", "{condition}");
    let message = condition["message"].as_str().expect("message");
    assert!(message.contains(&changed_digest), "{message}");
    assert!(message.contains(&digest(&echo)), "{message}");
    assert!(message.contains("create a new revision"), "{message}");
    let (status, body) = up.http_get(&up.host("changed"), "/");
    assert_ne!(status, 200, "the changed file must not be served: {body}");

    // The others are untouched.
    assert_eq!(up.http_get(&up.host("steady"), "/"), hello);
    assert_eq!(recorded_digest(&up, "kept-00001"), digest(&kept_bytes));
    for (name, peak) in [("before", peak_before), ("after", up.process.peak_rss())] {
        assert!(
            peak < RSS_BOUND,
            "wisp up peaked at {peak} bytes {name} the restart (bound {RSS_BOUND})"
        );
    }
}
