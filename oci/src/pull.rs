//! Pulling a component pinned by digest: following an index to the wasm platform, choosing the
//! component layer, caching every blob by digest and fetching each digest once however many
//! ask for it at the same time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::cache::BlobCache;
use crate::credentials::Credentials;
use crate::digest::Digest;
use crate::error::OciError;
use crate::layout::{self, Layout, Manifest};
use crate::reference::{ImageReference, ReferenceError};
use crate::registry::{Registry, Session};

/// A component pulled from a registry.
#[derive(Debug, Clone)]
pub struct PulledComponent {
    /// The component's bytes (the layer), verified against `layer_digest`.
    pub bytes: Bytes,
    /// The digest the reference was pinned by (an index's, when it names one).
    pub reference_digest: Digest,
    /// The image manifest the layer came from.
    pub manifest_digest: Digest,
    pub layer_digest: Digest,
    pub layer_media_type: String,
    pub config_media_type: String,
    pub layout: Layout,
}

/// Pulls components through a [`BlobCache`]. Share one per node: the deduplication of
/// concurrent pulls works within one `Puller`, the cache across all of them.
pub struct Puller {
    registry: Registry,
    cache: BlobCache,
    in_flight: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

/// Nested indexes are followed this deep, no deeper (a loop of indexes must end).
const MAX_INDEX_DEPTH: usize = 2;

impl Puller {
    pub fn new(registry: Registry, cache: BlobCache) -> Self {
        Self {
            registry,
            cache,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn cache(&self) -> &BlobCache {
        &self.cache
    }

    /// The component `reference` (which must carry a digest: resolve a tag first) names. Blobs
    /// already in the cache are used without asking the registry, so a pinned component pulled
    /// once keeps working while its registry is away.
    pub async fn pull(
        &self,
        reference: &ImageReference,
        credentials: &Credentials,
    ) -> Result<PulledComponent, OciError> {
        let reference_digest = reference.digest().ok_or_else(|| ReferenceError {
            reference: reference.to_string(),
            reason: "a pull needs a reference pinned by digest; resolve its tag first".to_owned(),
        })?;
        let session = LazySession::new(&self.registry, reference, credentials);
        let mut manifest_digest = reference_digest;
        // Known once an index names the manifest: it is then refused unasked when too large.
        let mut manifest_size = None;
        let mut depth = 0;
        // Every blob this pull reads or stores stays in the cache until it is done.
        let mut holds = Vec::new();
        let (config, layers) = loop {
            holds.push(self.cache.hold(manifest_digest));
            let bytes = self
                .blob(&manifest_digest, async {
                    session
                        .get()?
                        .manifest_sized(Some(manifest_digest), manifest_size)
                        .await
                        .map(|(bytes, _)| bytes)
                })
                .await?;
            let manifest =
                Manifest::parse(&bytes).map_err(|problem| OciError::NotWasmComponent {
                    reference: reference.to_string(),
                    found: format!("manifest {manifest_digest}: {problem}"),
                })?;
            match manifest {
                Manifest::Image { config, layers, .. } => break (config, layers),
                Manifest::Index { manifests, .. } => {
                    depth += 1;
                    let chosen = layout::choose_platform(&manifests)
                        .filter(|_| depth <= MAX_INDEX_DEPTH)
                        .ok_or_else(|| OciError::NotWasmComponent {
                            reference: reference.to_string(),
                            found: layout::describe_platforms(&manifests),
                        })?;
                    manifest_size = Some(chosen.size);
                    manifest_digest =
                        layout::descriptor_digest(chosen).ok_or_else(|| OciError::Registry {
                            reference: reference.to_string(),
                            registry: reference.registry().to_owned(),
                            answer: format!(
                                "an index naming {:?}, which is not a sha256 digest",
                                chosen.digest
                            ),
                        })?;
                }
            }
        };
        let choice =
            layout::choose_layer(&config, &layers).map_err(|found| OciError::NotWasmComponent {
                reference: reference.to_string(),
                found,
            })?;
        let layer_digest =
            layout::descriptor_digest(&choice.layer).ok_or_else(|| OciError::Registry {
                reference: reference.to_string(),
                registry: reference.registry().to_owned(),
                answer: format!(
                    "a manifest naming {:?}, which is not a sha256 digest",
                    choice.layer.digest
                ),
            })?;
        let limit = self.registry.settings().max_layer_bytes;
        if choice.layer.size > limit {
            return Err(OciError::TooLarge {
                reference: reference.to_string(),
                what: format!("layer {layer_digest}"),
                size: choice.layer.size.to_string(),
                limit,
                advice: crate::error::TOO_LARGE_BLOB,
            });
        }
        holds.push(self.cache.hold(layer_digest));
        let bytes = self
            .blob(&layer_digest, async {
                session
                    .get()?
                    .blob(&choice.layer, limit, choice.must_check_magic)
                    .await
            })
            .await?;
        if !layout::has_wasm_magic(&bytes) {
            return Err(OciError::NotWasmComponent {
                reference: reference.to_string(),
                found: format!(
                    "its {} layer does not start with the wasm magic bytes",
                    choice.layer.media_type
                ),
            });
        }
        Ok(PulledComponent {
            bytes,
            reference_digest,
            manifest_digest,
            layer_digest,
            layer_media_type: choice.layer.media_type,
            config_media_type: config.media_type,
            layout: choice.layout,
        })
    }

    /// The blob `digest` from the cache, or from `fetch` (which verifies it) and then the
    /// cache. Concurrent callers for one digest wait for the first one's fetch and read its
    /// result from the cache.
    async fn blob(
        &self,
        digest: &Digest,
        fetch: impl Future<Output = Result<Bytes, OciError>>,
    ) -> Result<Bytes, OciError> {
        if let Some(bytes) = self.cache.get(digest).await? {
            return Ok(bytes);
        }
        let gate = self
            .lock_map()
            .entry(*digest)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone();
        let _turn = gate.lock().await;
        let result = async {
            if let Some(bytes) = self.cache.get(digest).await? {
                return Ok(bytes);
            }
            let bytes = fetch.await?;
            if let Err(error) = self.cache.put(digest, bytes.clone()).await {
                // The component is still good; only later pulls lose the shortcut.
                tracing::warn!(%digest, %error, "cannot keep a pulled blob in the image cache");
            }
            Ok(bytes)
        }
        .await;
        let mut in_flight = self.lock_map();
        if in_flight
            .get(digest)
            .is_some_and(|current| Arc::ptr_eq(current, &gate))
        {
            in_flight.remove(digest);
        }
        result
    }

    fn lock_map(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Arc<tokio::sync::Mutex<()>>>> {
        // The map is only ever left consistent; a panic elsewhere cannot corrupt it.
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A session opened only when something must come from the registry.
struct LazySession<'a> {
    registry: &'a Registry,
    reference: &'a ImageReference,
    credentials: &'a Credentials,
    session: std::sync::OnceLock<Session>,
}

impl<'a> LazySession<'a> {
    fn new(
        registry: &'a Registry,
        reference: &'a ImageReference,
        credentials: &'a Credentials,
    ) -> Self {
        Self {
            registry,
            reference,
            credentials,
            session: std::sync::OnceLock::new(),
        }
    }

    fn get(&self) -> Result<&Session, OciError> {
        if let Some(session) = self.session.get() {
            return Ok(session);
        }
        let session = self.registry.session(self.reference, self.credentials)?;
        Ok(self.session.get_or_init(|| session))
    }
}
