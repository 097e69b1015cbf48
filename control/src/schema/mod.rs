//! Resource schemas: the OpenAPI v3 structural schema (a CRD's `openAPIV3Schema`) of every
//! served kind, and the checks the API server runs with them.
//!
//! The schemas are data (`control/schemas/*.yaml`, YAML like the CRDs they follow), loaded once.
//! They serve three readers: field validation ([`check`]: unknown fields and wrong types, what
//! `fieldValidation=Strict|Warn` reports, reference §1.4), pruning ([`prune`]: what the real
//! server does with unknown fields of custom resources under `Ignore`/`Warn`), and the OpenAPI v3
//! documents (`crate::openapi`) that make `kubectl apply` trust the server and `kubectl explain`
//! useful. [`duplicate_fields`] finds repeated keys in a raw body, which a parsed
//! `serde_json::Value` can no longer show. Pure functions, no I/O.

mod check;
mod duplicates;
mod load;
mod node;
mod prune;

pub use check::{FieldReport, check};
pub use duplicates::duplicate_fields;
pub use prune::prune;

use serde_json::Value;

use crate::registry::Resource;

/// The schema of a resource's objects, if it has one.
///
/// It is the full object schema: `apiVersion`, `kind`, `metadata` (ObjectMeta, inlined), `spec`
/// and `status` as applicable, every shared part inlined, so it can be walked without lookups.
pub fn schema_of(resource: &Resource) -> Option<&'static Value> {
    load::catalog().kind(resource.group, resource.version, resource.kind)
}

/// A shared schema fragment by name, resolved (`ObjectMeta`, `ListMeta`, `Status`, `Patch`,
/// `ObjectReference`, `Container`, …): the OpenAPI documents publish some of them as
/// `components.schemas` of their own.
pub fn definition(name: &str) -> Option<&'static Value> {
    load::catalog().definition(name)
}
