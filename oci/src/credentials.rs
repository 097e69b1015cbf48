//! Registry credentials: anonymous, basic or a bearer token, and the docker config format
//! (`kubernetes.io/dockerconfigjson` secrets and `~/.docker/config.json`) they usually come in.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;

use crate::reference::ImageReference;

/// How to authenticate to one registry. `Debug` never shows a secret.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    #[default]
    Anonymous,
    /// A user name and password (or access token used as a password). oci-client sends them
    /// with basic auth, or trades them for a bearer token when the registry asks for one.
    Basic { username: String, password: String },
    /// A bearer token the registry accepts as it is.
    Bearer(String),
}

impl Credentials {
    pub(crate) fn to_client(&self) -> oci_client::secrets::RegistryAuth {
        use oci_client::secrets::RegistryAuth;
        match self {
            Self::Anonymous => RegistryAuth::Anonymous,
            Self::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Self::Bearer(token) => RegistryAuth::Bearer(token.clone()),
        }
    }

    /// A description fit for messages and logs: the user name, never the secret.
    pub fn describe(&self) -> String {
        match self {
            Self::Anonymous => "anonymously".to_owned(),
            Self::Basic { username, .. } => format!("as user {username:?}"),
            Self::Bearer(_) => "with a bearer token".to_owned(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Why docker config data could not be read. Never quotes the data: it holds secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerConfigError {
    #[error(
        "the docker config is not valid JSON of the form {{\"auths\": {{\"REGISTRY\": {{\"auth\": \"…\"}}}}}} (line {line}, column {column}); recreate it with `kubectl create secret docker-registry` or `docker login`"
    )]
    Json { line: usize, column: usize },
    #[error(
        "the docker config entry for {registry:?} has an \"auth\" that is not base64 of USER:PASSWORD; recreate it with `kubectl create secret docker-registry` or `docker login`"
    )]
    BadAuth { registry: String },
    #[error(
        "the Secret is not of type kubernetes.io/dockerconfigjson with a .dockerconfigjson key (nor a legacy kubernetes.io/dockercfg); recreate it with `kubectl create secret docker-registry`"
    )]
    NotDockerConfig,
}

/// The credentials of a docker config, by registry key as written.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DockerConfig {
    entries: Vec<(RegistryKey, Credentials)>,
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|(key, credentials)| (&key.text, credentials)),
            )
            .finish()
    }
}

#[derive(Deserialize)]
struct ConfigFile {
    auths: Option<BTreeMap<String, AuthEntry>>,
    #[serde(flatten)]
    legacy: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    #[serde(rename = "identitytoken")]
    identity_token: Option<String>,
    #[serde(rename = "registrytoken")]
    registry_token: Option<String>,
}

impl DockerConfig {
    /// Reads a `.dockerconfigjson` (`{"auths": {...}}`) or a legacy `.dockercfg` (the map
    /// alone). An entry's `auth` (base64 of `USER:PASSWORD`, padded or not) wins over its
    /// `username`/`password`; a `registrytoken` is a bearer token. Entries without any
    /// credentials (a docker `credsStore` keeps them elsewhere) are skipped.
    pub fn parse(data: &[u8]) -> Result<Self, DockerConfigError> {
        let json_error = |error: serde_json::Error| DockerConfigError::Json {
            line: error.line(),
            column: error.column(),
        };
        let file: ConfigFile = serde_json::from_slice(data).map_err(json_error)?;
        let auths = match file.auths {
            Some(auths) => auths,
            None => file
                .legacy
                .into_iter()
                .filter(|(_, value)| value.is_object())
                .map(|(key, value)| {
                    serde_json::from_value::<AuthEntry>(value)
                        .map(|entry| (key, entry))
                        .map_err(json_error)
                })
                .collect::<Result<_, _>>()?,
        };
        let mut entries = Vec::new();
        for (key, entry) in auths {
            let credentials = match entry_credentials(&key, entry)? {
                Some(credentials) => credentials,
                None => continue,
            };
            entries.push((RegistryKey::parse(&key), credentials));
        }
        // Most specific first, as the kubelet orders them: longer paths, then exact hosts
        // before globs.
        entries.sort_by_key(|(key, _)| std::cmp::Reverse(key.specificity()));
        Ok(Self { entries })
    }

