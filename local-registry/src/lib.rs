//! A real OCI registry on loopback for tests and benchmarks: Debian's `docker-registry` (the
//! CNCF distribution registry 2.8), storing into a temporary directory, optionally behind basic
//! auth or bearer tokens. Killed, and its storage removed, on drop.
//!
//! A crate of its own, not a module of `wisp-oci`: the oci and wisp tests and the benchmarks
//! all start one, and behind a cargo feature of `wisp-oci` the launcher would be compiled into
//! the production `wisp-oci` whenever a workspace build unifies that feature (and the
//! benchmarks would build the whole OCI client to start a process).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long the registry may take to say where it listens.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// The environment variable naming the registry binary, before `PATH` is searched.
pub const BINARY_VARIABLE: &str = "DOCKER_REGISTRY";
/// The registry binary's name on `PATH`.
const BINARY_NAME: &str = "docker-registry";

/// Why no registry runs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "docker-registry is not installed: run scripts/test-deps (Debian's docker-registry \
         package) or set ${BINARY_VARIABLE} to the registry binary"
    )]
    Missing,
    #[error(
        "htpasswd cannot make the basic-auth password file ({reason}): run scripts/test-deps \
         (Debian's apache2-utils package)"
    )]
    Htpasswd { reason: String },
    #[error("cannot {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },
    #[error("{binary} exited ({status}) before listening:\n{log}")]
    Exited {
        binary: PathBuf,
        status: ExitStatus,
        log: String,
    },
    #[error("{binary} did not say where it listens within {START_DEADLINE:?}:\n{log}")]
    Silent { binary: PathBuf, log: String },
    #[error("the restarted registry listens on {now}, not on {before} as it did")]
    Moved { before: String, now: String },
}

/// Who may use the registry.
#[derive(Clone, Copy, Debug)]
pub enum Access<'a> {
    /// Anyone may read and write.
    Anyone,
    /// Only `username` with `password` (basic auth, a bcrypt htpasswd file).
    Basic {
        username: &'a str,
        password: &'a str,
    },
    /// Whatever this `auth:` section of the registry's config says, such as a bearer-token
    /// one.
    AuthConfig(&'a str),
}

/// The registry binary: `$DOCKER_REGISTRY` if set, else `docker-registry` on `PATH`.
pub fn locate() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os(BINARY_VARIABLE) {
        return Ok(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(BINARY_NAME))
        .find(|candidate| candidate.is_file())
        .ok_or(Error::Missing)
}

/// A running registry (or a stopped one, keeping its storage).
pub struct RegistryProcess {
    binary: PathBuf,
    child: Option<Child>,
    /// Holds the config, the storage and the log until drop.
    dir: tempfile::TempDir,
    host: String,
}

