//! Which objects a list, watch or deletecollection is about: the store scope the URL and a
//! `metadata.name`/`metadata.namespace` field selector pin down, and the label and field
//! selectors every object (and every watch event) is then matched against.

use serde_json::Value;

use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::Scope;

use super::path::ResourcePath;
use super::query::Query;
use super::status::ApiError;

/// The parsed selection of one request.
#[derive(Debug, Clone)]
pub struct Selection {
    /// What the store is asked for.
    pub scope: Scope,
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Selection {
    /// The selection of `target` with the query's selectors; 400 for a malformed or
    /// unsupported selector.
    pub fn new(target: &ResourcePath, query: &Query) -> Result<Self, ApiError> {
        let resource = target.resource;
        let bad = |error: crate::selectors::SelectorError| ApiError::bad_request(error.to_string());
        let labels = query
            .label_selector
            .as_deref()
            .map(LabelSelector::parse)
            .transpose()
            .map_err(bad)?
            .filter(|selector| !selector.is_empty());
        let fields = query
            .field_selector
            .as_deref()
            .map(|text| FieldSelector::parse(text, resource))
            .transpose()
            .map_err(bad)?
            .filter(|selector| !selector.is_empty());
        let mut scope = Scope::resource(resource.store_resource());
        let namespace = target
            .namespace
            .as_deref()
            .or_else(|| fields.as_ref().and_then(FieldSelector::namespace));
        if let Some(namespace) = namespace.filter(|_| resource.namespaced) {
            scope = scope.in_namespace(namespace);
        }
        if let Some(name) = fields.as_ref().and_then(FieldSelector::name) {
            scope = scope.named(name);
        }
        Ok(Self {
            scope,
            labels,
            fields,
        })
    }

    /// Whether objects in the scope must still be matched one by one.
    pub fn filters(&self) -> bool {
        self.labels.is_some() || self.fields.is_some()
    }

    /// Whether `object` is selected.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        self.labels
            .as_ref()
            .is_none_or(|selector| selector.matches(labels))
            && self
                .fields
                .as_ref()
                .is_none_or(|selector| selector.matches(object))
    }
}
