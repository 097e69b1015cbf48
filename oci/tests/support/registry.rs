//! A real OCI registry for tests (see `wisp-local-registry`), with the panics and access-log
//! questions tests want. Shared by `oci/tests/` and `wisp/tests/` (by `#[path]`).

#![allow(dead_code)]

use std::path::Path;

use wisp_local_registry::{Access, RegistryProcess};

pub struct TestRegistry {
    process: RegistryProcess,
}

impl TestRegistry {
    /// A registry anyone may read and write.
    pub fn start() -> Self {
        Self::launch(Access::Anyone)
    }

    /// A registry that requires `username`/`password` (basic auth, bcrypt htpasswd).
    pub fn start_with_basic_auth(username: &str, password: &str) -> Self {
        Self::launch(Access::Basic { username, password })
    }

    /// A registry with the given `auth:` section of its config, such as the bearer-token
    /// one `TokenServer::registry_auth_config` writes.
    pub fn start_with_auth_config(auth: &str) -> Self {
        Self::launch(Access::AuthConfig(auth))
    }

    fn launch(access: Access<'_>) -> Self {
        let process = wisp_local_registry::locate()
            .and_then(|binary| RegistryProcess::start(&binary, access))
            .unwrap_or_else(|error| panic!("no registry to test against: {error}"));
        Self { process }
    }

    /// `127.0.0.1:PORT`: the registry part of image references, and what to list as insecure.
    pub fn host(&self) -> &str {
        self.process.host()
    }

    /// Everything the registry logged so far (its access log included).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// How many `METHOD PATH` requests the access log shows, for PATH exactly.
    pub fn requests(&self, method: &str, path: &str) -> usize {
        let needle = format!("\"{method} {path} HTTP/");
        self.log().matches(&needle).count()
    }

    pub fn storage(&self) -> &Path {
        self.process.dir()
    }

    /// Starts the stopped registry again on the same address and storage.
    pub fn restart(&mut self) {
        self.process
            .restart()
            .unwrap_or_else(|error| panic!("the registry does not come back: {error}"));
    }

    /// Stops the registry (its storage stays until drop).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}