impl RegistryProcess {
    /// Starts `binary` on `127.0.0.1:0`: it binds a free port itself and logs it, so nothing
    /// races between choosing a port and binding it.
    pub fn start(binary: &Path, access: Access<'_>) -> Result<Self, Error> {
        let dir = tempfile::tempdir().map_err(io_error("create a directory for the registry"))?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).map_err(io_error(format!(
            "create the registry's storage {}",
            storage.display()
        )))?;
        let auth = match access {
            Access::Anyone => String::new(),
            Access::Basic { username, password } => {
                let htpasswd = dir.path().join("htpasswd");
                write_htpasswd(&htpasswd, username, password)?;
                basic_auth_config(&htpasswd)
            }
            Access::AuthConfig(auth) => auth.to_owned(),
        };
        write(&config_path(dir.path()), &config(&storage, &auth))?;
        let mut registry = Self {
            binary: binary.to_owned(),
            child: None,
            dir,
            host: String::new(),
        };
        registry.host = registry.spawn()?;
        Ok(registry)
    }

    /// `127.0.0.1:PORT`: the registry part of image references, and what to list as insecure.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Everything the registry logged so far, its access log included (empty if unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The directory holding the registry's config, storage and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the registry (its storage stays until drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already gone is as good as killed.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the registry again on the same address and storage (stopping it first if it
    /// runs).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        let config_path = config_path(self.dir.path());
        let config = std::fs::read_to_string(&config_path).map_err(io_error(format!(
            "read the registry's config {}",
            config_path.display()
        )))?;
        write(
            &config_path,
            &config.replace("addr: 127.0.0.1:0", &format!("addr: {}", self.host)),
        )?;
        let now = self.spawn()?;
        if now != self.host {
            return Err(Error::Moved {
                before: self.host.clone(),
                now,
            });
        }
        Ok(())
    }

    /// Runs the registry on its config, logging into a fresh log; returns where it listens.
    fn spawn(&mut self) -> Result<String, Error> {
        let log_path = self.log_path();
        let log = std::fs::File::create(&log_path).map_err(io_error(format!(
            "create the registry's log {}",
            log_path.display()
        )))?;
        let log_too = log
            .try_clone()
            .map_err(io_error("open the registry's log twice"))?;
        let child = Command::new(&self.binary)
            .arg("serve")
            .arg(config_path(self.dir.path()))
            .stdin(Stdio::null())
            .stdout(log_too)
            .stderr(log)
            .spawn()
            .map_err(io_error(format!(
                "start {} (scripts/test-deps installs Debian's docker-registry package)",
                self.binary.display()
            )))?;
        self.child = Some(child);
        self.wait_for_address()
    }

    fn wait_for_address(&mut self) -> Result<String, Error> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let log = self.log();
            if let Some(host) = listening_address(&log) {
                return Ok(host.to_owned());
            }
            let exited = match self.child.as_mut() {
                Some(child) => child
                    .try_wait()
                    .map_err(io_error("ask whether the registry still runs"))?,
                None => None,
            };
            if let Some(status) = exited {
                self.child = None;
                return Err(Error::Exited {
                    binary: self.binary.clone(),
                    status,
                    log,
                });
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(Error::Silent {
                    binary: self.binary.clone(),
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config_path(dir: &Path) -> PathBuf {
    dir.join("config.yml")
}

/// The registry's config: info logging (the access log is how tests and benchmarks see which
/// requests reached it), filesystem storage with deletes allowed, port 0 on loopback.
fn config(storage: &Path, auth: &str) -> String {
    format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  secret: wisp-local-registry\n{auth}",
        storage.display()
    )
}

fn basic_auth_config(htpasswd: &Path) -> String {
    format!(
        "auth:\n  htpasswd:\n    realm: wisp-local-registry\n    path: {}\n",
        htpasswd.display()
    )
}

/// A bcrypt htpasswd line, the only kind the registry accepts, from `htpasswd -Bbn`.
fn write_htpasswd(path: &Path, username: &str, password: &str) -> Result<(), Error> {
    let output = Command::new("htpasswd")
        .args(["-Bbn", username, password])
        .output()
        .map_err(|error| Error::Htpasswd {
            reason: error.to_string(),
        })?;
    if !output.status.success() {
        return Err(Error::Htpasswd {
            reason: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    std::fs::write(path, &output.stdout).map_err(io_error(format!("write {}", path.display())))
}

fn write(path: &Path, contents: &str) -> Result<(), Error> {
    std::fs::write(path, contents).map_err(io_error(format!("write {}", path.display())))
}

fn io_error(action: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let action = action.into();
    move |source| Error::Io { action, source }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_read_from_the_registry_log_line() {
        let log = "time=\"2026-12-07T01:00:00Z\" level=info msg=\"listening on 127.0.0.1:41234\" go.version=go1.22\n";
        assert_eq!(listening_address(log), Some("127.0.0.1:41234"));
        assert_eq!(listening_address("level=info msg=\"starting\"\n"), None);
        assert_eq!(listening_address("msg=\"listening on \"\n"), None);
    }

    #[test]
    fn the_config_listens_on_port_zero_and_appends_the_auth_section() {
        let auth = basic_auth_config(Path::new("/d/htpasswd"));
        let config = config(Path::new("/d/storage"), &auth);
        assert!(config.contains("rootdirectory: /d/storage\n"));
        assert!(config.contains("addr: 127.0.0.1:0\n"), "{config}");
        assert!(
            config.ends_with(
                "auth:\n  htpasswd:\n    realm: wisp-local-registry\n    path: /d/htpasswd\n"
            ),
            "{config}"
        );
    }

    #[test]
    fn a_binary_that_exits_at_once_is_reported_with_its_status() {
        let result = RegistryProcess::start(Path::new("/bin/false"), Access::Anyone);
        assert!(
            matches!(result, Err(Error::Exited { ref binary, .. }) if binary == Path::new("/bin/false")),
            "{:?}",
            result.err()
        );
    }

    #[test]
    fn a_missing_binary_says_what_to_install() {
        let error =
            RegistryProcess::start(Path::new("/nonexistent/docker-registry"), Access::Anyone)
                .err()
                .map(|error| error.to_string())
                .unwrap_or_default();
        assert!(error.contains("scripts/test-deps"), "{error}");
    }

    #[test]
    fn the_registry_listens_where_it_says_and_comes_back_there() {
        let binary = locate().unwrap_or_else(|error| panic!("{error}"));
        let mut registry = RegistryProcess::start(&binary, Access::Anyone)
            .unwrap_or_else(|error| panic!("{error}"));
        let host = registry.host().to_owned();
        assert!(host.starts_with("127.0.0.1:"), "{host}");
        std::net::TcpStream::connect(&host).expect("the registry accepts connections");
        registry.stop();
        registry.restart().unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.host(), host);
        std::net::TcpStream::connect(&host).expect("the restarted registry accepts connections");
    }
}
