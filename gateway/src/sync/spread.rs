//! One rule for revision-wide replica floors on several nodes (README, "Beyond one machine"):
//! every node runs the autoscaler on its own traffic, so a revision's `min-scale` and
//! `initial-scale` — which Knative means for the whole revision — are shared out over the Ready
//! nodes instead of applied on each. Pure: the node's place among the Ready nodes in, the
//! annotations this node applies out.
//!
//! * `min-scale` m over n nodes: the node at place i (nodes sorted by name, from 0) keeps
//!   ⌊m/n⌋ replicas, plus one when i < m mod n; the floors add up to exactly m.
//! * `initial-scale` s: each node starts ⌈s/n⌉ (at least what was asked for in all; a node's
//!   share is never 0 unless s is, so no node needs `allow-zero-initial-scale` of its own).

use std::collections::BTreeMap;

/// Where this node stands among the Ready nodes (itself included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// Its place in name order, from 0.
    pub index: usize,
    /// How many Ready nodes there are, at least 1.
    pub count: usize,
}

impl Share {
    /// A node alone: everything applies as annotated.
    pub const ALONE: Share = Share { index: 0, count: 1 };

    /// This node's place among `ready` (its own name added if it is not Ready yet).
    pub fn of(node: &str, ready: &[String]) -> Self {
        let mut names: Vec<&str> = ready.iter().map(String::as_str).collect();
        if !names.contains(&node) {
            names.push(node);
        }
        names.sort_unstable();
        names.dedup();
        let index = names.iter().position(|name| *name == node).unwrap_or(0);
        Share {
            index,
            count: names.len(),
        }
    }
}

const PREFIX: &str = "autoscaling.knative.dev/";

/// `annotations` with `min-scale` and `initial-scale` (either spelling) replaced by this node's
/// share. Values that are not whole numbers are left for validation to refuse.
pub fn spread(annotations: &BTreeMap<String, String>, share: Share) -> BTreeMap<String, String> {
    let mut out = annotations.clone();
    if share.count <= 1 {
        return out;
    }
    let count = share.count as u64;
    let index = share.index as u64;
    replace(&mut out, "min-scale", "minScale", |m| {
        m / count + u64::from(index < m % count)
    });
    replace(&mut out, "initial-scale", "initialScale", |s| {
        s.div_ceil(count)
    });
    out
}

/// Sets `PREFIX + key` to `share(value)` of the value found under `key` (preferred, as the
/// autoscaler reads it) or `alias`, dropping the alias.
fn replace(
    annotations: &mut BTreeMap<String, String>,
    key: &str,
    alias: &str,
    share: impl Fn(u64) -> u64,
) {
    let key = format!("{PREFIX}{key}");
    let alias = format!("{PREFIX}{alias}");
    let Some(value) = annotations.get(&key).or_else(|| annotations.get(&alias)) else {
        return;
    };
    let Ok(total) = value.trim().parse::<u64>() else {
        return;
    };
    annotations.remove(&alias);
    annotations.insert(key, share(total).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotated(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect()
    }

    fn min_scale(annotations: &BTreeMap<String, String>) -> Option<&str> {
        annotations
            .get(&format!("{PREFIX}min-scale"))
            .map(String::as_str)
    }

    #[test]
    fn min_scale_is_dealt_out_and_adds_up() {
        let annotations = annotated(&[("min-scale", "5")]);
        let shares: Vec<String> = (0..3)
            .map(|index| {
                let out = spread(&annotations, Share { index, count: 3 });
                min_scale(&out).unwrap().to_owned()
            })
            .collect();
        assert_eq!(shares, ["2", "2", "1"]);
        let one = annotated(&[("minScale", "1")]);
        let last = spread(&one, Share { index: 2, count: 3 });
        assert_eq!(min_scale(&last), Some("0"));
        assert!(!last.contains_key(&format!("{PREFIX}minScale")));
    }

    #[test]
    fn initial_scale_is_rounded_up_per_node() {
        let annotations = annotated(&[("initial-scale", "4"), ("window", "6s")]);
        let out = spread(&annotations, Share { index: 2, count: 3 });
        assert_eq!(out[&format!("{PREFIX}initial-scale")], "2");
        assert_eq!(out[&format!("{PREFIX}window")], "6s");
        let zero = spread(
            &annotated(&[("initial-scale", "0")]),
            Share { index: 0, count: 3 },
        );
        assert_eq!(zero[&format!("{PREFIX}initial-scale")], "0");
    }

    #[test]
    fn alone_or_unparsable_changes_nothing() {
        let annotations = annotated(&[("min-scale", "5")]);
        assert_eq!(spread(&annotations, Share::ALONE), annotations);
        let bad = annotated(&[("min-scale", "lots")]);
        assert_eq!(spread(&bad, Share { index: 0, count: 2 }), bad);
    }

    #[test]
    fn a_node_finds_its_place_by_name() {
        let ready = vec!["local".to_owned(), "n3".to_owned(), "n2".to_owned()];
        assert_eq!(Share::of("n2", &ready), Share { index: 1, count: 3 });
        // Not Ready yet: counted with the others, as it will be.
        assert_eq!(Share::of("a", &ready), Share { index: 0, count: 4 });
        assert_eq!(Share::of("solo", &[]), Share::ALONE);
    }
}
