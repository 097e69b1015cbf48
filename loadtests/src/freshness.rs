//! Whether a built `wisp` binary is older than the sources it is built from, so a benchmark or a
//! test never measures yesterday's build by accident.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Workspace members the `wisp` binary is not built from.
const NOT_IN_THE_BINARY: &[&str] = &["samples", "loadtests", "fuzz"];

/// The newest source file of `root`'s workspace that is newer than `binary`, if any: every file
/// under the members' `src/`, except the members the binary does not contain. Manifests and the
/// lock file are left out: a change there (a dev-dependency, another member's dependency) need
/// not rebuild the binary, and cargo would then leave it as it is, older for ever. `None` also
/// when `root` is not a checkout (the binary was installed elsewhere): nothing to compare with.
pub fn newer_source(binary: &Path, root: &Path) -> Option<PathBuf> {
    let built = modified(binary)?;
    let mut sources = Vec::new();
    for member in std::fs::read_dir(root).ok()?.flatten() {
        let dir = member.path();
        let name = member.file_name();
        if !dir.join("Cargo.toml").is_file() || NOT_IN_THE_BINARY.iter().any(|skip| name == *skip) {
            continue;
        }
        collect_files(&dir.join("src"), &mut sources);
    }
    sources
        .into_iter()
        .filter_map(|path| Some((modified(&path)?, path)))
        .filter(|(time, _)| *time > built)
        .max_by_key(|(time, _)| *time)
        .map(|(_, path)| path)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

fn collect_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, into);
        } else {
            into.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::time::Duration;

    fn touch(path: &Path, at: SystemTime) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = File::create(path).unwrap();
        file.set_modified(at).unwrap();
    }

    #[test]
    fn a_source_newer_than_the_binary_is_named_and_other_members_are_ignored() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let then = SystemTime::now() - Duration::from_secs(3600);
        let later = then + Duration::from_secs(60);
        touch(&root.join("Cargo.toml"), then);
        touch(&root.join("gateway/Cargo.toml"), then);
        touch(&root.join("gateway/src/lib.rs"), then);
        touch(&root.join("samples/Cargo.toml"), then);
        touch(
            &root.join("samples/src/lib.rs"),
            later + Duration::from_secs(60),
        );
        let binary = root.join("target/debug/wisp");
        touch(&binary, later);
        assert_eq!(
            newer_source(&binary, root),
            None,
            "samples are not in the binary"
        );
        touch(
            &root.join("gateway/src/server/mod.rs"),
            later + Duration::from_secs(1),
        );
        assert_eq!(
            newer_source(&binary, root),
            Some(root.join("gateway/src/server/mod.rs"))
        );
    }

    #[test]
    fn a_missing_binary_or_checkout_has_nothing_to_compare() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(newer_source(&root.path().join("wisp"), root.path()), None);
    }
}