    /// The docker config of a Secret of `secret_type` with `data` (decoded): the
    /// `.dockerconfigjson` of a `kubernetes.io/dockerconfigjson` Secret, the `.dockercfg` of a
    /// legacy `kubernetes.io/dockercfg` one; any other type holds no registry credentials.
    pub fn from_secret(
        secret_type: Option<&str>,
        data: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Self, DockerConfigError> {
        let key = match secret_type {
            Some("kubernetes.io/dockerconfigjson") => ".dockerconfigjson",
            Some("kubernetes.io/dockercfg") => ".dockercfg",
            _ => return Err(DockerConfigError::NotDockerConfig),
        };
        match data.get(key) {
            Some(bytes) => Self::parse(bytes),
            None => Err(DockerConfigError::NotDockerConfig),
        }
    }

    /// The credentials the first of `configs` with an entry for `reference` gives (the most
    /// specific entry of each), else anonymous: a Revision's imagePullSecrets in their order.
    pub fn first_match(configs: &[Self], reference: &ImageReference) -> Credentials {
        configs
            .iter()
            .map(|config| config.credentials_for(reference))
            .find(|credentials| *credentials != Credentials::Anonymous)
            .unwrap_or_default()
    }

    /// The credentials for `reference`'s registry (and repository, when a key has a path), or
    /// anonymous when no entry matches.
    pub fn credentials_for(&self, reference: &ImageReference) -> Credentials {
        self.entries
            .iter()
            .find(|(key, _)| key.matches(reference.registry(), reference.repository()))
            .map(|(_, credentials)| credentials.clone())
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn entry_credentials(
    key: &str,
    entry: AuthEntry,
) -> Result<Option<Credentials>, DockerConfigError> {
    if let Some(auth) = entry.auth.filter(|auth| !auth.is_empty()) {
        let bad = || DockerConfigError::BadAuth {
            registry: key.to_owned(),
        };
        let trimmed = auth.trim_end_matches('=');
        let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(trimmed)
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }));
    }
    if let Some(token) = entry.registry_token.filter(|token| !token.is_empty()) {
        return Ok(Some(Credentials::Bearer(token)));
    }
    match (entry.username, entry.password, entry.identity_token) {
        (Some(username), Some(password), _) if !username.is_empty() => {
            Ok(Some(Credentials::Basic { username, password }))
        }
        // docker's identity tokens are refresh tokens, sent as the password of the user
        // `<token>` in the token request.
        (_, _, Some(token)) if !token.is_empty() => Ok(Some(Credentials::Basic {
            username: "<token>".to_owned(),
            password: token,
        })),
        _ => Ok(None),
    }
}

/// A docker config key: `HOST[:PORT][/PATH]`, any `http(s)://` prefix dropped; `/v1/` and `/v2/`
/// paths mean the host alone; Docker Hub's names are one.
#[derive(Clone, PartialEq, Eq)]
struct RegistryKey {
    text: String,
    host: String,
    port: Option<String>,
    path: String,
}

impl RegistryKey {
    fn parse(text: &str) -> Self {
        let without_scheme = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
            .unwrap_or(text);
        let (host_port, path) = match without_scheme.split_once('/') {
            Some((host_port, path)) => (host_port, path.trim_end_matches('/')),
            None => (without_scheme, ""),
        };
        let path =
            if path == "v1" || path == "v2" || path.starts_with("v1/") || path.starts_with("v2/") {
                ""
            } else {
                path
            };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port.to_owned())),
            None => (host_port, None),
        };
        Self {
            text: text.to_owned(),
            host: canonical_host(&host.to_ascii_lowercase()).to_owned(),
            port,
            path: path.to_owned(),
        }
    }

    fn specificity(&self) -> (usize, bool) {
        (self.path.len(), !self.host.contains('*'))
    }

    fn matches(&self, registry: &str, repository: &str) -> bool {
        let (host, port) = match registry.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        let host = host.to_ascii_lowercase();
        let host = canonical_host(&host);
        if self.port.as_deref() != port {
            return false;
        }
        let key_labels: Vec<&str> = self.host.split('.').collect();
        let labels: Vec<&str> = host.split('.').collect();
        if key_labels.len() != labels.len()
            || !key_labels
                .iter()
                .zip(&labels)
                .all(|(pattern, label)| glob_matches(pattern, label))
        {
            return false;
        }
        self.path.is_empty()
            || repository == self.path
            || repository.starts_with(&format!("{}/", self.path))
    }
}

