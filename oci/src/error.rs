//! What went wrong talking to a registry, classified the way Kubernetes reports image pulls.

use std::error::Error as _;
use std::path::PathBuf;

use crate::reference::ReferenceError;

/// The kind of a failure: what a caller needs to choose a reason (`ErrImagePull`,
/// `ImagePullBackOff`, `InvalidImageName`) and whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The reference is malformed: nothing was asked of any registry.
    InvalidReference,
    /// The registry has no such repository, tag, manifest or blob.
    NotFound,
    /// The registry refused the credentials (or their absence).
    Unauthorized,
    /// No answer from the registry: refused connection, DNS, TLS, timeout.
    Unreachable,
    /// Bytes did not hash to the digest (or were not of the size) that named them.
    DigestMismatch,
    /// The image is not a wasm component in a layout wisp accepts.
    NotWasmComponent,
    /// A manifest or layer is larger than allowed.
    TooLarge,
    /// The registry answered something else (a server error, a protocol violation).
    RegistryError,
    /// The local blob cache could not be read or written.
    Cache,
}

impl ErrorKind {
    /// A CamelCase word for conditions and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidReference => "InvalidReference",
            Self::NotFound => "NotFound",
            Self::Unauthorized => "Unauthorized",
            Self::Unreachable => "Unreachable",
            Self::DigestMismatch => "DigestMismatch",
            Self::NotWasmComponent => "NotWasmComponent",
            Self::TooLarge => "TooLarge",
            Self::RegistryError => "RegistryError",
            Self::Cache => "Cache",
        }
    }

    /// The reason a Revision's condition gives for a failed pull, in the kubelet's words where
    /// it has them: `InvalidImageName` for a malformed reference, `ImagePullBackOff` for what
    /// is retried with backoff (missing, refused, unreachable), `ErrImagePull` for what is not
    /// (corrupt or oversized content), and wisp's `InvalidComponent` for an image that is no
    /// wasm component.
    pub fn pull_reason(self) -> &'static str {
        match self {
            Self::InvalidReference => "InvalidImageName",
            Self::NotWasmComponent => "InvalidComponent",
            kind if kind.is_retryable() => "ImagePullBackOff",
            _ => "ErrImagePull",
        }
    }

    /// Whether trying the same thing again later may succeed without anyone changing the
    /// reference or the image (a tag may still be pushed, a registry may come back).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::NotFound
                | Self::Unauthorized
                | Self::Unreachable
                | Self::RegistryError
                | Self::Cache
        )
    }
}

/// What to do about a layer (or config) over its limit.
pub(crate) const TOO_LARGE_BLOB: &str = "wisp runs components up to this size (the runtime's component size cap): publish a smaller component";
/// What to do about a manifest over its limit.
pub(crate) const TOO_LARGE_MANIFEST: &str = "a component's manifest is a few hundred bytes and registries store none this large: check that the reference names a wasm component in the registry meant";

/// A failure to resolve, pull or push an image. Every message names the reference, the
/// registry, what it answered and what to do.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    #[error(
        "{reference}: {registry} has no {what} (it answered: {answer}); check the repository and tag or digest, and push the component there with `wisp push`"
    )]
    NotFound {
        reference: String,
        registry: String,
        what: String,
        answer: String,
    },
    #[error(
        "{reference}: {registry} refused access {credentials} (it answered: {answer}); give credentials that may read {repository}: an imagePullSecret of type kubernetes.io/dockerconfigjson, `--username`/`--password-stdin`, or `docker login {registry}`"
    )]
    Unauthorized {
        reference: String,
        registry: String,
        repository: String,
        credentials: String,
        answer: String,
    },
    #[error(
        "{reference}: cannot reach {registry} over {scheme}: {cause}; check that the registry is running and reachable from this machine{hint}"
    )]
    Unreachable {
        reference: String,
        registry: String,
        scheme: &'static str,
        cause: String,
        hint: &'static str,
    },
    #[error(
        "{reference}: the {what} from {registry} has digest {actual}, not {expected} as named; the registry or something between serves corrupt or substituted content, so it was not used"
    )]
    DigestMismatch {
        reference: String,
        registry: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{reference}: {registry} sent {actual} for the {what}, which its descriptor gives as {expected} bytes; the registry or something between serves corrupt or substituted content, so it was not used"
    )]
    SizeMismatch {
        reference: String,
        registry: String,
        what: String,
        expected: u64,
        actual: String,
    },
    #[error(
        "{reference} is not a wasm component wisp can run: {found}; wisp runs the CNCF wasm OCI artifact (config application/vnd.wasm.config.v0+json with exactly one application/wasm layer, as `wisp push` and `wkg oci push` write it), an image whose only layer is application/vnd.wasm.content.layer.v1+wasm, or a single-layer image whose layer is the .wasm file; an image index needs an entry for platform wasip2, wasm or wasip1"
    )]
    NotWasmComponent { reference: String, found: String },
    #[error("{reference}: the {what} is {size} bytes, over the limit of {limit} bytes; {advice}")]
    TooLarge {
        reference: String,
        what: String,
        size: String,
        limit: u64,
        /// What to do, which depends on what was too large: [`TOO_LARGE_BLOB`] or
        /// [`TOO_LARGE_MANIFEST`].
        advice: &'static str,
    },
    #[error(
        "{reference}: {registry} answered {answer}; check the registry's health and logs, then try again"
    )]
    Registry {
        reference: String,
        registry: String,
        answer: String,
    },
    #[error(
        "the image cache {path} cannot be used: {reason}; check the directory's permissions and free space",
        path = path.display()
    )]
    Cache { path: PathBuf, reason: String },
}

