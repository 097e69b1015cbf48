//! Which component sources a node may read, as its operator set them: local files only under
//! allowed directories, downloads only from allowed hosts, and never from loopback, link-local or
//! private addresses unless allowed. Sources named in API objects — which any API user can
//! write — go through this policy; a refusal never says whether a file outside the allowed
//! directories exists.
//!
//! The checks here are pure (names and paths as written); [`crate::artifact`] does the I/O
//! that makes them hold: it opens files beneath an allowed directory so no symlink or `..` can
//! leave it, and connects only to addresses it checked.

use std::fmt;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use crate::address_class::non_public_range;

/// What sources may be read. [`Default`]: any local path, any host, but no private network
/// addresses; [`SourcePolicy::trusting`] for sources an operator names on a command line.
#[derive(Debug, Clone, Default)]
pub struct SourcePolicy {
    /// `None`: any path.
    directories: Option<Vec<AllowedDirectory>>,
    /// `None`: any host.
    hosts: Option<Vec<AllowedHost>>,
    private_networks: bool,
}

/// A directory local components may be read from, as given and as the filesystem resolves it
/// (either spelling of a path under it is accepted).
#[derive(Debug, Clone)]
struct AllowedDirectory {
    given: PathBuf,
    canonical: PathBuf,
}

/// Why a policy cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "the allowed component directory {path} cannot be used: {reason}; give an existing directory"
    )]
    Directory { path: PathBuf, reason: String },
    #[error(
        "the allowed host {given:?} is not HOST or HOST:PORT ({reason}); write e.g. registry.example.com or 10.0.0.5:8080"
    )]
    Host { given: String, reason: String },
}

impl SourcePolicy {
    /// Any path, any host, private networks included: for sources the operator named itself.
    pub fn trusting() -> Self {
        Self {
            directories: None,
            hosts: None,
            private_networks: true,
        }
    }

    /// Local files only under `directories` (each must exist), downloads only from `hosts`
    /// (`None`: from any host), private network addresses only with `private_networks`.
    pub fn restricted(
        directories: &[PathBuf],
        hosts: Option<Vec<AllowedHost>>,
        private_networks: bool,
    ) -> Result<Self, PolicyError> {
        let mut allowed = Vec::with_capacity(directories.len());
        for directory in directories {
            let unusable = |reason: String| PolicyError::Directory {
                path: directory.clone(),
                reason,
            };
            let given = std::path::absolute(directory)
                .map(|path| normalize(&path))
                .map_err(|error| unusable(error.to_string()))?;
            let canonical = directory
                .canonicalize()
                .map_err(|error| unusable(error.to_string()))?;
            if !canonical.is_dir() {
                return Err(unusable("it is not a directory".into()));
            }
            if canonical == Path::new("/") {
                tracing::warn!(
                    directory = %directory.display(),
                    "components may be read from anywhere on this machine: the allowed directory is /"
                );
            }
            allowed.push(AllowedDirectory { given, canonical });
        }
        Ok(Self {
            directories: Some(allowed),
            hosts,
            private_networks,
        })
    }

    pub fn allows_private_networks(&self) -> bool {
        self.private_networks
    }

