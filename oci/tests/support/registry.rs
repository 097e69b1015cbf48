//! A real OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry
//! 2.8) on loopback, storing into a temporary directory, optionally behind basic auth or bearer
//! tokens. Killed
//! and its storage removed on drop. Shared by `oci/tests/` and `wisp/tests/` (by `#[path]`).

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a registry may take to say where it listens.
const START_DEADLINE: Duration = Duration::from_secs(30);

pub struct TestRegistry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    log: PathBuf,
    host: String,
}

impl TestRegistry {
    /// A registry anyone may read and write.
    pub fn start() -> Self {
        Self::launch(None, None)
    }

    /// A registry that requires `username`/`password` (basic auth, bcrypt htpasswd).
    pub fn start_with_basic_auth(username: &str, password: &str) -> Self {
        Self::launch(Some((username, password)), None)
    }

    /// A registry with the given `auth:` section of its config, such as the bearer-token
    /// one `TokenServer::registry_auth_config` writes.
    pub fn start_with_auth_config(auth: &str) -> Self {
        Self::launch(None, Some(auth))
    }

    fn launch(basic: Option<(&str, &str)>, auth_config: Option<&str>) -> Self {
        let binary = which_registry();
        let dir = tempfile::tempdir().expect("a temporary directory for the registry");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("the registry's storage directory");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  secret: wisp-test-secret\n",
            storage.display()
        );
        if let Some((username, password)) = basic {
            let htpasswd = dir.path().join("htpasswd");
            write_htpasswd(&htpasswd, username, password);
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: wisp-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if let Some(auth_config) = auth_config {
            config.push_str(auth_config);
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("the registry's config");
        let log = dir.path().join("registry.log");
        let log_file = std::fs::File::create(&log).expect("the registry's log file");
        // Port 0: the registry binds a free port itself and logs it, so there is no race
        // between choosing a port and binding it.
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("a second log handle"))
            .stderr(log_file)
            .spawn()
            .expect("docker-registry starts (scripts/test-deps installs it)");
        let mut registry = Self {
            child: Some(child),
            dir,
            log,
            host: String::new(),
        };
        registry.host = registry.wait_for_address();
        registry
    }

    fn wait_for_address(&mut self) -> String {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let log = self.log();
            if let Some(start) = log.find("listening on ") {
                let rest = &log[start + "listening on ".len()..];
                let end = rest
                    .find(|c: char| c == '"' || c.is_whitespace())
                    .unwrap_or(rest.len());
                return rest[..end].to_owned();
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("docker-registry exited ({status}) before listening:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not say where it listens within {START_DEADLINE:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:PORT`: the registry part of image references, and what to list as insecure.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Everything the registry logged so far (its access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many `METHOD PATH` requests the access log shows, for PATH exactly.
    pub fn requests(&self, method: &str, path: &str) -> usize {
        let needle = format!("\"{method} {path} HTTP/");
        self.log().matches(&needle).count()
    }

    pub fn storage(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the stopped registry again on the same address and storage.
    pub fn restart(&mut self) {
        self.stop();
        let config_path = self.dir.path().join("config.yml");
        let config = std::fs::read_to_string(&config_path).expect("the registry's config");
        let config = config.replace("addr: 127.0.0.1:0", &format!("addr: {}", self.host));
        std::fs::write(&config_path, config).expect("the registry's config");
        let log_file = std::fs::File::create(&self.log).expect("the registry's log file");
        let child = Command::new(which_registry())
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("a second log handle"))
            .stderr(log_file)
            .spawn()
            .expect("docker-registry starts again");
        self.child = Some(child);
        let host = self.wait_for_address();
        assert_eq!(host, self.host, "the registry came back on another address");
    }

    /// Stops the registry (its storage stays until drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn which_registry() -> PathBuf {
    for dir in std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let candidate = dir.join("docker-registry");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "docker-registry is not installed: run scripts/test-deps (Debian's docker-registry package)"
    );
}

/// A bcrypt htpasswd line, the only kind the registry accepts, from `htpasswd -Bbn`.
fn write_htpasswd(path: &Path, username: &str, password: &str) {
    let output = Command::new("htpasswd")
        .args(["-Bbn", username, password])
        .output()
        .expect("htpasswd runs (scripts/test-deps installs apache2-utils)");
    assert!(output.status.success(), "htpasswd failed: {output:?}");
    let mut file = std::fs::File::create(path).expect("the htpasswd file");
    file.write_all(&output.stdout).expect("the htpasswd line");
}

/// A loopback port nothing listens on (bound, then released).
pub fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}
