//! How objects are addressed: one object by [`ObjectKey`], a set of them (for list and watch) by
//! [`Scope`]. Kept apart so the API layer can build both straight from a URL.

use std::fmt;

/// The identity of one stored object.
///
/// `resource` names the collection the way the store files it: `group/plural` for API groups
/// (`serving.knative.dev/services`) and the bare plural for the core group (`namespaces`). The
/// version is not part of it: one object is one row whatever version it is served at.
/// `namespace` is empty for cluster-scoped kinds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// `group/plural`, or the bare plural for the core group.
    pub resource: String,
    /// The namespace, or `""` for a cluster-scoped object.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectKey {
    /// The key of a namespaced object (or of a cluster-scoped one, with `namespace` empty).
    pub fn new(
        resource: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a cluster-scoped object (a Namespace, a Node).
    pub fn cluster(resource: impl Into<String>, name: impl Into<String>) -> Self {
        Self::new(resource, "", name)
    }
}

/// Renders the way kubectl names objects, `services.serving.knative.dev "hello" in namespace
/// "default"`, so store errors read like the API server's own messages.
impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.resource.split_once('/') {
            Some((group, plural)) => write!(f, "{plural}.{group}")?,
            None => f.write_str(&self.resource)?,
        }
        write!(f, " {:?}", self.name)?;
        if !self.namespace.is_empty() {
            write!(f, " in namespace {:?}", self.namespace)?;
        }
        Ok(())
    }
}

/// A set of objects of one resource: all of them, those of one namespace, or the one with a
/// given name (the `metadata.name` field selector kubectl uses for `delete` and `wait`).
///
/// Label and other field selectors are the API layer's business; this is only what the store
/// can answer from its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `group/plural`, or the bare plural for the core group.
    pub resource: String,
    /// `None` for every namespace (and for cluster-scoped resources).
    pub namespace: Option<String>,
    /// `None` for every name.
    pub name: Option<String>,
}

impl Scope {
    /// Every object of `resource`, in every namespace.
    pub fn resource(resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            namespace: None,
            name: None,
        }
    }

    /// Only the objects in `namespace` (`""` selects the cluster-scoped ones).
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Only the object called `name`.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether the object with this key is in the scope.
    pub fn contains(&self, key: &ObjectKey) -> bool {
        key.resource == self.resource
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == key.namespace)
            && self.name.as_ref().is_none_or(|name| *name == key.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_like_kubectl() {
        let key = ObjectKey::new("serving.knative.dev/services", "default", "hello");
        assert_eq!(
            key.to_string(),
            r#"services.serving.knative.dev "hello" in namespace "default""#
        );
        assert_eq!(
            ObjectKey::cluster("namespaces", "default").to_string(),
            r#"namespaces "default""#
        );
    }

    #[test]
    fn scope_filters_by_resource_namespace_and_name() {
        let key = ObjectKey::new("serving.knative.dev/services", "default", "hello");
        let services = Scope::resource("serving.knative.dev/services");
        assert!(services.contains(&key));
        assert!(services.clone().in_namespace("default").contains(&key));
        assert!(!services.clone().in_namespace("other").contains(&key));
        assert!(services.clone().named("hello").contains(&key));
        assert!(!services.named("bye").contains(&key));
        assert!(!Scope::resource("serving.knative.dev/routes").contains(&key));
    }
}
