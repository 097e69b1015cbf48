//! One read-modify-write of one object: read the current state, let the caller decide the new
//! one, stamp the next resourceVersion, write the row and the event. Runs inside the writer's
//! transaction, so all of it happens or none of it does.

use rusqlite::Connection;
use serde_json::{Map, Value};

use super::error::StoreError;
use super::event::{Event, EventType};
use super::key::ObjectKey;
use super::{storable, tables};

/// What a mutation did, with the object as it now is.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The object did not exist and now does (stamped with its new resourceVersion).
    Created(Value),
    /// The object changed (stamped with its new resourceVersion).
    Modified(Value),
    /// The object was removed; this is its last state stamped with the deletion's
    /// resourceVersion.
    Deleted(Value),
    /// Nothing was written and no resourceVersion used: the new state equals the current one,
    /// or the function asked to delete an object that does not exist (`None`).
    Unchanged(Option<Value>),
}

impl Outcome {
    /// The object the outcome carries, if any.
    pub fn object(&self) -> Option<&Value> {
        match self {
            Self::Created(object) | Self::Modified(object) | Self::Deleted(object) => Some(object),
            Self::Unchanged(object) => object.as_ref(),
        }
    }

    /// The object the outcome carries, if any.
    pub fn into_object(self) -> Option<Value> {
        match self {
            Self::Created(object) | Self::Modified(object) | Self::Deleted(object) => Some(object),
            Self::Unchanged(object) => object,
        }
    }

    /// The resourceVersion of the carried object (for a write, the one it was given).
    pub fn resource_version(&self) -> Option<u64> {
        self.object().and_then(resource_version_of)
    }
}

/// `metadata.resourceVersion` of a stored object, as a number (the store writes it as a string,
/// the Kubernetes way).
pub fn resource_version_of(object: &Value) -> Option<u64> {
    object
        .pointer("/metadata/resourceVersion")?
        .as_str()?
        .parse()
        .ok()
}

/// Writes `rv` into `object.metadata.resourceVersion`, creating `metadata` if it is missing.
fn stamp(key: &ObjectKey, object: &mut Value, rv: u64) -> Result<(), StoreError> {
    let invalid = |reason: &str| StoreError::InvalidObject {
        key: key.clone(),
        reason: reason.to_owned(),
    };
    let fields = object
        .as_object_mut()
        .ok_or_else(|| invalid("it is not a JSON object"))?;
    let metadata = fields
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| invalid("its metadata is not a JSON object"))?;
    metadata.insert("resourceVersion".to_owned(), Value::String(rv.to_string()));
    Ok(())
}

/// Refuses an object whose `metadata.name` / `metadata.namespace` contradict the key it is
/// stored under: the key is its identity everywhere (watch filters, field selectors).
fn check_identity(key: &ObjectKey, object: &Value) -> Result<(), StoreError> {
    let field = |name: &str| object.pointer(&format!("/metadata/{name}"));
    let mismatch = |what: &str, found: &Value, want: &str| StoreError::InvalidObject {
        key: key.clone(),
        reason: format!("its metadata.{what} is {found} but it is stored as {want:?}"),
    };
    if let Some(name) = field("name").filter(|name| name.as_str() != Some(&key.name)) {
        return Err(mismatch("name", name, &key.name));
    }
    if let Some(namespace) = field("namespace")
        .filter(|ns| !(ns.is_null() || ns.as_str() == Some(key.namespace.as_str())))
    {
        return Err(mismatch("namespace", namespace, &key.namespace));
    }
    Ok(())
}

fn encode(key: &ObjectKey, object: &Value) -> Result<String, StoreError> {
    serde_json::to_string(object).map_err(|e| StoreError::InvalidObject {
        key: key.clone(),
        reason: format!("it cannot be serialised: {e}"),
    })
}

