//! Why a revision cannot run, as a Revision's `Ready=False` condition spells it: a reason a
//! program can match and a message a user can act on.

use wisp_runtime::RuntimeError;

use super::spec::SpecError;
use crate::dataplane::DataPlaneError;

/// The image could not be fetched (missing file, download error, too large). Registry pulls
/// use the kubelet's reasons instead ([`wisp_oci::ErrorKind::pull_reason`]).
pub const CONTAINER_MISSING: &str = "ContainerMissing";
/// The file is not a runnable `wasi:http` component.
pub const INVALID_COMPONENT: &str = "InvalidComponent";
/// The component imports something wisp does not provide.
pub const LINK_ERROR: &str = "LinkError";
/// The spec cannot run on wisp (admission would normally have refused it).
pub const INVALID_SPEC: &str = "InvalidSpec";
/// The revision's `autoscaling.knative.dev/*` annotations are invalid for this cluster.
pub const INVALID_ANNOTATION: &str = "InvalidAnnotation";
/// The component does not answer its readiness probe with a success.
pub const PROBE_FAILED: &str = "ProbeFailed";
/// The node's source policy does not allow the image (a directory, host or address it does not
/// allow).
pub const SOURCE_NOT_ALLOWED: &str = "SourceNotAllowed";
/// The image now holds other bytes than those the revision was created with.
pub const SOURCE_CHANGED: &str = "SourceChanged";
/// The node itself failed (engine or compile cache), not the revision.
pub const INTERNAL_ERROR: &str = "InternalError";

/// A failed revision's `Ready=False` reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: &'static str,
    pub message: String,
    /// Whether trying again later may succeed without a new revision (the file may appear,
    /// the server may come back), as a kubelet keeps pulling an image.
    pub transient: bool,
}

impl Failure {
    /// A spec wisp cannot run.
    pub fn spec(error: &SpecError) -> Self {
        Self {
            reason: INVALID_SPEC,
            message: error.0.clone(),
            transient: false,
        }
    }

    /// The data plane refused `image` (as written in the revision's spec).
    pub fn data_plane(image: &str, error: &DataPlaneError) -> Self {
        match error {
            DataPlaneError::Component { source, .. } => Self::runtime(image, source),
            DataPlaneError::Autoscaling { source, .. } => Self {
                reason: INVALID_ANNOTATION,
                message: format!("{source}; fix the revision's autoscaling annotations"),
                transient: false,
            },
        }
    }

    /// The readiness probe `GET path` answered `status` with `body`; retried, since a
    /// component's dependencies may come up later.
    pub fn probe(path: &str, status: u16, body: &str) -> Self {
        let said = if body.is_empty() {
            String::new()
        } else {
            format!(" ({body})")
        };
        Self {
            reason: PROBE_FAILED,
            message: format!(
                "readiness probe GET {path} answered {status}{said}; the revision takes \
                 traffic once it answers 2xx: fix the component or its readinessProbe"
            ),
            transient: true,
        }
    }

