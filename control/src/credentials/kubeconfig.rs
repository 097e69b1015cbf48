//! The kubeconfig `wisp` writes for kubectl and kube-rs: one cluster trusting our CA, one user
//! holding the bearer token, one context tying them together with namespace `default`.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::files::{SECRET_FILE, write_atomically};
use super::{Credentials, CredentialsError, Identity};

/// The name of the cluster and of the context in written kubeconfigs.
const CLUSTER: &str = "wisp";

// kubeconfig mixes camelCase (`apiVersion`) and kebab-case (`current-context`).
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    clusters: [Named<'a, Cluster<'a>>; 1],
    users: [Named<'a, User<'a>>; 1],
    contexts: [Named<'a, Context<'a>>; 1],
    current_context: &'a str,
}

/// kubeconfig's `{name, <kind>: {...}}` list entries; `#[serde(rename)]` cannot vary per use,
/// so the inner key is flattened from a one-field wrapper.
#[derive(Serialize)]
struct Named<'a, T: Serialize> {
    name: &'a str,
    #[serde(flatten)]
    inner: T,
}

#[derive(Serialize)]
struct Cluster<'a> {
    cluster: ClusterFields<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterFields<'a> {
    server: &'a str,
    certificate_authority_data: String,
}

#[derive(Serialize)]
struct User<'a> {
    user: UserFields<'a>,
}

#[derive(Serialize)]
struct UserFields<'a> {
    token: &'a str,
}

#[derive(Serialize)]
struct Context<'a> {
    context: ContextFields<'a>,
}

#[derive(Serialize)]
struct ContextFields<'a> {
    cluster: &'a str,
    user: &'a str,
    namespace: &'a str,
}

/// The kubeconfig YAML for `server_url` with the CA and token of `credentials`.
fn render(
    server_url: &str,
    credentials: &Credentials,
    identity: Identity,
) -> Result<String, serde_norway::Error> {
    let user = identity.user();
    serde_norway::to_string(&Kubeconfig {
        api_version: "v1",
        kind: "Config",
        clusters: [Named {
            name: CLUSTER,
            inner: Cluster {
                cluster: ClusterFields {
                    server: server_url,
                    certificate_authority_data: STANDARD.encode(credentials.ca_pem()),
                },
            },
        }],
        users: [Named {
            name: user,
            inner: User {
                user: UserFields {
                    token: credentials.token_of(identity),
                },
            },
        }],
        contexts: [Named {
            name: CLUSTER,
            inner: Context {
                context: ContextFields {
                    cluster: CLUSTER,
                    user,
                    namespace: "default",
                },
            },
        }],
        current_context: CLUSTER,
    })
}

/// Writes `path` (mode 0600, atomically: a reader sees the old file or the new one) with a
/// kubeconfig for `server_url` (e.g. `https://127.0.0.1:6443`): cluster `wisp` whose
/// `certificate-authority-data` is the base64 of the CA PEM, user [`super::ADMIN_USER`] with the bearer
/// token, context `wisp` (namespace `default`) as the current context. The parent directory
/// must exist.
pub fn write_kubeconfig(
    path: &Path,
    server_url: &str,
    credentials: &Credentials,
) -> Result<(), CredentialsError> {
    write_kubeconfig_for(path, server_url, credentials, Identity::Admin)
}

/// [`write_kubeconfig`] for another identity (the node's kubeconfig carries the node token).
pub fn write_kubeconfig_for(
    path: &Path,
    server_url: &str,
    credentials: &Credentials,
    identity: Identity,
) -> Result<(), CredentialsError> {
    let yaml =
        render(server_url, credentials, identity).map_err(|source| CredentialsError::Render {
            path: path.to_path_buf(),
            source,
        })?;
    write_atomically(path, yaml.as_bytes(), SECRET_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_shape() {
        let root = tempfile::tempdir().unwrap();
        let credentials = Credentials::load_or_create(root.path(), &[]).unwrap();
        let yaml = render("https://127.0.0.1:6443", &credentials, Identity::Admin).unwrap();
        let ca_data = STANDARD.encode(credentials.ca_pem());
        let token = credentials.token();
        let expected = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: wisp
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: {ca_data}
users:
- name: wisp-admin
  user:
    token: {token}
contexts:
- name: wisp
  context:
    cluster: wisp
    user: wisp-admin
    namespace: default
current-context: wisp
"
        );
        assert_eq!(yaml, expected);
    }

    #[test]
    fn tokens_that_look_like_numbers_stay_strings() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("token"), "1".repeat(64)).unwrap();
        let credentials = Credentials::load_or_create(root.path(), &[]).unwrap();
        let yaml = render("https://127.0.0.1:6443", &credentials, Identity::Admin).unwrap();
        let parsed: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(parsed["users"][0]["user"]["token"], "1".repeat(64));
    }

    #[test]
    fn written_kubeconfigs_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let credentials = Credentials::load_or_create(root.path(), &[]).unwrap();
        let path = root.path().join("kubeconfig");
        write_kubeconfig(&path, "https://127.0.0.1:6443", &credentials).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains(credentials.token())
        );
    }
}
