//! The component source policy flags (`--allow-path`, `--allow-host`,
//! `--allow-private-networks`) that `wisp node`, `wisp up` and `wisp serve` share: which files
//! and URLs the components of Services may come from.

use std::path::{Path, PathBuf};

use anyhow::Context;
use wisp_runtime::{AllowedHost, SourcePolicy};

#[derive(clap::Args, Clone, Debug, Default)]
pub struct SourceArgs {
    /// A directory whose files Services may name as their component (repeatable). The image
    /// directory is always allowed; a path outside every allowed directory, or leaving one
    /// through `..` or a symlink, is refused without saying whether it exists.
    #[arg(long = "allow-path", value_name = "DIR")]
    pub allow_path: Vec<PathBuf>,
    /// A host Services may download components from, as HOST or HOST:PORT (repeatable); `*`
    /// allows every host. Default: none — URL images are refused.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    pub allow_host: Vec<String>,
    /// Let downloads reach loopback, link-local and private network addresses (refused by
    /// default, however a name resolves, so a Service cannot make the node fetch from itself
    /// or its network).
    #[arg(long)]
    pub allow_private_networks: bool,
}

impl SourceArgs {
    /// The policy for sources named in API objects: files under `image_dir` and the allowed
    /// directories, downloads from the allowed hosts.
    pub fn policy(&self, image_dir: &Path) -> anyhow::Result<SourcePolicy> {
        let mut directories = Vec::with_capacity(self.allow_path.len() + 1);
        // A missing image directory allows nothing (a volume not mounted yet must not keep the
        // node from starting); a missing --allow-path is a mistake worth stopping for.
        if image_dir.is_dir() {
            directories.push(image_dir.to_path_buf());
        } else {
            tracing::warn!(
                image_dir = %image_dir.display(),
                "the image directory does not exist; no component file can be read from it"
            );
        }
        directories.extend(self.allow_path.iter().cloned());
        let hosts = if self.allow_host.iter().any(|host| host == "*") {
            None
        } else {
            Some(
                self.allow_host
                    .iter()
                    .map(|host| AllowedHost::parse(host))
                    .collect::<Result<Vec<_>, _>>()
                    .context("--allow-host")?,
            )
        };
        SourcePolicy::restricted(&directories, hosts, self.allow_private_networks)
            .context("--allow-path or --image-dir")
    }

    /// The policy of `wisp serve`, whose Services come from a file its operator passed: trusted
    /// like `wisp run`'s argument unless one of these flags is given, then as [`Self::policy`]
    /// with `file_dir` as the image directory.
    pub fn serve_policy(&self, file_dir: &Path) -> anyhow::Result<SourcePolicy> {
        let restricted = !self.allow_path.is_empty()
            || !self.allow_host.is_empty()
            || self.allow_private_networks;
        if restricted {
            self.policy(file_dir)
        } else {
            Ok(SourcePolicy::trusting())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_directory_is_always_allowed_and_hosts_default_to_none() {
        let dir = tempfile::tempdir().unwrap();
        let policy = SourceArgs::default().policy(dir.path()).unwrap();
        assert!(policy.place_file(&dir.path().join("a.wasm")).is_ok());
        assert!(policy.place_file(Path::new("/etc/passwd")).is_err());
        assert!(policy.check_host("example.com", 443).is_err());
        assert!(!policy.allows_private_networks());
    }

    #[test]
    fn a_missing_image_directory_allows_nothing_but_a_missing_allowed_one_fails() {
        let policy = SourceArgs::default()
            .policy(Path::new("/no/such/images"))
            .unwrap();
        assert!(
            policy
                .place_file(Path::new("/no/such/images/a.wasm"))
                .is_err()
        );
        let args = SourceArgs {
            allow_path: vec!["/no/such/dir".into()],
            ..SourceArgs::default()
        };
        assert!(args.policy(Path::new("/tmp")).is_err());
    }

    #[test]
    fn a_star_allows_every_host() {
        let dir = tempfile::tempdir().unwrap();
        let args = SourceArgs {
            allow_host: vec!["*".into()],
            ..SourceArgs::default()
        };
        let policy = args.policy(dir.path()).unwrap();
        assert!(policy.check_host("example.com", 443).is_ok());
    }

    #[test]
    fn serve_trusts_its_file_unless_told_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let trusting = SourceArgs::default().serve_policy(dir.path()).unwrap();
        assert!(
            trusting
                .place_file(Path::new("/etc/passwd"))
                .unwrap()
                .is_none()
        );
        let strict = SourceArgs {
            allow_private_networks: true,
            ..SourceArgs::default()
        }
        .serve_policy(dir.path())
        .unwrap();
        assert!(strict.place_file(Path::new("/etc/passwd")).is_err());
    }
}
