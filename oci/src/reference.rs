//! Image references (`REGISTRY/REPO[:TAG][@sha256:DIGEST]`) and the rule that tells them apart
//! from the local paths and URLs an `image:` may also name.

use std::fmt;

use crate::digest::Digest;

/// The tag an image reference without a tag or digest names, as docker and Kubernetes assume.
pub const DEFAULT_TAG: &str = "latest";

const DOCKER_HUB: &str = "docker.io";

/// What an `image:` string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource<'a> {
    /// An image in an OCI registry.
    Registry,
    /// A local file, a `file:` URL or an `http(s)://` URL: the string keeps its old meaning.
    Local(&'a str),
}

/// Decides whether `image` names an image in a registry, by docker's rule for the registry part:
/// the first `/`-separated component is a registry when it contains `.` or `:` or is
/// `localhost`. A path still wins where it is plainly one: `file:` and `http(s)://` URLs,
/// absolute paths, paths starting with `.` or `..`, and names ending in `.wasm`. A name without
/// a registry (`hello`, `team/hello:v1`) is a path too: wisp never guesses Docker Hub.
pub fn classify(image: &str) -> ImageSource<'_> {
    let local = ImageSource::Local(image);
    if image.starts_with("file:")
        || image.starts_with("http://")
        || image.starts_with("https://")
        || image.starts_with('/')
        || image.starts_with("./")
        || image.starts_with("../")
        || image == "."
        || image == ".."
        || image.ends_with(".wasm")
    {
        return local;
    }
    match image.split_once('/') {
        Some((first, rest))
            if !rest.is_empty()
                && (first.contains('.') || first.contains(':') || first == "localhost") =>
        {
            ImageSource::Registry
        }
        _ => local,
    }
}

/// A parsed image reference. The registry is always explicit; Docker Hub's one-word
/// repositories gain their `library/` prefix as docker spells them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{reference:?} is not an image reference ({reason}); write REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], e.g. ghcr.io/team/hello:v1"
)]
pub struct ReferenceError {
    pub reference: String,
    pub reason: String,
}

impl ImageReference {
    /// Parses `REGISTRY/REPO[:TAG][@sha256:DIGEST]`.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let fail = |reason: &str| ReferenceError {
            reference: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (name_and_tag, digest) = match text.rsplit_once('@') {
            Some((name, digest)) => {
                let digest = Digest::parse(digest).ok_or_else(|| {
                    fail("the digest must be sha256: followed by 64 lowercase hex digits")
                })?;
                (name, Some(digest))
            }
            None => (text, None),
        };
        let (registry, path) = name_and_tag
            .split_once('/')
            .ok_or_else(|| fail("it names no registry"))?;
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(fail(
                "its first component is not a registry host (a registry has a '.' or a ':port', or is localhost)",
            ));
        }
        if !valid_registry(registry) {
            return Err(fail("the registry must be HOST or HOST:PORT"));
        }
        let last_slash = path.rfind('/').map_or(0, |index| index + 1);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(colon) => {
                let colon = last_slash + colon;
                (&path[..colon], Some(&path[colon + 1..]))
            }
            None => (path, None),
        };
        if !valid_repository(repository) {
            return Err(fail(
                "the repository must be lowercase letters and digits separated by '/', '.', '_', '__' or '-'",
            ));
        }
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(fail(
                "a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
            ));
        }
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DOCKER_HUB
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_owned()
        };
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_owned()),
        };
        if registry.len() + 1 + repository.len() > 255 {
            return Err(fail("the name is longer than 255 characters"));
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository,
            tag,
            digest,
        })
    }

    /// `HOST[:PORT]`, as written (Docker Hub's aliases become `docker.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// `REGISTRY/REPO`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository pinned by `digest` alone (`REGISTRY/REPO@sha256:…`): what a
    /// resolved tag becomes.
    pub fn pinned(&self, digest: Digest) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The reference oci-client speaks.
    pub(crate) fn to_client(&self) -> oci_client::Reference {
        match (&self.tag, &self.digest) {
            (Some(tag), Some(digest)) => oci_client::Reference::with_tag_and_digest(
                self.registry.clone(),
                self.repository.clone(),
                tag.clone(),
                digest.to_string(),
            ),
            (_, Some(digest)) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                digest.to_string(),
            ),
            (tag, None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_owned()),
            ),
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageReference({self})")
    }
}

fn valid_registry(registry: &str) -> bool {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let port_ok = port.is_none_or(|port| {
        !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
    });
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    port_ok && host_ok
}

