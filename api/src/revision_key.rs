//! The identity of one revision across crates: `{namespace, name}`.

use std::fmt;

/// Names a revision the way Kubernetes names any namespaced object.
///
/// Cheap to clone and hash, because the data plane and the autoscaler key their per-revision
/// tables by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RevisionKey {
    pub namespace: String,
    pub name: String,
}

impl RevisionKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for RevisionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_namespace_slash_name() {
        assert_eq!(
            RevisionKey::new("default", "hello-00001").to_string(),
            "default/hello-00001"
        );
    }
}
