//! Builders shared by admission's unit tests.

use serde_json::{Value, json};

use super::{Operation, Request};
use crate::field_error::FieldError;
use crate::registry::{Resource, SERVING_GROUP, lookup};

/// The registry entry of a Knative kind by plural.
pub(crate) fn resource(plural: &str) -> &'static Resource {
    lookup(SERVING_GROUP, "v1", plural).expect("a Knative resource")
}

/// A create by `alice`.
pub(crate) fn create(plural: &str) -> Request<'static> {
    Request {
        resource: resource(plural),
        operation: Operation::Create,
        old: None,
        user: "alice",
        defaults: &crate::admission::ClusterDefaults::KNATIVE,
    }
}

/// An update of `old` by `bob`.
pub(crate) fn update<'a>(plural: &str, old: &'a Value) -> Request<'a> {
    Request {
        resource: resource(plural),
        operation: Operation::Update,
        old: Some(old),
        user: "bob",
        defaults: &crate::admission::ClusterDefaults::KNATIVE,
    }
}

/// A minimal valid Service as a user writes it (before defaulting).
pub(crate) fn service() -> Value {
    json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{"image": "hello.wasm"}]}}}
    })
}

/// Defaults then validates `object` as `request` would, returning the defaulted object and
/// the errors.
pub(crate) fn admit(request: &Request<'_>, mut object: Value) -> (Value, Vec<FieldError>) {
    super::default(request, &mut object);
    let errors = super::validate(request, &object).err().unwrap_or_default();
    (object, errors)
}

/// The one error on `field`, failing the test when there is none or several.
#[track_caller]
pub(crate) fn only_on<'a>(errors: &'a [FieldError], field: &str) -> &'a FieldError {
    let matching: Vec<&FieldError> = errors.iter().filter(|e| e.field == field).collect();
    assert_eq!(matching.len(), 1, "errors on {field}: {errors:#?}");
    matching[0]
}

/// Asserts the errors are exactly one, on `field`, whose message contains `fragment`.
#[track_caller]
pub(crate) fn assert_single(errors: &[FieldError], field: &str, fragment: &str) {
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].field, field, "{errors:#?}");
    assert!(
        errors[0].message.contains(fragment),
        "{:?} lacks {fragment:?}",
        errors[0].message
    );
}
