//! The SQL, and nothing else: reading and writing rows of `meta`, `objects` and `events` on a
//! connection the caller has already put in the right transaction.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::error::StoreError;
use super::event::{Event, EventType};
use super::key::{ObjectKey, Scope};
use super::storable;

const RESOURCE_VERSION: &str = "resource_version";
const COMPACTED_THROUGH: &str = "compacted_through";

/// A page of the event log, as [`Store::events_since`](super::Store::events_since) returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The scope's events after the requested resourceVersion, oldest first.
    pub events: Vec<Event>,
    /// Every event of the scope with a resourceVersion at or below this one is in `events` or
    /// was before the requested one: ask for the next page after `through`.
    pub through: u64,
    /// Whether the page was cut at its limit (more events may follow right away).
    pub more: bool,
}

/// SQLite integers are signed; resourceVersions never get near `i64::MAX`, but say so if they do.
fn to_sql(rv: u64) -> Result<i64, StoreError> {
    i64::try_from(rv).map_err(|e| StoreError::storage("converting a resourceVersion", e))
}

fn from_sql(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|e| StoreError::storage("reading a resourceVersion", e))
}

fn read_meta(conn: &Connection, key: &str) -> Result<u64, StoreError> {
    let value: i64 = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)))
        .map_err(StoreError::sql("reading the store's counters"))?;
    from_sql(value)
}

fn write_meta(conn: &Connection, key: &str, value: u64) -> Result<(), StoreError> {
    let value = to_sql(value)?;
    conn.prepare_cached("UPDATE meta SET value = ?2 WHERE key = ?1")
        .and_then(|mut stmt| stmt.execute(params![key, value]))
        .map_err(StoreError::sql("writing the store's counters"))?;
    Ok(())
}

/// The last resourceVersion handed out.
pub(crate) fn resource_version(conn: &Connection) -> Result<u64, StoreError> {
    read_meta(conn, RESOURCE_VERSION)
}

pub(crate) fn set_resource_version(conn: &Connection, rv: u64) -> Result<(), StoreError> {
    write_meta(conn, RESOURCE_VERSION, rv)
}

/// The compaction floor: events at or below it are gone.
pub(crate) fn compacted_through(conn: &Connection) -> Result<u64, StoreError> {
    read_meta(conn, COMPACTED_THROUGH)
}

/// Raises the compaction floor to `through` (never lowers it) and deletes the events at or below
/// it. Returns the floor now in force.
pub(crate) fn compact(conn: &Connection, through: u64) -> Result<u64, StoreError> {
    let floor = compacted_through(conn)?;
    if through <= floor {
        return Ok(floor);
    }
    let sql_through = to_sql(through)?;
    conn.prepare_cached("DELETE FROM events WHERE resource_version <= ?1")
        .and_then(|mut stmt| stmt.execute([sql_through]))
        .map_err(StoreError::sql("compacting the event log"))?;
    write_meta(conn, COMPACTED_THROUGH, through)?;
    Ok(through)
}

fn decode(context: &'static str, json: &str) -> Result<Value, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::storage(context, e))
}

/// The stored object and its resourceVersion, if it exists.
pub(crate) fn read_object(
    conn: &Connection,
    key: &ObjectKey,
) -> Result<Option<(u64, Value)>, StoreError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT resource_version, object FROM objects
             WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![key.resource, key.namespace, key.name], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
        })
        .map_err(StoreError::sql("reading an object"))?;
    row.map(|(rv, json)| {
        let object = serde_json::from_str(&json).map_err(|error| StoreError::Unreadable {
            key: key.clone(),
            reason: error.to_string(),
        })?;
        Ok((from_sql(rv)?, object))
    })
    .transpose()
}

/// Whether `key` has a row, without reading it.
pub(crate) fn object_exists(conn: &Connection, key: &ObjectKey) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "SELECT 1 FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![key.resource, key.namespace, key.name], |_| Ok(()))
            .optional()
    })
    .map(|found| found.is_some())
    .map_err(StoreError::sql("looking an object up"))
}

/// Inserts or replaces the object's row.
pub(crate) fn put_object(
    conn: &Connection,
    key: &ObjectKey,
    rv: u64,
    json: &str,
) -> Result<(), StoreError> {
    let rv = to_sql(rv)?;
    conn.prepare_cached(
        "INSERT INTO objects (resource, namespace, name, resource_version, object)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (resource, namespace, name)
         DO UPDATE SET resource_version = excluded.resource_version, object = excluded.object",
    )
    .and_then(|mut stmt| stmt.execute(params![key.resource, key.namespace, key.name, rv, json]))
    .map_err(StoreError::sql("writing an object"))?;
    Ok(())
}

pub(crate) fn delete_object(conn: &Connection, key: &ObjectKey) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3")
        .and_then(|mut stmt| stmt.execute(params![key.resource, key.namespace, key.name]))
        .map_err(StoreError::sql("deleting an object"))?;
    Ok(())
}

/// The objects in `scope`, ordered by namespace and name.
pub(crate) fn list_objects(conn: &Connection, scope: &Scope) -> Result<Vec<Value>, StoreError> {
    list_json(conn, scope, None, None)?
        .iter()
        .map(|stored| decode("decoding a stored object", &stored.json))
        .collect()
}

