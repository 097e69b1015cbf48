//! A real OCI registry for benchmarks: Debian's `docker-registry` (the CNCF distribution
//! registry) on loopback, storing into a temporary directory, with components published to it
//! by `wisp push` (the registry is `wisp-local-registry`'s). Killed, and its storage removed,
//! on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use wisp_local_registry::{Access, RegistryProcess};

/// The registry binary, or why there is none (for a benchmark row: the launcher's own words,
/// which name what to install).
pub fn locate() -> Result<PathBuf, String> {
    wisp_local_registry::locate().map_err(|error| format!("missing: {error}"))
}

pub struct LocalRegistry {
    process: RegistryProcess,
}

impl LocalRegistry {
    /// Starts `binary` on a free loopback port, open to anyone.
    pub fn start(binary: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            process: RegistryProcess::start(binary, Access::Anyone)?,
        })
    }

    /// `127.0.0.1:PORT`: the registry part of image references, and what to list as insecure.
    pub fn host(&self) -> &str {
        self.process.host()
    }

    /// How many blob downloads (`GET /v2/REPOSITORY/blobs/…`) the access log shows.
    pub fn blob_fetches(&self, repository: &str) -> usize {
        count_blob_fetches(&self.process.log(), repository)
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
        let reference = format!("{}/{repository}:{tag}", self.host());
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
