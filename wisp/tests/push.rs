//! `wisp push` and `wisp inspect` (the real binary) against a real registry on loopback
//! (Debian's docker-registry, started by the tests).

mod common;
#[path = "../../oci/tests/support/registry.rs"]
mod registry_support;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use registry_support::TestRegistry;
use wisp_oci::{
    BlobCache, Credentials, Digest, ImageReference, Puller, Registry, RegistrySettings,
};

fn wisp(args: &[&str], env: &[(&str, &std::path::Path)], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wisp"));
    command
        .args(args)
        .env("WISP_LOG", "warn")
        // No credentials from the machine running the tests.
        .env("DOCKER_CONFIG", "/nonexistent-wisp-test-docker-config")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("wisp starts");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("stdin written");
    }
    drop(input);
    child.wait_with_output().expect("wisp finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `wisp push`, which must succeed; returns the digest it printed.
fn push(component: &str, reference: &str, extra: &[&str]) -> Digest {
    let mut args = vec!["push", component, reference];
    args.extend_from_slice(extra);
    let output = wisp(&args, &[], None);
    assert!(
        output.status.success(),
        "wisp push failed: {}",
        text(&output.stderr)
    );
    parse_digest(&text(&output.stdout))
}

fn parse_digest(stdout: &str) -> Digest {
    let line = stdout.trim_end();
    let digest = line
        .strip_prefix("digest: ")
        .unwrap_or_else(|| panic!("`digest: sha256:…` on stdout, got {stdout:?}"));
    Digest::parse(digest).unwrap_or_else(|| panic!("a sha256 digest, got {digest:?}"))
}

async fn pull(
    registry: &TestRegistry,
    reference: &ImageReference,
    credentials: &Credentials,
) -> bytes::Bytes {
    let client = Registry::new(RegistrySettings {
        insecure_registries: vec![registry.host().to_owned()],
        ..Default::default()
    });
    let digest = client
        .resolve(reference, credentials)
        .await
        .expect("resolve");
    let cache = tempfile::tempdir().unwrap();
    Puller::new(client, BlobCache::new(cache.path()))
        .pull(&reference.pinned(digest), credentials)
        .await
        .expect("pull")
        .bytes
}

/// One sample of each kind: Rust (wstd and plain wasi), Python, JavaScript, WASIp3.
const KINDS: [(&str, &str); 5] = [
    ("hello", wisp_samples::HELLO),
    ("hello-wasi", wisp_samples::HELLO_WASI),
    ("py-hello", wisp_samples::PY_HELLO),
    ("js-hello", wisp_samples::JS_HELLO),
    ("p3-hello", wisp_samples::P3_HELLO),
];

#[tokio::test]
async fn every_kind_of_sample_is_pushed_and_pulled_back_by_tag_and_by_digest() {
    let registry = TestRegistry::start();
    for (name, path) in KINDS {
        let tagged = format!("{}/samples/{name}:v1", registry.host());
        let digest = push(path, &tagged, &["--insecure"]);
        let file = std::fs::read(path).unwrap();
        let by_tag = ImageReference::parse(&tagged).unwrap();
        assert_eq!(
            pull(&registry, &by_tag, &Credentials::Anonymous).await,
            file,
            "{name} by tag"
        );
        let by_digest = by_tag.pinned(digest);
        assert_eq!(
            pull(&registry, &by_digest, &Credentials::Anonymous).await,
            file,
            "{name} by digest"
        );

        let output = wisp(&["inspect", &tagged, "--insecure"], &[], None);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let stdout = text(&output.stdout);
        let layer = Digest::of(&file);
        assert!(
            stdout.contains(&format!("pinned: {by_digest}\n")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "runs: layer {layer} ({} bytes), as the CNCF wasm OCI artifact\n",
                file.len()
            )),
            "{stdout}"
        );
        let file_name = std::path::Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            stdout.contains(&format!(
                "layer: {layer} application/wasm ({} bytes) title={file_name}\n",
                file.len()
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains("config: sha256:")
                && stdout.contains("application/vnd.wasm.config.v0+json"),
            "{stdout}"
        );
        assert!(
            stdout.contains("platform: wasip2/wasm created "),
            "{stdout}"
        );
        let handler = if name.starts_with("p3-") {
            "export: wasi:http/handler@0.3"
        } else {
            "export: wasi:http/incoming-handler@0.2."
        };
        assert!(stdout.contains(handler), "{name}: {stdout}");
    }
}

#[tokio::test]
async fn a_tag_pushed_again_names_the_new_component_and_the_old_digest_the_old_one() {
    let registry = TestRegistry::start();
    let tagged = format!("{}/hello:v1", registry.host());
    let first = push(wisp_samples::HELLO, &tagged, &["--insecure"]);
    let second = push(wisp_samples::ECHO, &tagged, &["--insecure"]);
    assert_ne!(first, second);
    let reference = ImageReference::parse(&tagged).unwrap();
    assert_eq!(
        pull(&registry, &reference, &Credentials::Anonymous).await,
        std::fs::read(wisp_samples::ECHO).unwrap()
    );
    assert_eq!(
        pull(&registry, &reference.pinned(first), &Credentials::Anonymous).await,
        std::fs::read(wisp_samples::HELLO).unwrap()
    );
    let output = wisp(
        &[
            "inspect",
            &format!("{}/hello@{first}", registry.host()),
            "--insecure",
        ],
        &[],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout)
            .contains(&Digest::of(&std::fs::read(wisp_samples::HELLO).unwrap()).to_string())
    );
}

