//! The file-system side of the credentials: private directories, atomic writes with the final
//! permissions from the first byte, and reads that tell "missing" apart from "broken".

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::CredentialsError;

/// Mode of directories holding keys: only the owner may list or enter them.
pub(crate) const PRIVATE_DIR: u32 = 0o700;
/// Mode of keys, the token and kubeconfigs.
pub(crate) const SECRET_FILE: u32 = 0o600;
/// Mode of certificates, which are public.
pub(crate) const PUBLIC_FILE: u32 = 0o644;

/// Creates `dir` (and missing parents) with mode 0700 if it does not exist. An existing
/// directory is left as it is: it may be shared with other data the operator manages.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), CredentialsError> {
    if dir.is_dir() {
        return Ok(());
    }
    let fail = |source| CredentialsError::CreateDir {
        path: dir.to_path_buf(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
        .map_err(fail)?;
    // The umask may have taken bits away from 0700, which would leave us unable to use it.
    fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR)).map_err(fail)
}

/// Reads `path` as UTF-8 text, or `None` if it does not exist. `hint` tells the operator what
/// to do if it exists but cannot be read.
pub(crate) fn read_optional(
    path: &Path,
    hint: &'static str,
) -> Result<Option<String>, CredentialsError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            warn_if_exposed(path);
            Ok(Some(text))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialsError::Read {
            path: path.to_path_buf(),
            source,
            hint,
        }),
    }
}

/// Replaces `path` with `contents` so that a crash leaves either the old file or the new one,
/// never a torn one: the bytes go to a temporary file in the same directory (created with
/// `mode`, so a secret is never readable by others even for a moment), are synced, and the
/// temporary file is renamed over `path`.
pub(crate) fn write_atomically(
    path: &Path,
    contents: &[u8],
    mode: u32,
) -> Result<(), CredentialsError> {
    let fail = |source| CredentialsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let temp = temp_path(path).ok_or_else(|| {
        fail(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path has no file name",
        ))
    })?;
    let result = write_then_rename(&temp, path, contents, mode);
    if result.is_err() {
        // Best effort: the temporary file is garbage either way.
        let _ = fs::remove_file(&temp);
    }
    result.map_err(fail)
}

fn write_then_rename(temp: &Path, path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    // A leftover from a crashed process with the same pid would make `create_new` fail; it is
    // ours to remove since it lives next to our file under our naming scheme.
    match fs::remove_file(temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(temp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    fs::rename(temp, path)?;
    // The rename itself is only durable once the directory entry is.
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// `<dir>/.<name>.<pid>.<n>.tmp`: hidden, unique within this process and across live ones.
fn temp_path(path: &Path) -> Option<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name()?.to_string_lossy();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Some(path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id())))
}

/// Secrets readable by group or others were not written by us; say so rather than silently
/// widening who can impersonate the admin.
fn warn_if_exposed(path: &Path) {
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode();
        let is_secret = path.extension().is_none_or(|ext| ext != "crt");
        if is_secret && mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "credential file is accessible to other users; chmod 600 it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_missing_directories_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode_of(&dir), PRIVATE_DIR);
        assert_eq!(mode_of(&root.path().join("a")), PRIVATE_DIR);
    }

    #[test]
    fn leaves_existing_directories_alone() {
        let root = tempfile::tempdir().unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(root.path()).unwrap();
        assert_eq!(mode_of(root.path()), 0o755);
    }

    #[test]
    fn atomic_write_sets_the_mode_and_replaces_content() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("secret");
        write_atomically(&path, b"one", SECRET_FILE).unwrap();
        assert_eq!(mode_of(&path), SECRET_FILE);
        write_atomically(&path, b"two", SECRET_FILE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        // Nothing but the file itself is left behind.
        let names: Vec<_> = fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn atomic_write_into_a_missing_directory_names_the_file() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("missing/secret");
        let err = write_atomically(&path, b"x", SECRET_FILE).unwrap_err();
        assert!(err.to_string().contains("missing/secret"), "{err}");
    }

    #[test]
    fn missing_files_read_as_none_and_broken_ones_as_errors() {
        let root = tempfile::tempdir().unwrap();
        assert!(
            read_optional(&root.path().join("absent"), "hint")
                .unwrap()
                .is_none()
        );
        // A directory cannot be read as a file, even by root.
        let err = read_optional(root.path(), "do this").unwrap_err();
        assert!(err.to_string().contains("do this"), "{err}");
    }
}
