//! A real load balancer in front of wisp nodes — Debian's haproxy, the stand-in for a cloud
//! SLB: HTTP mode, round robin per request, health checks on each gateway's `/healthz` every
//! 300 ms, and retries of requests that never reached a node (a connection refused, or closed
//! before any answer). It listens on an ephemeral loopback port and is killed when dropped.
//! Used by `bench nodes` and the multi-node end-to-end tests.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The haproxy release line this configuration is written for (`scripts/test-deps` installs it).
pub const HAPROXY_LINE: &str = "2.6.";

/// A running haproxy.
pub struct Balancer {
    child: Child,
    /// Where clients send requests.
    pub addr: SocketAddr,
    _config: tempfile::NamedTempFile,
}

/// The haproxy binary: `WISP_HAPROXY`, else `haproxy` on `PATH` or in `/usr/sbin`.
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("WISP_HAPROXY") {
        return Ok(PathBuf::from(path));
    }
    for candidate in ["haproxy", "/usr/sbin/haproxy"] {
        if Command::new(candidate)
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Ok(PathBuf::from(candidate));
        }
    }
    bail!(
        "haproxy is missing: a real load balancer goes in front of the nodes; install Debian's \
         haproxy {HAPROXY_LINE}x (`apt-get install haproxy`, as scripts/test-deps does) or set \
         WISP_HAPROXY"
    )
}

/// The configuration for `backends` (name, gateway address), listening on `listen`.
fn config(listen: SocketAddr, backends: &[(&str, SocketAddr)]) -> String {
    let mut text = format!(
        "global\n  maxconn 4000\n\
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
    pub fn start(backends: &[(&str, SocketAddr)]) -> anyhow::Result<Self> {
        let binary = binary()?;
        let version = Command::new(&binary)
            .arg("-v")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .with_context(|| format!("cannot run {}", binary.display()))?;
        if !version.contains(&format!("version {HAPROXY_LINE}")) {
            bail!("the balancer is configured for haproxy {HAPROXY_LINE}x; found: {version}");
        }
        // A free port, released for haproxy to bind next.
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("no free loopback port for the balancer")?;
        let mut file = tempfile::NamedTempFile::new().context("cannot write haproxy's config")?;
        file.write_all(config(addr, backends).as_bytes())
            .context("cannot write haproxy's config")?;
        let mut child = Command::new(&binary)
            .arg("-db")
            .arg("-f")
            .arg(file.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                bail!("haproxy never listened on {addr}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            child,
            addr,
            _config: file,
        })
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_is_checked_on_its_healthz() {
        let listen: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let a: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let text = config(listen, &[("a", a)]);
        assert!(text.contains("option httpchk GET /healthz"));
        assert!(text.contains("  server a 127.0.0.1:2\n"));
        assert!(text.contains("bind 127.0.0.1:1"));
    }
}
