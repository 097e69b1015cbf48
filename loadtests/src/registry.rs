//! A real OCI registry for benchmarks: Debian's `docker-registry` (the CNCF distribution
//! registry) on loopback, storing into a temporary directory, with components published to it
//! by `wisp push`. Killed, and its storage removed, on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::peers;

/// How long the registry may take to say where it listens.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// The registry binary, or why there is none (for a benchmark row).
pub fn locate() -> Result<PathBuf, String> {
    peers::locate("DOCKER_REGISTRY", "docker-registry", None).ok_or_else(|| {
        "missing: docker-registry (scripts/test-deps installs Debian's package; or set $DOCKER_REGISTRY)"
            .into()
    })
}

pub struct LocalRegistry {
    child: Child,
    /// Holds the storage and the log until drop.
    dir: tempfile::TempDir,
    host: String,
}

impl LocalRegistry {
    /// Starts `binary` on `127.0.0.1:0` (it binds a free port itself and logs it, so nothing
    /// races between choosing a port and binding it).
    pub fn start(binary: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a directory for the registry")?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)
            .with_context(|| format!("cannot create {}", storage.display()))?;
        // The access log stays on: it is how a case shows which pulls really fetched a blob.
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n  secret: wisp-bench-secret\n",
            storage.display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        let log = dir.path().join("registry.log");
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut registry = Self {
            child,
            dir,
            host: String::new(),
        };
        registry.host = registry.wait_for_address()?;
        Ok(registry)
    }

    fn wait_for_address(&mut self) -> anyhow::Result<String> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let log = self.log();
            if let Some(host) = listening_address(&log) {
                return Ok(host.to_owned());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("docker-registry exited ({status}) before listening:\n{log}");
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not say where it listens within {START_DEADLINE:?}:\n{log}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:PORT`: the registry part of image references, and what to list as insecure.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// How many blob downloads (`GET /v2/REPOSITORY/blobs/…`) the access log shows.
    pub fn blob_fetches(&self, repository: &str) -> usize {
        count_blob_fetches(&self.log(), repository)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Publishes `component` as `HOST/repository:tag` with `wisp push`; returns the digest
    /// it printed.
    pub fn push(
        &self,
        wisp: &Path,
        component: &Path,
        repository: &str,
        tag: &str,
    ) -> anyhow::Result<String> {
        let reference = format!("{}/{repository}:{tag}", self.host);
        let output = Command::new(wisp)
            .arg("push")
            .arg(component)
            .arg(&reference)
            .arg("--insecure")
            .env("WISP_LOG", "warn")
            .output()
            .with_context(|| format!("cannot run {} push", wisp.display()))?;
        if !output.status.success() {
            bail!(
                "wisp push {} {reference} failed: {}",
                component.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        pushed_digest(&String::from_utf8_lossy(&output.stdout))
            .map(str::to_owned)
            .with_context(|| format!("wisp push {reference} printed no `digest: sha256:…` line"))
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the registry's `listening on ADDR` log line.
fn listening_address(log: &str) -> Option<&str> {
    let start = log.find("listening on ")? + "listening on ".len();
    let rest = &log[start..];
    let end = rest
        .find(|c: char| c == '"' || c.is_whitespace())
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|address| !address.is_empty())
}

fn count_blob_fetches(log: &str, repository: &str) -> usize {
    log.matches(&format!("\"GET /v2/{repository}/blobs/"))
        .count()
}

/// `sha256:…` from `wisp push`'s `digest: sha256:…` line.
fn pushed_digest(stdout: &str) -> Option<&str> {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("digest: "))
        .filter(|digest| digest.starts_with("sha256:"))
}

/// `component` with a custom section named `wisp-bench` holding `mark` appended: the same
/// program, bytes (so a digest, a pull and a compilation) of its own.
pub fn distinct_component(component: &[u8], mark: &str) -> Vec<u8> {
    use wasm_encoder::ComponentSection as _;
    let mut bytes = component.to_vec();
    wasm_encoder::CustomSection {
        name: "wisp-bench".into(),
        data: mark.as_bytes().into(),
    }
    .append_to_component(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_read_from_the_registry_log_line() {
        let log = "time=\"2026-12-07T01:00:00Z\" level=info msg=\"listening on 127.0.0.1:41234\" go.version=go1.22\n";
        assert_eq!(listening_address(log), Some("127.0.0.1:41234"));
        assert_eq!(listening_address("level=info msg=\"starting\"\n"), None);
    }

    #[test]
    fn blob_downloads_are_counted_per_repository_from_the_access_log() {
        let log = concat!(
            "127.0.0.1 - - [07/Dec/2026:01:00:00 +0000] \"GET /v2/bench/a/blobs/sha256:1 HTTP/1.1\" 200 10 \"\" \"wisp\"\n",
            "127.0.0.1 - - [07/Dec/2026:01:00:00 +0000] \"HEAD /v2/bench/a/manifests/v1 HTTP/1.1\" 200 0 \"\" \"wisp\"\n",
            "127.0.0.1 - - [07/Dec/2026:01:00:00 +0000] \"GET /v2/bench/a-2/blobs/sha256:2 HTTP/1.1\" 200 10 \"\" \"wisp\"\n",
        );
        assert_eq!(count_blob_fetches(log, "bench/a"), 1);
        assert_eq!(count_blob_fetches(log, "bench/a-2"), 1);
        assert_eq!(count_blob_fetches(log, "bench/b"), 0);
    }

    #[test]
    fn the_digest_is_read_from_wisp_push_output() {
        assert_eq!(
            pushed_digest("pushed 127.0.0.1:5000/a:v1\ndigest: sha256:abc\n"),
            Some("sha256:abc")
        );
        assert_eq!(pushed_digest("digest: md5:abc\n"), None);
        assert_eq!(pushed_digest(""), None);
    }

    #[test]
    fn a_distinct_component_is_still_a_valid_component_with_other_bytes() {
        let hello = std::fs::read(wisp_samples::HELLO).expect("the hello sample is built");
        let one = distinct_component(&hello, "1");
        let two = distinct_component(&hello, "2");
        assert_ne!(one, two);
        assert_ne!(one, hello);
        let mut validator =
            wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
        validator
            .validate_all(&one)
            .expect("still a valid component");
        let mut found = None;
        for payload in wasmparser::Parser::new(0).parse_all(&one) {
            if let wasmparser::Payload::CustomSection(section) = payload.expect("parses")
                && section.name() == "wisp-bench"
            {
                found = Some(section.data().to_vec());
            }
        }
        assert_eq!(found.as_deref(), Some(&b"1"[..]));
    }
}
