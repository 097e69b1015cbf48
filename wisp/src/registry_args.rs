//! What `wisp push` and `wisp inspect` share: reaching a registry, and whose credentials to use.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use wisp_oci::{Credentials, DockerConfig, ImageReference, Registry, RegistrySettings};

#[derive(clap::Args, Debug)]
pub struct RegistryArgs {
    /// Reach the reference's registry over plain HTTP instead of HTTPS (a local registry such
    /// as `localhost:5000`). Every other registry is always reached over HTTPS.
    #[arg(long)]
    pub insecure: bool,

    /// The user name to log in with; the password is read from stdin (--password-stdin).
    /// Without it, credentials come from the docker config file ($DOCKER_CONFIG/config.json,
    /// else ~/.docker/config.json) when it has an entry for the registry, else none are sent.
    #[arg(long, short = 'u', requires = "password_stdin")]
    pub username: Option<String>,

    /// Read the password (or access token) for --username from stdin, so it never appears in
    /// the process list or shell history.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

impl RegistryArgs {
    pub fn registry(&self, reference: &ImageReference) -> Registry {
        let insecure_registries = if self.insecure {
            vec![reference.registry().to_owned()]
        } else {
            Vec::new()
        };
        Registry::new(RegistrySettings {
            insecure_registries,
            ..Default::default()
        })
    }

    pub fn credentials(&self, reference: &ImageReference) -> anyhow::Result<Credentials> {
        if let Some(username) = &self.username {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("cannot read the password from stdin (--password-stdin)")?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            anyhow::ensure!(
                !password.is_empty(),
                "--password-stdin read an empty password; pipe it in, e.g. `echo \"$TOKEN\" | wisp … --username {username} --password-stdin`"
            );
            return Ok(Credentials::Basic {
                username: username.clone(),
                password,
            });
        }
        let Some(path) = docker_config_path() else {
            return Ok(Credentials::Anonymous);
        };
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Credentials::Anonymous);
            }
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot read the docker config {}", path.display()));
            }
        };
        let config = DockerConfig::parse(&data)
            .with_context(|| format!("cannot use the docker config {}", path.display()))?;
        Ok(config.credentials_for(reference))
    }
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|dir| !dir.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").filter(|home| !home.is_empty())?;
    Some(PathBuf::from(home).join(".docker").join("config.json"))
}

/// Parses a registry reference given on the command line.
pub fn parse_reference(text: &str) -> anyhow::Result<ImageReference> {
    Ok(ImageReference::parse(text)?)
}
