//! A revision runs the bytes of its recorded digest: never a changed file, and a revision found
//! running other bytes than the digest recorded later stops serving them.

use http::StatusCode;
use wisp_gateway::dataplane::DataPlaneError;
use wisp_runtime::{Digest, RuntimeError};

use crate::harness::{Plane, host, revision};

fn digest_of(path: &str) -> Digest {
    Digest::of(&std::fs::read(path).expect("sample"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_refused_and_the_recorded_bytes_keep_serving() {
    let plane = Plane::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("app.wasm");
    std::fs::copy(wisp_samples::HELLO, &file).expect("copy");
    let path = file.display().to_string();
    let mut first = revision("first", &path);
    first.recorded_digest = Some(digest_of(wisp_samples::HELLO));
    plane.serve(first).await;

    // The file now holds another component. A revision recorded with the old bytes runs them
    // (the node holds their compile); one recorded with bytes nowhere to be found is refused.
    std::fs::copy(wisp_samples::ECHO, &file).expect("replace");
    let mut again = revision("again", &path);
    again.recorded_digest = Some(digest_of(wisp_samples::HELLO));
    plane.serve(again).await;
    let answer = plane.get(&host("again"), "/").await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "Hello from wisp!\n")
    );

    let mut lost = revision("lost", &path);
    let recorded = Digest::of(b"bytes this node never saw");
    lost.recorded_digest = Some(recorded);
    let error = plane
        .data_plane
        .apply_revision(lost)
        .await
        .expect_err("changed source");
    let DataPlaneError::Component {
        source: RuntimeError::SourceChanged {
            expected, found, ..
        },
        ..
    } = &error
    else {
        panic!("expected SourceChanged, got: {error}");
    };
    assert_eq!(*expected, recorded);
    assert_eq!(*found, digest_of(wisp_samples::ECHO));
    let answer = plane.get(&host("first"), "/").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_running_other_bytes_than_its_recorded_digest_switches_or_stops() {
    let plane = Plane::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("app.wasm");
    std::fs::copy(wisp_samples::ECHO, &file).expect("copy");
    let config = revision("stray", &file.display().to_string());
    let key = plane.serve(config.clone()).await;

    // Another node recorded other bytes for this revision first. Where this node has them
    // (hello is compiled here), it runs them from then on.
    let hello = digest_of(wisp_samples::HELLO);
    plane
        .data_plane
        .apply_revision(revision("hello", wisp_samples::HELLO))
        .await
        .expect("hello");
    let mut recorded = config.clone();
    recorded.recorded_digest = Some(hello);
    let state = plane
        .data_plane
        .apply_revision(recorded)
        .await
        .expect("the recorded bytes are here");
    assert_eq!(state.digest, hello.to_string());
    let answer = plane.get(&host("stray"), "/").await;
    assert_eq!(answer.body, "Hello from wisp!\n");

    // Where it has them nowhere, it stops serving the revision rather than run other bytes.
    let mut unknown = config;
    unknown.recorded_digest = Some(Digest::of(b"bytes no node here has"));
    plane
        .data_plane
        .apply_revision(unknown)
        .await
        .expect_err("this node cannot find the recorded bytes");
    assert_eq!(plane.data_plane.revision_state(&key), None);
    let answer = plane.get(&host("stray"), "/").await;
    assert_ne!(answer.status, StatusCode::OK, "{}", answer.body);
}