/// Runs `decide` on the current state of `key` and stores what it returns, using `next_rv` if
/// anything is written. Returns the outcome and, for a write, its event (already logged).
///
/// `decide` returning `Some(object)` creates or replaces, `None` deletes; an object equal to the
/// current one apart from its resourceVersion is not written at all (as the real API server does,
/// an update that changes nothing keeps the resourceVersion and sends no event).
pub(crate) fn apply<F, E>(
    conn: &Connection,
    key: &ObjectKey,
    next_rv: u64,
    decide: F,
) -> Result<(Outcome, Option<Event>), E>
where
    F: FnOnce(Option<&Value>) -> Result<Option<Value>, E>,
    E: From<StoreError>,
{
    let current = tables::read_object(conn, key)?;
    let proposed = decide(current.as_ref().map(|(_, object)| object))?;
    let (kind, mut object) = match (current, proposed) {
        (None, None) => return Ok((Outcome::Unchanged(None), None)),
        (Some((_, last)), None) => {
            tables::delete_object(conn, key)?;
            (EventType::Deleted, last)
        }
        (None, Some(new)) => (EventType::Added, new),
        (Some((current_rv, current)), Some(mut new)) => {
            stamp(key, &mut new, current_rv)?;
            if new == current {
                return Ok((Outcome::Unchanged(Some(current)), None));
            }
            (EventType::Modified, new)
        }
    };
    check_identity(key, &object)?;
    stamp(key, &mut object, next_rv)?;
    let json = encode(key, &object)?;
    if kind != EventType::Deleted {
        storable::check(key, &json)?;
        tables::put_object(conn, key, next_rv, &json)?;
    }
    let event = Event {
        resource_version: next_rv,
        kind,
        key: key.clone(),
        object: object.clone(),
        json,
    };
    tables::append_event(conn, &event)?;
    let outcome = match kind {
        EventType::Added => Outcome::Created(object),
        EventType::Modified => Outcome::Modified(object),
        EventType::Deleted => Outcome::Deleted(object),
    };
    Ok((outcome, Some(event)))
}