    /// Where to open `path` from: `None` when any path may be read as it is; else the allowed
    /// directory (canonical) and the path beneath it. A refusal is [`Refusal::OutsideDirectories`],
    /// decided from the path as written — the filesystem is not asked.
    pub fn place_file(&self, path: &Path) -> Result<Option<(PathBuf, PathBuf)>, Refusal> {
        let Some(directories) = &self.directories else {
            return Ok(None);
        };
        let outside = || Refusal::OutsideDirectories {
            allowed: self.directory_list(),
        };
        if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            return Err(outside());
        }
        let path = normalize(path);
        directories
            .iter()
            .find_map(|directory| {
                [&directory.given, &directory.canonical]
                    .into_iter()
                    .find_map(|base| path.strip_prefix(base).ok())
                    .map(|beneath| (directory.canonical.clone(), beneath.to_path_buf()))
            })
            .map(Some)
            .ok_or_else(outside)
    }

    /// Whether a download from `host` (as in the URL, lower case) on `port` is allowed by
    /// name; the addresses it resolves to are checked with [`SourcePolicy::check_address`].
    pub fn check_host(&self, host: &str, port: u16) -> Result<(), Refusal> {
        let Some(hosts) = &self.hosts else {
            return Ok(());
        };
        if hosts.iter().any(|allowed| allowed.matches(host, port)) {
            return Ok(());
        }
        Err(Refusal::HostNotAllowed {
            host: format!("{host}:{port}"),
            allowed: if hosts.is_empty() {
                "none".into()
            } else {
                hosts
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }

    /// Whether a download may connect to `address` (one `host` resolved to).
    pub fn check_address(&self, host: &str, address: IpAddr) -> Result<(), Refusal> {
        match non_public_range(address) {
            Some(range) if !self.private_networks => Err(Refusal::PrivateAddress {
                host: host.to_owned(),
                address,
                range,
            }),
            _ => Ok(()),
        }
    }

    fn directory_list(&self) -> String {
        match &self.directories {
            Some(directories) if !directories.is_empty() => directories
                .iter()
                .map(|d| d.given.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            _ => "none".into(),
        }
    }

    /// The refusal for a file whose opening left its allowed directory (a symlink or `..`
    /// pointing out): word for word the refusal of a path written outside.
    pub(crate) fn escape(&self) -> Refusal {
        Refusal::OutsideDirectories {
            allowed: self.directory_list(),
        }
    }
}

/// `path` with `.` components dropped (`..` is refused before it gets here).
fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| *c != Component::CurDir)
        .collect()
}

/// A host downloads may come from: a name or IP, with or without a port (without: any port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    /// Reads `HOST`, `HOST:PORT`, `[IPV6]` or `[IPV6]:PORT`.
    pub fn parse(given: &str) -> Result<Self, PolicyError> {
        let invalid = |reason: &str| PolicyError::Host {
            given: given.to_owned(),
            reason: reason.to_owned(),
        };
        let (host, port) = match given.strip_prefix('[') {
            Some(bracketed) => {
                let (host, rest) = bracketed
                    .split_once(']')
                    .ok_or_else(|| invalid("an IPv6 address needs its closing ]"))?;
                if host.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(invalid("inside [ ] must be an IPv6 address"));
                }
                match rest {
                    "" => (host, None),
                    _ => (
                        host,
                        Some(
                            rest.strip_prefix(':')
                                .ok_or_else(|| invalid("after ] only :PORT may follow"))?,
                        ),
                    ),
                }
            }
            None if given.parse::<std::net::Ipv6Addr>().is_ok() => (given, None),
            None => match given.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (given, None),
            },
        };
        let port = port
            .map(|port| {
                port.parse::<u16>()
                    .map_err(|_| invalid("the port must be a number from 0 to 65535"))
            })
            .transpose()?;
        let name_like = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'));
        if host.is_empty() || !name_like {
            return Err(invalid("a host is a DNS name or an IP address"));
        }
        let host = host.to_ascii_lowercase();
        Ok(Self { host, port })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.host.eq_ignore_ascii_case(host) && self.port.is_none_or(|allowed| allowed == port)
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => write!(f, "{host}:{port}"),
            None => f.write_str(&host),
        }
    }
}