impl OciError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidReference(_) => ErrorKind::InvalidReference,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Unauthorized { .. } => ErrorKind::Unauthorized,
            Self::Unreachable { .. } => ErrorKind::Unreachable,
            Self::DigestMismatch { .. } | Self::SizeMismatch { .. } => ErrorKind::DigestMismatch,
            Self::NotWasmComponent { .. } => ErrorKind::NotWasmComponent,
            Self::TooLarge { .. } => ErrorKind::TooLarge,
            Self::Registry { .. } => ErrorKind::RegistryError,
            Self::Cache { .. } => ErrorKind::Cache,
        }
    }
}

/// What a registry's answer with an error `status` and `body` means, as oci-client reads its
/// own: 401 is unauthorized, a client error with the distribution API's error envelope carries
/// its codes, anything else its status and text.
pub(crate) fn status_error(
    status: http::StatusCode,
    body: &[u8],
    url: &str,
) -> oci_client::errors::OciDistributionError {
    use oci_client::errors::{OciDistributionError as E, OciEnvelope};
    if status == http::StatusCode::UNAUTHORIZED {
        return E::UnauthorizedError {
            url: url.to_owned(),
        };
    }
    if status.is_client_error()
        && let Ok(envelope) = serde_json::from_slice::<OciEnvelope>(body)
    {
        return E::RegistryError {
            envelope,
            url: url.to_owned(),
        };
    }
    E::ServerError {
        code: status.as_u16(),
        url: url.to_owned(),
        message: String::from_utf8_lossy(body).into_owned(),
    }
}

/// What an operation was doing when oci-client failed, to turn its error into an [`OciError`].
pub(crate) struct Context<'a> {
    pub reference: &'a str,
    pub registry: &'a str,
    pub repository: &'a str,
    pub credentials: String,
    pub insecure: bool,
    /// "manifest v1", "blob sha256:…": what was asked for.
    pub what: String,
}

impl Context<'_> {
    pub(crate) fn classify(&self, error: oci_client::errors::OciDistributionError) -> OciError {
        use oci_client::errors::{OciDistributionError as E, OciErrorCode as Code};
        let not_found = |answer: String| OciError::NotFound {
            reference: self.reference.to_owned(),
            registry: self.registry.to_owned(),
            what: self.what.clone(),
            answer,
        };
        let unauthorized = |answer: String| OciError::Unauthorized {
            reference: self.reference.to_owned(),
            registry: self.registry.to_owned(),
            repository: self.repository.to_owned(),
            credentials: self.credentials.clone(),
            answer,
        };
        let other = |answer: String| OciError::Registry {
            reference: self.reference.to_owned(),
            registry: self.registry.to_owned(),
            answer,
        };
        match error {
            E::RegistryError { envelope, .. } => {
                let answer = envelope
                    .errors
                    .iter()
                    .map(|error| format!("{:?}: {}", error.code, error.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                let codes: Vec<&Code> = envelope.errors.iter().map(|error| &error.code).collect();
                if codes
                    .iter()
                    .any(|code| matches!(code, Code::Unauthorized | Code::Denied))
                {
                    unauthorized(answer)
                } else if codes.iter().any(|code| {
                    matches!(
                        code,
                        Code::ManifestUnknown
                            | Code::NameUnknown
                            | Code::BlobUnknown
                            | Code::NotFound
                            | Code::NameInvalid
                            | Code::TagInvalid
                    )
                }) {
                    not_found(answer)
                } else {
                    other(answer)
                }
            }
            E::UnauthorizedError { .. } => unauthorized("401 Unauthorized".to_owned()),
            E::AuthenticationFailure(reason) => {
                unauthorized(format!("the token request failed: {}", reason.trim()))
            }
            E::ServerError { code, message, .. } => {
                let answer = format!("HTTP {code} {}", message.trim());
                match code {
                    401 | 403 => unauthorized(answer),
                    404 => not_found(answer),
                    _ => other(answer),
                }
            }
            E::ImageManifestNotFoundError(message) => not_found(message),
            E::DigestError(oci_client::errors::DigestError::VerificationError {
                expected,
                actual,
            }) => match (
                crate::Digest::parse(&expected),
                crate::Digest::parse(&actual),
            ) {
                (Some(expected), Some(actual)) => OciError::DigestMismatch {
                    reference: self.reference.to_owned(),
                    registry: self.registry.to_owned(),
                    what: self.what.clone(),
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                },
                _ => other(format!("content with digest {actual}, not {expected}")),
            },
            E::RequestError(error) => match error.status() {
                Some(status) => {
                    let answer = format!("HTTP {status}");
                    match status.as_u16() {
                        401 | 403 => unauthorized(answer),
                        404 => not_found(answer),
                        _ => other(answer),
                    }
                }
                None => self.request_failed(&error),
            },
            error => other(error.to_string()),
        }
    }

    pub(crate) fn request_failed(&self, error: &reqwest_oci::Error) -> OciError {
        let mut cause = error.to_string();
        let mut source = error.source();
        while let Some(inner) = source {
            let text = inner.to_string();
            if !cause.contains(&text) {
                cause = format!("{cause}: {text}");
            }
            source = inner.source();
        }
        if error.is_connect() || error.is_timeout() || error.is_request() {
            OciError::Unreachable {
                reference: self.reference.to_owned(),
                registry: self.registry.to_owned(),
                scheme: if self.insecure { "plain HTTP" } else { "HTTPS" },
                cause,
                hint: if self.insecure {
                    ""
                } else {
                    " (a registry that serves plain HTTP, such as a local one, must be listed as insecure: `--insecure` or `--insecure-registry HOST:PORT`)"
                },
            }
        } else {
            OciError::Registry {
                reference: self.reference.to_owned(),
                registry: self.registry.to_owned(),
                answer: cause,
            }
        }
    }
}
