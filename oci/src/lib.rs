//! Components from OCI registries, for wisp.
//!
//! A Service's `image:` may name a component in a registry as
//! `REGISTRY/REPO[:TAG][@sha256:DIGEST]` ([`classify`] tells such references from the local
//! paths and URLs wisp also takes). This crate wraps the ORAS project's `oci-client` and adds
//! what a node needs around it:
//!
//! - [`Registry::resolve`]: a tag to the digest of the manifest it names now, as Knative
//!   resolves tags when it creates a Revision.
//! - [`Puller::pull`]: the component a digest names. An image index is followed to its
//!   `wasip2`/`wasm`/`wasip1` entry; the CNCF wasm OCI artifact (config
//!   `application/vnd.wasm.config.v0+json`, one `application/wasm` layer), the older
//!   `application/vnd.wasm.content.layer.v1+wasm` layer and an ordinary single-layer image whose
//!   layer is the `.wasm` are accepted, anything else refused naming the media types found.
//!   Every blob is checked against its digest and a size limit known before its bytes arrive,
//!   kept in a [`BlobCache`] by digest (verified again whenever read; the least recently used
//!   evicted beyond its budget) and fetched once however many pull it at once.
//! - [`Session::push_blob`] / [`Session::push_manifest`] and [`component::artifact`]: what
//!   `wisp push` publishes.
//! - [`Credentials`] (anonymous, basic, bearer; `Debug` hides secrets) and [`DockerConfig`],
//!   which reads `kubernetes.io/dockerconfigjson` secrets and `~/.docker/config.json`.
//! - [`OciError`]: every failure with its [`ErrorKind`] (not found, unauthorized, unreachable,
//!   digest mismatch, not a wasm component, too large) and a message naming the reference, the
//!   registry, its answer and what to do.
//!
//! Registries are reached over HTTPS (rustls with ring, the system's trust store) except those
//! listed in [`RegistrySettings::insecure_registries`], reached over plain HTTP.

mod bounded;
mod cache;
pub mod component;
mod credentials;
mod digest;
mod error;
pub mod layout;
mod pull;
mod reference;
mod registry;

pub use cache::{BlobCache, DEFAULT_IMAGE_CACHE_BYTES};
pub use credentials::{Credentials, DockerConfig, DockerConfigError};
pub use digest::Digest;
pub use error::{ErrorKind, OciError};
pub use pull::{PulledComponent, Puller};
pub use reference::{DEFAULT_TAG, ImageReference, ImageSource, ReferenceError, classify};
pub use registry::{
    DEFAULT_MAX_LAYER_BYTES, DEFAULT_MAX_MANIFEST_BYTES, Registry, RegistrySettings, Session,
};
