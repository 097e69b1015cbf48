//! Knative's `kmeta.ChildName`: a child's name from its parent's and a suffix, kept within the
//! 63 characters of a DNS label by replacing the parent's tail with its MD5.

use md5::{Digest, Md5};

/// The longest Kubernetes object name Knative generates.
pub const LONGEST: usize = 63;

/// `parent` + `suffix`, or — when that is longer than [`LONGEST`] — as much of `parent` as fits
/// followed by the hex MD5 of `parent` and then `suffix`, as Knative names children.
pub fn child_name(parent: &str, suffix: &str) -> String {
    let whole = format!("{parent}{suffix}");
    if whole.len() <= LONGEST {
        return whole;
    }
    let digest = hex(&Md5::digest(parent.as_bytes()));
    match LONGEST.checked_sub(suffix.len() + digest.len()) {
        // Names are ASCII (DNS labels), so byte slicing stays on character boundaries.
        Some(head) if parent.is_char_boundary(head.min(parent.len())) => {
            let head = &parent[..head.min(parent.len())];
            // A name must not end up with a '-' right before the hash or start with one.
            format!("{}{digest}{suffix}", head.trim_end_matches('-'))
        }
        _ => hex(&Md5::digest(whole.as_bytes())),
    }
}

/// The revision name for a configuration's generation: `hello-00001`.
pub fn revision_name(configuration: &str, generation: i64) -> String {
    child_name(configuration, &format!("-{generation:05}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_joined() {
        assert_eq!(revision_name("hello", 1), "hello-00001");
        assert_eq!(revision_name("hello", 123_456), "hello-123456");
    }

    #[test]
    fn long_names_keep_their_head_and_stay_in_a_label() {
        let parent = "a".repeat(63);
        let name = revision_name(&parent, 2);
        assert_eq!(name.len(), LONGEST);
        assert!(name.starts_with("aaaa"));
        assert!(name.ends_with("-00002"));
        // Two long parents that share their head still get different children.
        let other = format!("{}b", "a".repeat(62));
        assert_ne!(revision_name(&other, 2), name);
    }

    #[test]
    fn a_suffix_too_long_for_any_head_is_hashed_whole() {
        let suffix = format!("-{}", "x".repeat(40));
        let name = child_name("parent-name-that-is-long", &suffix);
        assert_eq!(name.len(), 32);
    }
}