fn canonical_host(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        other => other,
    }
}

/// `*` matches any run of characters within one label, as Go's `filepath.Match` does for the
/// kubelet.
fn glob_matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, rest)) => {
            let Some(remainder) = text.strip_prefix(prefix) else {
                return false;
            };
            (0..=remainder.len())
                .filter(|&split| remainder.is_char_boundary(split))
                .any(|split| glob_matches(rest, &remainder[split..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> ImageReference {
        ImageReference::parse(text).unwrap()
    }

    fn basic(username: &str, password: &str) -> Credentials {
        Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn secrets_give_their_docker_config_and_the_first_match_wins() {
        let config = |registry: &str, user: &str| {
            format!(
                r#"{{"auths": {{"{registry}": {{"auth": "{}"}}}}}}"#,
                b64(&format!("{user}:pw"))
            )
        };
        let secret = |type_: &str, key: &str, text: String| {
            DockerConfig::from_secret(
                Some(type_),
                &BTreeMap::from([(key.to_owned(), text.into_bytes())]),
            )
        };
        let other = secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            config("ghcr.io", "o"),
        )
        .unwrap();
        let local = secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            config("localhost:5000", "l"),
        )
        .unwrap();
        let legacy = secret(
            "kubernetes.io/dockercfg",
            ".dockercfg",
            format!(r#"{{"localhost:5000": {{"auth": "{}"}}}}"#, b64("old:pw")),
        )
        .unwrap();
        let image = reference("localhost:5000/app:v1");
        assert_eq!(
            DockerConfig::first_match(&[other.clone(), local.clone(), legacy.clone()], &image),
            basic("l", "pw")
        );
        assert_eq!(
            DockerConfig::first_match(&[legacy, local], &image),
            basic("old", "pw")
        );
        assert_eq!(
            DockerConfig::first_match(&[other], &image),
            Credentials::Anonymous
        );
        assert_eq!(
            secret("Opaque", ".dockerconfigjson", config("r.io", "x")),
            Err(DockerConfigError::NotDockerConfig)
        );
        assert_eq!(
            secret(
                "kubernetes.io/dockerconfigjson",
                "other",
                config("r.io", "x")
            ),
            Err(DockerConfigError::NotDockerConfig)
        );
    }

    #[test]
    fn auth_wins_over_username_and_password_padded_or_not() {
        let data = format!(
            r#"{{"auths": {{
                "localhost:5000": {{"auth": "{}", "username": "ignored", "password": "ignored"}},
                "ghcr.io": {{"auth": "{}"}},
                "quay.io": {{"username": "u", "password": "p"}}
            }}}}"#,
            b64("alice:s3cret:with:colons"),
            b64("bob:pw").trim_end_matches('='),
        );
        let config = DockerConfig::parse(data.as_bytes()).unwrap();
        assert_eq!(
            config.credentials_for(&reference("localhost:5000/x")),
            basic("alice", "s3cret:with:colons")
        );
        assert_eq!(
            config.credentials_for(&reference("ghcr.io/team/x")),
            basic("bob", "pw")
        );
        assert_eq!(
            config.credentials_for(&reference("quay.io/x")),
            basic("u", "p")
        );
        assert_eq!(
            config.credentials_for(&reference("localhost:5001/x")),
            Credentials::Anonymous
        );
        assert_eq!(
            config.credentials_for(&reference("localhost/x")),
            Credentials::Anonymous
        );
    }

    #[test]
    fn schemes_docker_hub_aliases_paths_and_globs() {
        let data = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "http://registry.example.com:8443": {{"auth": "{}"}},
                "*.example.com": {{"auth": "{}"}},
                "ghcr.io/team": {{"auth": "{}"}},
                "ghcr.io": {{"auth": "{}"}}
            }}}}"#,
            b64("hub:1"),
            b64("port:2"),
            b64("glob:3"),
            b64("team:4"),
            b64("any:5"),
        );
        let config = DockerConfig::parse(data.as_bytes()).unwrap();
        assert_eq!(
            config.credentials_for(&reference("docker.io/x")),
            basic("hub", "1")
        );
        assert_eq!(
            config.credentials_for(&reference("registry-1.docker.io/library/x")),
            basic("hub", "1")
        );
        assert_eq!(
            config.credentials_for(&reference("registry.example.com:8443/x")),
            basic("port", "2")
        );
        assert_eq!(
            config.credentials_for(&reference("eu.example.com/x")),
            basic("glob", "3")
        );
        assert_eq!(
            config.credentials_for(&reference("a.eu.example.com/x")),
            Credentials::Anonymous
        );
        assert_eq!(
            config.credentials_for(&reference("ghcr.io/team/x")),
            basic("team", "4")
        );
        assert_eq!(
            config.credentials_for(&reference("ghcr.io/teamster/x")),
            basic("any", "5")
        );
    }

    #[test]
    fn legacy_dockercfg_tokens_and_entries_without_credentials() {
        let data = format!(
            r#"{{"localhost:5000": {{"auth": "{}"}}, "credsStore": "desktop"}}"#,
            b64("old:pw")
        );
        let config = DockerConfig::parse(data.as_bytes()).unwrap();
        assert_eq!(
            config.credentials_for(&reference("localhost:5000/x")),
            basic("old", "pw")
        );
        let data = r#"{"auths": {"a.io": {"registrytoken": "tok"}, "b.io": {"identitytoken": "id"}, "c.io": {}}, "credsStore": "desktop"}"#;
        let config = DockerConfig::parse(data.as_bytes()).unwrap();
        assert_eq!(
            config.credentials_for(&reference("a.io/x")),
            Credentials::Bearer("tok".into())
        );
        assert_eq!(
            config.credentials_for(&reference("b.io/x")),
            basic("<token>", "id")
        );
        assert_eq!(
            config.credentials_for(&reference("c.io/x")),
            Credentials::Anonymous
        );
    }

    #[test]
    fn bad_data_is_refused_without_quoting_secrets() {
        let error =
            DockerConfig::parse(b"{\"auths\": {\"a.io\": {\"auth\": \"sekrit!!\"}}}").unwrap_err();
        assert_eq!(
            error,
            DockerConfigError::BadAuth {
                registry: "a.io".into()
            }
        );
        assert!(!error.to_string().contains("sekrit"));
        let no_colon = format!(
            "{{\"auths\": {{\"a.io\": {{\"auth\": \"{}\"}}}}}}",
            b64("nocolon")
        );
        assert!(DockerConfig::parse(no_colon.as_bytes()).is_err());
        let error = DockerConfig::parse(b"{\"auths\": [\"sekrit\"]}").unwrap_err();
        assert!(matches!(error, DockerConfigError::Json { .. }));
        assert!(!error.to_string().contains("sekrit"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let shown = format!("{:?}", basic("alice", "sekrit"));
        assert!(
            shown.contains("alice") && !shown.contains("sekrit"),
            "{shown}"
        );
        let shown = format!("{:?}", Credentials::Bearer("sekrit".into()));
        assert!(!shown.contains("sekrit"), "{shown}");
        let data = format!(
            "{{\"auths\": {{\"a.io\": {{\"auth\": \"{}\"}}}}}}",
            b64("u:sekrit")
        );
        let shown = format!("{:?}", DockerConfig::parse(data.as_bytes()).unwrap());
        assert!(
            shown.contains("a.io") && !shown.contains("sekrit"),
            "{shown}"
        );
    }
}