/// Why the policy refuses a source; each says what the operator can change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Also for a path that exists only as a way out (symlink, `..`): the same words whether
    /// or not anything is there.
    #[error(
        "local components are read only from the directories the node allows ({allowed}), and this path is not beneath them; put the component there and refer to it by that path, or ask the operator to allow its directory (--allow-path)"
    )]
    OutsideDirectories { allowed: String },
    #[error(
        "downloads are allowed only from the hosts the node allows ({allowed}), not from {host}; use an allowed host, or ask the operator to allow this one (--allow-host)"
    )]
    HostNotAllowed { host: String, allowed: String },
    #[error(
        "{host} resolves to {address}, a {range} address, and downloads from non-public addresses are refused; serve the component from a public address, or ask the operator to allow private networks (--allow-private-networks)"
    )]
    PrivateAddress {
        host: String,
        address: IpAddr,
        range: &'static str,
    },
    #[error(
        "the server redirected to {to}, another host; wisp follows redirects only within the same scheme, host and port, so refer to the final URL directly"
    )]
    Redirect { to: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(dirs: &[&Path]) -> SourcePolicy {
        let dirs: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
        SourcePolicy::restricted(&dirs, Some(vec![]), false).unwrap()
    }

    #[test]
    fn paths_under_an_allowed_directory_are_placed_beneath_it() {
        let dir = tempfile::tempdir().unwrap();
        let policy = policy(&[dir.path()]);
        let (base, beneath) = policy
            .place_file(&dir.path().join("./sub/a.wasm"))
            .unwrap()
            .unwrap();
        assert_eq!(base, dir.path().canonicalize().unwrap());
        assert_eq!(beneath, Path::new("sub/a.wasm"));
    }

    #[test]
    fn parent_components_relative_paths_and_outside_paths_are_refused_alike() {
        let dir = tempfile::tempdir().unwrap();
        let policy = policy(&[dir.path()]);
        let escaping = dir.path().join("../etc/passwd");
        let refusals: Vec<Refusal> = [
            escaping.as_path(),
            Path::new("/etc/passwd"),
            Path::new("/etc/no-such-file-anywhere"),
            Path::new("relative.wasm"),
            &dir.path().join("sub/../../x.wasm"),
        ]
        .into_iter()
        .map(|path| policy.place_file(path).unwrap_err())
        .collect();
        assert!(
            refusals.windows(2).all(|pair| pair[0] == pair[1]),
            "{refusals:?}"
        );
        assert!(refusals[0].to_string().contains("--allow-path"));
        assert_eq!(refusals[0], policy.escape());
    }

    #[test]
    fn a_prefix_of_a_name_is_not_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let policy = policy(&[dir.path()]);
        let sibling = format!("{}-other/a.wasm", dir.path().display());
        assert!(policy.place_file(Path::new(&sibling)).is_err());
    }

    #[test]
    fn missing_directories_cannot_be_allowed() {
        let error = SourcePolicy::restricted(&["/no/such/dir".into()], None, false).unwrap_err();
        assert!(error.to_string().contains("/no/such/dir"), "{error}");
    }

    #[test]
    fn any_path_when_no_directories_are_configured() {
        assert_eq!(
            SourcePolicy::default()
                .place_file(Path::new("/anything"))
                .unwrap(),
            None
        );
    }

    #[test]
    fn hosts_match_by_name_and_optional_port() {
        let hosts = ["registry.example.com", "10.0.0.5:8080", "[::1]:9000"]
            .iter()
            .map(|h| AllowedHost::parse(h).unwrap())
            .collect();
        let policy = SourcePolicy::restricted(&[], Some(hosts), false).unwrap();
        assert!(policy.check_host("registry.example.com", 443).is_ok());
        assert!(policy.check_host("registry.example.com", 8443).is_ok());
        assert!(policy.check_host("10.0.0.5", 8080).is_ok());
        assert!(policy.check_host("10.0.0.5", 80).is_err());
        assert!(policy.check_host("[::1]", 9000).is_ok());
        let refusal = policy.check_host("evil.example.com", 443).unwrap_err();
        assert!(
            refusal.to_string().contains("evil.example.com:443"),
            "{refusal}"
        );
        assert!(refusal.to_string().contains("--allow-host"), "{refusal}");
        assert!(
            SourcePolicy::default()
                .check_host("any.example", 80)
                .is_ok()
        );
    }

    #[test]
    fn allowed_hosts_are_only_hosts() {
        for bad in ["", "user@host", "host/path", "host:notaport", "http://host"] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            AllowedHost::parse("Example.COM:81").unwrap().to_string(),
            "example.com:81"
        );
    }

    #[test]
    fn private_addresses_need_the_allowance() {
        let strict = SourcePolicy::default();
        let loopback: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let refusal = strict.check_address("localhost", loopback).unwrap_err();
        assert!(refusal.to_string().contains("loopback"), "{refusal}");
        assert!(
            refusal.to_string().contains("--allow-private-networks"),
            "{refusal}"
        );
        assert!(
            strict
                .check_address("x", "1.1.1.1".parse().unwrap())
                .is_ok()
        );
        assert!(
            SourcePolicy::trusting()
                .check_address("localhost", loopback)
                .is_ok()
        );
    }
}