    fn runtime(image: &str, error: &RuntimeError) -> Self {
        let (reason, transient) = match error {
            RuntimeError::ReadFile { .. } | RuntimeError::Download { .. } => {
                (CONTAINER_MISSING, true)
            }
            RuntimeError::TooLarge { .. } => (CONTAINER_MISSING, false),
            // The operator's policy changes only with a restart, which applies everything again.
            RuntimeError::NotAllowed { .. } => (SOURCE_NOT_ALLOWED, false),
            // Putting the original bytes back heals the revision.
            RuntimeError::SourceChanged { .. } => (SOURCE_CHANGED, true),
            RuntimeError::NotWasm { .. }
            | RuntimeError::CoreModule { .. }
            | RuntimeError::UnknownWasmVersion { .. }
            | RuntimeError::MissingHandler { .. }
            | RuntimeError::Invalid { .. } => (INVALID_COMPONENT, false),
            RuntimeError::Link { .. } => (LINK_ERROR, false),
            // The kubelet's reasons (`ImagePullBackOff` while retried, `ErrImagePull`,
            // `InvalidImageName`), `InvalidComponent` for an image that is no component.
            RuntimeError::Pull(error) => (error.kind().pull_reason(), error.kind().is_retryable()),
            RuntimeError::Engine(_) | RuntimeError::Cache { .. } => (INTERNAL_ERROR, true),
        };
        let pulled = matches!(error, RuntimeError::Pull(_)) && reason != INVALID_COMPONENT;
        let message = if reason == CONTAINER_MISSING || pulled {
            // Knative's wording for an image it cannot pull, so tools matching it still work.
            format!("Unable to fetch image {image:?}: {error}")
        } else {
            error.to_string()
        };
        Self {
            reason,
            message,
            transient,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use wisp_api::revision_key::RevisionKey;

    use super::*;

    fn component(source: RuntimeError) -> DataPlaneError {
        DataPlaneError::Component {
            revision: RevisionKey::new("default", "a-00001"),
            source,
        }
    }

    #[test]
    fn a_missing_file_is_container_missing_with_the_path() {
        let failure = Failure::data_plane(
            "a.wasm",
            &component(RuntimeError::ReadFile {
                path: PathBuf::from("/images/a.wasm"),
                reason: "No such file or directory".into(),
            }),
        );
        assert_eq!(failure.reason, CONTAINER_MISSING);
        assert!(failure.transient);
        assert!(
            failure.message.starts_with(
                "Unable to fetch image \"a.wasm\": cannot read component file /images/a.wasm"
            ),
            "{}",
            failure.message
        );
    }

    #[test]
    fn registry_pulls_fail_as_knative_reports_images_it_cannot_fetch() {
        let pull = |error: wisp_oci::OciError| {
            Failure::data_plane(
                "ghcr.io/a:v1",
                &component(RuntimeError::Pull(Box::new(error))),
            )
        };
        let missing = pull(wisp_oci::OciError::NotFound {
            reference: "ghcr.io/a:v1".into(),
            registry: "ghcr.io".into(),
            what: "manifest for tag \"v1\"".into(),
            answer: "ManifestUnknown: manifest unknown".into(),
        });
        assert_eq!(
            (missing.reason, missing.transient),
            ("ImagePullBackOff", true)
        );
        assert!(
            missing.message.starts_with(
                "Unable to fetch image \"ghcr.io/a:v1\": ghcr.io/a:v1: ghcr.io has no manifest"
            ),
            "{}",
            missing.message
        );
        let not_wasm = pull(wisp_oci::OciError::NotWasmComponent {
            reference: "ghcr.io/a:v1".into(),
            found: "found config x and layers []".into(),
        });
        assert_eq!(
            (not_wasm.reason, not_wasm.transient),
            (INVALID_COMPONENT, false)
        );
        assert!(
            not_wasm.message.contains("found config x"),
            "{}",
            not_wasm.message
        );
        let corrupt = pull(wisp_oci::OciError::DigestMismatch {
            reference: "ghcr.io/a@sha256:1".into(),
            registry: "ghcr.io".into(),
            what: "manifest sha256:1".into(),
            expected: "sha256:1".into(),
            actual: "sha256:2".into(),
        });
        assert_eq!((corrupt.reason, corrupt.transient), ("ErrImagePull", false));
        assert!(
            corrupt
                .message
                .starts_with("Unable to fetch image \"ghcr.io/a:v1\"")
        );
        let malformed = pull(wisp_oci::OciError::InvalidReference(
            wisp_oci::ReferenceError {
                reference: "ghcr.io/A".into(),
                reason: "uppercase".into(),
            },
        ));
        assert_eq!(
            (malformed.reason, malformed.transient),
            ("InvalidImageName", false)
        );
    }

    #[test]
    fn component_problems_have_their_own_reasons() {
        let not_wasm = Failure::data_plane(
            "a.wasm",
            &component(RuntimeError::NotWasm {
                source_name: "a.wasm".into(),
            }),
        );
        assert_eq!(not_wasm.reason, INVALID_COMPONENT);
        assert!(!not_wasm.transient);
        assert!(not_wasm.message.contains("not a WebAssembly file"));
        let link = Failure::data_plane(
            "a.wasm",
            &component(RuntimeError::Link {
                source_name: "a.wasm".into(),
                reason: "wasi:sockets".into(),
            }),
        );
        assert_eq!(link.reason, LINK_ERROR);
        let cache = Failure::data_plane(
            "a.wasm",
            &component(RuntimeError::Cache {
                path: PathBuf::from("/cache"),
                reason: "read-only".into(),
            }),
        );
        assert_eq!((cache.reason, cache.transient), (INTERNAL_ERROR, true));
    }

    #[test]
    fn policy_refusals_and_changed_sources_have_their_own_reasons() {
        let refused = Failure::data_plane(
            "/etc/passwd",
            &component(RuntimeError::NotAllowed {
                source_name: "/etc/passwd".into(),
                refusal: wisp_runtime::Refusal::OutsideDirectories {
                    allowed: "/images".into(),
                },
            }),
        );
        assert_eq!(
            (refused.reason, refused.transient),
            (SOURCE_NOT_ALLOWED, false)
        );
        assert!(
            refused.message.contains("--allow-path"),
            "{}",
            refused.message
        );
        let expected = wisp_runtime::Digest::of(b"old");
        let found = wisp_runtime::Digest::of(b"new");
        let changed = Failure::data_plane(
            "a.wasm",
            &component(RuntimeError::SourceChanged {
                source_name: "/images/a.wasm".into(),
                expected,
                found,
            }),
        );
        assert_eq!(changed.reason, SOURCE_CHANGED);
        assert!(changed.message.contains(&expected.to_string()));
        assert!(changed.message.contains(&found.to_string()));
        assert!(changed.message.contains("create a new revision"));
    }

    #[test]
    fn spec_errors_keep_their_message() {
        let failure = Failure::spec(&SpecError("spec.containers is empty".into()));
        assert_eq!(failure.reason, INVALID_SPEC);
        assert_eq!(failure.message, "spec.containers is empty");
    }
}
