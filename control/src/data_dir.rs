//! One process per data directory: `DATA_DIR/lock`, held with `flock` for the life of the API
//! server and holding its pid. Two servers on one database would each believe their watchers
//! see every write, and would race on the credentials; the second one is refused with the first
//! one's pid instead. The kernel drops an `flock` when its holder dies, however it dies (even
//! `kill -9`), so a restart after a crash finds the directory free and needs no clean-up.

use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of a data directory this process creates: it holds the keys and the database.
pub const DATA_DIR_MODE: u32 = 0o700;

/// Mode of the lock file (and of the database files; see `store`).
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Why the data directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Another live process holds the lock.
    #[error(
        "the data directory {} is in use by another wisp process{}: stop that one first, or give \
         this one another --data-dir",
        dir.display(),
        holder(*pid)
    )]
    InUse {
        /// The directory.
        dir: PathBuf,
        /// The holder's pid, when it has written it yet.
        pid: Option<u32>,
    },
    /// The directory or the lock file could not be created, opened or locked.
    #[error("cannot lock the data directory: {}: {source}; check that it is writable", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!(" (pid {pid}; `kill {pid}` stops it)"),
        None => " (its pid is not written yet)".to_owned(),
    }
}

/// The held lock; dropping it (or the process ending) releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Creates `dir` (mode 0700 whatever the umask) if it is missing, and takes its lock.
    pub fn acquire(dir: &Path) -> Result<Self, DataDirError> {
        create_private_dir(dir)?;
        let path = dir.join("lock");
        let fail = |source| DataDirError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PRIVATE_FILE_MODE)
            .open(&path)
            .map_err(fail)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // The holder may be between locking and writing its pid: then there is none.
                let _ = file.read_to_string(&mut text);
                return Err(DataDirError::InUse {
                    dir: dir.to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(fail(source)),
        }
        file.set_len(0).map_err(fail)?;
        file.seek(SeekFrom::Start(0)).map_err(fail)?;
        writeln!(file, "{}", std::process::id()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        Ok(Self { _file: file })
    }
}

/// Creates `dir` and its missing parents with mode 0700, then sets 0700 on it explicitly (the
/// umask may have taken bits away, or added none back). An existing directory is left as it is:
/// it may be shared with other data the operator manages.
fn create_private_dir(dir: &Path) -> Result<(), DataDirError> {
    if dir.is_dir() {
        return Ok(());
    }
    let fail = |source| DataDirError::Io {
        path: dir.to_path_buf(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(DATA_DIR_MODE)
        .create(dir)
        .map_err(fail)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(DATA_DIR_MODE)).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_and_released_on_drop() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("data");
        let first = DataDirLock::acquire(&dir).expect("first");
        let mode = fs::metadata(&dir).expect("dir").permissions().mode() & 0o777;
        assert_eq!(mode, DATA_DIR_MODE);
        let refused = DataDirLock::acquire(&dir).expect_err("second");
        match &refused {
            DataDirError::InUse { pid, .. } => assert_eq!(*pid, Some(std::process::id())),
            other => panic!("expected InUse, got {other}"),
        }
        let message = refused.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id()))
                && message.contains("--data-dir"),
            "{message}"
        );
        drop(first);
        let again = DataDirLock::acquire(&dir).expect("free once dropped");
        let text = fs::read_to_string(dir.join("lock")).expect("lock file");
        assert_eq!(text, format!("{}\n", std::process::id()));
        drop(again);
    }
}