#[test]
fn push_credentials_come_from_the_flags_or_the_docker_config() {
    let registry = TestRegistry::start_with_basic_auth("pusher", "hunter2");
    let tagged = format!("{}/private/hello:v1", registry.host());

    let output = wisp(
        &["push", wisp_samples::HELLO, &tagged, "--insecure"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: {tagged}: {} refused access anonymously",
            registry.host()
        )),
        "{stderr}"
    );

    let output = wisp(
        &[
            "push",
            wisp_samples::HELLO,
            &tagged,
            "--insecure",
            "--username",
            "pusher",
            "--password-stdin",
        ],
        &[],
        Some("wrong\n"),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("refused access as user \"pusher\""),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong"), "{stderr}");

    let output = wisp(
        &[
            "push",
            wisp_samples::HELLO,
            &tagged,
            "--insecure",
            "--username",
            "pusher",
            "--password-stdin",
        ],
        &[],
        Some("hunter2\n"),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let digest = parse_digest(&text(&output.stdout));

    let docker = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("pusher:hunter2");
    std::fs::write(
        docker.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let output = wisp(
        &["inspect", &tagged, "--insecure"],
        &[("DOCKER_CONFIG", docker.path())],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains(&format!("manifest: {digest} ")),
        "{}",
        text(&output.stdout)
    );
    let output = wisp(
        &["push", wisp_samples::ECHO, &tagged, "--insecure"],
        &[("DOCKER_CONFIG", docker.path())],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn push_and_inspect_refuse_bad_input_saying_what_to_do() {
    let registry = TestRegistry::start();
    let host = registry.host();

    let not_wasm = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_wasm.path(), "plain text").unwrap();
    let output = wisp(
        &[
            "push",
            not_wasm.path().to_str().unwrap(),
            &format!("{host}/x:v1"),
            "--insecure",
        ],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr)
            .contains("is not a wasm component (it does not start with the wasm magic bytes)"),
        "{}",
        text(&output.stderr)
    );

    let module = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(module.path(), wat::parse_str("(module)").unwrap()).unwrap();
    let output = wisp(
        &[
            "push",
            module.path().to_str().unwrap(),
            &format!("{host}/x:v1"),
            "--insecure",
        ],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("is a core wasm module, not a component"),
        "{}",
        text(&output.stderr)
    );

    let output = wisp(&["push", wisp_samples::HELLO, "hello:v1"], &[], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr)
            .contains("\"hello:v1\" is not an image reference (it names no registry)"),
        "{}",
        text(&output.stderr)
    );

    let output = wisp(
        &["inspect", &format!("{host}/nothing:v1"), "--insecure"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr).trim_end(),
        format!(
            "error: {host}/nothing:v1: {host} has no manifest for tag \"v1\" (it answered: ManifestUnknown: manifest unknown); check the repository and tag or digest, and push the component there with `wisp push`"
        )
    );

    // Plain HTTP only when asked for.
    let output = wisp(
        &["push", wisp_samples::HELLO, &format!("{host}/x:v1")],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot reach {host} over HTTPS"))
            && stderr.contains("`--insecure`"),
        "{stderr}"
    );
}

#[tokio::test]
async fn wisp_run_serves_a_pushed_component_and_keeps_serving_it_from_the_cache() {
    let mut registry = TestRegistry::start();
    let host = registry.host().to_owned();
    let tagged = format!("{host}/hello:v1");
    let digest = push(wisp_samples::HELLO, &tagged, &["--insecure"]);
    let cache = tempfile::tempdir().unwrap();

    let run =
        common::WispRun::start_with_cache(&tagged, cache.path(), &["--insecure-registry", &host]);
    let response = common::client().get(run.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "Hello from wisp!\n");
    assert!(run.logs().contains(&digest.to_string()), "{}", run.logs());
    drop(run);

    // Plain HTTP only for listed registries.
    let (code, _, stderr) =
        common::run_to_end(&["run", &tagged, "--addr", "127.0.0.1:0", "--no-cache"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("error: {tagged}: cannot reach {host} over HTTPS")),
        "{stderr}"
    );

    // Pinned by digest, the pulled blobs serve with the registry gone (a tag would need it).
    registry.stop();
    let pinned = format!("{host}/hello@{digest}");
    let run =
        common::WispRun::start_with_cache(&pinned, cache.path(), &["--insecure-registry", &host]);
    let response = common::client().get(run.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "Hello from wisp!\n");
    drop(run);
    let (code, _, stderr) = common::run_to_end(&[
        "run",
        &tagged,
        "--addr",
        "127.0.0.1:0",
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "--insecure-registry",
        &host,
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach {host} over plain HTTP")),
        "{stderr}"
    );

    let (code, _, stderr) =
        common::run_to_end(&["run", &tagged, "--insecure-registry", "http://x"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is not a registry: write HOST:PORT"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_component_larger_than_the_image_cache_runs_without_being_kept() {
    let registry = TestRegistry::start();
    let host = registry.host().to_owned();
    let tagged = format!("{host}/big:v1");
    let manifest = push(wisp_samples::HELLO, &tagged, &["--insecure"]);
    let layer = Digest::of(&std::fs::read(wisp_samples::HELLO).expect("the hello sample"));
    let cache = tempfile::tempdir().unwrap();

    // Room for the manifest (a few hundred bytes), not for the component.
    let run = common::WispRun::start_with_cache(
        &tagged,
        cache.path(),
        &["--insecure-registry", &host, "--image-cache-size", "2Ki"],
    );
    let response = common::client().get(run.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "Hello from wisp!\n");
    let blobs = BlobCache::new(cache.path().join("oci"));
    assert!(blobs.path(&manifest).exists());
    assert!(!blobs.path(&layer).exists());
    assert!(
        run.logs()
            .contains("a pulled blob is larger than the whole image cache"),
        "{}",
        run.logs()
    );
}
