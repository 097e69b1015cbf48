//! Compile once per digest per process, reuse across processes, and never trust a bad entry.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use sha2::{Digest as _, Sha256};
use wisp_runtime::{ArtifactSource, LoadOrigin, Runtime, RuntimeConfig};

fn runtime_with_cache(dir: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_owned()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn hello() -> ArtifactSource {
    ArtifactSource::parse(wisp_samples::HELLO)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_digest_wait_for_one_compile() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = runtime_with_cache(cache.path());
    let prepares = (0..10).map(|_| {
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.prepare(&hello()).await.map(|p| p.origin()) })
    });
    let origins: Vec<LoadOrigin> = futures::future::join_all(prepares)
        .await
        .into_iter()
        .map(|result| result.unwrap().unwrap())
        .collect();
    let stats = runtime.loader_stats();
    assert_eq!(stats.compiles.load(Ordering::Relaxed), 1);
    assert_eq!(stats.memory_hits.load(Ordering::Relaxed), 9);
    assert_eq!(
        origins
            .iter()
            .filter(|o| **o == LoadOrigin::Compiled)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_new_process_loads_the_precompiled_image_instead_of_compiling() {
    let cache = tempfile::tempdir().unwrap();
    let first = runtime_with_cache(cache.path());
    assert_eq!(
        first.prepare(&hello()).await.unwrap().origin(),
        LoadOrigin::Compiled
    );
    drop(first);

    let second = runtime_with_cache(cache.path());
    assert_eq!(
        second.prepare(&hello()).await.unwrap().origin(),
        LoadOrigin::Disk
    );
    assert_eq!(second.loader_stats().compiles.load(Ordering::Relaxed), 0);
}

/// An entry whose checksum matches but whose bytes are not this engine's output (written by
/// something else) is detected by the loader, discarded and rebuilt.
#[tokio::test]
async fn a_foreign_entry_is_discarded_and_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let first = runtime_with_cache(cache.path());
    let digest = first.prepare(&hello()).await.unwrap().digest();
    drop(first);

    let image = entry_dir(cache.path()).join(format!("{}.cwasm", digest.hex()));
    let foreign = b"\x7fELF this is not wasmtime's output".to_vec();
    std::fs::write(&image, &foreign).unwrap();
    std::fs::write(
        image.with_extension("sha256"),
        hex::encode(Sha256::digest(&foreign)),
    )
    .unwrap();

    let second = runtime_with_cache(cache.path());
    let prepared = second.prepare(&hello()).await.unwrap();
    assert_eq!(prepared.origin(), LoadOrigin::Compiled);
    assert_ne!(
        std::fs::read(&image).unwrap(),
        foreign,
        "the entry was rewritten"
    );

    let third = runtime_with_cache(cache.path());
    assert_eq!(
        third.prepare(&hello()).await.unwrap().origin(),
        LoadOrigin::Disk
    );
}

fn entry_dir(root: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "one directory per engine build: {dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// A runtime without a disk cache whose memory budget holds no unused component at all.
fn runtime_with_no_memory_to_spare() -> Runtime {
    Runtime::new(RuntimeConfig {
        compiled_memory_budget: 1,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn components_in_use_are_never_evicted_and_unused_ones_are() {
    let runtime = runtime_with_no_memory_to_spare();
    let hello_in_use = runtime.prepare(&hello()).await.unwrap();
    let echo = runtime
        .prepare(&ArtifactSource::parse(wisp_samples::ECHO))
        .await
        .unwrap();
    let stats = runtime.loader_stats();
    assert_eq!(
        stats.memory_evictions.load(Ordering::Relaxed),
        0,
        "both are in use, however far over the budget"
    );
    assert!(stats.memory_bytes.load(Ordering::Relaxed) > 1);
    assert_eq!(
        runtime.prepare(&hello()).await.unwrap().origin(),
        LoadOrigin::Memory,
        "a component in use is found in memory"
    );

    drop(hello_in_use);
    assert_eq!(stats.memory_evictions.load(Ordering::Relaxed), 1);
    assert_eq!(
        runtime.prepare(&hello()).await.unwrap().origin(),
        LoadOrigin::Compiled,
        "the unused component was evicted, so it is compiled again"
    );
    assert_eq!(
        runtime
            .prepare(&ArtifactSource::parse(wisp_samples::ECHO))
            .await
            .unwrap()
            .origin(),
        LoadOrigin::Memory,
        "the one still in use stayed"
    );
    drop(echo);
}

#[tokio::test]
async fn unused_components_stay_while_they_fit_the_budget() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    drop(runtime.prepare(&hello()).await.unwrap());
    assert_eq!(
        runtime.prepare(&hello()).await.unwrap().origin(),
        LoadOrigin::Memory
    );
    assert_eq!(
        runtime
            .loader_stats()
            .memory_evictions
            .load(Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn the_disk_cache_stays_within_its_budget() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        cache_max_bytes: 1,
        ..RuntimeConfig::default()
    })
    .unwrap();
    runtime.prepare(&hello()).await.unwrap();
    runtime
        .prepare(&ArtifactSource::parse(wisp_samples::ECHO))
        .await
        .unwrap();
    assert_eq!(
        runtime
            .loader_stats()
            .disk_evictions
            .load(Ordering::Relaxed),
        1
    );
    let images: Vec<PathBuf> = std::fs::read_dir(entry_dir(cache.path()))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    assert_eq!(images.len(), 1, "only the newest entry is left: {images:?}");
}
