//! The revisions of a data plane by namespace and name, looked up per request with the
//! route table's `&str`s (no key is built or allocated on the request path).

use std::collections::HashMap;
use std::sync::Arc;

use wisp_api::revision_key::RevisionKey;

use super::revision::RevisionEntry;

#[derive(Default)]
pub(crate) struct Registry {
    namespaces: HashMap<Arc<str>, HashMap<Arc<str>, Arc<RevisionEntry>>>,
}

impl Registry {
    pub fn get(&self, namespace: &str, name: &str) -> Option<&Arc<RevisionEntry>> {
        self.namespaces.get(namespace)?.get(name)
    }

    pub fn insert(&mut self, entry: Arc<RevisionEntry>) -> Option<Arc<RevisionEntry>> {
        let key = entry.key();
        self.namespaces
            .entry(Arc::from(key.namespace.as_str()))
            .or_default()
            .insert(Arc::from(key.name.as_str()), entry)
    }

    pub fn remove(&mut self, key: &RevisionKey) -> Option<Arc<RevisionEntry>> {
        let revisions = self.namespaces.get_mut(key.namespace.as_str())?;
        let removed = revisions.remove(key.name.as_str());
        if revisions.is_empty() {
            self.namespaces.remove(key.namespace.as_str());
        }
        removed
    }

    pub fn entries(&self) -> impl Iterator<Item = &Arc<RevisionEntry>> {
        self.namespaces.values().flat_map(HashMap::values)
    }
}