/// Drops (with a warning) the rows no reader could decode — stored before writes were checked —
/// so that one broken object does not fail every list of its kind.
fn readable_only(scope: &Scope, rows: Vec<StoredJson>) -> Vec<StoredJson> {
    rows.into_iter()
        .filter(|row| {
            let readable = storable::readable(&row.json);
            if !readable {
                tracing::warn!(
                    resource = scope.resource,
                    namespace = row.namespace,
                    name = row.name,
                    "a stored object cannot be decoded: left out of lists; delete it"
                );
            }
            readable
        })
        .collect()
}

/// One stored object as its JSON text, with its namespace and name (the list order and the
/// cursor of the next page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJson {
    /// `metadata.namespace` (`""` when cluster-scoped).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The object, compact JSON exactly as stored.
    pub json: String,
}

/// Up to `limit` objects of `scope` after the (namespace, name) `after`, in list order, as
/// stored text: a list that needs no filtering is answered without parsing an object.
pub(crate) fn list_json(
    conn: &Connection,
    scope: &Scope,
    after: Option<&(String, String)>,
    limit: Option<usize>,
) -> Result<Vec<StoredJson>, StoreError> {
    let (after_namespace, after_name) = match after {
        Some((namespace, name)) => (Some(namespace.as_str()), Some(name.as_str())),
        None => (None, None),
    };
    // SQLite reads a negative LIMIT as "no limit".
    let limit = limit.map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
    conn.prepare_cached(
        "SELECT namespace, name, object FROM objects
         WHERE resource = ?1 AND (?2 IS NULL OR namespace = ?2) AND (?3 IS NULL OR name = ?3)
           AND (?4 IS NULL OR (namespace, name) > (?4, ?5))
         ORDER BY namespace, name
         LIMIT ?6",
    )
    .and_then(|mut stmt| {
        stmt.query_map(
            params![
                scope.resource,
                scope.namespace,
                scope.name,
                after_namespace,
                after_name,
                limit
            ],
            |row| {
                Ok(StoredJson {
                    namespace: row.get(0)?,
                    name: row.get(1)?,
                    json: row.get(2)?,
                })
            },
        )?
        .collect()
    })
    .map(|rows| readable_only(scope, rows))
    .map_err(StoreError::sql("listing objects"))
}

/// The keys of the objects whose `metadata.ownerReferences` name `owner_uid`, in `namespace`
/// when given, ordered by resource, namespace and name.
pub(crate) fn dependents(
    conn: &Connection,
    owner_uid: &str,
    namespace: Option<&str>,
) -> Result<Vec<ObjectKey>, StoreError> {
    conn.prepare_cached(
        "SELECT resource, namespace, name FROM owner_refs
         WHERE owner_uid = ?1 AND (?2 IS NULL OR namespace = ?2)
         ORDER BY resource, namespace, name",
    )
    .and_then(|mut stmt| {
        stmt.query_map(params![owner_uid, namespace], |row| {
            Ok(ObjectKey {
                resource: row.get(0)?,
                namespace: row.get(1)?,
                name: row.get(2)?,
            })
        })?
        .collect()
    })
    .map_err(StoreError::sql("reading an owner's dependents"))
}

/// Appends `event` to the log.
pub(crate) fn append_event(conn: &Connection, event: &Event) -> Result<(), StoreError> {
    let rv = to_sql(event.resource_version)?;
    conn.prepare_cached(
        "INSERT INTO events (resource_version, type, resource, namespace, name, object)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            rv,
            event.kind.as_str(),
            event.key.resource,
            event.key.namespace,
            event.key.name,
            event.json
        ])
    })
    .map_err(StoreError::sql("appending to the event log"))?;
    Ok(())
}

/// Up to `limit` events of `scope` after resourceVersion `after`, or [`StoreError::Expired`] when
/// compaction has removed some of them. Call inside one read transaction so the floor, the rows
/// and the current resourceVersion agree.
pub(crate) fn events_after(
    conn: &Connection,
    scope: &Scope,
    after: u64,
    limit: usize,
) -> Result<EventPage, StoreError> {
    let floor = compacted_through(conn)?;
    if after < floor {
        return Err(StoreError::Expired {
            requested: after,
            oldest_available: floor,
        });
    }
    let current = resource_version(conn)?;
    let limit = limit.max(1);
    type Row = (i64, String, String, String, String, String);
    let rows: Vec<Row> = conn
        .prepare_cached(
            "SELECT resource_version, type, resource, namespace, name, object FROM events
             WHERE resource = ?1 AND resource_version > ?2
               AND (?3 IS NULL OR namespace = ?3) AND (?4 IS NULL OR name = ?4)
             ORDER BY resource_version LIMIT ?5",
        )
        .and_then(|mut stmt| {
            stmt.query_map(
                params![
                    scope.resource,
                    // Nothing is logged above i64::MAX: a larger `after` just finds no events.
                    i64::try_from(after).unwrap_or(i64::MAX),
                    scope.namespace,
                    scope.name,
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                    ))
                },
            )?
            .collect()
        })
        .map_err(StoreError::sql("reading the event log"))?;
    let more = rows.len() >= limit;
    let events = rows
        .into_iter()
        .map(|(rv, kind, resource, namespace, name, json)| {
            let kind = EventType::parse(&kind).ok_or_else(|| {
                StoreError::storage(
                    "reading the event log",
                    std::io::Error::other(format!("unknown event type {kind:?}")),
                )
            })?;
            Ok(Event {
                resource_version: from_sql(rv)?,
                kind,
                key: ObjectKey::new(resource, namespace, name),
                object: decode("decoding a logged object", &json)?,
                json,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let through = match events.last() {
        Some(last) if more => last.resource_version,
        _ => current.max(after),
    };
    Ok(EventPage {
        events,
        through,
        more,
    })
}
