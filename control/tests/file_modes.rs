//! The API server's files are private whatever the umask: run in its own test binary because
//! the umask is the whole process's. The permissive umask 0 would leave SQLite's database,
//! WAL and shared-memory files world-readable (0644) if the server relied on defaults.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use wisp_control::apiserver::{ApiServer, ApiServerConfig};

/// The permission bits, in octal as `ls` and `chmod` write them.
fn mode(path: &Path) -> String {
    let mode = fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    format!("{:o}", mode & 0o777)
}

#[tokio::test]
async fn the_database_and_its_directory_are_private_whatever_the_umask() {
    // SAFETY: umask only swaps the process's file-creation mask; this binary's one test is the
    // only thing running in it.
    unsafe { libc::umask(0o000) };
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("fresh/data");
    let server = ApiServer::start(ApiServerConfig::new(
        &data_dir,
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("start");
    // Start-up wrote the standard namespaces: the WAL and its index exist.
    assert_eq!(mode(&data_dir), "700", "the data directory");
    for name in [
        "wisp.db",
        "wisp.db-wal",
        "wisp.db-shm",
        "lock",
        "token",
        "kubeconfig",
    ] {
        assert_eq!(mode(&data_dir.join(name)), "600", "{name}");
    }
    server.shutdown().await;

    // Files an older version left readable by others are tightened at the next start.
    for name in ["wisp.db", "wisp.db-wal", "wisp.db-shm"] {
        let path = data_dir.join(name);
        if path.exists() {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("loosen");
        }
    }
    let server = ApiServer::start(ApiServerConfig::new(
        &data_dir,
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("restart");
    for name in ["wisp.db", "wisp.db-wal", "wisp.db-shm"] {
        assert_eq!(mode(&data_dir.join(name)), "600", "{name} after a restart");
    }
    server.shutdown().await;
}