/// Removes the row of `key` whatever its text holds (one that cannot be decoded, stored before
/// writes were checked), logging a `DELETED` event that carries `stub` (its identity, as the
/// caller knows it) stamped with `next_rv`. [`StoreError::NotFound`] when there is no row.
pub(crate) fn remove_unreadable(
    conn: &Connection,
    key: &ObjectKey,
    next_rv: u64,
    mut stub: Value,
) -> Result<(Outcome, Option<Event>), StoreError> {
    if !tables::object_exists(conn, key)? {
        return Err(StoreError::NotFound { key: key.clone() });
    }
    tables::delete_object(conn, key)?;
    stamp(key, &mut stub, next_rv)?;
    let event = Event {
        resource_version: next_rv,
        kind: EventType::Deleted,
        key: key.clone(),
        object: stub.clone(),
        json: encode(key, &stub)?,
    };
    tables::append_event(conn, &event)?;
    Ok((Outcome::Deleted(stub), Some(event)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::Scope;
    use crate::store::schema;

    fn key() -> ObjectKey {
        ObjectKey::new("serving.knative.dev/services", "default", "hello")
    }

    fn put(conn: &Connection, rv: u64, object: Value) -> Outcome {
        apply::<_, StoreError>(conn, &key(), rv, |_| Ok(Some(object)))
            .expect("apply")
            .0
    }

    #[test]
    fn create_modify_delete_stamp_the_next_resource_version() {
        let conn = schema::open_memory().expect("open");
        let created = put(&conn, 1, json!({"metadata": {"name": "hello"}, "spec": 1}));
        assert_eq!(created.resource_version(), Some(1));
        assert!(matches!(created, Outcome::Created(_)));

        let modified = put(&conn, 2, json!({"metadata": {"name": "hello"}, "spec": 2}));
        assert!(matches!(modified, Outcome::Modified(_)));
        assert_eq!(modified.resource_version(), Some(2));

        let (deleted, event) =
            apply::<_, StoreError>(&conn, &key(), 3, |_| Ok(None)).expect("delete");
        assert_eq!(deleted.resource_version(), Some(3));
        assert_eq!(
            deleted.object().and_then(|o| o.get("spec")),
            Some(&json!(2))
        );
        let event = event.expect("an event");
        assert_eq!(event.kind, EventType::Deleted);
        assert_eq!(event.resource_version, 3);
        assert!(tables::read_object(&conn, &key()).expect("read").is_none());
    }

    /// Nests `value` `levels` deep under `spec`.
    fn nested(levels: usize) -> Value {
        let mut value = json!(1);
        for _ in 0..levels {
            value = json!([value]);
        }
        json!({"metadata": {"name": "hello"}, "spec": value})
    }

    #[test]
    fn a_write_no_reader_could_decode_is_refused_and_nothing_stored() {
        let conn = schema::open_memory().expect("open");
        put(&conn, 1, json!({"metadata": {"name": "hello"}, "spec": 1}));
        let refused = apply::<_, StoreError>(&conn, &key(), 2, |_| Ok(Some(nested(250))));
        assert!(
            matches!(refused, Err(StoreError::TooDeep { depth: 251, .. })),
            "{refused:?}"
        );
        let (rv, stored) = tables::read_object(&conn, &key())
            .expect("read")
            .expect("kept");
        assert_eq!((rv, &stored["spec"]), (1, &json!(1)));
        assert!(
            tables::events_after(&conn, &Scope::resource(key().resource), 1, 10)
                .expect("events")
                .events
                .is_empty()
        );
    }

    #[test]
    fn an_object_stored_unreadable_can_still_be_removed() {
        let conn = schema::open_memory().expect("open");
        let deep = serde_json::to_string(&nested(250)).expect("encode");
        tables::put_object(&conn, &key(), 1, &deep).expect("stored before the checks");
        assert!(matches!(
            tables::read_object(&conn, &key()),
            Err(StoreError::Unreadable { .. })
        ));
        let listed = tables::list_json(&conn, &Scope::resource(key().resource), None, None);
        assert!(listed.expect("the list does not fail").is_empty());
        let stub = json!({"kind": "Service", "metadata": {"name": "hello"}});
        let (outcome, event) = remove_unreadable(&conn, &key(), 2, stub).expect("removed");
        assert_eq!(outcome.resource_version(), Some(2));
        assert_eq!(event.expect("an event").kind, EventType::Deleted);
        assert!(tables::read_object(&conn, &key()).expect("read").is_none());
        assert!(matches!(
            remove_unreadable(&conn, &key(), 3, json!({})),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn an_identical_object_is_not_written() {
        let conn = schema::open_memory().expect("open");
        put(&conn, 1, json!({"spec": 1}));
        // Equal apart from the resourceVersion (absent here): nothing to do.
        let (outcome, event) =
            apply::<_, StoreError>(&conn, &key(), 2, |_| Ok(Some(json!({"spec": 1}))))
                .expect("apply");
        assert!(matches!(outcome, Outcome::Unchanged(Some(_))));
        assert_eq!(outcome.resource_version(), Some(1));
        assert!(event.is_none());
        // Deleting what is not there: nothing to do either.
        let missing = ObjectKey::new("serving.knative.dev/services", "default", "gone");
        let (outcome, event) =
            apply::<_, StoreError>(&conn, &missing, 2, |_| Ok(None)).expect("apply");
        assert_eq!(outcome, Outcome::Unchanged(None));
        assert!(event.is_none());
    }

    #[test]
    fn objects_that_cannot_be_stored_are_refused() {
        let conn = schema::open_memory().expect("open");
        for bad in [
            json!([1, 2]),
            json!({"metadata": "x"}),
            json!({"metadata": {"name": "other"}}),
            json!({"metadata": {"name": "hello", "namespace": "other"}}),
        ] {
            let err = apply::<_, StoreError>(&conn, &key(), 1, |_| Ok(Some(bad.clone())))
                .expect_err("refused");
            assert!(
                matches!(err, StoreError::InvalidObject { .. }),
                "{bad}: {err}"
            );
        }
    }
}
