//! A real load balancer in front of wisp nodes for end-to-end tests: Debian's haproxy (the
//! stand-in for a cloud SLB), HTTP mode, round robin per request, health checks on each
//! gateway's `/healthz`, and retries of requests that never reached a node. It listens on an
//! ephemeral loopback port and is killed when dropped.

#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The haproxy release line the tests are written against (`.ci/run` installs it).
const HAPROXY_LINE: &str = "2.6.";

/// A running haproxy.
pub struct Balancer {
    child: Child,
    /// Where clients send requests.
    pub addr: SocketAddr,
    _config: tempfile::NamedTempFile,
}

/// The haproxy binary: `WISP_HAPROXY`, else `haproxy` on PATH or in /usr/sbin. A missing one
/// fails the test with what to install.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WISP_HAPROXY") {
        return PathBuf::from(path);
    }
    for candidate in ["haproxy", "/usr/sbin/haproxy"] {
        if Command::new(candidate)
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "haproxy is missing: these tests put a real load balancer in front of the nodes; \
         install Debian's haproxy {HAPROXY_LINE}x (`apt-get install haproxy`, as .ci/run does) \
         or set WISP_HAPROXY"
    );
}

/// A free loopback port (bound and released: haproxy binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The configuration for `backends` (name, gateway address).
fn config(listen: SocketAddr, backends: &[(&str, SocketAddr)]) -> String {
    let mut text = format!(
        "global\n  maxconn 1000\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n  \
         timeout check 1s\n  retries 3\n  option redispatch 1\n  \
         retry-on conn-failure empty-response 503\n  option http-server-close\n\
         frontend wisp\n  bind {listen}\n  default_backend nodes\n\
         backend nodes\n  balance roundrobin\n  option httpchk GET /healthz\n  \
         default-server check inter 300ms fall 2 rise 2\n"
    );
    for (name, addr) in backends {
        text.push_str(&format!("  server {name} {addr}\n"));
    }
    text
}

impl Balancer {
    /// Starts haproxy in front of `backends`; returns once it accepts connections.
    pub fn start(backends: &[(&str, SocketAddr)]) -> Self {
        let binary = binary();
        let version = Command::new(&binary)
            .arg("-v")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        assert!(
            version.contains(&format!("version {HAPROXY_LINE}")),
            "these tests are written for haproxy {HAPROXY_LINE}x; found: {version}"
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut file = tempfile::NamedTempFile::new().expect("config file");
        file.write_all(config(addr, backends).as_bytes())
            .expect("write config");
        let child = Command::new(&binary)
            .arg("-db")
            .arg("-f")
            .arg(file.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy never listened on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            addr,
            _config: file,
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
