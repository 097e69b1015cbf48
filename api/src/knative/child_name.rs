//! Knative's `kmeta.ChildName` (knative.dev/pkg/kmeta/names.go): a child's name from its
//! parent's and a suffix, kept within the 63 characters of a DNS label by replacing the parent's
//! tail with its MD5. Ported byte for byte so a Service applied to wisp and to Knative gets the
//! same Revision names.

use md5::{Digest, Md5};

/// The longest Kubernetes object name Knative generates.
pub const LONGEST: usize = 63;
/// Length of a hex MD5 digest.
const MD5_LEN: usize = 32;
/// How much of the parent Knative keeps in front of the hash.
const HEAD: usize = LONGEST - MD5_LEN;

/// `parent` + `suffix`, or — when that is longer than [`LONGEST`] — as Knative shortens it:
/// the parent's head, the hex MD5 of the parent, then the suffix; and when the suffix alone
/// leaves no room for a head, the parent's head, the MD5 of parent and suffix together, padded
/// with the suffix's beginning, with trailing non-alphanumerics removed.
pub fn child_name(parent: &str, suffix: &str) -> String {
    let (parent, suffix) = (parent.as_bytes(), suffix.as_bytes());
    if parent.len() + suffix.len() <= LONGEST {
        return text([parent, suffix].concat());
    }
    if suffix.len() >= HEAD {
        let digest = hex(&Md5::digest([parent, suffix].concat()));
        let mut name = parent[..parent.len().min(HEAD)].to_vec();
        name.extend_from_slice(digest.as_bytes());
        let pad = LONGEST.saturating_sub(name.len());
        name.extend_from_slice(&suffix[..pad]);
        return text(without_trailing_non_alphanumerics(name));
    }
    let digest = hex(&Md5::digest(parent));
    let mut name = parent[..HEAD - suffix.len()].to_vec();
    name.extend_from_slice(digest.as_bytes());
    name.extend_from_slice(suffix);
    text(name)
}

/// The revision name for a configuration's generation, as Knative's configuration reconciler
/// names it: `hello-00001`.
pub fn revision_name(configuration: &str, generation: i64) -> String {
    child_name(configuration, &format!("-{generation:05}"))
}

/// Knative's `makeValidName`: the hash is alphanumeric, so this never empties the name.
fn without_trailing_non_alphanumerics(mut name: Vec<u8>) -> Vec<u8> {
    while name.last().is_some_and(|b| !b.is_ascii_alphanumeric()) {
        name.pop();
    }
    name
}

/// Object names are ASCII (DNS labels); a non-ASCII name cut mid-character by the byte-wise
/// truncation Knative does keeps a replacement character rather than panicking.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every vector of Knative's `TestChildName` (knative.dev/pkg/kmeta/names_test.go).
    #[test]
    fn matches_knatives_test_vectors() {
        let f63 = "f".repeat(63);
        let cases: &[(&str, &str, &str)] = &[
            ("asdf", "-deployment", "asdf-deployment"),
            (
                &f63,
                "-deployment",
                "ffffffffffffffffffff105d7597f637e83cc711605ac3ea4957-deployment",
            ),
            (
                &f63,
                "-deploy",
                "ffffffffffffffffffffffff105d7597f637e83cc711605ac3ea4957-deploy",
            ),
            (
                &f63,
                &f63,
                "fffffffffffffffffffffffffffffff0502661254f13c89973cb3a83e0cbec0",
            ),
            (
                "a",
                &f63,
                "ab5cfd486935decbc0d305799f4ce4414ffffffffffffffffffffffffffffff",
            ),
            (
                &"b".repeat(32),
                &"f".repeat(32),
                "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb329c7c81b9ab3ba71aa139066aa5625d",
            ),
            (
                "aaaa",
                &"b---a".repeat(20),
                "aaaa7a3f7966594e3f0849720eced8212c18b---ab---ab---ab---ab---ab",
            ),
            (
                &"a".repeat(17),
                "a.-.-.-.-.-.-.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "aaaaaaaaaaaaaaaaaa1eb10dc911444f8434af83b7225442da",
            ),
        ];
        for (parent, suffix, want) in cases {
            let got = child_name(parent, suffix);
            assert_eq!(&got, want, "ChildName({parent:?}, {suffix:?})");
            assert!(got.len() <= LONGEST, "{got} is longer than a DNS label");
        }
    }

    #[test]
    fn short_names_are_joined() {
        assert_eq!(revision_name("hello", 1), "hello-00001");
        assert_eq!(revision_name("hello", 123_456), "hello-123456");
    }

    /// A '-' that ends up right before the hash is kept, as Knative keeps it (wisp used to trim
    /// it, naming the Revision differently from Knative).
    #[test]
    fn a_dash_before_the_hash_is_kept() {
        let dashed = format!("{}-{}", "a".repeat(24), "b".repeat(38));
        let name = revision_name(&dashed, 1);
        assert_eq!(&name[..25], &dashed[..25]);
        assert!(name[..25].ends_with('-'));
        assert!(name.ends_with("-00001"));
    }

    #[test]
    fn long_parents_sharing_a_head_get_different_children() {
        let parent = "a".repeat(63);
        let other = format!("{}b", "a".repeat(62));
        assert_ne!(revision_name(&other, 2), revision_name(&parent, 2));
    }

    #[test]
    fn non_ascii_input_does_not_panic() {
        let name = child_name(&"é".repeat(40), "-00001");
        assert!(name.ends_with("-00001"));
    }
}