/// Components of `[a-z0-9]+` joined by `.`, `_`, `__` or any run of `-`, as the distribution
/// spec's grammar has it.
fn valid_repository(repository: &str) -> bool {
    !repository.is_empty()
        && repository.split('/').all(|component| {
            let bytes = component.as_bytes();
            let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
                return false;
            }
            let mut index = 0;
            while index < bytes.len() {
                let b = bytes[index];
                if alnum(b) {
                    index += 1;
                    continue;
                }
                let separator_start = index;
                while index < bytes.len() && !alnum(bytes[index]) {
                    index += 1;
                }
                let separator = &component[separator_start..index];
                let allowed = separator == "."
                    || separator == "_"
                    || separator == "__"
                    || separator.bytes().all(|b| b == b'-');
                if !allowed {
                    return false;
                }
            }
            true
        })
}

fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn registries_are_told_from_paths_by_the_first_component() {
        for image in [
            "ghcr.io/team/hello:v1",
            "localhost/hello",
            "localhost:5000/hello:v1",
            "127.0.0.1:5000/a/b",
            "registry.example.com/hello",
            "docker.io/library/hello",
        ] {
            assert_eq!(classify(image), ImageSource::Registry, "{image}");
        }
        for image in [
            "hello",
            "hello.wasm",
            "team/hello:v1",
            "samples/hello.wasm",
            "./ghcr.io/x",
            "../ghcr.io/x",
            ".",
            "..",
            "/abs/ghcr.io/x",
            "localhost:5000/hello.wasm",
            "file:ghcr.io/x",
            "file:///x",
            "http://ghcr.io/x",
            "https://ghcr.io/x.wasm",
            "ghcr.io/",
            "ghcr.io",
        ] {
            assert_eq!(classify(image), ImageSource::Local(image), "{image}");
        }
    }

    #[test]
    fn parses_tags_digests_and_ports() {
        let reference = ImageReference::parse("localhost:5000/team/hello:v1").unwrap();
        assert_eq!(reference.registry(), "localhost:5000");
        assert_eq!(reference.repository(), "team/hello");
        assert_eq!(reference.tag(), Some("v1"));
        assert_eq!(reference.digest(), None);
        assert_eq!(reference.to_string(), "localhost:5000/team/hello:v1");

        let pinned = format!("ghcr.io/hello@sha256:{HEX}");
        let reference = ImageReference::parse(&pinned).unwrap();
        assert_eq!(reference.tag(), None);
        assert_eq!(
            reference.digest().unwrap().to_string(),
            format!("sha256:{HEX}")
        );
        assert_eq!(reference.to_string(), pinned);

        let both = format!("ghcr.io/hello:v2@sha256:{HEX}");
        assert_eq!(ImageReference::parse(&both).unwrap().to_string(), both);
    }

    #[test]
    fn a_missing_tag_is_latest_and_docker_hub_is_spelt_as_docker_does() {
        let reference = ImageReference::parse("ghcr.io/hello").unwrap();
        assert_eq!(reference.to_string(), "ghcr.io/hello:latest");
        let hub = ImageReference::parse("index.docker.io/hello:1").unwrap();
        assert_eq!(hub.to_string(), "docker.io/library/hello:1");
        assert_eq!(hub.name(), "docker.io/library/hello");
    }

    #[test]
    fn pinning_drops_the_tag() {
        let reference = ImageReference::parse("ghcr.io/hello:v1").unwrap();
        let digest = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(
            reference.pinned(digest).to_string(),
            format!("ghcr.io/hello@sha256:{HEX}")
        );
    }

    #[test]
    fn refuses_malformed_references_saying_why() {
        for (text, reason) in [
            ("hello:v1", "names no registry"),
            ("team/hello", "not a registry host"),
            ("ghcr.io/Hello", "lowercase"),
            ("ghcr.io/a//b", "lowercase"),
            ("ghcr.io/a-", "lowercase"),
            ("ghcr.io/a:-x", "tag"),
            ("ghcr.io/a:", "tag"),
            ("ghcr.io/a@sha256:abc", "64 lowercase hex"),
            ("ghcr.io/a@md5:abc", "64 lowercase hex"),
            ("ghcr.io:x/a", "HOST:PORT"),
            ("-bad.io/a", "HOST:PORT"),
        ] {
            let error = ImageReference::parse(text).unwrap_err();
            assert!(error.to_string().contains(reason), "{text}: {error}");
            assert!(error.to_string().contains("REGISTRY/REPOSITORY"), "{error}");
        }
        let long = format!("ghcr.io/{}", "a".repeat(260));
        assert!(ImageReference::parse(&long).is_err());
    }

    #[test]
    fn the_client_reference_carries_tag_and_digest() {
        let reference = ImageReference::parse("localhost:5000/hello:v1").unwrap();
        let client = reference.to_client();
        assert_eq!(client.registry(), "localhost:5000");
        assert_eq!(client.repository(), "hello");
        assert_eq!(client.tag(), Some("v1"));
    }
}
