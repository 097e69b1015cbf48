//! Local component files under the source policy: only beneath the allowed directories, no
//! escape through `..` or symlinks, the same refusal whether or not a file outside exists; and
//! a recorded digest runs exactly those bytes.

use std::path::{Path, PathBuf};

use wisp_runtime::{
    ArtifactSource, Digest, LoadOrigin, Refusal, Runtime, RuntimeConfig, RuntimeError, SourcePolicy,
};

/// A runtime that reads components only from `allowed`.
fn runtime(allowed: &Path, cache: Option<&Path>) -> Runtime {
    Runtime::new(RuntimeConfig {
        sources: SourcePolicy::restricted(&[allowed.to_path_buf()], Some(vec![]), false).unwrap(),
        cache_dir: cache.map(Path::to_path_buf),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn file(path: &Path) -> ArtifactSource {
    ArtifactSource::File(path.to_path_buf())
}

/// The policy's refusal of `error`, failing the test when it is something else.
fn refusal(error: RuntimeError) -> Refusal {
    match error {
        RuntimeError::NotAllowed { refusal, .. } => refusal,
        other => panic!("expected a refusal, got: {other}"),
    }
}

#[tokio::test]
async fn a_file_beneath_an_allowed_directory_runs() {
    let allowed = tempfile::tempdir().unwrap();
    let path = allowed.path().join("sub/hello.wasm");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::copy(wisp_samples::HELLO, &path).unwrap();
    // A symlink that stays inside is fine too.
    std::os::unix::fs::symlink("sub/hello.wasm", allowed.path().join("inside.wasm")).unwrap();
    let runtime = runtime(allowed.path(), None);
    runtime.prepare(&file(&path)).await.unwrap();
    runtime
        .prepare(&file(&allowed.path().join("inside.wasm")))
        .await
        .unwrap();
}

#[tokio::test]
async fn escapes_are_refused_alike_whether_or_not_the_target_exists() {
    let allowed = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let existing = outside.path().join("secret.wasm");
    std::fs::copy(wisp_samples::HELLO, &existing).unwrap();
    let missing = outside.path().join("missing.wasm");
    let link = |name: &str, target: &Path| {
        let path = allowed.path().join(name);
        std::os::unix::fs::symlink(target, &path).unwrap();
        path
    };
    let relative_escape: PathBuf = ["..", "..", "..", "..", "..", "..", "..", "..", ".."]
        .iter()
        .collect::<PathBuf>()
        .join(existing.strip_prefix("/").unwrap());
    let attempts: Vec<PathBuf> = vec![
        existing.clone(),
        missing.clone(),
        allowed
            .path()
            .join("..")
            .join(existing.file_name().unwrap()),
        link("to-existing.wasm", &existing),
        link("to-missing.wasm", &missing),
        link("relative-escape.wasm", &relative_escape),
        link("dir-escape", outside.path()).join("secret.wasm"),
    ];
    let runtime = runtime(allowed.path(), None);
    let mut refusals = Vec::new();
    for path in &attempts {
        let error = runtime.prepare(&file(path)).await.err().unwrap();
        refusals.push((path.clone(), refusal(error)));
    }
    let (first_path, first) = &refusals[0];
    for (path, refusal) in &refusals {
        assert_eq!(
            refusal,
            first,
            "{} was refused differently from {}",
            path.display(),
            first_path.display()
        );
    }
    assert!(
        first
            .to_string()
            .contains(&allowed.path().display().to_string()),
        "the refusal names the allowed directories: {first}"
    );
}

#[tokio::test]
async fn a_missing_file_inside_is_reported_as_missing() {
    let allowed = tempfile::tempdir().unwrap();
    let runtime = runtime(allowed.path(), None);
    let error = runtime
        .prepare(&file(&allowed.path().join("nothing.wasm")))
        .await
        .err()
        .unwrap();
    assert!(matches!(error, RuntimeError::ReadFile { .. }), "{error}");
}

#[tokio::test]
async fn changed_bytes_are_refused_for_a_recorded_digest() {
    let allowed = tempfile::tempdir().unwrap();
    let path = allowed.path().join("app.wasm");
    std::fs::copy(wisp_samples::HELLO_WASI, &path).unwrap();
    let recorded = Digest::of(&std::fs::read(&path).unwrap());
    std::fs::copy(wisp_samples::ECHO, &path).unwrap();
    // No compile cache, a fresh process: the recorded bytes are nowhere but in the file.
    let runtime = runtime(allowed.path(), None);
    let error = runtime
        .prepare_recorded(
            &file(&path),
            Some(recorded),
            &wisp_oci::Credentials::Anonymous,
        )
        .await
        .err()
        .unwrap();
    let RuntimeError::SourceChanged {
        expected, found, ..
    } = &error
    else {
        panic!("expected SourceChanged, got: {error}");
    };
    assert_eq!(*expected, recorded);
    assert_eq!(
        *found,
        Digest::of(&std::fs::read(wisp_samples::ECHO).unwrap())
    );
    assert!(
        error.to_string().contains("create a new revision"),
        "{error}"
    );
}

#[tokio::test]
async fn a_recorded_digest_in_the_compile_cache_runs_after_the_source_changed() {
    let allowed = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let path = allowed.path().join("app.wasm");
    std::fs::copy(wisp_samples::HELLO_WASI, &path).unwrap();
    let first = runtime(allowed.path(), Some(cache.path()));
    let recorded = first.prepare(&file(&path)).await.unwrap().digest();
    drop(first);

    // The file changes; a restarted node still runs the recorded bytes, from the cache.
    std::fs::copy(wisp_samples::ECHO, &path).unwrap();
    let restarted = runtime(allowed.path(), Some(cache.path()));
    let prepared = restarted
        .prepare_recorded(
            &file(&path),
            Some(recorded),
            &wisp_oci::Credentials::Anonymous,
        )
        .await
        .unwrap();
    assert_eq!(prepared.digest(), recorded);
    assert_eq!(prepared.origin(), LoadOrigin::Disk);
    // The policy still applies to the name, cached or not.
    let outside = runtime(cache.path(), Some(cache.path()));
    let error = outside
        .prepare_recorded(
            &file(&path),
            Some(recorded),
            &wisp_oci::Credentials::Anonymous,
        )
        .await
        .err()
        .unwrap();
    refusal(error);
}
